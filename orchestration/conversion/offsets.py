"""Short, bounded reads of a topic's watermarks and a group's commits, for sensor ticks.

A sensor tick must end well inside Dagster's 60 s evaluation timeout, so every call here has a
timeout and nothing joins the consumer group (joining would rebalance a running `kdp stream`).
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import Consumer, ConsumerGroupState, TopicPartition
from confluent_kafka.admin import AdminClient

from streaming.settings import Settings

CALL_TIMEOUT = 10.0


class TopicMissing(LookupError):
    """The topic does not exist (yet): provisioning has not run, or the name is wrong."""


@dataclass(frozen=True)
class TopicOffsets:
    low: dict[int, int]
    high: dict[int, int]
    committed: dict[int, int | None]


def read_offsets(settings: Settings, topic: str) -> TopicOffsets:
    """Watermarks of every partition of `topic` and the converter group's committed offsets."""
    consumer = Consumer({**settings.kafka_config(), "group.id": settings.group_id, "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(timeout=CALL_TIMEOUT).topics.get(topic)
        if metadata is None or metadata.error is not None:
            raise TopicMissing(f"topic {topic!r} does not exist: run the provision_topics job")
        partitions = [TopicPartition(topic, p) for p in sorted(metadata.partitions)]
        low, high = {}, {}
        for tp in partitions:
            low[tp.partition], high[tp.partition] = consumer.get_watermark_offsets(tp, timeout=CALL_TIMEOUT)
        committed = {
            tp.partition: (tp.offset if tp.offset >= 0 else None)
            for tp in consumer.committed(partitions, timeout=CALL_TIMEOUT)
        }
        return TopicOffsets(low, high, committed)
    finally:
        consumer.close()


def active_members(settings: Settings) -> int:
    """How many consumers are members of the converter's group right now (e.g. `kdp stream`)."""
    admin = AdminClient(settings.kafka_config())
    future = admin.describe_consumer_groups([settings.group_id], request_timeout=CALL_TIMEOUT)[settings.group_id]
    description = future.result(timeout=CALL_TIMEOUT)
    if description.state in (ConsumerGroupState.EMPTY, ConsumerGroupState.DEAD):
        return 0
    return len(description.members)
