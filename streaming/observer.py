"""What the converter tells an observer at its batch boundaries: the seam for metrics, never for control.

The converter calls an optional `ConverterObserver` between batches, never per message, so that watching it
costs nothing on the hot path. An observer only records: it must not raise, block or touch Kafka. Every
counter of `streaming.metrics` is fed from these calls (and from librdkafka's statistics), so what it
exports adds up to the converter's own `ConverterSummary`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class BatchTally:
    """One delivered batch: its output is durable and its offsets committed.

    `consumed == processed + sum(dead_letters.values())`. `oldest_timestamp_ms` is the source timestamp of
    the batch's first message (the oldest of its first partition), None when the broker gave none.
    """

    consumed: int
    processed: int
    dead_letters: Mapping[str, int] = field(default_factory=dict)
    bytes_in: int = 0
    oldest_timestamp_ms: int | None = None


class ConverterObserver(Protocol):
    def batch_delivered(self, tally: BatchTally, duration_seconds: float) -> None:
        """A batch committed (in exactly-once mode: its transaction too); `duration_seconds` from its first
        consumed message to its commit."""

    def batch_redone(self, reason: str) -> None:
        """A batch failed, nothing of it committed; it is rewound and will be redone."""

    def producer_replaced(self) -> None:
        """A broken or fenced producer was replaced by a new one with the same transactional id."""

    def consumer_replaced(self) -> None:
        """A consumer broken by a fatal error was replaced; the new one resumes at the group's commits."""

    def transaction_committed(self) -> None: ...

    def transaction_aborted(self) -> None: ...
