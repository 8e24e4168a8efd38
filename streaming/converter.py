"""The converter loop: consume a batch, transform, encode, produce, complete; repeat.

One loop serves every way of running the converter:

* `kdp stream` subscribes to the source topic in a consumer group and runs until stopped
  (or until `max_messages`, or until caught up with the end of its partitions);
* a Dagster conversion run assigns explicit offset ranges and stops at their ends.

Guarantees, whatever the mode:

* every consumed message becomes exactly one output: a processed record on the output topic or
  a dead letter (original bytes + reason) on the dead-letter topic; nothing is skipped;
* a batch's offsets are committed only when its output is durable (see `streaming.delivery`);
  a failed batch is rewound to its first offsets and redone;
* a record the broker refuses for good (too large for the output topic, say) cannot block the
  stream: the redo of a failed batch runs in careful mode, with a delivery report per message;
  messages whose output was refused for a non-retriable reason are marked, and the next redo
  dead-letters them (`rejected_by_broker`). If even the dead letter is refused, the converter
  stops with `UndeliverableMessage` naming the offset: loudly, never by skipping it;
* batches are processed synchronously between two `consume()` calls, and rebalance callbacks
  only run inside `consume()`, so a partition is never revoked in the middle of a batch;
* memory is bounded by the batch size and the clients' queue limits, not by the backlog.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    OFFSET_INVALID,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from streaming.avro_codegen import RecordEncodingError
from streaming.dead_letter import dead_letter_headers
from streaming.delivery import BatchFailed, Delivery, wait_for_deliveries
from streaming.encoding import WireFormatEncoder
from streaming.observer import NO_OBSERVER, BatchReport, ConverterObserver
from streaming.offset_ranges import OffsetRange
from streaming.records import Reason, Rejection
from streaming.running_insights import RunningInsights
from streaming.settings import Settings
from streaming.transform import transform

log = logging.getLogger(__name__)


REFUSED_FOR_GOOD = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,  # over the topic's max.message.bytes (or the client's message.max.bytes)
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.INVALID_TIMESTAMP,
    }
)
"""Delivery errors that are a verdict on the record itself: sending it again cannot succeed.

Every other failure says nothing about the record: a timeout or a purge (an outage, or the abort of a
transaction that another record failed) or a refusal of the client (authorization), so the batch is
redone and the record is not dead-lettered for it. The producer's batches stay under the topics' size
limit (`streaming.kafka_clients`), so a batch refused as too large holds that one record only.
"""


class UndeliverableMessage(RuntimeError):
    """Neither the output nor the dead letter of a message could be delivered: stop, don't skip."""


class ConsumerBroken(Exception):
    """The consumer reported a fatal error and can no longer fetch or commit anything."""


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


class Converter:
    """Drives one consumer and one delivery strategy; see the module docstring for guarantees.

    A batch never waits to fill: `run` waits up to `poll_timeout` for a first message, then takes
    what the consumer has already fetched, up to the batch size. With a backlog that is a full
    batch; at a low rate a small one at once. (`consume(n, timeout)` alone waits for `n` messages
    or the timeout: at 10,000 msg/s and a 1 s timeout that held records back 340 ms at p50.)
    """

    def __init__(
        self,
        settings: Settings,
        consumer: Consumer,
        delivery: Delivery,
        encoder: WireFormatEncoder,
        *,
        clock: Callable[[], float] = time.time,
        poll_timeout: float = 1.0,
        log_every: float = 10.0,
        new_consumer: Callable[[], Consumer] | None = None,
        observer: ConverterObserver | None = None,
    ) -> None:
        """`new_consumer` builds a consumer like `consumer`, to replace one broken by a fatal error (see
        `_replace_consumer`); without it such an error ends `run` with `ConsumerBroken`. `observer` is told
        about each batch boundary (`streaming.observer`), for metrics."""
        self.settings = settings
        self.consumer = consumer
        self._new_consumer = new_consumer
        self.delivery = delivery
        self.encoder = encoder
        self.clock = clock
        self.poll_timeout = poll_timeout
        self.log_every = log_every
        self.summary = ConverterSummary()
        self._range_mode = False  # set by assign_ranges: stop when the ranges are done
        self._ranges: list[OffsetRange] = []  # range mode: the ranges asked for
        self._ends: dict[tuple[str, int], int] = {}  # range mode: partition -> end offset still to reach
        self._failed_in_a_row = 0
        self._careful = False  # the next batch reports each delivery (set after a failed batch)
        self._awaiting_redo: set[tuple[str, int]] = set()  # partitions rewound, not yet redone
        self._refused: dict[tuple[str, int, int], str] = {}  # source -> the broker's refusal of its output
        self.observer = observer or NO_OBSERVER

    # -- modes -------------------------------------------------------------------------------

    def subscribe(self) -> None:
        """Join the consumer group on the source topic (the `kdp stream` mode)."""
        self.consumer.subscribe(
            [self.settings.source_topic],
            on_assign=lambda _c, parts: log.info("assigned %s", _describe(parts)),
            on_revoke=lambda _c, parts: log.info("revoked %s", _describe(parts)),
            on_lost=lambda _c, parts: log.warning("lost %s", _describe(parts)),
        )

    def assign_ranges(self, ranges: Iterable[OffsetRange]) -> list[OffsetRange]:
        """Read exactly `ranges` (the Dagster mode), resuming where the group's commit left off.

        A range whose offsets the group has already committed past is skipped; a range partly
        committed (an earlier attempt of the same run that died) resumes at the committed offset.
        Returns the ranges that remain to be read.
        """
        ranges = self._ranges = list(ranges)
        committed = self.consumer.committed([TopicPartition(r.topic, r.partition) for r in ranges], timeout=30)
        remaining = []
        for r, tp in zip(ranges, committed, strict=True):
            start = max(r.start, tp.offset) if tp.offset != OFFSET_INVALID else r.start
            if start < r.end:
                remaining.append(OffsetRange(r.topic, r.partition, start, r.end))
        self._range_mode = True
        self._ends = {(r.topic, r.partition): r.end for r in remaining}
        self.consumer.assign([TopicPartition(r.topic, r.partition, r.start) for r in remaining])
        return remaining

    # -- the loop ----------------------------------------------------------------------------

    def run(
        self,
        stop: threading.Event | None = None,
        *,
        max_messages: int | None = None,
        until_caught_up: bool = False,
        max_failed_batches: int | None = None,
    ) -> ConverterSummary:
        """Convert until `stop` is set, `max_messages` are consumed, the assigned ranges are done,
        or (with `until_caught_up`) the assigned partitions have no more messages.

        A failed batch is redone, with a growing pause, for as long as it keeps failing: the
        right thing for a long-running stream waiting out an outage. A bounded caller (a Dagster
        run) passes `max_failed_batches` to give up with `ConversionStalled` instead, leaving its
        range uncommitted for a later run.
        """
        stop = stop or threading.Event()
        range_mode = self._range_mode
        next_log = time.monotonic() + self.log_every
        while not stop.is_set():
            if range_mode and not self._ends:
                break
            budget = self.settings.batch_size
            if max_messages is not None:
                budget = min(budget, max_messages - self.summary.consumed)
                if budget <= 0:
                    break
            try:
                # Wait for the first message only, then take what is already fetched without waiting:
                # a backlog still gives full batches, a light load small ones at once (latency).
                messages = self.consumer.consume(1, self.poll_timeout)
                if messages and budget > 1:
                    messages += self.consumer.consume(budget - 1, 0)
                if messages:
                    self._convert_batch(messages)
                    if max_failed_batches is not None and self._failed_in_a_row > max_failed_batches:
                        raise ConversionStalled(f"{self._failed_in_a_row} batches in a row failed; see the log")
                elif range_mode:
                    self._finish_ranges_ended_by_markers()
                elif until_caught_up and self._caught_up():
                    break
            except ConsumerBroken as broken:
                self._replace_consumer(broken)
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

    def _convert_batch(self, messages: list[Message]) -> None:
        """Convert and deliver one batch, or rewind it to its first offsets when it fails."""
        delivery = self.delivery
        started = time.perf_counter()
        replaced_before = getattr(delivery, "replaced_producers", 0)
        delivery.begin()  # first: it may replace the producer (see streaming.exactly_once)
        produce = delivery.producer.produce
        poll = delivery.producer.poll
        encode = self.encoder.encode
        insights = RunningInsights()  # merged into the summary only if the batch succeeds
        output, dlq = self.settings.output_topic, self.settings.dlq_topic
        ends = self._ends
        now_ms = int(self.clock() * 1000)
        oldest_ms = self.settings.oldest_event_ms(now_ms)
        first: dict[tuple[str, int], int] = {}
        after: dict[tuple[str, int], int] = {}
        nbytes = 0
        count = 0
        careful, refused = self._careful, self._refused
        failures: dict[tuple[str, int, int], KafkaError] = {}
        interrupted = False

        try:
            for message in messages:
                error = message.error()
                if error is not None:
                    _raise_unless_transient(error)
                    continue
                # The stubs say Optional; a consumed message always has all three.
                topic: str = message.topic()  # type: ignore[assignment]
                partition: int = message.partition()  # type: ignore[assignment]
                offset: int = message.offset()  # type: ignore[assignment]
                where = (topic, partition)
                if ends and offset >= ends.get(where, offset + 1):
                    continue  # beyond this run's range: a later range's work
                if where not in first:
                    first[where] = offset
                after[where] = offset + 1
                count += 1
                value = message.value()
                if value is not None:
                    nbytes += len(value)
                result: dict[str, Any] | Rejection
                out: tuple[Any, ...]  # topic, value, key, timestamp, headers
                if refused and (topic, partition, offset) in refused:
                    result = Rejection(Reason.REJECTED_BY_BROKER, refused[topic, partition, offset])
                else:
                    result = transform(value, topic, partition, offset, now_ms, oldest_ms=oldest_ms)
                if type(result) is dict:
                    try:
                        # Stamped with the processing time, never the event time: time-based retention
                        # judges a segment by its records' timestamps, so an old event time would let the
                        # broker delete the record soon after delivery. The event time is in the record.
                        out = (output, encode(result), result["user_id"].encode(), now_ms, None)
                        insights.add_record(result["device_type"], result["locale"])
                    except RecordEncodingError as error:  # the schema cannot hold it: a dead letter
                        result = Rejection(Reason.ENCODING_FAILED, str(error))
                if type(result) is not dict:
                    assert isinstance(result, Rejection)
                    source_ts = message.timestamp()[1]
                    headers = dead_letter_headers(result, topic, partition, offset, source_ts, now_ms)
                    # Stamped with the failure time, for the same reason; the source's is in a header.
                    out = (dlq, value, message.key(), now_ms, headers)
                    insights.add_rejection(result.reason)
                if careful:
                    if not self._produce_carefully(out, (topic, partition, offset), failures):
                        interrupted = True  # the transaction failed: keep what was learnt, redo
                        break
                    continue
                while True:
                    try:
                        produce(out[0], out[1], out[2], timestamp=out[3], headers=out[4])
                        break
                    except BufferError:
                        poll(0.05)  # the producer queue is full: wait for the brokers (back-pressure)
                    except KafkaException as produce_error:  # refused before sending, e.g. a failed transaction
                        raise BatchFailed(f"produce: {produce_error.args[0].str()}") from produce_error
            if careful:
                self._note_refusals(failures, interrupted)
            if after:
                delivery.complete(self.consumer, [TopicPartition(t, p, o) for (t, p), o in after.items()])
        except BatchFailed as failure:
            delivery.abandon()
            self._observe_failure(failure, first, replaced_before)
            self._rewind(first, failure)
            return
        except BaseException:
            delivery.abandon()
            raise
        self._failed_in_a_row = 0
        self._careful = False
        self._awaiting_redo.difference_update(after)
        if refused:
            self._refused = {src: why for src, why in refused.items() if (src[0], src[1]) not in after}
        self.summary.consumed += count
        self.summary.batches += 1
        self.summary.bytes_in += nbytes
        self.summary.insights.merge(insights)
        self._observe_delivered(messages, count, nbytes, insights, after, now_ms, started, replaced_before, careful)
        for where, offset in after.items():
            if where in ends and offset >= ends[where]:
                del ends[where]
                self.consumer.pause([TopicPartition(*where)])

    def _observe_delivered(
        self,
        messages: list[Message],
        count: int,
        nbytes: int,
        insights: RunningInsights,
        after: dict[tuple[str, int], int],
        now_ms: int,
        started: float,
        replaced_before: int,
        careful: bool,
    ) -> None:
        """Tell the observer about a delivered batch (and the producers replaced while it ran)."""
        stamps = [
            ts for kind, ts in (messages[0].timestamp(), messages[-1].timestamp()) if kind != TIMESTAMP_NOT_AVAILABLE
        ]
        self._observe_replacements(replaced_before)
        self.observer.batch_delivered(
            BatchReport(
                consumed=count,
                bytes_in=nbytes,
                tallies=insights,
                processed_at_ms=now_ms,
                oldest_source_ms=min(stamps) if stamps else None,
                newest_source_ms=max(stamps) if stamps else None,
                seconds=time.perf_counter() - started,
                next_offsets=dict(after),
                careful=careful,
            )
        )
        if after and self.delivery.atomic:
            self.observer.transaction_committed(1)

    def _observe_failure(self, failure: BatchFailed, first: dict[tuple[str, int], int], replaced_before: int) -> None:
        """Tell the observer about a failed batch: redone, its transaction (if any) aborted."""
        self._observe_replacements(replaced_before)
        if self.delivery.atomic:
            self.observer.transaction_aborted(str(failure))
        self.observer.batch_redone(str(failure), dict(first), failure.learned)

    def _observe_replacements(self, replaced_before: int) -> None:
        for _ in range(getattr(self.delivery, "replaced_producers", 0) - replaced_before):
            self.observer.producer_replaced("see the log", fenced=False)

    def _replace_consumer(self, broken: ConsumerBroken) -> None:
        """Put a new consumer in the place of one a fatal error broke, in the same mode, or raise `broken`.

        Seen after every broker of the cluster restarted: the group coordinator fenced the converter's static
        membership (`group.instance.id`) against its own rejoin, and librdkafka treats that as fatal. The
        consumer then fetches nothing, for ever, while the process looks healthy. The batch in hand was
        abandoned (nothing of it committed), and the new consumer resumes from the group's committed offsets.
        """
        if self._new_consumer is None:
            raise broken
        log.error("the consumer cannot go on (%s): replacing it; it resumes at the group's commits", broken)
        try:
            self.consumer.close()
        except (KafkaException, RuntimeError) as error:
            log.info("closing the broken consumer: %s", error)
        self.consumer = self._new_consumer()
        self.observer.consumer_replaced(str(broken))
        self._awaiting_redo.clear()
        if self._range_mode:
            self.assign_ranges(self._ranges)
        else:
            self.subscribe()

    def _produce_carefully(
        self, out: tuple, source: tuple[str, int, int], failures: dict[tuple[str, int, int], KafkaError]
    ) -> bool:
        """Produce one output with its own delivery report; False when the batch cannot go on.

        A message the client refuses for good before sending (e.g. over `message.max.bytes`) is
        noted like one the broker refuses; any other refusal ends the batch.
        """
        producer = self.delivery.producer
        while True:
            try:
                producer.produce(
                    out[0],
                    out[1],
                    out[2],
                    timestamp=out[3],
                    headers=out[4],
                    on_delivery=_failure_recorder(failures, source),
                )
                return True
            except BufferError:
                producer.poll(0.05)
            except KafkaException as error:
                kafka_error = error.args[0]
                if kafka_error.code() not in REFUSED_FOR_GOOD:
                    return False  # a failed transaction, an outage, a fatal producer: not this record's fault
                failures[source] = kafka_error
                return True

    def _note_refusals(self, failures: dict[tuple[str, int, int], KafkaError], interrupted: bool) -> None:
        """After a careful batch: remember outputs refused for good, and fail the batch if any output failed
        (or if it was `interrupted`).

        Waits until every delivery of the batch is reported, except in a transaction: there the first
        failure dooms the batch, and the outputs still queued would only time out behind it.
        """
        wait_for_deliveries(self.delivery.producer, give_up=lambda: bool(failures) and self.delivery.atomic)
        if not failures and not interrupted:
            return
        permanent = {src: error for src, error in failures.items() if error.code() in REFUSED_FOR_GOOD}
        for src, error in permanent.items():
            if src in self._refused:
                raise UndeliverableMessage(
                    f"{src[0]}[{src[1]}] offset {src[2]}: the broker refused both its output and its "
                    f"dead letter ({error.str()}); fix the topic configuration and restart"
                )
            self._refused[src] = f"the broker refused the output: {error.str()}"
        raise BatchFailed(
            f"{len(failures)} outputs failed ({len(permanent)} for good); interrupted: {interrupted}",
            learned=bool(permanent),
        )

    def _rewind(self, first: dict[tuple[str, int], int], failure: BatchFailed) -> None:
        """Seek back to the batch's first offsets for a careful redo; pause longer the more often in a row
        a batch failed without anything learnt (an outage), not at all when it found refused outputs."""
        self.summary.redone_batches += 1
        self._careful = True
        self._awaiting_redo.update(first)
        if not failure.learned:
            self._failed_in_a_row += 1
        log.warning("batch failed (%s); redoing it from %s", failure, first)
        for (topic, partition), offset in first.items():
            try:
                self.consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as error:  # revoked meanwhile: its new owner resumes from the commit
                log.info("not rewinding %s[%d]: %s", topic, partition, error)
        if not failure.learned:
            time.sleep(min(0.5 * self._failed_in_a_row, 5.0))

    def _finish_ranges_ended_by_markers(self) -> None:
        """Close ranges whose position passed their end without a message at `end - 1`.

        On a transactional source the last offsets of a range can be commit markers, which are
        never delivered: the consumer's position, not the last message, tells that a range is
        read. Its end offset is then committed so that the group's progress matches the range.
        """
        done = []
        for (topic, partition), end in self._ends.items():
            if (topic, partition) in self._awaiting_redo:
                continue
            position = self.consumer.position([TopicPartition(topic, partition)])[0].offset
            if position >= end:
                done.append(TopicPartition(topic, partition, end))
        if done:
            self.consumer.commit(offsets=done, asynchronous=False)
            self.consumer.pause(done)
            for tp in done:
                del self._ends[(tp.topic, tp.partition)]

    def _caught_up(self) -> bool:
        """True when every assigned partition's position has reached its end offset, and no failed batch
        awaits its redo (a rewound partition's position says nothing until its messages come again)."""
        assignment = self.consumer.assignment()
        if not assignment or self._awaiting_redo.intersection((tp.topic, tp.partition) for tp in assignment):
            return False
        for tp in assignment:
            low, high = self.consumer.get_watermark_offsets(tp, timeout=10)
            position = self.consumer.position([tp])[0].offset
            if position < 0:
                committed = self.consumer.committed([tp], timeout=10)[0].offset
                position = committed if committed >= 0 else low
            if position < high:
                return False
        return True

    def _log_progress(self) -> None:
        s = self.summary
        rate = s.consumed / s.elapsed if s.elapsed > 0 else 0.0
        lag = self._lag()
        log.info(
            "%.0f msg/s, %.1f MB/s, lag %s, batches %d (redone %d); %s",
            rate,
            s.bytes_in / s.elapsed / 1e6 if s.elapsed > 0 else 0.0,
            "?" if lag is None else lag,
            s.batches,
            s.redone_batches,
            s.insights.summary(),
        )

    def _lag(self) -> int | None:
        try:
            assignment = self.consumer.assignment()
            positions = self.consumer.position(assignment)
            total = 0
            for tp in positions:
                _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
                if tp.offset >= 0 and high >= 0:
                    total += max(high - tp.offset, 0)
            return total
        except KafkaException:
            return None


def _failure_recorder(
    failures: dict[tuple[str, int, int], KafkaError], source: tuple[str, int, int]
) -> Callable[[KafkaError | None, Message], None]:
    """A per-message delivery callback noting `source` when its output fails (careful mode only)."""

    def record(error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            failures[source] = error

    return record


def _describe(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"


def _raise_unless_transient(error: KafkaError) -> None:
    """Consumer errors arrive as messages; a fatal one raises `ConsumerBroken`, the rest are logged.

    librdkafka reports a fatal error as an error event with code `_FATAL`, whose own `fatal()` is False.
    """
    if error.fatal() or error.code() == KafkaError._FATAL:
        raise ConsumerBroken(error.str())
    log.warning("consumer: %s", error.str())
