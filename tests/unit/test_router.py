"""The batch router and the reference conversion: pure, so tested with plain messages and no broker."""

from __future__ import annotations

import gc
import weakref

from fakes.broker import FakeMessage, Record
from fakes.rig import NOW_MS, SCHEMA_ID, decode, login, user_id

from streaming.conversion.avro_codegen import RecordEncodingError
from streaming.conversion.convert import Converted, reference_converter
from streaming.conversion.encoding import WireFormatEncoder
from streaming.conversion.fast_path import converter_for
from streaming.conversion.transform import transform
from streaming.delivery.dead_letter import read_dead_letter_headers
from streaming.delivery.outputs import Output
from streaming.generator.events import EventFactory, IrregularityRates
from streaming.loop.commit_span import CommitSpan
from streaming.loop.pipeline import PROCESSED_SCHEMA
from streaming.loop.router import BatchRouter
from streaming.records import DLQ_REASON, DLQ_SOURCE_OFFSET, DLQ_SOURCE_TIMESTAMP, Reason, Rejection

ENCODER = WireFormatEncoder(SCHEMA_ID, PROCESSED_SCHEMA.read_text())
CONVERT = reference_converter(ENCODER)


def message(partition: int, offset: int, value: bytes | None, timestamp: int = NOW_MS - 1000) -> FakeMessage:
    return FakeMessage("logins", partition, offset, Record(b"source-key", value, timestamp))


def router() -> BatchRouter:
    return BatchRouter(CONVERT, "processed", "logins.dlq")


def test_each_message_becomes_one_output_in_order_stamped_with_the_processing_time():
    messages = [message(0, 7, login(1)), message(1, 3, b"not json", NOW_MS - 9000), message(0, 8, login(2))]
    batch = router().route(messages, NOW_MS, 0)
    assert [o.topic for o in batch.outputs] == ["processed", "logins.dlq", "processed"]
    assert {o.timestamp for o in batch.outputs} == {NOW_MS}
    assert batch.origins == [("logins", 0, 7), ("logins", 1, 3), ("logins", 0, 8)]
    assert batch.first_offsets == {("logins", 0): 7, ("logins", 1): 3}
    assert batch.next_offsets == {("logins", 0): 9, ("logins", 1): 4}
    assert (batch.consumed, batch.tallies.processed, batch.tallies.dead_lettered) == (3, 2, 1)
    assert batch.bytes_in == len(login(1)) + len(b"not json") + len(login(2))
    assert (batch.oldest_source_ms, batch.newest_source_ms) == (NOW_MS - 9000, NOW_MS - 1000)
    assert [(tp.topic, tp.partition, tp.offset) for tp in batch.commit_offsets()] == [
        ("logins", 0, 9),
        ("logins", 1, 4),
    ]


def test_a_processed_record_is_the_encoded_transform_keyed_by_user_id():
    [output] = router().route([message(0, 7, login(1))], NOW_MS, 0).outputs
    assert output.key == user_id(1).encode() and output.headers is None
    record = decode(output.value)
    assert (record["user_id"], record["source_offset"], int(record["event_time"].timestamp() * 1000)) == (
        user_id(1),
        7,
        NOW_MS - 60_000,
    )


def test_a_dead_letter_keeps_the_source_bytes_key_and_timestamp_in_its_headers():
    [output] = router().route([message(2, 5, b"\xff garbage", NOW_MS - 86_400_000)], NOW_MS, 0).outputs
    assert output == Output("logins.dlq", b"source-key", b"\xff garbage", NOW_MS, output.headers)
    headers = read_dead_letter_headers(output.headers)
    assert headers[DLQ_REASON] == Reason.NOT_UTF8
    assert headers[DLQ_SOURCE_OFFSET] == "5"
    assert headers[DLQ_SOURCE_TIMESTAMP] == str(NOW_MS - 86_400_000)


def test_a_source_refused_by_the_broker_is_dead_lettered_without_converting_it():
    calls = []

    def convert(*args):
        calls.append(args)
        return CONVERT(*args)

    batch = BatchRouter(convert, "processed", "logins.dlq").route(
        [message(0, 1, login(1)), message(0, 2, login(2))], NOW_MS, 0, {("logins", 0, 2): "too large"}
    )
    assert [o.topic for o in batch.outputs] == ["processed", "logins.dlq"]
    assert read_dead_letter_headers(batch.outputs[1].headers)[DLQ_REASON] == Reason.REJECTED_BY_BROKER
    assert [args[3] for args in calls] == [1]


def test_the_router_calls_the_injected_conversion_with_the_batch_clock_and_window():
    seen = []

    def convert(value, topic, partition, offset, now_ms, oldest_ms):
        seen.append((topic, partition, offset, now_ms, oldest_ms))
        return Converted(b"wire", b"key", "ios", "RI")

    batch = BatchRouter(convert, "processed", "logins.dlq").route([message(0, 4, b"x")], NOW_MS, 123)
    assert seen == [("logins", 0, 4, NOW_MS, 123)]
    assert batch.outputs == [Output("processed", b"key", b"wire", NOW_MS, None)]
    assert batch.tallies.device_types == {"ios": 1}


def test_the_reference_conversion_rejects_what_the_schema_cannot_hold():
    class Refusing:
        def encode(self, _record):
            raise RecordEncodingError("no room")

    convert = reference_converter(Refusing())  # type: ignore[arg-type]
    result = convert(login(1), "logins", 0, 0, NOW_MS, 0)
    assert isinstance(result, Rejection) and result.reason == Reason.ENCODING_FAILED


def test_the_reference_conversion_gives_the_encoders_bytes():
    result = CONVERT(login(1), "logins", 0, 0, NOW_MS, 0)
    assert isinstance(result, Converted)
    assert result.key == user_id(1).encode() and (result.device_type, result.locale) == ("android", "RI")
    assert decode(result.value)["user_id"] == user_id(1)


def test_on_generated_traffic_the_outputs_are_what_the_transform_and_encoder_give_byte_for_byte():
    """The router adds nothing to a record's bytes: the processed values are `encode(transform(...))` and the
    dead letters the source bytes, for generated traffic with every kind of irregularity."""
    rates = IrregularityRates(missing_field=0.02, timestamp_as_string=0.02, wrong_type=0.02, not_json=0.02, empty=0.02)
    events = EventFactory(seed=7, rates=rates, users=200).batch(2000, now=NOW_MS / 1000)
    messages = [FakeMessage("logins", 0, i, Record(key, value, NOW_MS)) for i, (key, value, _kind) in enumerate(events)]
    outputs = router().route(messages, NOW_MS, 0).outputs
    expected = []
    for i, (key, value, _kind) in enumerate(events):
        record = transform(value, "logins", 0, i, NOW_MS, oldest_ms=0)
        expected.append((ENCODER.encode(record), record["user_id"].encode()) if type(record) is dict else (value, key))
    assert [(o.value, o.key) for o in outputs] == expected
    assert 0 < sum(o.topic == "logins.dlq" for o in outputs) < len(outputs)


def test_the_fused_batch_routes_as_the_reference_does_message_by_message():
    """Same outputs in the same order, offsets, tallies, byte count and source timestamps, over partitions
    revisited within the batch; the records come as the columns the fast send produces."""
    events = EventFactory(seed=7, rates=IrregularityRates.with_malformed(0.05)).batch(3000, now=NOW_MS / 1000)
    messages = [
        FakeMessage("logins", (i // 250) % 3, i, Record(key, value, NOW_MS - 3000 + i))
        for i, (key, value, _kind) in enumerate(events)
    ]
    fused_router = BatchRouter(converter_for(ENCODER), "processed", "logins.dlq")
    assert fused_router.convert_batch is not router().convert_batch
    reference, fused = router().route(messages, NOW_MS, 0), fused_router.route(messages, NOW_MS, 0)
    assert list(fused.outputs) == list(reference.outputs) and fused.outputs == reference.outputs
    assert fused.origins == reference.origins == [("logins", (i // 250) % 3, i) for i in range(3000)]
    assert (fused.first_offsets, fused.next_offsets) == (
        {("logins", p): 250 * p for p in range(3)},
        {("logins", p): 2500 + 250 * p for p in range(3)},
    )
    assert (fused.next_offsets, fused.first_offsets) == (reference.next_offsets, reference.first_offsets)
    assert fused.tallies == reference.tallies and fused.tallies.dead_lettered > 0
    assert (fused.bytes_in, fused.oldest_source_ms, fused.newest_source_ms) == (
        reference.bytes_in, NOW_MS - 3000, NOW_MS - 1,
    )  # fmt: skip
    columns = fused.outputs
    assert columns.values == [o.value for o in reference.outputs if o.topic == "processed"]
    assert columns.keys == [o.key for o in reference.outputs if o.topic == "processed"]
    assert [o for _m, o in columns.dead_letters] == [o for o in reference.outputs if o.topic == "logins.dlq"]


def test_a_commit_span_keeps_a_sent_batchs_bookkeeping_and_none_of_its_messages():
    """An exactly-once span holds several batches until it commits: what it keeps of each must not hold the
    batch's messages or outputs, or a catch-up keeps that many batches of Python objects alive at once."""
    messages = [message(0, 7, login(1)), message(1, 3, b"not json"), message(0, 8, login(2))]
    batch = router().route(messages, NOW_MS, 0)
    span = CommitSpan(due_at=1.0, max_messages=10)
    span.add(batch, started=0.5, careful=False)
    alive = [weakref.ref(m) for m in messages]
    del messages, batch
    gc.collect()
    assert [ref() for ref in alive] == [None, None, None]
    [sent] = span.sent
    assert (sent.batch.consumed, sent.batch.outputs, sent.batch.origins) == (3, (), ())
    assert [(tp.topic, tp.partition, tp.offset) for tp in span.commit_offsets()] == [("logins", 0, 9), ("logins", 1, 4)]
    report = sent.report(finished=0.75)
    assert (report.consumed, report.tallies.processed, report.tallies.dead_lettered, report.seconds) == (3, 2, 1, 0.25)
