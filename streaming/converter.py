"""The converter loop: poll a batch from a source, route it, deliver it, complete it; repeat.

The parts it joins, each in its own module:

* a source (`streaming.sources`): the consumer group (`kdp stream`) or explicit offset ranges (a Dagster run);
* the batch router (`streaming.router`): messages -> outputs, first and next offsets, tallies; pure;
* a delivery (`streaming.delivery`): owns its producer; at-least-once or exactly-once.

Guarantees, whatever the mode:

* every consumed message becomes exactly one output: a processed record on the output topic or a dead letter
  (original bytes + reason) on the dead-letter topic; nothing is skipped;
* a batch's offsets are committed only when its output is durable (see `streaming.delivery`); a failed batch
  is rewound to its first offsets and redone;
* a record the broker refuses for good cannot block the stream: the redo of a failed batch is careful (a
  delivery report per message), and the redo after that dead-letters the sources whose outputs were refused
  (`streaming.refusals`). If even the dead letter is refused, `UndeliverableMessage` stops the converter;
* memory is bounded by the batch size and the clients' queue limits, not by the backlog.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from confluent_kafka import Consumer, Message

from streaming.conversion import Convert
from streaming.delivery import BatchFailed, Delivery
from streaming.observer import NO_OBSERVER, BatchReport, ConverterObserver
from streaming.offset_ranges import OffsetRange
from streaming.refusals import Refusals, UndeliverableMessage
from streaming.router import BatchRouter, Origin, RoutedBatch
from streaming.router import Message as RoutedMessage
from streaming.running_insights import RunningInsights
from streaming.settings import Settings
from streaming.sources import ConsumerBroken, ConsumerSource, GroupSource, NewConsumer, RangeSource

__all__ = ["ConsumerBroken", "ConversionStalled", "Converter", "ConverterSummary", "UndeliverableMessage"]

log = logging.getLogger(__name__)


class Router(Protocol):
    """What the loop asks of a router: `streaming.router.BatchRouter.route`'s contract."""

    def route(
        self,
        messages: Sequence[RoutedMessage],
        now_ms: int,
        oldest_ms: int,
        refused: Mapping[Origin, str] | None = None,
    ) -> RoutedBatch: ...


class ConversionStalled(RuntimeError):
    """Batches kept failing; raised only for callers that bound the number of redos."""


@dataclass
class ConverterSummary:
    """What a run of the converter did. `consumed == processed + dead_lettered` always holds."""

    consumed: int = 0
    batches: int = 0
    redone_batches: int = 0
    bytes_in: int = 0
    started_at: float = field(default_factory=time.monotonic)
    finished_at: float | None = None
    insights: RunningInsights = field(default_factory=RunningInsights)

    @property
    def processed(self) -> int:
        return self.insights.processed

    @property
    def dead_lettered(self) -> int:
        return self.insights.dead_lettered

    @property
    def elapsed(self) -> float:
        return (self.finished_at or time.monotonic()) - self.started_at

    def add(self, batch: RoutedBatch) -> None:
        """Count a delivered batch (a batch that is redone counts once, when it is delivered)."""
        self.consumed += batch.consumed
        self.batches += 1
        self.bytes_in += batch.bytes_in
        self.insights.merge(batch.tallies)


class Converter:
    """Drives one source, one router and one delivery; see the module docstring for the guarantees."""

    def __init__(
        self,
        settings: Settings,
        consumer: Consumer,
        delivery: Delivery,
        convert: Convert,
        *,
        clock: Callable[[], float] = time.time,
        poll_timeout: float = 1.0,
        log_every: float = 10.0,
        new_consumer: NewConsumer | None = None,
        observer: ConverterObserver = NO_OBSERVER,
        pause: Callable[[float], object] = time.sleep,
        router: Router | None = None,
        summary: ConverterSummary | None = None,
    ) -> None:
        """`new_consumer` builds a consumer like `consumer`, to replace one broken by a fatal error; without it
        such an error ends `run` with `ConsumerBroken`. `pause(seconds)` waits between redos of a batch that
        keeps failing (an outage).

        `router` and `summary` replace the plain `BatchRouter` of `convert` and the plain `ConverterSummary`: a
        dead-letter replay (`streaming.replay`) runs this same loop with a router that reads dead letters."""
        self.settings = settings
        self.delivery = delivery
        self.router: Router = router or BatchRouter(convert, settings.output_topic, settings.dlq_topic)
        self.clock = clock
        self.poll_timeout = poll_timeout
        self.log_every = log_every
        self.observer = observer
        self.summary = summary or ConverterSummary()
        self.source: ConsumerSource | None = None
        self._consumer = consumer
        self._new_consumer = new_consumer
        self._pause = pause
        self._failed_in_a_row = 0
        self._careful = False  # the next batch reports each delivery (set after a failed batch)
        self._refusals = Refusals()

    # -- sources -----------------------------------------------------------------------------

    @property
    def consumer(self) -> Consumer:
        """The consumer in use: the source's, once `subscribe` or `assign_ranges` made one."""
        return self.source.consumer if self.source else self._consumer

    @consumer.setter
    def consumer(self, consumer: Consumer) -> None:
        if self.source:
            self.source.consumer = consumer
        self._consumer = consumer

    def subscribe(self) -> None:
        """Join the consumer group on the source topic (the `kdp stream` mode)."""
        self.source = GroupSource(self._consumer, self.settings.source_topic, self._new_consumer)
        self.source.join()

    def assign_ranges(self, ranges: Iterable[OffsetRange]) -> list[OffsetRange]:
        """Read exactly `ranges` (the Dagster mode), resuming where the group's commit left off; returns the
        ranges that remain to be read (see `RangeSource.join`)."""
        source = RangeSource(self._consumer, ranges, self._new_consumer)
        self.source = source
        source.join()
        return source.remaining

    # -- the loop ----------------------------------------------------------------------------

    def run(
        self,
        stop: threading.Event | None = None,
        *,
        max_messages: int | None = None,
        until_caught_up: bool = False,
        max_failed_batches: int | None = None,
    ) -> ConverterSummary:
        """Convert until `stop` is set, `max_messages` are consumed, the assigned ranges are done, or (with
        `until_caught_up`) the assigned partitions have no more messages.

        A failed batch is redone, with a growing pause, for as long as it keeps failing: the right thing for a
        long-running stream waiting out an outage. A bounded caller (a Dagster run) passes
        `max_failed_batches` to give up with `ConversionStalled` instead, leaving its range uncommitted.
        """
        source = self.source
        if source is None:
            raise RuntimeError("call subscribe() or assign_ranges() before run()")
        stop = stop or threading.Event()
        next_log = time.monotonic() + self.log_every
        while not stop.is_set() and not source.finished:
            budget = self.settings.batch_size
            if max_messages is not None:
                budget = min(budget, max_messages - self.summary.consumed)
                if budget <= 0:
                    break
            try:
                messages = source.poll(budget, self.poll_timeout)
                if messages:
                    self._convert(messages)
                    if max_failed_batches is not None and self._failed_in_a_row > max_failed_batches:
                        raise ConversionStalled(f"{self._failed_in_a_row} batches in a row failed; see the log")
                elif source.exhausted(until_caught_up):
                    break
            except ConsumerBroken as broken:
                source.replace_consumer(broken)
                self.observer.consumer_replaced(str(broken))
            if time.monotonic() >= next_log:
                self._log_progress()
                next_log = time.monotonic() + self.log_every
        self.summary.finished_at = time.monotonic()
        self._log_progress()
        return self.summary

    def close(self) -> None:
        """Finish deliveries and leave the group. Safe to call once after `run`."""
        try:
            self.delivery.close()
        finally:
            self.consumer.close()

    def _convert(self, messages: list[Message]) -> None:
        """Route and deliver one batch, or rewind it to its first offsets when it fails."""
        started = time.monotonic()
        now_ms = int(self.clock() * 1000)  # one clock reading per batch: every output's timestamp
        oldest_ms = self.settings.oldest_event_ms(now_ms)
        batch = self.router.route(messages, now_ms, oldest_ms, self._refusals.pending)
        careful, delivery, source = self._careful, self.delivery, self.source
        assert source is not None
        delivery.begin()
        try:
            if careful:
                delivery.send_carefully(batch.outputs, batch.origins)
            else:
                delivery.send(batch.outputs)
            delivery.complete(source.consumer, batch.commit_offsets())
        except BatchFailed as failure:
            delivery.abandon()
            self._redo(batch, failure)
            return
        except BaseException:
            delivery.abandon()
            raise
        self._failed_in_a_row = 0
        self._careful = False
        source.delivered(batch.next_offsets)
        self._refusals.forget(batch.next_offsets)
        self.summary.add(batch)
        self.observer.batch_delivered(
            BatchReport(
                batch.consumed, batch.bytes_in, batch.tallies, now_ms, batch.oldest_source_ms,
                batch.newest_source_ms, time.monotonic() - started, batch.next_offsets, careful,
            )
        )  # fmt: skip

    def _redo(self, batch: RoutedBatch, failure: BatchFailed) -> None:
        """Rewind a failed batch for a careful redo; pause longer the more often in a row a batch failed
        without anything learnt (an outage), not at all when it found outputs refused for good."""
        self.summary.redone_batches += 1
        self._careful = True
        self._refusals.learn(failure.refused)  # UndeliverableMessage if a dead letter was refused
        if not failure.learned:
            self._failed_in_a_row += 1
        log.warning("batch failed (%s); redoing it from %s", failure, batch.first_offsets)
        assert self.source is not None
        self.source.rewind(batch.first_offsets)
        self.observer.batch_redone(str(failure), batch.first_offsets, failure.learned)
        if not failure.learned:
            self._pause(min(0.5 * self._failed_in_a_row, 5.0))

    def _log_progress(self) -> None:
        s = self.summary
        rate = s.consumed / s.elapsed if s.elapsed > 0 else 0.0
        lag = self.source.lag() if self.source else None
        log.info(
            "%.0f msg/s, %.1f MB/s, lag %s, batches %d (redone %d); %s",
            rate,
            s.bytes_in / s.elapsed / 1e6 if s.elapsed > 0 else 0.0,
            "?" if lag is None else lag,
            s.batches,
            s.redone_batches,
            s.insights.summary(),
        )
