"""One UTC day of insights, rolled up from the hourly rows of the store (`insights.store`).

A day is the 24 hour partitions `YYYY-MM-DD-00:00` .. `YYYY-MM-DD-23:00`. The roll-up reads what the store
holds for them, whatever is there: hours never materialized are listed in `hours_missing`, not guessed,
so a report can say how much of the day it covers and the completeness check can name the gaps.

How each figure merges across hours:
- counts (logins, dead letters, late records, every breakdown: device type, locale, app version, reason)
  add up, because each record is counted in exactly one hour (`insights.placement`);
- rates are recomputed from the summed counts (dead letters / all messages of the day), never averaged;
- the oldest late event is the minimum, the largest delay the maximum;
- distinct users and devices are merged by `insights.distinct_counts.merged_counts`, never summed.

App versions are rolled up by logins. The hourly "devices on each version at their latest login" does not
merge (a device's latest login of the day is in one hour only), so the day does not show it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb

from orchestration.insights import distinct_counts, store
from orchestration.insights.distinct_counts import UniqueTotals

HOUR_KEY_FORMAT = "%Y-%m-%d-%H:%M"
"""The key of an hour partition (Dagster's hourly partitions; a test checks they agree)."""
HOURS_PER_DAY = 24


def hour_keys(day: date) -> list[str]:
    """The partition keys of the 24 UTC hours of `day`, in order."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return [(midnight + timedelta(hours=h)).strftime(HOUR_KEY_FORMAT) for h in range(HOURS_PER_DAY)]


@dataclass(frozen=True)
class DayInsights:
    """What the stored hours of `day` add up to. Every breakdown sums to `logins`."""

    day: date
    hours_present: tuple[str, ...]
    logins: int = 0
    dead_letters: int = 0
    uniques: UniqueTotals = UniqueTotals(0, 0, ())
    device_types: Mapping[str, int] = field(default_factory=dict)
    locales: Mapping[str, int] = field(default_factory=dict)
    app_versions: Mapping[str, int] = field(default_factory=dict)
    dead_letter_reasons: Mapping[str, int] = field(default_factory=dict)
    late_records: int = 0
    oldest_late_event: datetime | None = None
    """UTC, naive (as stored)."""
    max_late_delay_ms: int | None = None
    logins_by_hour: tuple[int, ...] = (0,) * HOURS_PER_DAY
    dead_letters_by_hour: tuple[int, ...] = (0,) * HOURS_PER_DAY

    @property
    def hours_missing(self) -> list[str]:
        present = set(self.hours_present)
        return [key for key in hour_keys(self.day) if key not in present]

    @property
    def has_data(self) -> bool:
        """At least one hour of the day was materialized (it may have counted nothing)."""
        return bool(self.hours_present)

    @property
    def messages(self) -> int:
        """Everything the converter saw: records delivered and dead letters."""
        return self.logins + self.dead_letters

    @property
    def dead_letter_rate(self) -> float:
        return self.dead_letters / self.messages if self.messages else 0.0


def load_day(connection: duckdb.DuckDBPyConnection, day: date) -> DayInsights:
    """Roll up the stored hours of `day` (a day with none gives an empty `DayInsights`, not an error)."""
    keys = hour_keys(day)
    marks = ", ".join("?" * len(keys))

    def rows(sql: str) -> list[tuple[object, ...]]:
        return connection.execute(sql.format(marks=marks), keys).fetchall()

    summary = rows("SELECT partition_key, records, dead_letters FROM window_summary WHERE partition_key IN ({marks})")
    if not summary:
        return DayInsights(day=day, hours_present=())
    index = {key: hour for hour, key in enumerate(keys)}
    logins_by_hour, dead_by_hour = [0] * HOURS_PER_DAY, [0] * HOURS_PER_DAY
    for key, records, dead in summary:
        logins_by_hour[index[str(key)]] = int(records)  # type: ignore[call-overload]
        dead_by_hour[index[str(key)]] = int(dead)  # type: ignore[call-overload]
    present = tuple(sorted(str(key) for key, _, _ in summary))

    def breakdown(table: str, column: str, count: str) -> dict[str, int]:
        return {
            str(value): int(total)  # type: ignore[call-overload]
            for value, total in rows(
                f"SELECT {column}, sum({count}) FROM {table} WHERE partition_key IN ({{marks}}) GROUP BY 1"
            )
        }

    [(late, oldest, max_delay)] = rows(
        "SELECT coalesce(sum(late_records), 0), min(oldest_event), max(max_delay_ms) FROM late_events "
        "WHERE partition_key IN ({marks})"
    )
    return DayInsights(
        day=day,
        hours_present=present,
        logins=sum(logins_by_hour),
        dead_letters=sum(dead_by_hour),
        uniques=distinct_counts.merged_counts(connection, present),
        device_types=breakdown("device_types", "device_type", "records"),
        locales=breakdown("locales", "locale", "records"),
        app_versions=breakdown("app_versions", "app_version", "logins"),
        dead_letter_reasons=breakdown("dead_letter_reasons", "reason", "dead_letters"),
        late_records=int(late),  # type: ignore[call-overload]
        oldest_late_event=oldest if isinstance(oldest, datetime) else None,
        max_late_delay_ms=None if max_delay is None else int(max_delay),  # type: ignore[call-overload]
        logins_by_hour=tuple(logins_by_hour),
        dead_letters_by_hour=tuple(dead_by_hour),
    )


def load_days(database: Path, days: Sequence[date]) -> list[DayInsights]:
    """`load_day` for each of `days`, through one connection to the store."""
    connection = store.connect(database)
    try:
        return [load_day(connection, day) for day in days]
    finally:
        connection.close()
