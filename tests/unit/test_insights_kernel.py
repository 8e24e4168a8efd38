"""The record visitors on generated hours: the new ones (native kernel and Python) give today's answers.

Each hour is a log of three partitions read in shuffled batches: on-time records, records in the slack, late
ones and very old ones (2001) that arrive in the hour, the neighbouring hours' records, records past what
the hour reads (ending their partition's range, with more after them), messages prefetched past a range's
end, undecodable values (no header, an unknown schema id, garbage, a schema the insights cannot read), and
records of two writer schema versions. The reference is the implementation before this one
(`insights_reference`: full fastavro decode, exact sets): counts, breakdowns, minutes, late records and
partition outcomes must be equal, and distinct users and devices too while below the sketch's capacity.
The native kernel and the Python visitor must agree state for state, sketches included, beyond it too."""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fakes.broker import FakeMessage, Record
from hypothesis import given, settings
from hypothesis import strategies as st
from insights_reference import ExactVisitor

from orchestration.insights import record_tally
from orchestration.insights.aggregates import WindowTally
from orchestration.insights.avro_layout import LayoutCache
from orchestration.insights.placement import HOUR_MS, MINUTE_MS, Window
from orchestration.insights.record_tally import NativeRecordVisitor, PythonRecordVisitor
from streaming.conversion.encoding import WireFormatEncoder, wire_header
from streaming.topic_reader import TopicReadError

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "schemas" / "processed-data-value.avsc").read_text())
SCHEMA_V2 = json.loads((ROOT / "schemas" / "evolution" / "compatible-v2.avsc").read_text())
UNREADABLE = {**SCHEMA, "fields": [{**f, "type": "long"} if f["name"] == "locale" else f for f in SCHEMA["fields"]]}
V1, V2, V_UNREADABLE, V_UNKNOWN = 11, 12, 13, 99
TOPIC = "processed-data"
START = 1_795_593_600_000  # 2026-11-25 08:00 UTC
YEAR_2001 = 978_307_200_000

native_only = pytest.mark.skipif(not record_tally.native_available(), reason="the native kernel is not built")


@dataclass
class StubSchema:
    schema_str: str


class StubRegistry:
    def __init__(self) -> None:
        self.lookups: Counter[int] = Counter()

    def get_schema(self, schema_id: int) -> StubSchema:
        self.lookups[schema_id] += 1
        schemas = {V1: SCHEMA, V2: SCHEMA_V2, V_UNREADABLE: UNREADABLE}
        if schema_id not in schemas:
            raise SchemaRegistryError(404, 40403, "Schema not found")
        return StubSchema(json.dumps(schemas[schema_id]))


ENCODERS = {
    V1: WireFormatEncoder(V1, SCHEMA),
    V2: WireFormatEncoder(V2, SCHEMA_V2),
    V_UNREADABLE: WireFormatEncoder(V_UNREADABLE, UNREADABLE, mode="fastavro"),
}


def record(rng: random.Random, users: int, event_ms: int, processed_ms: int) -> dict[str, Any]:
    return {
        "user_id": rng.choice(["", str(uuid.UUID(int=rng.randrange(users)))])
        if rng.random() < 0.02
        else str(uuid.UUID(int=rng.randrange(users))),
        "device_id": None if rng.random() < 0.1 else rng.choice(["", str(uuid.UUID(int=10**9 + rng.randrange(users)))]),
        "device_type": rng.choice(["ios", "android", "unknown", ""]),
        "locale": rng.choice(["NY", "CA", "TX", "PR", ""]),
        "ip": rng.choice(["8.8.8.8", "2001:db8::1"]),
        "ip_version": 4,
        "ip_class": "PUBLIC",
        "app_version": rng.choice(["2.3.0", "2.4.0", "2.10.1", "3.0.0-beta", ""]),
        "app_version_major": 2,
        "app_version_minor": 3,
        "app_version_patch": 0,
        "event_time": event_ms,
        "processed_at": processed_ms,
        "source_topic": "user-login",
        "source_partition": rng.randrange(6),
        "source_offset": rng.randrange(10**9),
        "session_id": rng.choice([None, "s"]),
    }


def times(rng: random.Random) -> tuple[int, int]:
    """(event, processing) time of one record around the hour `START`, every placement represented."""
    kind = rng.random()
    if kind < 0.70:  # on time, a few seconds to minutes after the event
        event = START + rng.randrange(HOUR_MS)
        return event, event + rng.randrange(1000, 5 * MINUTE_MS)
    if kind < 0.75:  # this hour's, processed in the slack
        event = START + HOUR_MS - rng.randrange(1, 5 * MINUTE_MS)
        return event, START + HOUR_MS + rng.randrange(10 * MINUTE_MS)
    if kind < 0.80:  # late: the previous hours' events processed in this hour
        processed = START + rng.randrange(HOUR_MS)
        return processed - rng.randrange(2 * HOUR_MS, 30 * HOUR_MS), processed
    if kind < 0.82:  # very old
        processed = START + rng.randrange(HOUR_MS)
        return YEAR_2001 + rng.randrange(HOUR_MS), processed
    if kind < 0.88:  # the previous hour's, processed before this one or in its slack
        event = START - rng.randrange(1, HOUR_MS)
        return event, event + rng.randrange(1000, 10 * MINUTE_MS)
    if kind < 0.94:  # the next hour's
        event = START + HOUR_MS + rng.randrange(HOUR_MS)
        return event, min(event + 1000, START + HOUR_MS + 14 * MINUTE_MS)
    event = START + rng.randrange(HOUR_MS)  # a clock ahead: processed before its event
    return event, event - rng.randrange(50 * MINUTE_MS)


def value(rng: random.Random, users: int, unreadable: bool) -> bytes | None:
    kind = rng.random()
    if kind < 0.01:
        return None
    if kind < 0.02:
        return b"{not avro"
    if kind < 0.03:
        return wire_header(V_UNKNOWN) + ENCODERS[V1].encode(record(rng, users, START, START))[5:]
    if kind < 0.04:
        return ENCODERS[V1].encode(record(rng, users, START + 1, START + 2))[: -rng.randrange(1, 30)]
    if kind < 0.05:
        return wire_header(V1) + bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
    if kind < 0.06 and unreadable:
        return ENCODERS[V_UNREADABLE].encode({**record(rng, users, START, START), "locale": 5})
    event, processed = times(rng)
    version = V2 if rng.random() < 0.3 else V1
    return ENCODERS[version].encode(record(rng, users, event, processed))


def hour_log(
    seed: int, messages: int, users: int, unreadable: bool = False
) -> tuple[list[list[FakeMessage]], dict[int, int]]:
    """Batches of messages of three partitions as a consumer could return them, and each range's end.
    `unreadable`: with records of a writer schema whose `locale` is a long (which the full decode counted as
    a locale; the new visitors count them undecodable, see `avro_layout`)."""
    rng = random.Random(seed)
    per_partition: dict[int, list[FakeMessage]] = {}
    ends = {}
    for partition in range(3):
        count = messages // 3
        values = [value(rng, users, unreadable) for _ in range(count)]
        if partition == 1:  # a record processed past what the hour reads, then more records
            values[count // 2] = ENCODERS[V1].encode(record(rng, users, START + HOUR_MS, START + 2 * HOUR_MS))
        first = 1000 * partition
        per_partition[partition] = [
            FakeMessage(TOPIC, partition, first + i, Record(None, v, 0)) for i, v in enumerate(values)
        ]
        ends[partition] = first + count - (5 if partition == 2 else 0)  # partition 2 prefetched past its end
    batches: list[list[FakeMessage]] = []
    queues = {p: list(ms) for p, ms in per_partition.items()}
    while any(queues.values()):
        batch: list[FakeMessage] = []
        for _ in range(rng.randrange(1, 600)):
            live = [p for p, q in queues.items() if q]
            if not live:
                break
            batch.append(queues[rng.choice(live)].pop(0))
        batches.append(batch)
    return batches, ends


def run(visitor: Any, batches: list[list[FakeMessage]], ends: dict[int, int]) -> dict[int, int]:
    mine = dict(ends)
    for batch in batches:
        visitor.visit_batch(batch, mine)
    return mine


def window() -> Window:
    return Window(START, START + HOUR_MS)


def assert_same_tally(new: WindowTally, exact: Any) -> None:
    for name in (
        "records",
        "device_types",
        "locales",
        "app_versions",
        "minutes",
        "newest_event_ms",
        "late_records",
        "oldest_late_event_ms",
        "max_late_delay_ms",
    ):
        assert getattr(new, name) == getattr(exact, name), name


@pytest.mark.parametrize("native", [pytest.param(True, marks=native_only), False], ids=["native", "python"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_hour_is_counted_as_the_full_decode_counted_it(native: bool, seed: int) -> None:
    batches, ends = hour_log(seed, 6000, users=500)
    registry = StubRegistry()
    exact = ExactVisitor(window(), registry)
    exact_ends = run(exact, batches, ends)
    visitor = (
        NativeRecordVisitor(window(), LayoutCache(registry))
        if native
        else PythonRecordVisitor(window(), LayoutCache(registry))
    )
    new_ends = run(visitor, batches, ends)
    tally, answers = visitor.finish()

    assert new_ends == exact_ends and new_ends[1] < ends[1]
    assert answers == {p: +counts for p, counts in exact.answers.items()}
    assert_same_tally(tally, exact.tally)
    assert tally.users.exact and tally.users.estimate() == len(exact.tally.users)
    assert tally.devices.estimate() == len(exact.tally.device_versions)
    assert tally.devices.estimate_by_value() == exact.tally.devices_by_version()
    outcomes = sum(answers.values(), Counter())
    assert min(outcomes[o] for o in ("counted", "late", "outside", "undecodable")) > 0
    assert tally.oldest_late_event_ms is not None and tally.oldest_late_event_ms < START - 10 * 365 * 24 * HOUR_MS


@native_only
def test_native_and_python_agree_on_everything_including_unreadable_schemas() -> None:
    batches, ends = hour_log(6, 6000, users=300, unreadable=True)
    results = []
    for visitor in (
        NativeRecordVisitor(window(), LayoutCache(StubRegistry())),
        PythonRecordVisitor(window(), LayoutCache(StubRegistry())),
    ):
        results.append((run(visitor, batches, ends), *visitor.finish()))
    (native_ends, native, native_answers), (python_ends, python, python_answers) = results
    assert native_ends == python_ends and native_answers == python_answers
    assert_same_tally(native, python)
    assert native.users == python.users and native.devices == python.devices


def ten_byte_long(n: int, beyond: int) -> bytes:
    """`n` zigzag-encoded in ten bytes, the tenth carrying `beyond` in its bits past the 64th."""
    zigzag = (n << 1) ^ (n >> 63)
    return bytes((zigzag >> 7 * k) & 0x7F | 0x80 for k in range(9)) + bytes([(zigzag >> 63) & 1 | beyond << 1])


@native_only
@pytest.mark.parametrize("beyond", [0, 0x3F])
def test_a_ten_byte_long_keeps_its_low_64_bits_in_both_visitors(beyond: int) -> None:
    """`processed_at` rewritten as a 10-byte long whose tenth byte has bits past the 64th: they are dropped (as
    fastavro's reader drops them), so the record is counted with its processing time, by both visitors."""
    value = ENCODERS[V1].encode(record(random.Random(2), 5, START + 7, START + 9))
    zigzag, normal = (START + 9) << 1, bytearray()  # the usual, shortest encoding
    while zigzag >= 0x80:
        normal.append(zigzag & 0x7F | 0x80)
        zigzag >>= 7
    normal.append(zigzag)
    assert value.count(normal) == 1
    value = value.replace(bytes(normal), ten_byte_long(START + 9, beyond))
    results = []
    for visitor in (
        NativeRecordVisitor(window(), LayoutCache(StubRegistry())),
        PythonRecordVisitor(window(), LayoutCache(StubRegistry())),
    ):
        visitor.visit_batch([FakeMessage(TOPIC, 0, 0, Record(None, value, 0))], {0: 1})
        tally, answers = visitor.finish()
        results.append((answers, tally.records, tally.newest_event_ms))
    assert results[0] == results[1] == ({0: {"counted": 1}}, 1, START + 7)


def test_records_of_a_schema_whose_needed_field_has_another_type_are_undecodable() -> None:
    visitor = PythonRecordVisitor(window(), LayoutCache(StubRegistry()))
    value = ENCODERS[V_UNREADABLE].encode({**record(random.Random(1), 5, START, START + 1), "locale": 5})
    visitor.visit_batch([FakeMessage(TOPIC, 0, 0, Record(None, value, 0))], {0: 1})
    tally, answers = visitor.finish()
    assert answers == {0: {"undecodable": 1}} and tally.records == 0


@native_only
def test_native_and_python_keep_the_same_sketches_beyond_the_capacity() -> None:
    """150,000 distinct users and devices: both sketches rebuild, at the same records, to the same entries."""
    encoder = ENCODERS[V1]
    rng = random.Random(5)
    messages = []
    for i in range(150_000):
        event = START + rng.randrange(HOUR_MS)
        r = record(rng, 10**12, event, event + 1000)
        r["user_id"], r["device_id"] = f"user-{i}", f"device-{i}"
        messages.append(FakeMessage(TOPIC, 0, i, Record(None, encoder.encode(r), 0)))
    visitors = [
        NativeRecordVisitor(window(), LayoutCache(StubRegistry())),
        PythonRecordVisitor(window(), LayoutCache(StubRegistry())),
    ]
    results = []
    for visitor in visitors:
        run(visitor, [messages[i : i + 1000] for i in range(0, len(messages), 1000)], {0: len(messages)})
        results.append(visitor.finish())
    (native, native_answers), (python, python_answers) = results
    assert native_answers == python_answers
    assert_same_tally(native, python)
    assert not native.users.exact and not native.devices.exact
    assert (native.users.theta, native.users.entries) == (python.users.theta, python.users.entries)
    assert (native.devices.theta, native.devices.entries) == (python.devices.theta, python.devices.entries)
    assert abs(native.users.estimate() - 150_000) / 150_000 < 0.02


@pytest.mark.parametrize("native", [pytest.param(True, marks=native_only), False], ids=["native", "python"])
def test_each_writer_schema_is_fetched_once(native: bool) -> None:
    batches, ends = hour_log(4, 1500, users=50, unreadable=True)
    registry = StubRegistry()
    visitor = record_tally.record_visitor(window(), LayoutCache(registry), native=native)
    run(visitor, batches, ends)
    assert set(registry.lookups.values()) == {1} and set(registry.lookups) == {V1, V2, V_UNREADABLE, V_UNKNOWN}


@pytest.mark.parametrize("native", [pytest.param(True, marks=native_only), False], ids=["native", "python"])
def test_a_message_that_carries_an_error_fails_the_read_with_its_partition(native: bool) -> None:
    from confluent_kafka import KafkaError

    visitor = record_tally.record_visitor(window(), LayoutCache(StubRegistry()), native=native)
    broken = FakeMessage(TOPIC, 2, 7, error=KafkaError(KafkaError._TRANSPORT, "broker gone"))
    with pytest.raises(TopicReadError, match=f"{TOPIC}/2"):
        visitor.visit_batch([broken], {2: 10})


@pytest.mark.parametrize("native", [pytest.param(True, marks=native_only), False], ids=["native", "python"])
def test_a_registry_outage_is_raised_not_counted_undecodable(native: bool) -> None:
    class Down:
        def get_schema(self, schema_id: int) -> StubSchema:
            raise SchemaRegistryError(503, 50301, "unavailable")

    visitor = record_tally.record_visitor(window(), LayoutCache(Down()), native=native)
    message = FakeMessage(TOPIC, 0, 0, Record(None, ENCODERS[V1].encode(record(random.Random(1), 5, START, START)), 0))
    with pytest.raises(SchemaRegistryError):
        visitor.visit_batch([message], {0: 1})


@native_only
@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=120), st.integers(0, 200))
def test_any_body_gets_the_same_outcome_from_both_visitors(garbage: bytes, keep: int) -> None:
    """Random bytes, and a real record cut anywhere and followed by random bytes, after a known header."""
    real = ENCODERS[V1].encode(record(random.Random(keep), 5, START + keep, START + 2 * keep))
    outcomes = []
    for body in (wire_header(V1) + garbage, real[: len(wire_header(V1)) + keep] + garbage):
        per_visitor = []
        for visitor in (
            NativeRecordVisitor(window(), LayoutCache(StubRegistry())),
            PythonRecordVisitor(window(), LayoutCache(StubRegistry())),
        ):
            visitor.visit_batch([FakeMessage(TOPIC, 0, 0, Record(None, body, 0))], {0: 1})
            tally, answers = visitor.finish()
            per_visitor.append((answers, tally.records, tally.device_types, tally.users.entries))
        outcomes.append(per_visitor)
    for native, python in outcomes:
        assert native == python
