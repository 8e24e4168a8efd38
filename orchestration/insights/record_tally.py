"""Folding batches of `processed-data` messages into a window's tally: the native kernel, or the same in Python.

`record_visitor(window, layouts)` answers a `RecordVisitor` for `streaming.topic_reader.read_range_batches`:
its `visit_batch(messages, ends)` takes each batch as the consumer returned it and, per message of a pending
partition below its end, reads the seven fields the insights use straight from the Avro body
(`avro_layout`, by the writer schema id of the message's header), places the record (`placement.Window`)
and counts it in a `WindowTally`; a record processed past what the window reads ends its partition's range
(`ends[partition]` is lowered to its offset). `finish()` answers the tally and, per partition, how many
messages got each `Outcome`.

Two implementations give the same answers, state for state (`tests/unit/test_insights_kernel.py`): the
native kernel (`kdp_native.RecordTally`, `native/src/insights.rs`), used when it is built; and
`PythonRecordVisitor` below, the reference it is tested against and the fallback without a Rust toolchain.

Why this design (measured on the 2-core development machine, under load, `bench/RESULTS.md` has the run):
the read used to cost about 27 µs of CPU per record, most of it decoding every record into a dict with
fastavro (datetimes included) and per-record Python. Consuming alone (librdkafka fetching and decompressing,
confluent-kafka building a `Message` per record, a Python loop calling `value()`) costs about 1.1 µs a
record, so the rest had to cost well under 1 µs: no Python per record at all. The kernel reads the seven
fields in place (no dict, no datetime) and tallies in native code: about 0.5 µs a message, the four
method calls it makes on each message included (`python -m bench.insights`, "the tally alone"); the whole
read comes to about 1.5-1.8 µs a record.
The pure-Python visitor costs about 20 µs a record, a fallback only. An incremental tally following
`processed-data` would spread the same consumption over the hour but not reduce it, and would need partial
aggregates kept crash-safe; a full read per hour keeps any hour recomputable from the topic alone with
nothing to reconcile.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from confluent_kafka import Message

from orchestration.insights.aggregates import WindowTally
from orchestration.insights.avro_layout import LayoutCache, UndecodableBody, read_fields
from orchestration.insights.placement import Outcome, Window
from orchestration.insights.sketch import DistinctSketch
from streaming.conversion.encoding import HEADER_BYTES, MAGIC_BYTE
from streaming.topic_reader import TopicReadError

try:
    import kdp_native
except ImportError:  # not built (no Rust toolchain at install): the pure-Python visitor
    kdp_native = None


class RecordVisitor(Protocol):
    def visit_batch(self, messages: list[Message], ends: dict[int, int]) -> None: ...

    def finish(self) -> tuple[WindowTally, dict[int, Counter[str]]]: ...


def native_available() -> bool:
    return kdp_native is not None and hasattr(kdp_native, "RecordTally")


def record_visitor(window: Window, layouts: LayoutCache, *, native: bool | None = None) -> RecordVisitor:
    """The native visitor when it is built (or `native=True`, which requires it), else the Python one."""
    if native is None:
        native = native_available()
    return NativeRecordVisitor(window, layouts) if native else PythonRecordVisitor(window, layouts)


class PythonRecordVisitor:
    """The visitor in Python: the reference for the native kernel, and its fallback."""

    def __init__(self, window: Window, layouts: LayoutCache) -> None:
        self._window = window
        self._layouts = layouts
        self._tally = WindowTally(window.start_ms, window.end_ms)
        self._answers: dict[int, Counter[str]] = defaultdict(Counter)

    def visit_batch(self, messages: list[Message], ends: dict[int, int]) -> None:
        for message in messages:
            error = message.error()
            if error is not None:
                raise TopicReadError(f"reading {message.topic()}/{message.partition()} failed: {error}")
            partition, offset = message.partition(), message.offset()
            if partition is None or offset is None or partition not in ends or offset >= ends[partition]:
                continue  # fetched past the range (prefetch), or after a record beyond the window: not ours
            outcome = self._visit(message.value())
            if outcome is Outcome.BEYOND:
                ends[partition] = offset
            else:
                self._answers[partition][outcome] += 1

    def _visit(self, value: bytes | None) -> Outcome:
        if value is None or len(value) < HEADER_BYTES or value[0] != MAGIC_BYTE:
            return Outcome.UNDECODABLE
        layout = self._layouts.layout_of(int.from_bytes(value[1:HEADER_BYTES], "big"))
        if layout is None:
            return Outcome.UNDECODABLE
        try:
            user, device, device_type, locale, version, event_ms, processed_ms = read_fields(
                layout, value[HEADER_BYTES:]
            )
        except UndecodableBody:
            return Outcome.UNDECODABLE
        outcome = self._window.place_record(event_ms, processed_ms)
        if outcome is Outcome.COUNTED:
            self._tally.add_fields(user, device, device_type, locale, version, event_ms)
        elif outcome is Outcome.LATE:
            self._tally.add_late(event_ms, processed_ms)
        return outcome

    def finish(self) -> tuple[WindowTally, dict[int, Counter[str]]]:
        return self._tally, dict(self._answers)


class NativeRecordVisitor:
    """The visitor in native code (`kdp_native.RecordTally`); `finish` rebuilds the same `WindowTally`."""

    def __init__(self, window: Window, layouts: LayoutCache) -> None:
        if not native_available():
            raise RuntimeError("the native kernel (kdp_native.RecordTally) is not installed")

        def layout_fields(schema_id: int) -> Any:
            layout = layouts.layout_of(schema_id)
            return None if layout is None else layout.fields

        self._window = window
        self._kernel = kdp_native.RecordTally(
            window.start_ms, window.end_ms, window.slack_ms, window.records_stop_ms, layout_fields, TopicReadError
        )
        self.visit_batch: Callable[[list[Message], dict[int, int]], None] = self._kernel.visit_batch

    def finish(self) -> tuple[WindowTally, dict[int, Counter[str]]]:
        state: Mapping[str, Any] = self._kernel.state()
        tally = WindowTally(self._window.start_ms, self._window.end_ms)
        tally.records = state["records"]
        tally.device_types.update(state["device_types"])
        tally.locales.update(state["locales"])
        tally.app_versions.update(state["app_versions"])
        tally.minutes.update(state["minutes"])
        tally.newest_event_ms = state["newest_event_ms"]
        tally.late_records = state["late_records"]
        tally.oldest_late_event_ms = state["oldest_late_event_ms"]
        tally.max_late_delay_ms = state["max_late_delay_ms"]
        tally.users = _sketch(state["users"])
        tally.devices = _sketch(state["devices"])
        answers: dict[int, Counter[str]] = {
            partition: Counter({name: n for name, n in counts.items() if n})
            for partition, counts in state["answers"].items()
        }
        return tally, answers


def _sketch(state: tuple[int, dict[int, tuple[int, str]]]) -> DistinctSketch:
    theta, entries = state
    return DistinctSketch(theta=theta, entries=entries)
