"""Two live converters given one transactional id (the same --instance twice, by mistake).

A fenced producer is replaced once, since the coordinator also fences a producer whose transaction it timed
out. Two live producers would then take the id from each other for ever; the second fencing within the window
must end one of them with `TransactionalIdTaken`, naming the id, and nothing either wrote may be duplicated.
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition
from kafka_io import create_topics, read_all

from streaming.delivery.exactly_once import ExactlyOnce, TransactionalIdTaken

pytestmark = pytest.mark.integration


def _batch(delivery: ExactlyOnce, consumer: Consumer, topic: str, value: bytes, offset: int) -> None:
    delivery.begin()
    delivery.producer.produce(topic, value)
    delivery.complete(consumer, [TopicPartition(f"{topic}-source", 0, offset)])


def test_two_live_producers_sharing_a_transactional_id_end_one_of_them(stack):
    topic = f"txn-conflict-{uuid.uuid4().hex[:8]}"
    create_topics(stack.bootstrap, [topic, f"{topic}-source"], 1)
    config = {"bootstrap.servers": stack.bootstrap, "enable.idempotence": True, "acks": "all"}
    consumer = Consumer({"bootstrap.servers": stack.bootstrap, "group.id": topic, "enable.auto.commit": False})
    first = ExactlyOnce(config, topic)
    _batch(first, consumer, topic, b"first-1", 1)
    second = ExactlyOnce(config, topic)  # fences the first

    outcomes = []
    with pytest.raises(TransactionalIdTaken, match=topic):
        for attempt in range(2, 8):
            for name, delivery in (("first", first), ("second", second)):
                try:
                    _batch(delivery, consumer, topic, f"{name}-{attempt}".encode(), attempt)
                    outcomes.append(f"{name}-{attempt}")
                except Exception as error:
                    if isinstance(error, TransactionalIdTaken):
                        raise
                    delivery.abandon()
    consumer.close()

    values = [m.value().decode() for m in read_all(stack.bootstrap, topic)]
    assert values and sorted(values) == sorted(set(values)), "a committed output was repeated"
    assert set(values) <= {"first-1", *outcomes}, "an output whose transaction failed became visible"
