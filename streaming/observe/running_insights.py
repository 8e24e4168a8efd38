"""Running tallies of what the converter has seen, logged periodically as the seed did.

The seed logged the most popular device_type; we keep that and a little more, in memory bounded
by the number of distinct values (device types, locales and reason codes are small closed sets in
practice; tallies are capped anyway so a hostile stream cannot grow them without bound).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

MAX_DISTINCT = 1000


def _bounded_add(counter: Counter[str], value: str) -> None:
    if value in counter or len(counter) < MAX_DISTINCT:
        counter[value] += 1
    else:
        counter["(other)"] += 1


def _bounded_merge(mine: Counter[str], theirs: Counter[str]) -> None:
    """`_bounded_add` of each of `theirs`' values, `count` times at once."""
    for value, count in theirs.items():
        if value in mine or len(mine) < MAX_DISTINCT:
            mine[value] += count
        else:
            mine["(other)"] += count


@dataclass
class RunningInsights:
    processed: int = 0
    dead_lettered: int = 0
    device_types: Counter[str] = field(default_factory=Counter)
    locales: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)

    def add_record(self, device_type: str, locale: str) -> None:
        self.processed += 1
        _bounded_add(self.device_types, device_type)
        _bounded_add(self.locales, locale)

    def add_records(self, device_types: list[str], locales: list[str]) -> None:
        """Count a batch's records at once (`device_types[i]`, `locales[i]`: the i-th record's), as
        `add_record` would one by one: `Counter` counts a list in C, without a Python call per record."""
        self.processed += len(device_types)
        _bounded_merge(self.device_types, Counter(device_types))
        _bounded_merge(self.locales, Counter(locales))

    def add_rejection(self, reason: str) -> None:
        self.dead_lettered += 1
        _bounded_add(self.reasons, reason)

    def merge(self, other: RunningInsights) -> None:
        """Add a finished batch's tallies (a batch that is redone must not count twice)."""
        self.processed += other.processed
        self.dead_lettered += other.dead_lettered
        _bounded_merge(self.device_types, other.device_types)
        _bounded_merge(self.locales, other.locales)
        _bounded_merge(self.reasons, other.reasons)

    def summary(self) -> str:
        total = self.processed + self.dead_lettered
        top_device = self.device_types.most_common(1)
        top_locales = ", ".join(f"{k} {v}" for k, v in self.locales.most_common(3))
        reasons = ", ".join(f"{k} {v}" for k, v in self.reasons.most_common(3))
        return (
            f"seen {total}: processed {self.processed}, dead letters {self.dead_lettered}"
            f" ({100 * self.dead_lettered / total if total else 0:.1f}%)"
            f"; most popular device_type: {top_device[0][0] if top_device else '-'}"
            f"; top locales: {top_locales or '-'}; top reasons: {reasons or '-'}"
        )
