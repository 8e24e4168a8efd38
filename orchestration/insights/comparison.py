"""How a figure of the day compares with the same figure on an earlier day. Pure.

A change is shown as the difference and its relative size ("+12 (+5.0%)"); against a day that had none
of something it is "new", and against a day with no stored insights at all it is "n/a": no data is not
zero, and a report that called it +100 % would mislead its reader. Rates change in percentage points.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

NO_DATA = "n/a"


def count_change(now: int | None, before: int | None) -> str:
    """`now` against `before`; `None` on either side (not known) gives "n/a"."""
    if now is None or before is None:
        return NO_DATA
    if before == 0:
        return "0" if now == 0 else "new"
    diff = now - before
    return f"{diff:+,} ({diff / before:+.1%})"


def rate_change(now: float, before: float | None) -> str:
    """A change of a rate (0..1), in percentage points."""
    if before is None:
        return NO_DATA
    return f"{(now - before) * 100:+.2f} pp"


@dataclass(frozen=True)
class ComparedValue:
    """One value of a breakdown on the day, with its count on the two days it is compared with."""

    value: str
    count: int
    share: float
    previous_day: int | None
    last_week: int | None

    @property
    def change_previous_day(self) -> str:
        return count_change(self.count, self.previous_day)

    @property
    def change_last_week(self) -> str:
        return count_change(self.count, self.last_week)


def compare_breakdown(
    today: Mapping[str, int],
    previous_day: Mapping[str, int] | None,
    last_week: Mapping[str, int] | None,
    order: Sequence[str] | None = None,
) -> list[ComparedValue]:
    """Every value seen on the day, most frequent first unless `order` is given (values missing from it
    follow, most frequent first). A day given as `None` had no data: its counts are unknown, not zero."""
    total = sum(today.values())
    by_count = sorted(today, key=lambda value: (-today[value], value))
    if order is not None:
        listed = [value for value in order if value in today]
        by_count = listed + [value for value in by_count if value not in set(listed)]
    return [
        ComparedValue(
            value=value,
            count=today[value],
            share=today[value] / total if total else 0.0,
            previous_day=None if previous_day is None else previous_day.get(value, 0),
            last_week=None if last_week is None else last_week.get(value, 0),
        )
        for value in by_count
    ]
