"""Reading offset ranges of a topic to their end with a short-lived consumer: the one way `kdp tail`, the
insights reader and the tests read Kafka.

- `reader_consumer(settings, purpose)`: a consumer for `assign()` only. Its group id is its own
  (`kdp-<purpose>-<uuid>`), it commits and stores nothing, so a read never disturbs the converter's group
  and can be repeated with the same result. `read_committed` by default: aborted records and those of open
  transactions are never seen.
- `current_ranges(consumer, topic, ...)`: per partition, a range from the low watermark, a point in time
  (`offsets_for_times`) or the last N offsets, up to the partition's end *as it is now* (for a
  read_committed consumer: the last stable offset), so a read never waits for data that is not there yet.
- `read_ranges(consumer, ranges, visit)`: delivers each message of the ranges to `visit`, once, and says per
  range where it ended and what `visit` answered.
- `read_range_batches(consumer, ranges, visit_batch)`: the same for ranges of one topic, handing `visit_batch`
  each batch as the consumer returned it, so that a visitor in native code pays no Python call per message
  (the hourly insights); the visitor does the per-message part of `read_ranges` itself.

How a read knows it is done: a partition is finished when the consumer's *position* reaches its range's
end. Not when the last delivered offset does, and not after a number of messages: transaction commit
markers and aborted records take offsets but are never delivered, so the last offset of a range may never
arrive as a message. `visit` may also end a partition's range early by answering `BEYOND` for a message: the
range then ends just before it (the message is not counted).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from confluent_kafka import Consumer, Message, TopicPartition

from streaming.offset_ranges import OffsetRange
from streaming.settings import Settings

REQUEST_TIMEOUT_S = 15.0
DEFAULT_IDLE_TIMEOUT_S = 30.0
"""A read fails when no partition's position has moved for this long (a broker gone, a transaction stuck)."""
BEYOND = "beyond"
"""What `visit` answers for a message past the end of what it wants: the range ends before that message."""
_BATCH = 1000

Isolation = Literal["read_committed", "read_uncommitted"]


class TopicReadError(RuntimeError):
    """A range could not be read completely; the message says which topic/partition and why."""


@dataclass(frozen=True)
class RangeRead:
    """What one partition delivered: the offsets read (ending where the read stopped) and, per answer of
    `visit`, how many messages got it. `delivered <= len(offsets)` always holds for a correct read."""

    offsets: OffsetRange
    answers: Counter[str]

    @property
    def delivered(self) -> int:
        return sum(self.answers.values())


def reader_consumer(settings: Settings, purpose: str, isolation: Isolation = "read_committed") -> Consumer:
    """A consumer for `assign()` only: group id `kdp-<purpose>-<uuid>` (ACLs may grant a prefix), no commits."""
    return Consumer(
        {
            **settings.kafka_config(),
            "group.id": f"kdp-{purpose}-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "isolation.level": isolation,
            "enable.partition.eof": False,
        }
    )


def partitions_of(consumer: Consumer, topic: str) -> list[int]:
    metadata = consumer.list_topics(topic, timeout=REQUEST_TIMEOUT_S).topics.get(topic)
    if metadata is None or metadata.error is not None or not metadata.partitions:
        why = metadata.error if metadata is not None and metadata.error is not None else "no partitions"
        raise TopicReadError(f"cannot read topic {topic!r}: {why}")
    return sorted(metadata.partitions)


def current_ranges(
    consumer: Consumer, topic: str, *, from_time_ms: int | None = None, last: int | None = None
) -> list[OffsetRange]:
    """Per partition, a range ending at the partition's current end, starting at:

    - `from_time_ms` given: the earliest offset stamped at or after that time (`offsets_for_times`); every
      offset before it is stamped earlier. Empty when nothing is stamped that late.
    - `last` given: the last `last` offsets (fewer when the partition holds fewer).
    - neither: the partition's low watermark (everything it still holds).
    """
    if from_time_ms is not None and last is not None:
        raise ValueError("give from_time_ms or last, not both")
    ranges = []
    partitions = partitions_of(consumer, topic)
    starts = {} if from_time_ms is None else _offsets_at(consumer, topic, partitions, max(0, from_time_ms))
    for p in partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=REQUEST_TIMEOUT_S)
        if from_time_ms is not None:
            start = high if starts[p] < 0 else min(max(starts[p], low), high)
        elif last is not None:
            start = max(low, high - last)
        else:
            start = low
        ranges.append(OffsetRange(topic, p, start, high))
    return ranges


def _offsets_at(consumer: Consumer, topic: str, partitions: Sequence[int], timestamp_ms: int) -> dict[int, int]:
    asked = [TopicPartition(topic, p, timestamp_ms) for p in partitions]
    answers = consumer.offsets_for_times(asked, timeout=REQUEST_TIMEOUT_S)
    for answer in answers:
        if answer.error is not None:
            raise TopicReadError(
                f"offsets_for_times({timestamp_ms}) failed on {topic}/{answer.partition}: {answer.error}"
            )
    return {answer.partition: answer.offset for answer in answers}


def read_ranges(
    consumer: Consumer,
    ranges: Sequence[OffsetRange],
    visit: Callable[[Message], str],
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
) -> list[RangeRead]:
    """Deliver the messages of `ranges` to `visit`, once each, and say per range what it delivered.

    `visit` answers a label for each message (counted per range in `RangeRead.answers`), or `BEYOND` to end
    the range before that message. Raises TopicReadError when a message carries an error or no position
    moves for `idle_timeout_s`.
    """
    answers: dict[tuple[str, int], Counter[str]] = {(r.topic, r.partition): Counter() for r in ranges}
    ends = {(r.topic, r.partition): r.end for r in ranges}
    progress = _Progress(consumer, ranges, ends, idle_timeout_s)
    try:
        while progress.pending:
            for message in consumer.consume(_BATCH, timeout=0.5):
                error = message.error()
                if error is not None:
                    raise TopicReadError(f"reading {message.topic()}/{message.partition()} failed: {error}")
                where, offset = (message.topic(), message.partition()), message.offset()
                if where not in progress.pending or offset is None or offset >= ends[where]:
                    continue  # fetched past the range (prefetch), or after a BEYOND of this batch: not ours
                answer = visit(message)
                if answer == BEYOND:
                    ends[where] = offset
                else:
                    answers[where][answer] += 1
            progress.check()
    finally:
        progress.release()
    return [
        RangeRead(
            OffsetRange(r.topic, r.partition, r.start, ends[(r.topic, r.partition)]), answers[(r.topic, r.partition)]
        )
        for r in ranges
    ]


def read_range_batches(
    consumer: Consumer,
    ranges: Sequence[OffsetRange],
    visit_batch: Callable[[list[Message], dict[int, int]], None],
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
) -> list[OffsetRange]:
    """Hand the messages of `ranges` (all of one topic) to `visit_batch`, a batch at a time; answer the ranges
    as read (each ending where its partition's read stopped).

    `visit_batch(messages, ends)` gets the batch as `consume` returned it and `ends`, partition -> end offset
    of each partition still being read. It must, per message: raise `TopicReadError` if it carries an error;
    skip it if its partition is not in `ends` or its offset is at or past the end (prefetched beyond the
    range, or after a message that ended it); otherwise visit it once, or end the range before it by setting
    `ends[partition]` to its offset (what `BEYOND` does in `read_ranges`). Raises `TopicReadError` when no
    position moves for `idle_timeout_s`.
    """
    topics = {r.topic for r in ranges}
    if len(topics) > 1:
        raise ValueError(f"ranges of one topic only, not of {sorted(topics)}")
    ends = {(r.topic, r.partition): r.end for r in ranges}
    progress = _Progress(consumer, ranges, ends, idle_timeout_s)
    try:
        while progress.pending:
            batch = consumer.consume(_BATCH, timeout=0.5)
            if batch:
                pending_ends = {p: ends[(t, p)] for t, p in progress.pending}
                visit_batch(batch, pending_ends)
                for t, p in progress.pending:
                    ends[(t, p)] = min(ends[(t, p)], pending_ends[p])
            progress.check()
    finally:
        progress.release()
    return [OffsetRange(r.topic, r.partition, r.start, ends[(r.topic, r.partition)]) for r in ranges]


class _Progress:
    """Which partitions of a read are still pending, by the consumer's positions; assigns and unassigns them.

    A partition is finished when its position reaches its end in `ends` (which the read may lower); the read
    fails when no position has moved for `idle_timeout_s`.
    """

    def __init__(
        self,
        consumer: Consumer,
        ranges: Sequence[OffsetRange],
        ends: dict[tuple[str, int], int],
        idle_timeout_s: float,
    ) -> None:
        self._consumer = consumer
        self._ends = ends
        self._idle_timeout_s = idle_timeout_s
        to_read = [r for r in ranges if r.end > r.start]
        self.pending = {(r.topic, r.partition) for r in to_read}
        if to_read:
            consumer.incremental_assign([TopicPartition(r.topic, r.partition, r.start) for r in to_read])
        self._positions: dict[tuple[str, int], int] = {}
        self._last_progress = time.monotonic()

    def check(self) -> None:
        """Retire the partitions whose position reached their end; raise if none has moved for too long."""
        finished = []
        for position in self._consumer.position([TopicPartition(t, p) for t, p in self.pending]):
            where = (position.topic, position.partition)
            if position.offset != self._positions.get(where):
                self._positions[where] = position.offset
                self._last_progress = time.monotonic()
            if position.offset >= self._ends[where]:
                finished.append(where)
        if finished:
            self._consumer.incremental_unassign([TopicPartition(t, p) for t, p in finished])
            self.pending.difference_update(finished)
        elif time.monotonic() - self._last_progress > self._idle_timeout_s:
            stuck = ", ".join(
                f"{t}/{p} at {self._positions.get((t, p))} of end {self._ends[(t, p)]}" for t, p in sorted(self.pending)
            )
            raise TopicReadError(f"no progress for {self._idle_timeout_s:.0f} s: {stuck}")

    def release(self) -> None:
        """Unassign what is still pending (the read failed or was interrupted)."""
        if self.pending:
            self._consumer.incremental_unassign([TopicPartition(t, p) for t, p in self.pending])
