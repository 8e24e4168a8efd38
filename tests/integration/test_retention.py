"""Nothing delivered is deleted before its topic's retention has run from its delivery, whatever its event time.

The bug this guards against: outputs once carried their event time as their Kafka timestamp, and time-based
retention deletes a segment when its largest record timestamp is older than `retention.ms`. A valid event from
2024 was converted, delivered, committed, and deleted at the broker's next retention check.

Here the worst case is set up on purpose: every topic uses `CreateTime` (the producer's timestamp counts, as on a
topic the pipeline did not provision) and a retention of six hours, and the events are from 2001, from last year
and from yesterday, in source records stamped now and in source records stamped with the event's own old time.
A canary topic configured like the outputs shows that the retention check really ran over old timestamps: its
record, stamped in 2001, disappears. (The local stack checks retention every 10 s; `kdp.devstack.kafka_node`.)
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from kafka_io import create_topics, read_all
from registry_io import register_output_schema
from scenario_settings import scenario_settings

from streaming.delivery.dead_letter import read_dead_letter_headers
from streaming.loop.pipeline import open_converter

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
TOPIC_CONFIGS = {"message.timestamp.type": "CreateTime", "retention.ms": str(6 * HOUR_MS)}
RETENTION_PASS_TIMEOUT_S = 420  # the broker's default check interval is 5 minutes; the local stack's 10 s


def _event(event_time_ms: int, *, valid: bool) -> bytes:
    return json.dumps(
        {
            "user_id": str(uuid.uuid4()),
            "app_version": "2.3.0",
            "device_type": "android",
            "ip": "199.172.111.135",
            "locale": "RI" if valid else "XX",  # an unknown locale: a dead letter
            "device_id": str(uuid.uuid4()),
            "timestamp": event_time_ms // 1000,
        }
    ).encode()


def _low_watermark(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"watermarks-{uuid.uuid4().hex}"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[0]
    finally:
        consumer.close()


def _wait_for_a_retention_pass(bootstrap: str, canary: str) -> None:
    """Write a record stamped in 2001 to `canary` and wait until retention deletes it."""
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(canary, b"canary", timestamp=978_307_200_000)
    assert producer.flush(30) == 0
    written_up_to = _low_watermark(bootstrap, canary) + 1
    deadline = time.monotonic() + RETENTION_PASS_TIMEOUT_S
    while _low_watermark(bootstrap, canary) < written_up_to:
        assert time.monotonic() < deadline, f"retention never deleted the canary in {canary}"
        time.sleep(1)


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
def test_old_events_stay_readable_after_the_retention_check(stack, delivery):
    settings = scenario_settings(stack.bootstrap, stack.registry_url, delivery, "retention")
    canary = f"{settings.source_topic}-canary"
    create_topics(stack.bootstrap, [settings.output_topic, settings.dlq_topic, canary], 1, **TOPIC_CONFIGS)
    register_output_schema(settings)
    create_topics(stack.bootstrap, [settings.source_topic], 1, **{**TOPIC_CONFIGS, "retention.ms": "-1"})

    now_ms = int(time.time() * 1000)
    event_times = {"2001": 978_307_200_000, "last year": now_ms - 365 * DAY_MS, "yesterday": now_ms - DAY_MS}
    producer = Producer({"bootstrap.servers": stack.bootstrap})
    sent = 0
    for event_time in event_times.values():
        for valid in (True, False):
            producer.produce(settings.source_topic, _event(event_time, valid=valid))  # stamped now
            producer.produce(settings.source_topic, _event(event_time, valid=valid), timestamp=event_time)
            sent += 2
    assert producer.flush(30) == 0

    converter = open_converter(settings)
    converter.subscribe()
    try:
        summary = converter.run(until_caught_up=True)
    finally:
        converter.close()
    assert (summary.processed, summary.dead_lettered) == (sent // 2, sent // 2)

    # Two passes: the second one began after the first ended, so after the outputs were written.
    _wait_for_a_retention_pass(stack.bootstrap, canary)
    _wait_for_a_retention_pass(stack.bootstrap, canary)

    assert _low_watermark(stack.bootstrap, settings.output_topic) == 0
    assert _low_watermark(stack.bootstrap, settings.dlq_topic) == 0
    deserialize = AvroDeserializer(SchemaRegistryClient(settings.registry_config()))
    context = SerializationContext(settings.output_topic, MessageField.VALUE)
    records = [deserialize(m.value(), context) for m in read_all(stack.bootstrap, settings.output_topic)]
    dead_letters = read_all(stack.bootstrap, settings.dlq_topic)
    event_times_read = sorted(int(r["event_time"].timestamp() * 1000) for r in records)
    assert event_times_read == sorted(2 * [t // 1000 * 1000 for t in event_times.values()])
    assert len(dead_letters) == sent // 2
    for message in dead_letters:
        assert read_dead_letter_headers(message.headers())["kdp.dlq.reason"] == "invalid_locale"
        assert message.timestamp()[1] >= now_ms  # stamped with its failure time, not the source's
