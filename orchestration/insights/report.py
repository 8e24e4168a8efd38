"""What the daily report says, as sections of text, tables and charts, before any markup. Pure.

The report of a day compares it with the previous day and with the same weekday a week before. Its
sections, in order: coverage (which hours it is made of), logins, unique users and devices, top locales,
device types, app versions, dead letters by reason, late events. `report_render` turns the same sections
into HTML and Markdown, so the two can never say different things.

A day with no stored hour gives a report that says so (its coverage section) and nothing else; a day
whose hours counted nothing gives the full report with zeros. Unique counts that cannot be merged (hours
stored without their ids, see `insights.distinct_counts`) are shown as unknown, with the hours that lack them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from orchestration.insights.aggregates import version_key
from orchestration.insights.comparison import NO_DATA, compare_breakdown, count_change, rate_change
from orchestration.insights.rollup import DayInsights

COVERAGE = "Coverage"
LOGINS = "Logins"
UNIQUES = "Unique users and devices"
LOCALES = "Top locales"
DEVICE_TYPES = "Device types"
APP_VERSIONS = "App versions"
DEAD_LETTERS = "Dead letters by reason"
LATE_EVENTS = "Late events"
SECTION_TITLES = (COVERAGE, LOGINS, UNIQUES, LOCALES, DEVICE_TYPES, APP_VERSIONS, DEAD_LETTERS, LATE_EVENTS)

COMPARED = ("previous day", "change", "same day last week", "change")


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Chart:
    """A PNG and the text that stands for it."""

    alt: str
    png: bytes


@dataclass(frozen=True)
class Section:
    title: str
    paragraphs: tuple[str, ...] = ()
    table: Table | None = None
    chart: Chart | None = None


@dataclass(frozen=True)
class DailyCharts:
    logins_per_hour: Chart | None = None
    dead_letters_per_hour: Chart | None = None


@dataclass(frozen=True)
class DailyReport:
    """The day and the two days it is compared with (each possibly without data)."""

    today: DayInsights
    previous_day: DayInsights
    last_week: DayInsights

    @property
    def title(self) -> str:
        return f"Login insights for {self.today.day.isoformat()} ({self.today.day:%A}, UTC)"


def hour_ranges(keys: Sequence[str]) -> str:
    """Hour partition keys of one day as compact ranges: "00:00-05:00, 13:00" (keys end in HH:MM)."""
    hours = sorted(int(key[-5:-3]) for key in keys)
    ranges: list[tuple[int, int]] = []
    for hour in hours:
        if ranges and hour == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], hour)
        else:
            ranges.append((hour, hour))
    return ", ".join(f"{a:02d}:00" if a == b else f"{a:02d}:00-{b:02d}:00" for a, b in ranges)


def completeness_problems(today: DayInsights) -> list[str]:
    """Why the report of `today` is not complete; empty when all 24 hours and their unique ids are there."""
    problems = []
    if today.hours_missing:
        problems.append(f"{len(today.hours_missing)} of 24 hours not materialized: {hour_ranges(today.hours_missing)}")
    if today.uniques.hours_without_ids:
        problems.append(
            f"unique users and devices unknown: hours stored without their ids: "
            f"{hour_ranges(today.uniques.hours_without_ids)}"
        )
    return problems


def build_sections(report: DailyReport, charts: DailyCharts, top_locales: int = 10) -> list[Section]:
    if top_locales < 1:
        raise ValueError("top_locales must be at least 1")
    today = report.today
    coverage = _coverage(today, report.previous_day, report.last_week)
    if not today.has_data:
        return [coverage]
    previous = report.previous_day if report.previous_day.has_data else None
    last_week = report.last_week if report.last_week.has_data else None
    return [
        coverage,
        _logins(today, previous, last_week, charts.logins_per_hour),
        _uniques(today, previous, last_week),
        _breakdown(LOCALES, "locale", today.locales, previous, last_week, lambda d: d.locales, limit=top_locales),
        _breakdown(DEVICE_TYPES, "device type", today.device_types, previous, last_week, lambda d: d.device_types),
        _breakdown(
            APP_VERSIONS,
            "app version",
            today.app_versions,
            previous,
            last_week,
            lambda d: d.app_versions,
            order=sorted(today.app_versions, key=version_key, reverse=True),
            note="Logins per app version, newest version first.",
        ),
        _dead_letters(today, previous, last_week, charts.dead_letters_per_hour),
        _late_events(today, previous, last_week),
    ]


def _coverage(today: DayInsights, previous_day: DayInsights, last_week: DayInsights) -> Section:
    if not today.has_data:
        return Section(
            COVERAGE,
            (
                f"No data for {today.day.isoformat()}: none of its 24 hourly insights is stored "
                "(the hours were not materialized, or not yet).",
            ),
        )
    paragraphs = [f"Made of {len(today.hours_present)} of the day's 24 hourly insights."]
    paragraphs += [f"Incomplete: {problem}." for problem in completeness_problems(today)]
    if not today.logins and not today.dead_letters:
        paragraphs.append("No logins and no dead letters were recorded in the stored hours.")
    paragraphs.append(
        f"Compared with the previous day, {_day_coverage(previous_day)}, and the same day last week, "
        f"{_day_coverage(last_week)}: a change against a day with fewer hours stored says little."
    )
    return Section(COVERAGE, tuple(paragraphs))


def _day_coverage(day: DayInsights) -> str:
    hours = len(day.hours_present)
    return f"{day.day.isoformat()} ({'no data' if not hours else f'{hours} of 24 hours'})"


def _row(
    label: str, now: str, previous: str, change_previous: str, last_week: str, change_last: str
) -> tuple[str, ...]:
    return (label, now, previous, change_previous, last_week, change_last)


def _count(value: int | None) -> str:
    return NO_DATA if value is None else f"{value:,}"


def _pct(rate: float | None) -> str:
    return NO_DATA if rate is None else f"{rate:.2%}"


def _count_row(label: str, now: int | None, previous: int | None, last_week: int | None) -> tuple[str, ...]:
    return _row(
        label,
        _count(now),
        _count(previous),
        count_change(now, previous),
        _count(last_week),
        count_change(now, last_week),
    )


def _logins(
    today: DayInsights, previous: DayInsights | None, last_week: DayInsights | None, chart: Chart | None
) -> Section:
    busiest = max(range(24), key=lambda h: (today.logins_by_hour[h], -h))
    table = Table(
        ("", "day", *COMPARED),
        (
            _figure_row("logins", lambda d: d.logins, today, previous, last_week),
            _figure_row("messages (logins + dead letters)", lambda d: d.messages, today, previous, last_week),
        ),
    )
    text = f"Busiest hour: {busiest:02d}:00 with {today.logins_by_hour[busiest]:,} logins."
    return Section(LOGINS, (text,), table, chart)


def _uniques(today: DayInsights, previous: DayInsights | None, last_week: DayInsights | None) -> Section:
    table = Table(
        ("", "day", *COMPARED),
        (
            _figure_row("unique users", lambda d: d.uniques.users, today, previous, last_week),
            _figure_row("unique devices", lambda d: d.uniques.devices, today, previous, last_week),
        ),
    )
    paragraphs = ["Distinct over the whole day: a user seen in several hours counts once."]
    if not today.uniques.exact:
        paragraphs.append("Estimated from the hours' sketches (more distinct ids than they keep exactly).")
    return Section(UNIQUES, tuple(paragraphs), table)


def _breakdown(
    title: str,
    label: str,
    today: Mapping[str, int],
    previous: DayInsights | None,
    last_week: DayInsights | None,
    of: Callable[[DayInsights], Mapping[str, int]],
    limit: int | None = None,
    order: Sequence[str] | None = None,
    note: str | None = None,
) -> Section:
    compared = compare_breakdown(
        today, None if previous is None else of(previous), None if last_week is None else of(last_week), order
    )
    shown = compared if limit is None else compared[:limit]
    rows = tuple(
        (
            v.value,
            f"{v.count:,}",
            f"{v.share:.1%}",
            _count(v.previous_day),
            v.change_previous_day,
            _count(v.last_week),
            v.change_last_week,
        )
        for v in shown
    )
    paragraphs = [note] if note else []
    if limit is not None and len(compared) > limit:
        paragraphs.append(f"The {limit} most frequent of {len(compared)} {label}s.")
    if not rows:
        paragraphs.append("None recorded.")
    return Section(title, tuple(paragraphs), Table((label, "logins", "share", *COMPARED), rows))


def _dead_letters(
    today: DayInsights, previous: DayInsights | None, last_week: DayInsights | None, chart: Chart | None
) -> Section:
    def rate(day: DayInsights, reason: str | None) -> float:
        """Of all reasons (`None`) or of one, against all messages of the day."""
        if reason is None:
            return day.dead_letter_rate
        return day.dead_letter_reasons.get(reason, 0) / day.messages if day.messages else 0.0

    def row(label: str, count: int, reason: str | None) -> tuple[str, ...]:
        now = rate(today, reason)
        before = None if previous is None else rate(previous, reason)
        week = None if last_week is None else rate(last_week, reason)
        return (
            label,
            f"{count:,}",
            _pct(now),
            _pct(before),
            rate_change(now, before),
            _pct(week),
            rate_change(now, week),
        )

    reasons = sorted(today.dead_letter_reasons, key=lambda r: (-today.dead_letter_reasons[r], r))
    rows = [row("all reasons", today.dead_letters, None)]
    rows += [row(reason, today.dead_letter_reasons[reason], reason) for reason in reasons]
    text = (
        "Rate: dead letters of the reason / all messages of the day (logins + dead letters); "
        "changes in percentage points."
    )
    table = Table(
        ("reason", "dead letters", "rate", "previous day", "change", "same day last week", "change"), tuple(rows)
    )
    return Section(DEAD_LETTERS, (text,), table, chart)


def _late_events(today: DayInsights, previous: DayInsights | None, last_week: DayInsights | None) -> Section:
    def oldest(day: DayInsights | None) -> str:
        if day is None:
            return NO_DATA
        return "-" if day.oldest_late_event is None else f"{day.oldest_late_event:%Y-%m-%d %H:%M:%S}"

    def delay(day: DayInsights | None) -> str:
        if day is None:
            return NO_DATA
        return "-" if day.max_late_delay_ms is None else _duration(day.max_late_delay_ms)

    table = Table(
        ("", "day", *COMPARED),
        (
            _figure_row("late records", lambda d: d.late_records, today, previous, last_week),
            _row("oldest late event (UTC)", oldest(today), oldest(previous), "", oldest(last_week), ""),
            _row("largest delay", delay(today), delay(previous), "", delay(last_week), ""),
        ),
    )
    text = (
        "Records processed after their own hour had closed (its end + the slack), counted in the hour they "
        "arrived in rather than in their event hour."
    )
    return Section(LATE_EVENTS, (text,), table)


def _duration(ms: int) -> str:
    delta = timedelta(milliseconds=ms)
    if delta >= timedelta(days=2):
        return f"{delta.days:,} days"
    hours, rest = divmod(int(delta.total_seconds()), 3600)
    return f"{hours} h {rest // 60:02d} min"


def _figure_row(
    label: str,
    of: Callable[[DayInsights], int | None],
    today: DayInsights,
    previous: DayInsights | None,
    last_week: DayInsights | None,
) -> tuple[str, ...]:
    """One figure of the day against the two compared days (`None`: a day without data)."""
    return _count_row(
        label, of(today), None if previous is None else of(previous), None if last_week is None else of(last_week)
    )


def generated_line(now: datetime) -> str:
    return f"Generated {now:%Y-%m-%d %H:%M} UTC from the hourly insights store."
