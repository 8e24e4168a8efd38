"""At-least-once delivery: a batch's offsets are committed only after all of its output is acknowledged.

`complete` waits for every delivery report (flush), fails the batch on any delivery error, then hands the
offsets to an *asynchronous* commit and returns: the loop never waits a commit round trip per batch (it was
the largest part of a batch's time at light load). What that changes, and what keeps it safe:

- the offsets of a completed batch are committed a few milliseconds later. A crash in between redelivers
  the batch: duplicates, as a crash between delivery and a synchronous commit always could; never loss,
  since no offset is ever committed before its output is acknowledged;
- a commit that fails (its result comes to the consumer's `on_commit` callback, served inside the loop's next
  `consume()`) is counted (`ConverterObserver.offset_commit_failed`, the `kdp_offset_commit_failures` metric)
  and logged; its offsets stay due, so the next batch's commit sends them again
  (`streaming.delivery.offset_commits.OutstandingOffsets`). The last word is a synchronous commit of every partition
  delivered since the last one, before partitions are revoked, at a stop and before close
  (`commit_outstanding`), retried while Kafka says the error is retriable;
- partitions lost, or a consumer replaced, can no longer commit: their outstanding offsets are dropped
  (`forget_outstanding`) and the next owner resumes at the group's last commit (duplicates, never loss).
"""

from __future__ import annotations

import logging
import time

import tenacity
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from streaming.delivery.contract import (
    DeliveryFailures,
    NewProducer,
    ProducerDelivery,
    retriable_kafka_error,
    wait_for_deliveries,
)
from streaming.delivery.offset_commits import OutstandingOffsets
from streaming.observe.observer import NO_OBSERVER, ConverterObserver

log = logging.getLogger(__name__)

SYNC_COMMIT_ATTEMPTS = 3


class AtLeastOnce(ProducerDelivery):
    """Commit a batch's offsets, asynchronously, only after every one of its messages is acknowledged."""

    atomic = False

    def __init__(
        self,
        producer_config: dict[str, object],
        *,
        new_producer: NewProducer = Producer,
        observer: ConverterObserver = NO_OBSERVER,
    ) -> None:
        self._failures = DeliveryFailures()
        self.observer = observer
        self.producer = new_producer(
            {**producer_config, "enable.idempotence": True, "acks": "all", **self._failures.producer_config()}
        )
        self.outstanding = OutstandingOffsets()

    def consumer_config(self) -> dict[str, object]:
        """The consumer must report its asynchronous commits' results here (`on_commit`, served in its poll)."""
        return {"on_commit": self.on_commit}

    def begin(self) -> None:
        self._failures.clear()

    def complete(self, consumer: Consumer, offsets: list[TopicPartition]) -> None:
        """Returns once the batch's output is acknowledged and its offsets are handed to an asynchronous commit
        (with those of any earlier commit not confirmed yet)."""
        observer = self.observer
        started = time.perf_counter()
        wait_for_deliveries(self.producer)
        flushed = time.perf_counter()
        observer.batch_stage("flush", flushed - started)
        self._failures.raise_if_any()
        outstanding = self.outstanding
        outstanding.delivered(offsets)
        if due := outstanding.due():
            try:
                consumer.commit(offsets=due, asynchronous=True)
            except KafkaException as error:  # refused at once (no coordinator known, say): the next commit resends
                self._commit_failed(error.args[0].str())
        observer.batch_stage("commit", time.perf_counter() - flushed)

    def on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """The consumer's `on_commit` callback: the result of an asynchronous commit. Never raises (it runs
        inside `consume()`)."""
        if error is not None:
            self._commit_failed(error.str())
            return
        self.outstanding.confirmed(partitions)  # but those with an error of their own
        failed = [f"{tp.topic}[{tp.partition}]: {tp.error}" for tp in partitions if tp.error is not None]
        if failed:
            self._commit_failed("; ".join(failed))

    def _commit_failed(self, reason: str) -> None:
        log.warning("offset commit failed (%s): its offsets are committed again by the next commit", reason)
        self.observer.offset_commit_failed(reason)

    def commit_outstanding(self, consumer: Consumer) -> None:
        """Commit synchronously every partition delivered since the last synchronous commit; retriable errors
        are retried. A commit that still fails is counted, logged and dropped: those batches may be redelivered."""
        offsets = self.outstanding.everything()
        if not offsets:
            return
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(retriable_kafka_error),
            stop=tenacity.stop_after_attempt(SYNC_COMMIT_ATTEMPTS),
            wait=tenacity.wait_incrementing(start=0.2, increment=0.2),
            reraise=True,
        )
        try:
            retrying(consumer.commit, offsets=offsets, asynchronous=False)
        except KafkaException as error:
            # The output is durable; an offset commit lost here only means the batches are seen
            # again after a restart or rebalance: duplicates, which this mode allows.
            # Its partitions may be another member's by now: their offsets are dropped, not sent again.
            reason = error.args[0].str()
            log.warning("offset commit failed (%s): batches may be redelivered", reason)
            self.observer.offset_commit_failed(reason)
            self.outstanding.forget()
            return
        self.outstanding.committed_synchronously(offsets)

    def forget_outstanding(self) -> None:
        self.outstanding.forget()

    def abandon(self) -> None:
        """Offsets are committed only for batches `complete` accepted: nothing to undo (outputs sent may repeat)."""

    def close(self) -> None:
        wait_for_deliveries(self.producer)
