"""The hostile corpus (`tests/corpus/hostile_logins.py`) through the real converter, broker and registry.

Every message must come out exactly once: as a record that decodes with the registered schema and has the
expected fields, or as a dead letter with the expected reason, a short detail, and the original bytes and
key. Outputs a topic refuses for good (its `max.message.bytes`) must end as dead letters, or stop the
converter naming the message, never be retried forever.
"""

from __future__ import annotations

import random
import string
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Message, Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from corpus.hostile_logins import USER_ID, HostileMessage, base_event, expected_record, hostile_corpus
from kafka_io import create_topics, read_all
from registry_io import register_output_schema
from scenario_settings import scenario_settings

from streaming.conversion.transform import transform
from streaming.delivery.dead_letter import read_dead_letter_headers
from streaming.loop.converter import ConverterSummary
from streaming.loop.pipeline import open_converter
from streaming.records import MAX_DETAIL_CHARS, Reason
from streaming.settings import Settings

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_REDONE_BATCHES = 5
"""A converter redoing a batch more often than this is looping: the tests end it with ConversionStalled."""


def _settings(stack, delivery: str, **overrides) -> Settings:
    return scenario_settings(stack.bootstrap, stack.registry_url, delivery, "hostile", **overrides)


def _produce(settings: Settings, messages: list[tuple[bytes | None, bytes | None]]) -> list[int]:
    """Produce (value, key) pairs in order to partition 0 of the source topic; their offsets."""
    offsets: dict[int, int] = {}
    errors = []

    def delivered(index: int) -> Callable[[object, Message], None]:
        def report(error: object, message: Message) -> None:
            if error is not None:
                errors.append(error)
            else:
                offsets[index] = message.offset()  # type: ignore[assignment]

        return report

    producer = Producer({"bootstrap.servers": settings.bootstrap, "enable.idempotence": True})
    for index, (value, key) in enumerate(messages):
        producer.produce(settings.source_topic, value=value, key=key, partition=0, on_delivery=delivered(index))
    assert producer.flush(60) == 0 and not errors, errors
    return [offsets[index] for index in range(len(messages))]


def _convert(settings: Settings) -> ConverterSummary:
    converter = open_converter(settings, instance="hostile")
    converter.subscribe()
    try:
        return converter.run(until_caught_up=True, max_failed_batches=MAX_REDONE_BATCHES)
    finally:
        converter.close()


def _outputs_by_offset(settings: Settings) -> dict[int, list[tuple[str, object]]]:
    """Per source offset, its outputs: ("record", the decoded record) or ("dead letter", the message)."""
    deserialize = AvroDeserializer(SchemaRegistryClient(settings.registry_config()))
    context = SerializationContext(settings.output_topic, MessageField.VALUE)
    found: dict[int, list[tuple[str, object]]] = {}
    for m in read_all(settings.bootstrap, settings.output_topic):
        record = deserialize(m.value(), context)
        assert record["source_topic"] == settings.source_topic and record["source_partition"] == 0
        found.setdefault(record["source_offset"], []).append(("record", record))
    for m in read_all(settings.bootstrap, settings.dlq_topic):
        headers = read_dead_letter_headers(m.headers())
        assert headers["kdp.dlq.source.topic"] == settings.source_topic
        assert headers["kdp.dlq.source.partition"] == "0"
        found.setdefault(int(headers["kdp.dlq.source.offset"]), []).append(("dead letter", m))
    return found


def _problems_with(message: HostileMessage, outputs: list[tuple[str, object]], now_s: int) -> list[str]:
    """What is wrong with the outputs of `message` (nothing: an empty list)."""
    if len(outputs) != 1:
        return [f"{message.name}: {len(outputs)} outputs instead of one"]
    kind, output = outputs[0]
    if message.reason is None:
        if kind != "record":
            headers = read_dead_letter_headers(output.headers())  # type: ignore[attr-defined]
            return [f"{message.name}: a dead letter ({headers['kdp.dlq.reason']}: {headers['kdp.dlq.detail']})"]
        record = {name: _epoch_ms(value) for name, value in output.items()}  # type: ignore[attr-defined]
        wrong = {
            name: (value, record[name])
            for name, value in expected_record(now_s, message).items()
            if record[name] != value
        }
        return [f"{message.name}: field {name} is {got!r}, not {want!r}" for name, (want, got) in wrong.items()]
    if kind != "record":
        headers = read_dead_letter_headers(output.headers())  # type: ignore[attr-defined]
        problems = []
        if headers["kdp.dlq.reason"] != message.reason:
            problems.append(f"{message.name}: reason {headers['kdp.dlq.reason']} ({headers['kdp.dlq.detail']}), "
                            f"not {message.reason}")  # fmt: skip
        if not 0 < len(headers["kdp.dlq.detail"]) <= MAX_DETAIL_CHARS:
            problems.append(f"{message.name}: detail of {len(headers['kdp.dlq.detail'])} characters")
        value = output.value()  # type: ignore[attr-defined]
        if value != message.value and not (value in (None, b"") and message.value in (None, b"")):
            problems.append(f"{message.name}: the dead letter's value is not the original bytes")
        if output.key() != message.key:  # type: ignore[attr-defined]
            problems.append(f"{message.name}: the dead letter's key is not the original key")
        return problems
    return [f"{message.name}: a record, not a dead letter {message.reason}"]


@pytest.mark.integration
@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
def test_every_hostile_message_becomes_a_valid_record_or_a_dead_letter_with_its_precise_reason(stack, delivery):
    settings = _settings(stack, delivery)
    create_topics(settings.bootstrap, [settings.source_topic, settings.output_topic, settings.dlq_topic], 1)
    register_output_schema(settings)
    now_s = int(time.time())
    corpus = hostile_corpus(now_s)
    offsets = _produce(settings, [(message.value, message.key) for message in corpus])

    summary = _convert(settings)

    outputs = _outputs_by_offset(settings)
    problems = [
        p for m, offset in zip(corpus, offsets, strict=True) for p in _problems_with(m, outputs.get(offset, []), now_s)
    ]
    reasons = Counter(str(m.reason) for m in corpus if m.reason is not None)
    print(f"hostile corpus ({delivery}): {len(corpus)} messages, {sum(m.reason is None for m in corpus)} records, "
          f"{sum(reasons.values())} dead letters by reason {dict(sorted(reasons.items()))}")  # fmt: skip
    assert summary.consumed == len(corpus)
    assert set(outputs) == set(offsets), "outputs of offsets that were not produced"
    assert not problems, "\n".join(problems)


def _random_text(rng: random.Random, length: int) -> str:
    """Letters and digits that lz4 cannot shrink much, so that sizes on the wire are what they seem."""
    return "".join(rng.choices(string.ascii_lowercase + string.digits, k=length))


@pytest.mark.integration
@pytest.mark.parametrize(
    "batch_size",
    [1, 200],
    ids=["one-message-batches", "200-message-batches"],
)
def test_a_record_too_large_for_the_output_topic_is_dead_lettered_and_only_that_record(stack, batch_size):
    """The output topic takes batches of at most 300 bytes: an ordinary record (about 210 bytes as a batch of
    one) fits, a record with every field at its longest (about 370) does not.

    The big one must become a dead letter `rejected_by_broker`; the ordinary ones must still become records,
    also when the producer had put them in one batch with the big one, or with each other, and the broker
    refused that batch as a whole (librdkafka does not split a refused batch, as the Java producer does).
    """
    settings = _settings(stack, "exactly-once", batch_size=batch_size)
    create_topics(settings.bootstrap, [settings.source_topic, settings.dlq_topic], 1)
    create_topics(settings.bootstrap, [settings.output_topic], 1, **{"max.message.bytes": "300"})
    register_output_schema(settings)
    rng = random.Random(5)
    now_s = int(time.time())
    ordinary = [
        {**base_event(now_s), "user_id": str(uuid.UUID(int=rng.getrandbits(128), version=4))} for _ in range(12)
    ]
    longest = {
        **base_event(now_s),
        "device_type": _random_text(rng, 32),
        "ip": "2a00:1450:4001:82a:1234:5678:9abc:def0",
        "app_version": "1.2.3-" + _random_text(rng, 58),
    }
    values = [_json(e) for e in ordinary[:6]] + [_json(longest)] + [_json(e) for e in ordinary[6:]] + [b"not json"]
    offsets = _produce(settings, [(value, b"k") for value in values])

    summary = _convert(settings)

    outputs = _outputs_by_offset(settings)
    kinds = {offset: [kind for kind, _ in outputs.get(offset, [])] for offset in offsets}
    reasons = {
        offset: read_dead_letter_headers(output.headers())["kdp.dlq.reason"]  # type: ignore[attr-defined]
        for offset in offsets
        for kind, output in outputs.get(offset, [])
        if kind == "dead letter"
    }
    print(f"batch size {batch_size}: redone batches {summary.redone_batches}, outcomes {reasons}")
    assert summary.consumed == len(values)
    assert reasons.get(offsets[6]) == Reason.REJECTED_BY_BROKER, "the record too large for the topic"
    assert reasons.get(offsets[-1]) == Reason.INVALID_JSON
    dead_lettered_though_they_fit = {o: reasons.get(o) for o in offsets[:6] + offsets[7:-1] if kinds[o] != ["record"]}
    assert not dead_lettered_though_they_fit, "records that fit the topic on their own became dead letters"


@pytest.mark.integration
def test_a_dead_letter_too_large_for_the_dead_letter_topic_stops_the_converter_naming_it(stack):
    """A dead letter carries the original bytes (up to 64 KiB): a dead-letter topic that takes less cannot
    hold it, and skipping it would lose the message. The converter must stop and say which message."""
    from streaming.loop.converter import UndeliverableMessage

    settings = _settings(stack, "at-least-once")
    create_topics(settings.bootstrap, [settings.source_topic, settings.output_topic], 1)
    register_output_schema(settings)
    create_topics(settings.bootstrap, [settings.dlq_topic], 1, **{"max.message.bytes": "2000"})
    rng = random.Random(9)
    valid = _json(base_event(int(time.time())))
    too_big_to_park = _json({"note": _random_text(rng, 10_000)})  # 10 KB, refused for missing_field
    offsets = _produce(settings, [(valid, b"k"), (valid, b"k"), (too_big_to_park, b"k")])

    with pytest.raises(UndeliverableMessage, match=rf"{settings.source_topic}\[0\] offset {offsets[2]}\b"):
        _convert(settings)


def _epoch_ms(value: object) -> object:
    """Timestamps as the transform writes them (epoch ms); the Avro deserializer gives datetimes."""
    if isinstance(value, datetime):
        return (value - EPOCH) // timedelta(milliseconds=1)
    return value


def _json(event: dict) -> bytes:
    import json

    return json.dumps(event).encode()


def _at_stack_depth(frames: int, call: Callable[[], object]) -> object:
    return call() if frames <= 0 else _at_stack_depth(frames - 1, call)


def test_the_verdict_on_nested_json_does_not_depend_on_the_callers_stack_depth():
    """`transform` is pure: the same bytes, the same verdict, wherever it is called from. A record in
    `kdp stream` (a shallow stack) must not be a dead letter in a Dagster op (a deep one)."""
    nested = b"[" * 500 + b"]" * 500
    raw = _json({**base_event(int(time.time())), "user_id": USER_ID})[:-1] + b', "extra": ' + nested + b"}"
    now_ms = int(time.time() * 1000)
    shallow = transform(raw, "t", 0, 0, now_ms)
    deep = _at_stack_depth(sys.getrecursionlimit() - 400, lambda: transform(raw, "t", 0, 0, now_ms))
    assert getattr(shallow, "reason", "record") == getattr(deep, "reason", "record")
