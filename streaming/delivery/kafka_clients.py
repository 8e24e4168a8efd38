"""librdkafka settings of the converter's consumer and producer, the delivery strategy, and the cluster they
come from (`Cluster`: the real one, `KAFKA`, or a test's in-memory broker).

Kept apart from the loop so that `kdp stream`, the Dagster conversion runs and the benchmarks
configure their clients identically.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, ConfigResource

from streaming import access
from streaming.delivery.at_least_once import AtLeastOnce
from streaming.delivery.contract import Delivery
from streaming.delivery.exactly_once import ExactlyOnce
from streaming.observe.observer import NO_OBSERVER, ConverterObserver
from streaming.settings import ServiceUnreachableError, Settings

log = logging.getLogger(__name__)

MAX_BATCH_BYTES = 1_000_000
"""The producer's batch size when the topics allow it: large batches for throughput."""


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


def smallest_message_limit(settings: Settings) -> int | None:
    """The smallest `max.message.bytes` of the output and dead-letter topics; None when it cannot be read.

    The broker judges a producer's batch as a whole against that limit, and librdkafka never splits a
    refused batch: records that each fit would all be refused together, so batches must not exceed it.
    """
    admin = AdminClient(settings.kafka_config())
    topics = (settings.output_topic, settings.dlq_topic)
    try:
        futures = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, t) for t in topics])
        return min(int(f.result(timeout=30)["max.message.bytes"].value) for f in futures.values())
    except TimeoutError:
        raise ServiceUnreachableError(
            f"Kafka did not answer within 30 s at KDP_BOOTSTRAP={settings.bootstrap} "
            f"(KDP_SECURITY_PROTOCOL={settings.security_protocol}); is it running, and is KDP_BOOTSTRAP right?"
        ) from None
    except (KafkaException, KeyError, ValueError) as error:
        log.warning(
            "cannot read max.message.bytes of %s (%s): producer batches of up to %d bytes",
            topics,
            error,
            MAX_BATCH_BYTES,
        )
        return None


def producer_config(settings: Settings, message_limit: int | None = None) -> dict[str, object]:
    """The converter's producer settings.

    `message_limit`: the smallest `max.message.bytes` of the topics written (`smallest_message_limit`).
    Batches stay 10% under it (framing, and lz4 can grow incompressible data a little), so that a batch the
    broker refuses can only hold one record too large on its own.
    """
    batch_bytes = MAX_BATCH_BYTES
    if message_limit is not None:
        batch_bytes = max(1, min(MAX_BATCH_BYTES, message_limit * 9 // 10))
    return {
        **settings.kafka_config(),
        "linger.ms": 5,
        "batch.size": batch_bytes,
        "compression.type": "lz4",
        # Bounds the memory of unacknowledged output; a full queue is back-pressure (BufferError).
        "queue.buffering.max.messages": 200_000,
        "queue.buffering.max.kbytes": 131072,
    }


class Cluster(Protocol):
    """Where a converter's clients come from, and what is read of the cluster before they start.

    `KAFKA` is the cluster the settings name (confluent-kafka's clients, the admin API); a test's in-memory
    broker has the same four methods, so the production assembly (`streaming.loop.pipeline.open_converter`)
    takes it as it is.
    """

    def consumer(self, config: dict[str, Any]) -> Any: ...
    def producer(self, config: dict[str, Any]) -> Any: ...
    def check_access(self, settings: Settings, needs: Sequence[access.Need]) -> None:
        """Refuse in one line what the principal may not do (`streaming.access.check_access`)."""

    def smallest_message_limit(self, settings: Settings) -> int | None:
        """The smallest `max.message.bytes` of the topics written (see `smallest_message_limit`)."""


class KafkaCluster:
    """The Kafka cluster the settings name."""

    def consumer(self, config: dict[str, Any]) -> Consumer:
        return Consumer(config)

    def producer(self, config: dict[str, Any]) -> Producer:
        return Producer(config)

    def check_access(self, settings: Settings, needs: Sequence[access.Need]) -> None:
        access.check_access(settings, list(needs))

    def smallest_message_limit(self, settings: Settings) -> int | None:
        return smallest_message_limit(settings)


KAFKA: Cluster = KafkaCluster()


def make_consumer(settings: Settings, overrides: Mapping[str, object] | None = None, cluster: Cluster = KAFKA) -> Any:
    """The converter's consumer (`consumer_config`, then `overrides`), from `cluster`."""
    return cluster.consumer({**consumer_config(settings), **(overrides or {})})


def make_delivery(
    settings: Settings,
    instance: str,
    observer: ConverterObserver = NO_OBSERVER,
    extra_config: dict[str, object] | None = None,
    cluster: Cluster = KAFKA,
) -> Delivery:
    """The delivery strategy of `settings.delivery`.

    `instance` names this converter among its peers: exactly-once uses the transactional id
    `<KDP_TRANSACTIONAL_ID>-<instance>`, which must be stable across restarts of the same
    instance (so that a restart fences its crashed predecessor at once) and unique among the
    instances that run at the same time. `extra_config` is added to the producer's settings (statistics).
    Its producers come from `cluster`.
    """
    config = {**producer_config(settings, cluster.smallest_message_limit(settings)), **(extra_config or {})}
    if settings.delivery == "exactly-once":
        return ExactlyOnce(
            config, f"{settings.transactional_id}-{instance}", new_producer=cluster.producer, observer=observer
        )
    return AtLeastOnce(config, new_producer=cluster.producer, observer=observer)
