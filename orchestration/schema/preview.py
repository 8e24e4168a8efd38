"""A proposed contract run beside the current one over a recent window of the source topic; nothing written.

`preview_contracts(settings, current, proposed, last=10_000)` reads the last `last` messages of each source
partition with the short-lived reader of `streaming.topic_reader` (its own group id, no commits, so the
converters' group and every topic stay as they are; nothing is registered), converts each message with both
contracts (`BuildConversion`, by default the reference engine) at one processing time, and reports:

- how many records change, and which fields (a field the proposed schema adds counts as changed where its
  value is not its default; a field it removes, in every record that had it);
- refusals the proposed contract adds, by reason, and the ones it lifts;
- the output's size, both ways (Avro bodies, the 5-byte header aside);
- Avro schema resolution (fastavro) both ways: each proposed record read by a reader on the current schema
  (an old reader decoding new records) and each current record read by a reader on the proposed schema (a new
  reader decoding old records), with the first failure quoted.

`PreviewError` (one line) when the topic cannot be read, e.g. it does not exist.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

import fastavro
from confluent_kafka import Message

from orchestration.schema.contract import BuildConversion, Contract, reference_conversion
from streaming.offset_ranges import OffsetRange
from streaming.records import Rejection
from streaming.settings import Settings
from streaming.topic_reader import TopicReadError, current_ranges, read_ranges, reader_consumer

DEFAULT_LAST = 10_000
"""Messages per partition a preview reads by default: the most recent ones."""
HEADER = 5
"""Magic byte and schema id before each Avro body (Confluent wire format)."""
_ABSENT = object()


class PreviewError(RuntimeError):
    """The preview could not read its window; nothing was changed."""


@dataclass
class PreviewReport:
    """What a proposed contract would change on the window read (`preview_contracts`)."""

    topic: str
    ranges: list[OffsetRange]
    messages: int = 0
    converted_both: int = 0
    changed_records: int = 0
    changed_fields: Counter[str] = field(default_factory=Counter)
    new_refusals: Counter[str] = field(default_factory=Counter)
    """Messages the current contract converts and the proposed one refuses, by the proposed refusal's reason."""
    lifted_refusals: Counter[str] = field(default_factory=Counter)
    """Messages the current contract refuses and the proposed one converts, by the current refusal's reason."""
    bytes_current: int = 0
    bytes_proposed: int = 0
    """Avro bytes of the records both contracts convert."""
    old_reader_failures: int = 0
    new_reader_failures: int = 0
    first_resolution_error: str | None = None

    @property
    def readers_agree(self) -> bool:
        return self.old_reader_failures == 0 and self.new_reader_failures == 0

    def describe(self) -> list[str]:
        """The report as lines for a person."""
        window = ", ".join(f"{r.partition}:{r.start}-{r.end}" for r in self.ranges) or "nothing"
        lines = [f"read {self.messages} message(s) of {self.topic} (partition:offsets {window}); nothing written"]
        lines.append(
            f"records changed: {self.changed_records} of {self.converted_both} converted by both"
            + (f" ({_counts(self.changed_fields)})" if self.changed_fields else "")
        )
        lines.append(f"new refusals: {sum(self.new_refusals.values())}" + _detail(self.new_refusals))
        lines.append(f"refusals lifted: {sum(self.lifted_refusals.values())}" + _detail(self.lifted_refusals))
        change = self.bytes_proposed - self.bytes_current
        share = f" ({change / self.bytes_current:+.1%})" if self.bytes_current else ""
        lines.append(f"output size: {self.bytes_current} -> {self.bytes_proposed} bytes{share}")
        lines.append(
            f"old reader on new records: {self.converted_both - self.old_reader_failures} of "
            f"{self.converted_both} decoded; new reader on old records: "
            f"{self.converted_both - self.new_reader_failures} of {self.converted_both} decoded"
        )
        if self.first_resolution_error:
            lines.append(f"first resolution failure: {self.first_resolution_error}")
        return lines


def preview_contracts(
    settings: Settings,
    current: Contract,
    proposed: Contract,
    *,
    last: int = DEFAULT_LAST,
    topic: str | None = None,
    build: BuildConversion = reference_conversion,
    now_ms: int | None = None,
) -> PreviewReport:
    """Compare `proposed` with `current` over the last `last` messages per partition of `topic` (default: the
    source topic); see the module docstring."""
    if last < 1:
        raise ValueError("last must be at least 1")
    topic = topic or settings.source_topic
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    oldest_ms = settings.oldest_event_ms(now_ms)
    compare = _Comparison(current, proposed, build, now_ms, oldest_ms)
    consumer = reader_consumer(settings, "schema-preview")
    try:
        ranges = current_ranges(consumer, topic, last=last)
        compare.report = PreviewReport(topic, ranges)
        read_ranges(consumer, ranges, compare.visit)
    except TopicReadError as error:
        raise PreviewError(str(error)) from None
    finally:
        consumer.close()
    return compare.report


class _Comparison:
    """Both conversions of each message, compared; the tally in `report`."""

    def __init__(
        self, current: Contract, proposed: Contract, build: BuildConversion, now_ms: int, oldest_ms: int
    ) -> None:
        self.current, self.proposed = build(current), build(proposed)
        self.current_schema = fastavro.parse_schema(current.schema)
        self.proposed_schema = fastavro.parse_schema(proposed.schema)
        self.defaults = {f["name"]: f.get("default", _ABSENT) for f in proposed.schema["fields"]}
        self.now_ms, self.oldest_ms = now_ms, oldest_ms
        self.report = PreviewReport("", [])

    def visit(self, message: Message) -> str:
        args = (message.value(), message.topic(), message.partition(), message.offset(), self.now_ms, self.oldest_ms)
        before, after = self.current(*args), self.proposed(*args)  # type: ignore[arg-type]
        report = self.report
        report.messages += 1
        if type(before) is Rejection and type(after) is Rejection:
            return "refused by both"
        if type(after) is Rejection:
            report.new_refusals[str(after.reason)] += 1
            return "newly refused"
        if type(before) is Rejection:
            report.lifted_refusals[str(before.reason)] += 1
            return "no longer refused"
        old_body, new_body = before.value[HEADER:], after.value[HEADER:]  # type: ignore[union-attr]
        report.converted_both += 1
        report.bytes_current += len(old_body)
        report.bytes_proposed += len(new_body)
        old = _read(old_body, self.current_schema)
        new = _read(new_body, self.proposed_schema)
        changed = [name for name in {**old, **new} if self._differs(name, old, new)]
        if changed:
            report.changed_records += 1
            report.changed_fields.update(changed)
        try:
            _read(new_body, self.proposed_schema, self.current_schema)
        except Exception as error:  # noqa: BLE001 - any failure to resolve is what is being counted
            report.old_reader_failures += 1
            report.first_resolution_error = report.first_resolution_error or f"old reader on a new record: {error}"
        try:
            _read(old_body, self.current_schema, self.proposed_schema)
        except Exception as error:  # noqa: BLE001
            report.new_reader_failures += 1
            report.first_resolution_error = report.first_resolution_error or f"new reader on an old record: {error}"
        return "changed" if changed else "same"

    def _differs(self, name: str, old: dict[str, Any], new: dict[str, Any]) -> bool:
        if name not in old:  # added by the proposed schema: changed where it is not the default
            return new[name] != self.defaults.get(name, _ABSENT)
        return new.get(name, _ABSENT) != old[name]


def _read(body: bytes, writer: Any, reader: Any = None) -> dict[str, Any]:
    record: dict[str, Any] = fastavro.schemaless_reader(BytesIO(body), writer, reader)  # type: ignore[assignment]
    return record


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counter.most_common())


def _detail(counter: Counter[str]) -> str:
    return f" ({_counts(counter)})" if counter else ""
