"""Where the converter's messages come from: the consumer group, or explicit offset ranges.

Both sources own their consumer and give the loop the same few calls:

- `poll(budget, timeout)`: the next batch, error-free; waits up to `timeout` for a first message, then takes
  what is already fetched, up to `budget` (a backlog gives full batches, a light load small ones at once:
  `consume(n, timeout)` alone waits for `n` messages or the timeout, and held records back 340 ms at p50 at
  10,000 msg/s). A fatal consumer error raises `ConsumerBroken`; other errors are logged and skipped;
- `delivered(next_offsets)` after a batch is committed, `rewind(first_offsets)` after one failed;
- `exhausted(until_caught_up)` when a poll brought nothing: should the run end?
- `replace_consumer(broken)`: a new consumer in place of one broken by a fatal error; it resumes at the
  group's committed offsets (the batch in hand was abandoned, nothing of it committed).

`GroupSource` (the `kdp stream` mode) subscribes to the source topic in the converter's group. `RangeSource`
(a Dagster run) assigns exactly the offset ranges of its run config, skipping what the group has committed
past, and ends when every range is read, including ranges whose last offsets are transaction markers.

Batches are processed synchronously between two `consume()` calls, and rebalance callbacks only run inside
`consume()`, so a partition is never revoked in the middle of a batch. A transaction may span several batches,
though: `GroupSource` calls `before_partitions_go` inside `consume()` before partitions are revoked (or once
they are lost), for the converter to finish it while they are still its own. A poll then drops the message it
already held from a partition revoked or rewound meanwhile (its new owner, or the rewind, reads it again).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from operator import methodcaller
from typing import Any

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, Message, TopicPartition

from streaming.observe.observer import Partition
from streaming.offset_ranges import OffsetRange

log = logging.getLogger(__name__)

NewConsumer = Callable[[], Consumer]

_error_of = methodcaller("error")


class ConsumerBroken(Exception):
    """The consumer reported a fatal error and can no longer fetch or commit anything."""


class ConsumerSource:
    """What both sources share: polling, rewinding, replacing the consumer. Subclasses join their way."""

    def __init__(self, consumer: Consumer, new_consumer: NewConsumer | None = None) -> None:
        """`new_consumer` builds a consumer like `consumer`, to replace one a fatal error broke; without it
        such an error propagates as `ConsumerBroken`."""
        self.consumer = consumer
        self._new_consumer = new_consumer
        self._awaiting_redo: set[Partition] = set()  # partitions rewound, not yet redone
        self._disturbed: set[Partition] = set()  # partitions revoked or rewound during a poll's second consume()

    def join(self) -> None:
        """Take this source's partitions with `self.consumer` (subscribe or assign)."""
        raise NotImplementedError

    @property
    def finished(self) -> bool:
        """True when the source has nothing more to give, ever (a range source whose ranges are read)."""
        return False

    def poll(self, budget: int, timeout: float) -> list[Message]:
        messages = self.consumer.consume(1, timeout)
        if messages and budget > 1:
            disturbed = self._disturbed
            disturbed.clear()
            more = self.consumer.consume(budget - 1, 0)
            # A rebalance callback ran in this consume() and revoked or rewound the first message's partition:
            # that message is no longer ours to convert. (librdkafka drops the outdated messages within one
            # consume() call itself, confluentinc/librdkafka#4117; not those an earlier call returned.)
            if disturbed:
                messages = [m for m in messages if (m.topic(), m.partition()) not in disturbed]
            messages += more
        if any(map(_error_of, messages)):  # in C: no Python call per message on the usual path
            messages = [message for message in messages if _usable(message)]
        return messages

    def delivered(self, next_offsets: Mapping[Partition, int]) -> None:
        self._awaiting_redo.difference_update(next_offsets)

    def rewind(self, first_offsets: Mapping[Partition, int]) -> None:
        """Seek back to a failed batch's first offsets; a partition revoked meanwhile is left to its new
        owner, who resumes from the group's commit."""
        self._awaiting_redo.update(first_offsets)
        self._disturbed.update(first_offsets)
        for (topic, partition), offset in first_offsets.items():
            try:
                self.consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as error:
                log.info("not rewinding %s[%d]: %s", topic, partition, error)

    def exhausted(self, until_caught_up: bool) -> bool:
        raise NotImplementedError

    def replace_consumer(self, broken: ConsumerBroken) -> None:
        """Close the broken consumer and join again with a new one, or raise `broken` if none can be built.

        Seen after every broker of the cluster restarted: the group coordinator fenced the converter's static
        membership (`group.instance.id`) against its own rejoin, and librdkafka treats that as fatal. The
        consumer then fetches nothing, for ever, while the process looks healthy.
        """
        if self._new_consumer is None:
            raise broken
        log.error("the consumer cannot go on (%s): replacing it; it resumes at the group's commits", broken)
        try:
            self.consumer.close()
        except (KafkaException, RuntimeError) as error:
            log.info("closing the broken consumer: %s", error)
        self.consumer = self._new_consumer()
        self._awaiting_redo.clear()
        self.join()

    def lag(self) -> int | None:
        """Messages between the assigned partitions' positions and their ends (cached ends: no request)."""
        try:
            total = 0
            for tp in self.consumer.position(self.consumer.assignment()):
                _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
                if tp.offset >= 0 and high >= 0:
                    total += max(high - tp.offset, 0)
            return total
        except KafkaException:
            return None

    def close(self) -> None:
        self.consumer.close()


class GroupSource(ConsumerSource):
    """The source topic, read as a member of the converter's consumer group."""

    def __init__(
        self,
        consumer: Consumer,
        topic: str,
        new_consumer: NewConsumer | None = None,
        *,
        before_partitions_go: Callable[[bool], None] = lambda _lost: None,
    ) -> None:
        """`before_partitions_go(lost)` runs inside `consume()` before partitions are revoked (`lost=False`),
        or after they were lost to the group (`lost=True`: the session expired, they may already be another's)."""
        super().__init__(consumer, new_consumer)
        self.topic = topic
        self._before_partitions_go = before_partitions_go

    def join(self) -> None:
        self.consumer.subscribe(
            [self.topic],
            on_assign=lambda _c, parts: log.info("assigned %s", _describe(parts)),
            on_revoke=lambda _c, parts: self._partitions_go(parts, lost=False),
            on_lost=lambda _c, parts: self._partitions_go(parts, lost=True),
        )

    def _partitions_go(self, partitions: list[TopicPartition], *, lost: bool) -> None:
        log.log(
            logging.WARNING if lost else logging.INFO, "%s %s", "lost" if lost else "revoked", _describe(partitions)
        )
        if partitions:
            self._disturbed.update((tp.topic, tp.partition) for tp in partitions)
            self._before_partitions_go(lost)

    def exhausted(self, until_caught_up: bool) -> bool:
        """With `until_caught_up`: True when every assigned partition's position has reached its end, and
        no failed batch awaits its redo (a rewound partition's position says nothing until it is redone)."""
        if not until_caught_up:
            return False
        consumer = self.consumer
        assignment = consumer.assignment()
        if not assignment or self._awaiting_redo.intersection((tp.topic, tp.partition) for tp in assignment):
            return False
        for tp in assignment:
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            position = consumer.position([tp])[0].offset
            if position < 0:
                committed = consumer.committed([tp], timeout=10)[0].offset
                position = committed if committed >= 0 else low
            if position < high:
                return False
        return True


class RangeSource(ConsumerSource):
    """Exactly the given offset ranges, resuming where the group's commit left off."""

    def __init__(self, consumer: Consumer, ranges: Iterable[OffsetRange], new_consumer: NewConsumer | None = None):
        super().__init__(consumer, new_consumer)
        self.ranges = list(ranges)
        self.remaining: list[OffsetRange] = []
        self._ends: dict[Partition, int] = {}  # partition -> end offset still to reach

    def join(self) -> None:
        """Assign the ranges not yet committed past: a range partly committed (an earlier attempt of the same
        run that died) resumes at the committed offset; one wholly committed is skipped."""
        ranges = self.ranges
        committed = self.consumer.committed([TopicPartition(r.topic, r.partition) for r in ranges], timeout=30)
        self.remaining = []
        for r, tp in zip(ranges, committed, strict=True):
            start = max(r.start, tp.offset) if tp.offset != OFFSET_INVALID else r.start
            if start < r.end:
                self.remaining.append(OffsetRange(r.topic, r.partition, start, r.end))
        self._ends = {(r.topic, r.partition): r.end for r in self.remaining}
        self.consumer.assign([TopicPartition(r.topic, r.partition, r.start) for r in self.remaining])

    @property
    def finished(self) -> bool:
        return not self._ends

    def poll(self, budget: int, timeout: float) -> list[Message]:
        """As `ConsumerSource.poll`, without the messages past a range's end (a later range's work)."""
        ends = self._ends
        messages = super().poll(budget, timeout)
        return [m for m in messages if m.offset() < ends.get((m.topic(), m.partition()), -1)]  # type: ignore[operator,arg-type]

    def delivered(self, next_offsets: Mapping[Partition, int]) -> None:
        super().delivered(next_offsets)
        for where, offset in next_offsets.items():
            if where in self._ends and offset >= self._ends[where]:
                del self._ends[where]
                self.consumer.pause([TopicPartition(*where)])

    def exhausted(self, until_caught_up: bool = True) -> bool:
        """Close the ranges whose position passed their end without a message at `end - 1`; True when every
        range is read.

        On a transactional source the last offsets of a range can be commit markers, which are never
        delivered: the consumer's position, not the last message, tells that a range is read. Its end offset
        is then committed so that the group's progress matches the range.
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
        return self.finished


def _usable(message: Any) -> bool:
    """False for a consumer error delivered as a message (logged); `ConsumerBroken` for a fatal one.

    librdkafka reports a fatal error as an error event with code `_FATAL`, whose own `fatal()` is False.
    """
    error: KafkaError | None = message.error()
    if error is None:
        return True
    if error.fatal() or error.code() == KafkaError._FATAL:
        raise ConsumerBroken(error.str())
    log.warning("consumer: %s", error.str())
    return False


def _describe(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"
