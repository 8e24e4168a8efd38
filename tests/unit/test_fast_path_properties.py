"""The fused converter gives exactly what the reference (transform, then encode) gives, and fastavro agrees;
so does its batch form (`convert_batch`) against the reference called message by message.

Over: generated payloads (hypothesis, the transform's own strategy: valid, nearly valid and damaged
events), the bench backlog (the generator's events, seed 7, 5 % malformed), and the hostile corpus. For
each message: the same `Converted` (wire bytes, key, device type, locale) or the same `Rejection` (reason
and detail); every body decodes with `fastavro.schemaless_reader` to the transform's record.
"""

from __future__ import annotations

import copy
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka import Message
from corpus.hostile_logins import hostile_corpus
from fakes.broker import FakeMessage, Record
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_transform_properties import VALID, payloads

from streaming.conversion import fast_path
from streaming.conversion import transform as transform_module
from streaming.conversion.convert import Converted, ConvertedBatch, batch_form, one_by_one, reference_converter
from streaming.conversion.encoding import WireFormatEncoder, wire_header
from streaming.conversion.rules import codegen
from streaming.conversion.rules.declaration import RulesError
from streaming.conversion.transform import MIN_EVENT_TIME_MS, transform
from streaming.generator.events import EventFactory, IrregularityRates
from streaming.records import Reason, Rejection

SCHEMA = json.loads((Path(__file__).parents[2] / "schemas" / "processed-data-value.avsc").read_text())
SCHEMA_ID = 42
ENCODER = WireFormatEncoder(SCHEMA_ID, SCHEMA)
PARSED = fastavro.parse_schema(SCHEMA)
FUSED = fast_path.fused_converter(ENCODER)
REFERENCE = reference_converter(ENCODER)
NOW_MS = 1_720_576_830_000
DAY_MS = 86_400_000

PROPERTY = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Where a message was read and when: any topic name, partitions and offsets of every band of the varint
#: encoding and beyond the schema's int/long (which the reference refuses as `encoding_failed`).
places = st.tuples(
    st.sampled_from(["user-login", "t", "ünïcode-topic", "x" * 300]),
    st.integers(0, 2**14) | st.integers(-5, 2**31 + 5),
    st.integers(0, 2**41) | st.integers(-5, 2**63 + 5),
)
#: Acceptance windows: none (the 2000-01-01 floor), one hour, seven days, or everything refused.
oldest = st.sampled_from([MIN_EVENT_TIME_MS, NOW_MS - 3_600_000, NOW_MS - 7 * DAY_MS, NOW_MS + DAY_MS])


def assert_same(value: bytes | None, topic: str, partition: int, offset: int, now_ms: int, oldest_ms: int) -> None:
    """Fused and reference agree on this message; a record's body is what fastavro reads back.

    The reference goes first: it fills the transform's memo tables, so that the fused function meets the
    message's device type and app version as known values and decides it on its own fast lane.
    """
    reference = REFERENCE(value, topic, partition, offset, now_ms, oldest_ms)
    fused = FUSED(value, topic, partition, offset, now_ms, oldest_ms)
    assert type(fused) is type(reference)
    assert fused == reference
    if isinstance(fused, Converted):
        record = transform(value, topic, partition, offset, now_ms, oldest_ms=oldest_ms)
        assert isinstance(record, dict)
        assert fused.value[:5] == b"\x00" + SCHEMA_ID.to_bytes(4, "big")
        decoded = fastavro.schemaless_reader(io.BytesIO(fused.value[5:]), PARSED, None)
        for name in ("event_time", "processed_at"):  # timestamp-millis reads back as an aware datetime
            assert decoded[name] == datetime.fromtimestamp(record[name] / 1000, UTC)
            decoded[name] = record[name]
        assert decoded == record
        assert (fused.key, fused.device_type, fused.locale) == (
            record["user_id"].encode(),
            record["device_type"],
            record["locale"],
        )


@PROPERTY
@given(raw=payloads(), place=places, oldest_ms=oldest)
@example(raw=b"{" + VALID + b"}", place=("user-login", 0, 0), oldest_ms=MIN_EVENT_TIME_MS)
@example(raw=b"{" + VALID + b"}", place=("user-login", 2**31, 0), oldest_ms=MIN_EVENT_TIME_MS)  # int overflow
@example(raw=b"{" + VALID + b"}", place=("user-login", 0, 2**63), oldest_ms=MIN_EVENT_TIME_MS)  # long overflow
@example(raw=b"{" + VALID + b"}", place=("user-login", -1, -(2**20)), oldest_ms=MIN_EVENT_TIME_MS)
@example(raw=b"{" + VALID + b"}", place=("user-login", 0, 0), oldest_ms=NOW_MS)  # too old
@example(raw=b"{" + VALID + b"}", place=("user-login", 0, 0), oldest_ms=1_720_576_825_000)  # on the edge
@example(raw=b"{" + VALID.replace(b"1720576825", b'"1720576825"') + b"}", place=("t", 1, 1), oldest_ms=0)
@example(raw=b"{" + VALID.replace(b"1720576825", b"1720576825000") + b"}", place=("t", 1, 1), oldest_ms=0)
@example(raw=b"{" + VALID.replace(b"1720576825", b'"00001720576825"') + b"}", place=("t", 1, 1), oldest_ms=0)
def test_fused_equals_reference_on_generated_payloads(raw: bytes, place: tuple[str, int, int], oldest_ms: int) -> None:
    topic, partition, offset = place
    assert_same(raw, topic, partition, offset, NOW_MS, oldest_ms)


@PROPERTY
@given(
    user=st.uuids().map(str) | st.uuids().map(str).map(str.upper),
    device=st.none() | st.uuids().map(str) | st.uuids().map(str).map(str.upper),
    device_type=st.none() | st.sampled_from(["ios", "iOS", "android", "", "web", "harmony_os", "bad type!"]),
    state=st.sampled_from(["CA", "ny", "PR", "XX"]),
    ip=st.ip_addresses().map(str),
    version=st.tuples(st.integers(0, 10**9), st.integers(0, 99), st.none() | st.integers(0, 99)),
    timestamp=st.integers(0, 2 * NOW_MS) | st.integers(NOW_MS // 1000 - 10**8, NOW_MS // 1000 + 4000),
    as_string=st.booleans(),
    oldest_ms=oldest,
)
def test_fused_equals_reference_on_mostly_valid_events(
    user: str,
    device: str | None,
    device_type: str | None,
    state: str,
    ip: str,
    version: tuple[int, int, int | None],
    timestamp: int,
    as_string: bool,
    oldest_ms: int,
) -> None:
    """Near the fast lane's edges: case, absent values, every IP kind, numbers at the int limits, both units."""
    event: dict[str, Any] = {
        "user_id": user,
        "device_id": device,
        "device_type": device_type,
        "locale": state,
        "ip": ip,
        "app_version": ".".join(str(n) for n in version if n is not None),
        "timestamp": str(timestamp) if as_string else timestamp,
    }
    raw = json.dumps(event).encode()
    assert_same(raw, "user-login", 5, 123_456, NOW_MS, oldest_ms)
    assert_same(raw, "user-login", 5, 123_456, NOW_MS, oldest_ms)  # the second time with the memo tables filled


def test_fused_equals_reference_on_the_bench_backlog() -> None:
    """The events `bench/backlog.py` writes (its seed and malformed rate), over six partitions."""
    factory = EventFactory(7, IrregularityRates.with_malformed(0.05))
    events = factory.batch(20_000, NOW_MS / 1000)
    outcomes: dict[str, int] = {}
    for offset, event in enumerate(events):
        assert_same(event.value, "user-login", offset % 6, offset, NOW_MS, NOW_MS - 7 * DAY_MS)
        result = FUSED(event.value, "user-login", offset % 6, offset, NOW_MS, NOW_MS - 7 * DAY_MS)
        kind = "record" if isinstance(result, Converted) else result.reason
        outcomes[kind] = outcomes.get(kind, 0) + 1
    assert outcomes["record"] > 18_000, outcomes  # the backlog is mostly valid: the fast lane is exercised
    assert len(outcomes) > 3, outcomes  # and so are several kinds of dead letter


def test_fused_equals_reference_on_the_hostile_corpus_and_honours_its_verdicts() -> None:
    now_s = NOW_MS // 1000
    for message in hostile_corpus(now_s):
        assert_same(message.value, "user-login", 0, 17, NOW_MS + 2_000, MIN_EVENT_TIME_MS)
        result = FUSED(message.value, "user-login", 0, 17, NOW_MS + 2_000, MIN_EVENT_TIME_MS)
        if message.reason is None:
            assert isinstance(result, Converted), (message.name, result)
        else:
            assert isinstance(result, Rejection), message.name
            assert result.reason == message.reason, (message.name, result)


def _spied_fused_converter(encoder: WireFormatEncoder, memo_policy: str = "by value") -> tuple[Any, list[bytes | None]]:
    """The fused converter, with its hand-overs to the reference recorded."""
    source = codegen.engine_source(transform_module.REFERENCE.rules, memo_policy)
    names: dict[str, Any] = {}
    exec(compile(source, "<spied converter>", "exec"), names)  # noqa: S102 - the generator's own code
    handed_over: list[bytes | None] = []
    reference = reference_converter(encoder)

    def spy(value: bytes | None, *rest: Any) -> Any:
        handed_over.append(value)
        return reference(value, *rest)

    _usual, convert, _batch = names["build"](wire_header(encoder.schema_id), spy, transform_module.REFERENCE)
    return convert, handed_over


@pytest.mark.parametrize("memo_policy", codegen.MEMO_POLICIES)
def test_the_usual_message_never_reaches_the_reference_once_its_values_are_known(memo_policy: str) -> None:
    convert, handed_over = _spied_fused_converter(ENCODER, memo_policy)
    factory = EventFactory(3, IrregularityRates.with_malformed(0.0))
    values = [event.value for event in factory.batch(2_000, NOW_MS / 1000)]
    for value in values[:200]:  # first sight of each device type and app version fills the memo tables
        convert(value, "user-login", 0, 0, NOW_MS, MIN_EVENT_TIME_MS)
    handed_over.clear()

    results = [
        convert(value, "user-login", 1, offset, NOW_MS, MIN_EVENT_TIME_MS) for offset, value in enumerate(values)
    ]

    assert all(isinstance(result, Converted) for result in results)
    assert handed_over == []


def test_a_rejected_message_is_decided_by_the_reference() -> None:
    convert, handed_over = _spied_fused_converter(ENCODER)
    bad = b"{" + VALID.replace(b"RI", b"XX") + b"}"

    result = convert(bad, "user-login", 0, 0, NOW_MS, MIN_EVENT_TIME_MS)

    assert isinstance(result, Rejection) and result.reason == Reason.INVALID_LOCALE
    assert handed_over == [bad]


def test_ids_that_are_uuids_only_together_are_refused() -> None:
    """Each id is checked alone: two ids whose concatenation would pass as two UUIDs are still refused."""
    user, device = "70bf44a5-7b2e-4899-87b4-cf92c33f6d5", "2a1777352-f354-479d-9318-282644280964"
    raw = b"{" + VALID.replace(b"0f8fad5b-d9cb-469f-a165-70867728950e", user.encode()) + b', "device_id": "'
    raw += device.encode() + b'"}'

    REFERENCE(b"{" + VALID + b"}", "user-login", 0, 0, NOW_MS, MIN_EVENT_TIME_MS)  # its app version is known

    result = FUSED(raw, "user-login", 0, 0, NOW_MS, MIN_EVENT_TIME_MS)

    assert isinstance(result, Rejection) and result.reason == Reason.INVALID_USER_ID
    assert_same(raw, "user-login", 0, 0, NOW_MS, MIN_EVENT_TIME_MS)


def test_cleared_memo_tables_change_nothing() -> None:
    raw = b"{" + VALID + b', "device_type": "iOS"}'
    before = FUSED(raw, "user-login", 0, 0, NOW_MS, MIN_EVENT_TIME_MS)
    for memo in transform_module.REFERENCE.memos.values():
        memo.clear()

    assert FUSED(raw, "user-login", 0, 0, NOW_MS, MIN_EVENT_TIME_MS) == before
    assert FUSED(raw, "user-login", 0, 0, NOW_MS, MIN_EVENT_TIME_MS) == before


def _schema_with(change: Any) -> dict[str, Any]:
    schema = copy.deepcopy(SCHEMA)
    change(schema["fields"])
    return schema


def _device_id_not_nullable(fields: list[dict[str, Any]]) -> None:
    field = next(field for field in fields if field["name"] == "device_id")
    field["type"] = "string"
    del field["default"]


def _fields_reversed(fields: list[dict[str, Any]]) -> None:
    fields.reverse()


def _ip_version_a_long(fields: list[dict[str, Any]]) -> None:
    next(field for field in fields if field["name"] == "ip_version")["type"] = "long"


@pytest.mark.parametrize("change", [_fields_reversed, _ip_version_a_long])
def test_a_different_registered_schema_gives_the_reference_answer(change: Any) -> None:
    """The code follows the schema: reordered fields, other types."""
    encoder = WireFormatEncoder(7, _schema_with(change))
    reference_engine = fast_path.reference_for(encoder.schema)
    fused = fast_path.fused_converter(encoder, reference_engine)
    reference = reference_converter(encoder, reference_engine)
    factory = EventFactory(11, IrregularityRates.with_malformed(0.05))
    outcomes = set()
    for offset, event in enumerate(factory.batch(2_000, NOW_MS / 1000)):
        result = fused(event.value, "user-login", 2, offset, NOW_MS, MIN_EVENT_TIME_MS)
        assert result == reference(event.value, "user-login", 2, offset, NOW_MS, MIN_EVENT_TIME_MS)
        outcomes.add(type(result).__name__ if isinstance(result, Converted) else result.reason)
    assert "Converted" in outcomes and Reason.INVALID_JSON in outcomes
    assert fused.__module__ != "streaming.conversion.rules.generated_fast_path"  # generated at start, not the file's


def test_a_schema_that_cannot_hold_what_a_rule_produces_is_refused_at_start() -> None:
    encoder = WireFormatEncoder(7, _schema_with(_device_id_not_nullable))
    with pytest.raises(RulesError, match="field 'device_id': Avro type \"string\" cannot hold .*null or text"):
        fast_path.converter_for(encoder)


def test_a_schema_field_the_declaration_does_not_make_is_refused_at_start() -> None:
    schema = _schema_with(lambda fields: fields.append({"name": "country", "type": "string"}))
    with pytest.raises(RulesError, match="field 'country' of the schema is not declared under fields"):
        fast_path.converter_for(WireFormatEncoder(8, schema))


def test_converter_for_the_registered_schema_runs_the_checked_in_engine() -> None:
    convert = fast_path.converter_for(ENCODER, native=False)
    assert convert.__module__ == "streaming.conversion.rules.generated_fast_path"


def test_the_transforms_record_has_exactly_the_schemas_fields_in_order() -> None:
    record = transform(b"{" + VALID + b"}", "user-login", 0, 0, NOW_MS)
    assert isinstance(record, dict)
    assert list(record) == [field["name"] for field in SCHEMA["fields"]]


# -- the batch form: `convert_batch` gives what the reference gives message by message ---------------------

REFERENCE_BATCH = one_by_one(REFERENCE)


def kafka_message(value: bytes | None, topic: str, partition: int, offset: int) -> Message:
    """A `confluent_kafka.Message` as a consumer hands it over (the real type, with its accessors)."""
    return Message(topic=topic, partition=partition, offset=offset, key=b"k", value=value, timestamp=(1, NOW_MS))


def assert_same_batch(messages: list[Any], now_ms: int, oldest_ms: int) -> ConvertedBatch:
    """The fused `convert_batch` and the reference one by one agree on every column, the rejected messages
    (the same objects, the same rejections), the runs and the byte count; every record is what fastavro reads
    back as the transform's record. The reference goes first, as in `assert_same`."""
    reference = REFERENCE_BATCH(messages, now_ms, oldest_ms)
    fused = FUSED.convert_batch(messages, now_ms, oldest_ms)  # type: ignore[attr-defined]
    assert type(fused) is ConvertedBatch
    assert fused._replace(rejected=[], lanes=None) == reference._replace(rejected=[], lanes=None)
    assert sum(fused.lanes) == len(messages) and fused.lanes.native == 0
    assert [(id(m), r) for m, r in fused.rejected] == [(id(m), r) for m, r in reference.rejected]
    assert [id(m) for m in fused.run_starts] == [id(m) for m in reference.run_starts]
    assert [id(m) for m in fused.run_ends] == [id(m) for m in reference.run_ends]
    assert len(fused.values) + len(fused.rejected) == len(messages)
    rejected = {id(m) for m, _ in fused.rejected}
    accepted = [m for m in messages if id(m) not in rejected]
    for message, value, key in zip(accepted, fused.values, fused.keys, strict=True):
        record = transform(
            message.value(), message.topic(), message.partition(), message.offset(), now_ms, oldest_ms=oldest_ms
        )
        assert isinstance(record, dict) and key == record["user_id"].encode()
        decoded = fastavro.schemaless_reader(io.BytesIO(value[5:]), PARSED, None)
        for name in ("event_time", "processed_at"):
            decoded[name] = int(decoded[name].timestamp() * 1000)
        assert decoded == record
    return fused


#: A batch as a consumer returns it: runs of consecutive messages of one partition, partitions revisited.
batches = st.lists(st.tuples(payloads(), st.sampled_from([0, 1, 2**31]), st.integers(1, 3)), min_size=0, max_size=12)


def messages_from_parts(parts: list[tuple[bytes, int, int]], topic: str) -> list[Any]:
    """Generated (payload, partition, repeat) parts as consumed messages: runs of partitions revisited, offsets
    counting up from 10, from just under the schema's long, and on a partition beyond its int; every 7th
    value absent."""
    messages: list[Any] = []
    offsets = {0: 10, 1: 2**63 - 2, 2**31: 0}
    for raw, partition, repeat in parts:
        for _ in range(repeat):
            value = raw if offsets[partition] % 7 else None
            messages.append(FakeMessage(topic, partition, offsets[partition], Record(b"k", value, NOW_MS)))
            offsets[partition] += 1
    return messages


@PROPERTY
@given(parts=batches, topic=st.sampled_from(["user-login", "ünïcode-topic"]), oldest_ms=oldest)
def test_fused_batch_equals_the_reference_one_by_one_on_generated_payloads(
    parts: list[tuple[bytes, int, int]], topic: str, oldest_ms: int
) -> None:
    """Including a partition beyond the schema's int and offsets beyond its long (those records cannot be
    encoded: the reference refuses them; Kafka has neither, so plain messages stand in) and absent values."""
    messages = messages_from_parts(parts, topic)
    assert_same_batch(messages, NOW_MS, oldest_ms)
    assert_same_batch(messages, NOW_MS, oldest_ms)  # with the memo tables filled


def test_fused_batch_equals_the_reference_on_the_bench_backlog() -> None:
    """Batches of the bench backlog as the converter consumes them: runs over six partitions."""
    events = EventFactory(7, IrregularityRates.with_malformed(0.05)).batch(20_000, NOW_MS / 1000)
    messages = [kafka_message(e.value, "user-login", (i // 500) % 6, i) for i, e in enumerate(events)]
    fused = [assert_same_batch(messages[i : i + 5000], NOW_MS, NOW_MS - 7 * DAY_MS) for i in range(0, 20_000, 5000)]
    assert sum(len(batch.values) for batch in fused) > 18_000  # the fast lane is exercised
    assert {rejection.reason for batch in fused for _m, rejection in batch.rejected} >= {
        Reason.INVALID_JSON,
        Reason.MISSING_FIELD,
    }
    assert [len(batch.run_starts) for batch in fused] == [10, 10, 10, 10]


def test_fused_batch_equals_the_reference_on_the_hostile_corpus() -> None:
    corpus = hostile_corpus(NOW_MS // 1000)
    messages = [kafka_message(m.value, "user-login", 0, 17 + i) for i, m in enumerate(corpus)]
    fused = assert_same_batch(messages, NOW_MS + 2_000, MIN_EVENT_TIME_MS)
    verdicts = {id(m): r.reason for m, r in fused.rejected}
    assert [verdicts.get(id(m)) for m in messages] == [m.reason for m in corpus]


def test_the_batch_form_of_a_convert_is_its_own_or_one_by_one() -> None:
    assert batch_form(FUSED) is FUSED.convert_batch  # type: ignore[attr-defined]
    assert batch_form(REFERENCE).__qualname__.startswith("one_by_one")
