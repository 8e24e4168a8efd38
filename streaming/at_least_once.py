"""At-least-once delivery: a batch's offsets are committed only after all of its output is acknowledged.

Wait for every delivery report (flush), fail the batch on any delivery error, then commit the offsets
synchronously. A crash between delivery and commit re-delivers the batch: duplicates, never loss.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from streaming.delivery import DeliveryFailures, NewProducer, ProducerDelivery, wait_for_deliveries

log = logging.getLogger(__name__)


class AtLeastOnce(ProducerDelivery):
    """Commit a batch's offsets only after every one of its messages is acknowledged."""

    atomic = False

    def __init__(self, producer_config: dict[str, object], *, new_producer: NewProducer = Producer) -> None:
        self._failures = DeliveryFailures()
        self.producer = new_producer(
            {**producer_config, "enable.idempotence": True, "acks": "all", **self._failures.producer_config()}
        )

    def begin(self) -> None:
        self._failures.clear()

    def complete(self, consumer: Consumer, offsets: list[TopicPartition]) -> None:
        wait_for_deliveries(self.producer)
        self._failures.raise_if_any()
        for attempt in range(1, 4):
            try:
                consumer.commit(offsets=offsets, asynchronous=False)
                return
            except KafkaException as error:
                kafka_error = error.args[0]
                if not kafka_error.retriable() or attempt == 3:
                    # The output is durable; an offset commit lost here only means the batch is
                    # seen again after a restart or rebalance: duplicates, which this mode allows.
                    log.warning("offset commit failed (%s): the batch may be redelivered", kafka_error.str())
                    return
                time.sleep(0.2 * attempt)

    def abandon(self) -> None:
        """Offsets are committed only by `complete`: nothing to undo (outputs sent may repeat)."""

    def close(self) -> None:
        wait_for_deliveries(self.producer)
