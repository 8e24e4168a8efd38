"""At-least-once's offset bookkeeping for asynchronous commits: what is delivered, and what is known committed.

Pure: no I/O. `streaming.delivery.at_least_once.AtLeastOnce` feeds it the offsets of each delivered batch and the
results
of its commits (the consumer's `on_commit` callback), and asks it what to commit:

- `due()`: the offsets to send in the next asynchronous commit: per partition, the latest delivered offset,
  unless a commit of it (or of a later one) is confirmed. A partition stays due until a commit of its latest
  offset is confirmed, so the offsets of a failed (or unanswered) commit are re-committed by the next one.
  A repeat of an offset in flight is harmless: the group coordinator keeps the last one it receives, and
  librdkafka sends a consumer's commits in order on one connection;
- `everything()`: what a synchronous commit sends before partitions are revoked, at a stop and before close:
  every partition delivered since the last synchronous commit, confirmed or not, so that no asynchronous
  commit answered late or retried by librdkafka can leave an older offset behind;
- `forget()`: partitions lost (or a consumer replaced): their offsets can no longer be committed by us; their
  next owner resumes at the group's commit (at-least-once: duplicates, never loss).

Offsets are kept as the `TopicPartition`s the batches committed, with whatever metadata they carry.
"""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import TopicPartition

Partition = tuple[str, int]


class OutstandingOffsets:
    """Per partition, the latest offset delivered and the latest one known committed; see the module docstring."""

    def __init__(self) -> None:
        self._delivered: dict[Partition, TopicPartition] = {}
        self._confirmed: dict[Partition, int] = {}

    def delivered(self, offsets: Iterable[TopicPartition]) -> None:
        """Note offsets whose batch's output is acknowledged: they are to be committed."""
        for tp in offsets:
            self._delivered[(tp.topic, tp.partition)] = tp

    def due(self) -> list[TopicPartition]:
        """The offsets not known committed: what the next asynchronous commit sends."""
        confirmed = self._confirmed
        return [tp for where, tp in self._delivered.items() if tp.offset > confirmed.get(where, -1)]

    def everything(self) -> list[TopicPartition]:
        """Every partition delivered since the last synchronous commit, with its latest offset."""
        return list(self._delivered.values())

    def confirmed(self, offsets: Iterable[TopicPartition]) -> None:
        """A commit of `offsets` succeeded (partitions whose own `error` is set did not)."""
        confirmed = self._confirmed
        for tp in offsets:
            where = (tp.topic, tp.partition)
            if tp.error is None and tp.offset > confirmed.get(where, -1):
                confirmed[where] = tp.offset

    def committed_synchronously(self, offsets: Iterable[TopicPartition]) -> None:
        """`offsets` (what `everything()` gave) are committed: nothing before them is outstanding any more."""
        self.confirmed(offsets)
        for tp in offsets:
            where = (tp.topic, tp.partition)
            if self._delivered.get(where) is tp:
                del self._delivered[where]

    def forget(self) -> None:
        """Drop everything: the partitions are no longer ours to commit (lost, or the consumer replaced)."""
        self._delivered.clear()
        self._confirmed.clear()

    def __bool__(self) -> bool:
        """True while some partition was delivered since the last synchronous commit."""
        return bool(self._delivered)
