"""Which offset ranges the conversion sensor should request: a pure function of offsets.

Rules, and why:

* a partition's pending work starts at the group's committed offset (or the partition's low
  watermark when the group never committed) and ends at the partition's high watermark;
* at most one range per partition per tick, cut at `max_range` offsets: two runs of the same
  partition in flight could commit out of order and move the group's offset backwards;
* partitions with a run still in flight get nothing new until it ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Set

from streaming.offset_ranges import OffsetRange


def pending_ranges(
    topic: str,
    high_watermarks: Mapping[int, int],
    low_watermarks: Mapping[int, int],
    committed: Mapping[int, int | None],
    in_flight: Set[int],
    max_range: int,
) -> list[OffsetRange]:
    """One range per idle partition with unconverted messages, in partition order."""
    if max_range < 1:
        raise ValueError("max_range must be at least 1")
    ranges = []
    for partition in sorted(high_watermarks):
        if partition in in_flight:
            continue
        start = committed.get(partition)
        if start is None or start < low_watermarks.get(partition, 0):
            start = low_watermarks.get(partition, 0)  # never committed, or retention passed it
        end = min(high_watermarks[partition], start + max_range)
        if end > start:
            ranges.append(OffsetRange(topic, partition, start, end))
    return ranges


def total_lag(
    high_watermarks: Mapping[int, int], low_watermarks: Mapping[int, int], committed: Mapping[int, int | None]
) -> int:
    """Messages not yet converted, summed over partitions."""
    lag = 0
    for partition, high in high_watermarks.items():
        start = committed.get(partition)
        if start is None or start < low_watermarks.get(partition, 0):
            start = low_watermarks.get(partition, 0)
        lag += max(high - start, 0)
    return lag
