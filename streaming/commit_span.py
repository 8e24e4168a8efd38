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

from streaming.observer import BatchReport, Partition
from streaming.router import RoutedBatch
from streaming.running_insights import RunningInsights


@dataclass(frozen=True, slots=True)
class SentBatch:
    """A batch sent in the span, waiting for the span's commit to be reported."""

    consumed: int
    bytes_in: int
    tallies: RunningInsights
    processed_at_ms: int
    oldest_source_ms: int | None
    newest_source_ms: int | None
    started: float
    """`time.monotonic()` when the batch was routed."""
    next_offsets: dict[Partition, int]
    careful: bool


@dataclass(slots=True)
class CommitSpan:
    """Batches sent since the last commit; see the module docstring. `due_at` is on the loop's timer."""

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
        self.sent.append(
            SentBatch(
                batch.consumed, batch.bytes_in, batch.tallies, batch.processed_at_ms, batch.oldest_source_ms,
                batch.newest_source_ms, started, batch.next_offsets, careful,
            )
        )  # fmt: skip

    def redo_from(self, failed: RoutedBatch | None = None) -> dict[Partition, int]:
        """Where to redo from when the span fails, `failed` being a batch that failed before it was added: the
        span's first offsets, and the failed batch's own for partitions the span had not read yet."""
        return {**(failed.first_offsets if failed else {}), **self.first_offsets}

    def due(self, now: float) -> bool:
        return now >= self.due_at or self.consumed >= self.max_messages

    def commit_offsets(self) -> list[TopicPartition]:
        return [TopicPartition(topic, partition, offset) for (topic, partition), offset in self.next_offsets.items()]

    def reports(self, finished: float) -> list[BatchReport]:
        """The span's batches as delivered, `finished` (`time.monotonic()`) being when the span committed."""
        return [
            BatchReport(
                b.consumed, b.bytes_in, b.tallies, b.processed_at_ms, b.oldest_source_ms, b.newest_source_ms,
                finished - b.started, b.next_offsets, b.careful,
            )
            for b in self.sent
        ]  # fmt: skip
