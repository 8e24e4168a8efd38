"""When a batch counts as done: the two delivery guarantees of the converter.

Both strategies share one contract with the converter loop:

* `begin()` before the first produce of a batch;
* `complete(consumer, offsets)` after the last produce: returns only when the batch's output is
  durable *and* the source offsets are committed; raises `BatchFailed` when the batch must be
  redone from its first offsets (nothing of it is committed), and lets any other exception out
  when the process cannot go on (a fenced or fatally broken producer);
* `abandon()` when the batch is given up before `complete` succeeded: nothing of it may commit
  later (exactly-once aborts its transaction; at-least-once has nothing to undo, since offsets
  are only ever committed by `complete`). Safe to call more than once.

At-least-once: wait for every delivery report (flush), fail the batch on any delivery error, then
commit the offsets synchronously. A crash between delivery and commit re-delivers the batch.

Exactly-once: a Kafka transaction per batch; the source offsets are sent in the transaction
(`send_offsets_to_transaction`) with the consumer's group metadata, so output and offsets commit
or abort together and a zombie from an older group generation is fenced (KIP-447). Readers of the
output must use `isolation.level=read_committed`.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

log = logging.getLogger(__name__)

FLUSH_WAIT_SECONDS = 5.0
TRANSACTION_CALL_TIMEOUT = 60.0


class BatchFailed(Exception):
    """The batch was not committed and must be redone from its first offsets."""


class Delivery(Protocol):
    producer: Producer

    def begin(self) -> None: ...

    def complete(self, consumer: Consumer, offsets: list[TopicPartition]) -> None: ...

    def abandon(self) -> None: ...

    def close(self) -> None: ...


def wait_for_deliveries(producer: Producer) -> None:
    """Flush, saying so while the brokers do not answer: back-pressure, never a silent drop."""
    waited = 0.0
    while (pending := producer.flush(FLUSH_WAIT_SECONDS)) > 0:
        waited += FLUSH_WAIT_SECONDS
        log.warning("waiting for %d deliveries for %.0fs: are the brokers reachable?", pending, waited)


class AtLeastOnce:
    """Commit a batch's offsets only after every one of its messages is acknowledged."""

    def __init__(self, producer_config: dict[str, object]) -> None:
        self._failures: list[KafkaError] = []
        self.producer = Producer(
            {
                **producer_config,
                "enable.idempotence": True,
                "acks": "all",
                # Only failures reach Python: a callback per acknowledged message would cost
                # about a microsecond each on the hot path for nothing.
                "delivery.report.only.error": True,
                "on_delivery": self._on_delivery,
            }
        )

    def _on_delivery(self, error: KafkaError | None, _message: object) -> None:
        if error is not None:
            self._failures.append(error)

    def begin(self) -> None:
        self._failures.clear()

    def complete(self, consumer: Consumer, offsets: list[TopicPartition]) -> None:
        wait_for_deliveries(self.producer)
        if self._failures:
            first = self._failures[0]
            raise BatchFailed(f"{len(self._failures)} deliveries failed, first: {first.str()}")
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


class ExactlyOnce:
    """One Kafka transaction per batch, the consumed offsets committed inside it."""

    def __init__(self, producer_config: dict[str, object], transactional_id: str) -> None:
        self.producer = Producer(
            {
                **producer_config,
                "transactional.id": transactional_id,
                # A crashed process's open transaction holds back read_committed readers until
                # it times out or a producer with the same id starts again: keep it short.
                "transaction.timeout.ms": 30_000,
            }
        )
        self._retry(self.producer.init_transactions, "init_transactions")
        self._in_transaction = False

    def _retry(self, call, what: str) -> None:  # type: ignore[no-untyped-def]
        """Run a transactional call, retrying what Kafka says is retriable (e.g. a broker away)."""
        delay = 0.5
        while True:
            try:
                call(TRANSACTION_CALL_TIMEOUT)
                return
            except KafkaException as error:
                kafka_error = error.args[0]
                if not kafka_error.retriable():
                    raise
                log.warning("%s: %s; retrying in %.1fs", what, kafka_error.str(), delay)
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def begin(self) -> None:
        self.producer.begin_transaction()
        self._in_transaction = True

    def complete(self, consumer: Consumer, offsets: list[TopicPartition]) -> None:
        try:
            metadata = consumer.consumer_group_metadata()
            self._retry(
                lambda timeout: self.producer.send_offsets_to_transaction(offsets, metadata, timeout),
                "send_offsets_to_transaction",
            )
            self._retry(self.producer.commit_transaction, "commit_transaction")
            self._in_transaction = False
        except KafkaException as error:
            kafka_error = error.args[0]
            if kafka_error.txn_requires_abort():
                log.warning("transaction aborted (%s): redoing the batch", kafka_error.str())
                self.abandon()
                raise BatchFailed(kafka_error.str()) from error
            raise

    def abandon(self) -> None:
        """Abort the open transaction, if any: none of the batch's output becomes visible."""
        if self._in_transaction:
            self._in_transaction = False
            try:
                self._retry(self.producer.abort_transaction, "abort_transaction")
            except KafkaException as error:  # fatal: the process must stop; the transaction times out
                log.error("abort_transaction: %s", error.args[0].str())
                raise

    def close(self) -> None:
        """Nothing is pending between batches: every batch ended in a commit or an abort."""
