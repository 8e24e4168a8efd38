"""librdkafka settings of the converter's consumer and producer, and the delivery strategy.

Kept apart from the loop so that `kdp stream`, the Dagster conversion runs and the benchmarks
configure their clients identically.
"""

from __future__ import annotations

from confluent_kafka import Consumer

from streaming.delivery import AtLeastOnce, Delivery, ExactlyOnce
from streaming.settings import Settings


def consumer_config(settings: Settings) -> dict[str, object]:
    return {
        **settings.kafka_config(),
        "group.id": settings.group_id,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        # Upstream producers may be transactional too: never convert an aborted message.
        "isolation.level": "read_committed",
        "partition.assignment.strategy": "cooperative-sticky",
        # Bounds the memory of prefetched messages whatever the backlog (per consumer).
        "queued.max.messages.kbytes": 32768,
        "fetch.max.bytes": 16 * 1024 * 1024,
    }


def producer_config(settings: Settings) -> dict[str, object]:
    return {
        **settings.kafka_config(),
        "linger.ms": 5,
        "batch.size": 1_000_000,
        "compression.type": "lz4",
        # Bounds the memory of unacknowledged output; a full queue is back-pressure (BufferError).
        "queue.buffering.max.messages": 200_000,
        "queue.buffering.max.kbytes": 131072,
    }


def make_consumer(settings: Settings, **overrides: object) -> Consumer:
    return Consumer({**consumer_config(settings), **overrides})


def make_delivery(settings: Settings, instance: str) -> Delivery:
    """The delivery strategy of `settings.delivery`.

    `instance` names this converter among its peers: exactly-once uses the transactional id
    `<KDP_TRANSACTIONAL_ID>-<instance>`, which must be stable across restarts of the same
    instance (so that a restart fences its crashed predecessor at once) and unique among the
    instances that run at the same time.
    """
    if settings.delivery == "exactly-once":
        return ExactlyOnce(producer_config(settings), f"{settings.transactional_id}-{instance}")
    return AtLeastOnce(producer_config(settings))
