"""A replay selection from text: what `kdp replay`'s flags and the Dagster job's config say, in one place.

Both front ends take the same words, so they parse them here and hand over a `ReplaySelection`:

- reasons: reason codes (`streaming.records.Reason` values), e.g. `rejected_by_broker`;
- source partitions: whole numbers;
- source offsets: `START-END`, a half-open range `[START, END)` of source offsets;
- failure times: an ISO 8601 time (`2026-12-01T03:00:00Z`; a time without a zone is UTC), epoch
  milliseconds, or a duration before now (`30m`, `2h`, `7d`, as `KDP_MAX_EVENT_AGE` writes them).

Every mistake raises `ReplayError` naming the value and what is accepted; `ReplaySelection.validate` then
refuses what can only select nothing (an unknown reason, a window in the future, ...).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from streaming.replay.selection import DEFAULT_MAX_REPLAYS, ReplayError, ReplaySelection
from streaming.settings import DURATION_UNITS_MS


def selection_from_text(
    *,
    now_ms: int,
    reasons: Iterable[str] = (),
    source_partitions: Iterable[int] = (),
    source_offsets: str | None = None,
    failed_since: str | None = None,
    failed_until: str | None = None,
    limit: int | None = None,
    max_replays: int = DEFAULT_MAX_REPLAYS,
) -> ReplaySelection:
    """The validated selection these words describe; empty iterables and None mean "any"."""
    reason_set = frozenset(r.strip() for r in reasons)
    partition_set = frozenset(source_partitions)
    selection = ReplaySelection(
        reasons=reason_set or None,
        source_partitions=partition_set or None,
        source_offsets=parse_offset_range(source_offsets) if source_offsets else None,
        failed_since_ms=parse_time_ms(failed_since, now_ms) if failed_since else None,
        failed_until_ms=parse_time_ms(failed_until, now_ms) if failed_until else None,
        limit=limit,
        max_replays=max_replays,
    )
    selection.validate(now_ms)
    return selection


def parse_offset_range(text: str) -> tuple[int, int]:
    """`START-END` -> (START, END), source offsets `[START, END)`."""
    start, dash, end = text.strip().partition("-")
    if not dash or not start.isdigit() or not end.isdigit():
        raise ReplayError(f"source offsets {text!r}: give START-END (END excluded), e.g. 1000-2000")
    return int(start), int(end)


def parse_time_ms(text: str, now_ms: int) -> int:
    """An ISO 8601 time, epoch milliseconds, or a duration before `now_ms`, as epoch milliseconds."""
    raw = text.strip()
    if raw.isdigit():
        return int(raw)
    number, unit = raw[:-1], raw[-1:].lower()
    if unit in DURATION_UNITS_MS and number.isdigit():
        return now_ms - int(number) * DURATION_UNITS_MS[unit]
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ReplayError(
            f"time {text!r}: give an ISO 8601 time (2026-12-01T03:00:00Z), epoch milliseconds, "
            f"or a duration before now ({', '.join('1' + u for u in DURATION_UNITS_MS)})"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
