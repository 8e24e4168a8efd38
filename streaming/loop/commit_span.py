"""The batches sent since the last commit, which commit together or are redone together: a `CommitSpan`.

Exactly-once keeps one transaction open over several batches (`KDP_COMMIT_INTERVAL_MS`); at-least-once commits
every batch, a span of one. Either way the loop needs the same bookkeeping, kept here, without I/O:

- where a failed span is redone from: per partition, the first offset of the span's *first* batch that read
  it (not of its last batch: every batch of an aborted transaction is undone);
- what a committed span commits: per partition, the offset after the last message read;
- what is reported once it commits: each batch's counts and timings (`BatchReport`), never before, so that a
  batch undone by an abort is counted once, when its redo commits.

A span is due to commit when its interval has elapsed since its first batch, or when it holds `max_messages`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka import TopicPartition

from streaming.loop.router import RoutedBatch
from streaming.observe.observer import BatchReport, Partition


@dataclass(frozen=True, slots=True)
class SentBatch:
    """A batch sent in the span, waiting for the span's commit to be counted and reported."""

    batch: RoutedBatch
    """Its bookkeeping (`RoutedBatch.sent`): the outputs are with the producer by then."""
    started: float
    """`time.monotonic()` when the batch was routed."""
    careful: bool

    def report(self, finished: float) -> BatchReport:
        """The batch as delivered, `finished` (`time.monotonic()`) being when its span committed."""
        b = self.batch
        return BatchReport(
            b.consumed, b.bytes_in, b.tallies, b.processed_at_ms, b.oldest_source_ms, b.newest_source_ms,
            finished - self.started, b.next_offsets, self.careful, b.lanes,
        )  # fmt: skip


@dataclass(slots=True)
class CommitSpan:
    """Batches sent since the last commit; see the module docstring. `due_at` is on the loop's timer.

    It keeps each batch's bookkeeping until the commit, where the summary counts it (`RoutedBatch.sent`: no
    output and no message, which are in the producer's own queue by then)."""

    due_at: float
    max_messages: int
    first_offsets: dict[Partition, int] = field(default_factory=dict)
    next_offsets: dict[Partition, int] = field(default_factory=dict)
    sent: list[SentBatch] = field(default_factory=list)
    consumed: int = 0

    def add(self, batch: RoutedBatch, started: float, careful: bool) -> None:
        """Note a batch whose outputs were sent in this span."""
        for where, offset in batch.first_offsets.items():
            self.first_offsets.setdefault(where, offset)
        self.next_offsets.update(batch.next_offsets)
        self.consumed += batch.consumed
        self.sent.append(SentBatch(batch.sent(), started, careful))

    def redo_from(self, failed: RoutedBatch | None = None) -> dict[Partition, int]:
        """Where to redo from when the span fails, `failed` being a batch that failed before it was added: the
        span's first offsets, and the failed batch's own for partitions the span had not read yet."""
        return {**(failed.first_offsets if failed else {}), **self.first_offsets}

    def due(self, now: float) -> bool:
        return now >= self.due_at or self.consumed >= self.max_messages

    def commit_offsets(self) -> list[TopicPartition]:
        """Per partition, what the last batch that read it commits (`RoutedBatch.commit_offsets`, with whatever
        metadata a batch attaches, as a replay's progress)."""
        latest: dict[Partition, TopicPartition] = {}
        for sent in self.sent:
            latest.update(((tp.topic, tp.partition), tp) for tp in sent.batch.commit_offsets())
        return list(latest.values())
