"""Small helpers the integration and fault tests share: create topics, read a topic back completely."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import Consumer, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def create_topics(bootstrap: str, names: list[str], partitions: int = 3, **configs: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, partitions, 1, config=dict(configs)) for name in names], operation_timeout=30
    )
    for future in futures.values():
        future.result(timeout=60)


def read_all(bootstrap: str, topic: str, isolation: str = "read_committed", timeout: float = 60.0) -> list[Message]:
    """Every message of `topic` up to its current end, in partition then offset order.

    The end is reached when the consumer's position passes the high watermark of each
    partition: on a transactional topic the last offsets may be commit markers, which are never
    delivered, so a count of messages cannot tell.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"test-reader-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "isolation.level": isolation,
            "enable.partition.eof": False,
        }
    )
    try:
        partitions = sorted(consumer.list_topics(topic, timeout=30).topics[topic].partitions)
        ends = {}
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        messages: list[Message] = []
        deadline = time.monotonic() + timeout
        while ends and time.monotonic() < deadline:
            for message in consumer.consume(10_000, 0.5):
                if message.error() is None:
                    messages.append(message)
            positions = consumer.position([TopicPartition(topic, p) for p in ends])
            for tp in positions:
                if tp.offset >= ends[tp.partition]:
                    del ends[tp.partition]
        if ends:
            raise TimeoutError(f"{topic}: did not reach the end of partitions {sorted(ends)}")
        return sorted(messages, key=lambda m: (m.partition(), m.offset()))
    finally:
        consumer.close()
