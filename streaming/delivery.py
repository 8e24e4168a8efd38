"""When a batch counts as done: the contract between the converter loop and its delivery guarantee.

Two strategies implement it, `streaming.at_least_once.AtLeastOnce` and
`streaming.exactly_once.ExactlyOnce`:

* `begin()` before the first produce of a batch (the producer to use is `producer` after it);
* `complete(consumer, offsets)` after the last produce: returns only when the batch's output is
  durable *and* the source offsets are committed; raises `BatchFailed` when the batch must be
  redone from its first offsets (nothing of it is committed), and lets any other exception out
  when the process cannot go on;
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
from collections.abc import Callable
from typing import Protocol

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

log = logging.getLogger(__name__)

FLUSH_STEP_SECONDS = 0.5
FLUSH_WARN_EVERY_SECONDS = 5.0


class BatchFailed(Exception):
    """The batch was not committed and must be redone from its first offsets.

    `learned`: the attempt found outputs refused for good, which the redo dead-letters. Such a redo is
    progress, not a retry of the same thing, so it is neither delayed nor counted as a stall.
    """

    def __init__(self, reason: str, *, learned: bool = False) -> None:
        super().__init__(reason)
        self.learned = learned


class Delivery(Protocol):
    producer: Producer
    atomic: bool
    """True when one failed output fails the whole batch (a transaction), False when each output stands alone."""

    def begin(self) -> None: ...

    def complete(self, consumer: Consumer, offsets: list[TopicPartition]) -> None: ...

    def abandon(self) -> None: ...

    def close(self) -> None: ...


def wait_for_deliveries(producer: Producer, give_up: Callable[[], bool] = lambda: False) -> None:
    """Flush, saying so while the brokers do not answer: back-pressure, never a silent drop.

    `give_up` is asked between short waits; True ends the wait with deliveries still pending (for a
    transaction that a failed delivery has already doomed: its abort purges them).
    """
    waited = 0.0
    while (pending := producer.flush(FLUSH_STEP_SECONDS)) > 0 and not give_up():
        waited += FLUSH_STEP_SECONDS
        if waited % FLUSH_WARN_EVERY_SECONDS == 0:
            log.warning("waiting for %d deliveries for %.0fs: are the brokers reachable?", pending, waited)


class DeliveryFailures:
    """The failed deliveries of the current batch, gathered by the producer's delivery callback."""

    def __init__(self) -> None:
        self.errors: list[KafkaError] = []

    def producer_config(self) -> dict[str, object]:
        # Only failures reach Python: a callback per acknowledged message would cost about a
        # microsecond each on the hot path for nothing.
        return {"delivery.report.only.error": True, "on_delivery": self._on_delivery}

    def _on_delivery(self, error: KafkaError | None, _message: object) -> None:
        if error is not None:
            self.errors.append(error)

    def clear(self) -> None:
        self.errors.clear()

    def raise_if_any(self) -> None:
        if self.errors:
            raise BatchFailed(f"{len(self.errors)} deliveries failed, first: {self.errors[0].str()}")
