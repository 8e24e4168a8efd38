"""The converter loop: poll a batch from a source, route it, deliver it, complete it; repeat.

The parts it joins, each in its own module:

* a source (`streaming.loop.sources`): the consumer group (`kdp stream`) or explicit offset ranges (a Dagster run);
* the batch router (`streaming.loop.router`): messages -> outputs, first and next offsets, tallies; pure;
* a delivery (`streaming.delivery.contract`): owns its producer; at-least-once or exactly-once.

Guarantees, whatever the mode:

* every consumed message becomes exactly one output: a processed record on the output topic or a dead letter
  (original bytes + reason) on the dead-letter topic; nothing is skipped;
* a batch's offsets are committed only when its output is durable (see `streaming.delivery.contract`); a failed batch
  is rewound to its first offsets and redone;
* exactly-once keeps a transaction open over several batches (`streaming.loop.commit_span`) until
  `KDP_COMMIT_INTERVAL_MS` has elapsed since its first batch, it holds `MAX_BATCHES_PER_TRANSACTION` batches'
  worth, or the source has nothing more for now; it then commits with the offsets of all its batches. An
  aborted transaction is rewound to the offsets of its *first* batch and redone; before partitions are
  revoked the open transaction is committed (or aborted and rewound), and a stop commits it. At-least-once
  commits every batch (why: `Converter.__init__`);
* a record the broker refuses for good cannot block the stream: the redo of a failed batch is careful (a
  delivery report per message), and the redo after that dead-letters the sources whose outputs were refused
  (`streaming.loop.refusals`). If even the dead letter is refused, `UndeliverableMessage` stops the converter;
* memory is bounded by the batch size and the clients' queue limits, not by the backlog (exactly-once keeps the
  batches of its open transaction until it commits: at most `MAX_BATCHES_PER_TRANSACTION` of them).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from confluent_kafka import Consumer, Message

from streaming.conversion.convert import Convert, Lanes
from streaming.delivery.contract import BatchFailed, Delivery
from streaming.delivery.outputs import Message as RoutedMessage
from streaming.delivery.outputs import Origin
from streaming.loop.commit_span import CommitSpan
from streaming.loop.refusals import Refusals, UndeliverableMessage
from streaming.loop.router import BatchRouter, RoutedBatch
from streaming.loop.sources import ConsumerBroken, ConsumerSource, GroupSource, NewConsumer, RangeSource
from streaming.observe.observer import NO_OBSERVER, ConverterObserver, Partition
from streaming.observe.running_insights import RunningInsights
from streaming.offset_ranges import OffsetRange
from streaming.settings import Settings

__all__ = ["ConsumerBroken", "ConversionStalled", "Converter", "ConverterSummary", "UndeliverableMessage"]

log = logging.getLogger(__name__)

MAX_BATCHES_PER_TRANSACTION = 10
"""Exactly-once: a transaction commits once it holds this many batches' worth of messages, even before its
interval (`KDP_COMMIT_INTERVAL_MS`) has elapsed: it bounds what an abort undoes and redoes."""


class Router(Protocol):
    """What the loop asks of a router: `streaming.loop.router.BatchRouter.route`'s contract."""

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
    #: Messages decided by each conversion engine (`Lanes`' fields: native, fast, reference).
    by_engine: Counter[str] = field(default_factory=Counter)

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
        self.by_engine.update(batch.lanes._asdict())

    def engines(self) -> str:
        """The messages each engine decided, e.g. "native 19222 (96.1%), fast 8 (0.0%), reference 770 (3.9%)"."""
        total = sum(self.by_engine.values()) or 1
        return ", ".join(
            f"{name} {self.by_engine[name]} ({self.by_engine[name] / total:.1%})" for name in Lanes._fields
        )


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
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        """`new_consumer` builds a consumer like `consumer`, to replace one broken by a fatal error; without it
        such an error ends `run` with `ConsumerBroken`. `pause(seconds)` waits between redos of a batch that
        keeps failing (an outage). `timer` (seconds) tells when an open transaction is due to commit.

        `router` and `summary` replace the plain `BatchRouter` of `convert` and the plain `ConverterSummary`: a
        dead-letter replay (`streaming.replay.run`) runs this same loop with a router that reads dead letters."""
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
        self._timer = timer
        self._span: CommitSpan | None = None  # the batches sent since the last commit
        # Exactly-once output becomes visible only when its transaction commits: the cadence is the latency
        # lever there. At-least-once output is visible once acknowledged, whatever the commits; committing
        # (asynchronously) after each batch keeps what a crash redelivers to about one batch, and its completion
        # like the pass-through baseline's.
        transactional = settings.delivery == "exactly-once"
        self._commit_interval = settings.commit_interval_ms / 1000 if transactional else 0.0
        self._max_span_messages = MAX_BATCHES_PER_TRANSACTION * settings.batch_size if transactional else 1

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
        self.source = GroupSource(
            self._consumer,
            self.settings.source_topic,
            self._new_consumer,
            before_partitions_go=self._before_partitions_go,
        )
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

        A failed batch (or transaction) is redone, with a growing pause, for as long as it keeps failing: the
        right thing for a long-running stream waiting out an outage. A bounded caller (a Dagster run) passes
        `max_failed_batches` to give up with `ConversionStalled` instead, leaving its range uncommitted.

        On the way out the open transaction is committed (a stop, `max_messages`, the end of the source) or,
        when an exception ends the run, aborted: `run` never returns with a transaction open, nor with offsets
        outstanding (`Delivery.commit_outstanding`).
        """
        source = self.source
        if source is None:
            raise RuntimeError("call subscribe() or assign_ranges() before run()")
        stop = stop or threading.Event()
        next_log = time.monotonic() + self.log_every
        try:
            while not stop.is_set() and not source.finished:
                budget = self.settings.batch_size
                if max_messages is not None:
                    budget = min(budget, max_messages - self.summary.consumed - self._open_consumed)
                    if budget <= 0:
                        if self._span is None:
                            break
                        self._commit()  # a failed commit is redone within the budget
                        continue
                try:
                    polled = time.perf_counter()
                    messages = source.poll(budget, self._poll_timeout())
                    if messages:
                        self.observer.batch_stage("poll", time.perf_counter() - polled)
                        self._send(messages)
                        del messages  # not alive beside the next batch: a catch-up's memory is one batch's
                        span = self._span
                        if span is not None and span.due(self._timer()):
                            self._commit()
                    else:  # nothing more for now: commit what is open rather than hold it back
                        self._commit()
                        # Idle: no batch waits for this synchronous commit. It also comes before a range source
                        # commits past its last markers (`exhausted`), which a later commit must not undo.
                        self.delivery.commit_outstanding(source.consumer)
                        if source.exhausted(until_caught_up):
                            break
                    if max_failed_batches is not None and self._failed_in_a_row > max_failed_batches:
                        raise ConversionStalled(f"{self._failed_in_a_row} batches in a row failed; see the log")
                except ConsumerBroken as broken:
                    # The broken consumer can neither commit nor hand over its group metadata: abort; the new
                    # consumer resumes at the group's commits, before the aborted transaction's batches.
                    self._abandon()
                    self.delivery.forget_outstanding()
                    source.replace_consumer(broken)
                    self.observer.consumer_replaced(str(broken))
                if time.monotonic() >= next_log:
                    self._log_progress()
                    next_log = time.monotonic() + self.log_every
            self._commit()
            self.delivery.commit_outstanding(source.consumer)
        except BaseException:
            self._abandon()
            raise
        self.summary.finished_at = time.monotonic()
        self._log_progress()
        return self.summary

    def close(self) -> None:
        """Commit what is outstanding (after a run that an exception ended), finish deliveries and leave the
        group. Safe to call once after `run`."""
        try:
            self.delivery.commit_outstanding(self.consumer)
        finally:
            try:
                self.delivery.close()
            finally:
                self.consumer.close()

    @property
    def _open_consumed(self) -> int:
        return self._span.consumed if self._span is not None else 0

    def _poll_timeout(self) -> float:
        """The poll's wait for a first message: never past the open transaction's due time."""
        if self._span is None:
            return self.poll_timeout
        return max(0.0, min(self.poll_timeout, self._span.due_at - self._timer()))

    def _send(self, messages: list[Message]) -> None:
        """Route a batch and send it in the open span (opening one first); on failure abort the span and rewind
        to its first batch's offsets."""
        started = time.monotonic()
        observer = self.observer
        now_ms = int(self.clock() * 1000)  # one clock reading per batch: every output's timestamp
        oldest_ms = self.settings.oldest_event_ms(now_ms)
        routing = time.perf_counter()
        batch = self.router.route(messages, now_ms, oldest_ms, self._refusals.pending)
        sending = time.perf_counter()
        observer.batch_stage("convert", sending - routing)
        careful, delivery = self._careful, self.delivery
        span = self._span
        if span is None:
            delivery.begin()
            span = self._span = CommitSpan(self._timer() + self._commit_interval, self._max_span_messages)
        try:
            if careful:
                delivery.send_carefully(batch.outputs, batch.origins)
            else:
                delivery.send(batch.outputs)
            observer.batch_stage("produce", time.perf_counter() - sending)
        except BatchFailed as failure:
            self._span = None
            delivery.abandon()
            self._redo(span.redo_from(batch), failure)
            return
        span.add(batch, started, careful)

    def _commit(self, *, pause: bool = True) -> None:
        """Complete the open span: its output durable (committed) and its offsets committed with it; on failure
        abort it and rewind to its first batch's offsets. Nothing to do without an open span."""
        span, self._span = self._span, None
        if span is None:
            return
        source, delivery = self.source, self.delivery
        assert source is not None
        try:
            delivery.complete(source.consumer, span.commit_offsets())
        except BatchFailed as failure:
            delivery.abandon()
            self._redo(span.redo_from(), failure, pause=pause)
            return
        except BaseException:
            delivery.abandon()
            raise
        self._failed_in_a_row = 0
        self._careful = False
        source.delivered(span.next_offsets)
        self._refusals.forget(span.next_offsets)
        finished = time.monotonic()
        for sent in span.sent:
            self.summary.add(sent.batch)
            self.observer.batch_delivered(sent.report(finished))

    def _abandon(self) -> None:
        """Abort the open span, if any, without rewinding (the run is ending, or the consumer is replaced)."""
        if self._span is not None:
            self._span = None
            self.delivery.abandon()

    def _before_partitions_go(self, lost: bool) -> None:
        """The group source calls this inside `consume()` before partitions are revoked (`lost`: after they were
        lost). The open span is finished while they are still ours: committed, or if that fails (or they are
        already lost, so that its commit would be refused) aborted and rewound, the partitions that go being
        left to their new owner, who resumes at the group's commit. Offsets of completed spans still outstanding (an
        asynchronous commit in flight or failed) are then committed synchronously, or, when lost, dropped."""
        span = self._span
        if not lost:
            if span is not None:
                self._commit(pause=False)  # no pause inside the rebalance: the group waits for this member
            assert self.source is not None
            self.delivery.commit_outstanding(self.source.consumer)
            return
        self.delivery.forget_outstanding()
        if span is None:
            return
        self._span = None
        self.delivery.abandon()
        self._redo(span.redo_from(), BatchFailed("partitions lost in a rebalance"), pause=False)

    def _redo(self, first_offsets: dict[Partition, int], failure: BatchFailed, *, pause: bool = True) -> None:
        """Rewind a failed span for a careful redo (every batch until a span commits reports each delivery);
        pause longer the more often in a row one failed without anything learnt (an outage), not at all when it
        found outputs refused for good."""
        self.summary.redone_batches += 1
        self._careful = True
        self._refusals.learn(failure.refused)  # UndeliverableMessage if a dead letter was refused
        if not failure.learned:
            self._failed_in_a_row += 1
        log.warning("batch failed (%s); redoing it from %s", failure, first_offsets)
        assert self.source is not None
        self.source.rewind(first_offsets)
        self.observer.batch_redone(str(failure), first_offsets, failure.learned)
        if pause and not failure.learned:
            self._pause(min(0.5 * self._failed_in_a_row, 5.0))

    def _log_progress(self) -> None:
        s = self.summary
        rate = s.consumed / s.elapsed if s.elapsed > 0 else 0.0
        lag = self.source.lag() if self.source else None
        log.info(
            "%.0f msg/s, %.1f MB/s, lag %s, batches %d (redone %d); by engine %s; %s",
            rate,
            s.bytes_in / s.elapsed / 1e6 if s.elapsed > 0 else 0.0,
            "?" if lag is None else lag,
            s.batches,
            s.redone_batches,
            s.engines(),
            s.insights.summary(),
        )
