"""An offset range of one partition: the unit of work the Dagster sensor hands to a run.

Ranges, not payloads, travel in run config: a run reads its range from Kafka itself, so run
storage stays small and a redone run reads exactly the same messages.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class OffsetRange:
    """Offsets `start` (inclusive) to `end` (exclusive) of `topic`/`partition`."""

    topic: str
    partition: int
    start: int
    end: int

    def __post_init__(self) -> None:
        if self.partition < 0 or self.start < 0 or self.end < self.start:
            raise ValueError(f"not an offset range: {self}")

    @property
    def key(self) -> str:
        """`topic:partition:start-end`: unique per range, used as the Dagster run key."""
        return f"{self.topic}:{self.partition}:{self.start}-{self.end}"

    @classmethod
    def parse(cls, key: str) -> OffsetRange:
        topic, partition, span = key.rsplit(":", 2)
        start, end = span.split("-")
        return cls(topic, int(partition), int(start), int(end))

    def __len__(self) -> int:
        return self.end - self.start
