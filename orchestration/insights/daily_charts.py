"""The charts of the daily report, as PNG bytes: logins per hour against the days compared with, and dead
letters per hour by reason.

Drawn like `charts` (matplotlib's Agg backend on a bare Figure, imported when drawn) and kept small, since
they are embedded in the HTML file and in the Markdown preview of the materialization. Hours not stored
are drawn as gaps (no bar, no point), not as zeros, so a missing hour cannot pass for a quiet one.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from orchestration.insights.report import Chart, DailyCharts, DailyReport
from orchestration.insights.rollup import DayInsights, hour_keys

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

TODAY_COLOR, PREVIOUS_COLOR, WEEK_COLOR = "#3b75af", "#e1812c", "#7f7f7f"


def draw_daily_charts(report: DailyReport) -> DailyCharts:
    """Both charts of a day with data; none for a day without."""
    if not report.today.has_data:
        return DailyCharts()
    return DailyCharts(logins_per_hour=_logins_per_hour(report), dead_letters_per_hour=_dead_letters_per_hour(report))


def _stored(day: DayInsights, values: Sequence[float]) -> list[float]:
    """Per hour, the value if the hour is stored, else NaN (a gap)."""
    present = set(day.hours_present)
    return [float(v) if key in present else float("nan") for key, v in zip(hour_keys(day.day), values, strict=True)]


def _logins_per_hour(report: DailyReport) -> Chart:
    figure, axes = _figure()
    hours = range(24)
    today = report.today
    axes.bar(hours, _stored(today, today.logins_by_hour), width=0.8, color=TODAY_COLOR, label=today.day.isoformat())
    for day, color, label in (
        (report.previous_day, PREVIOUS_COLOR, "previous day"),
        (report.last_week, WEEK_COLOR, "same day last week"),
    ):
        if day.has_data:
            axes.plot(hours, _stored(day, day.logins_by_hour), marker="o", markersize=3, color=color, label=label)
    _hours_axis(axes, today)
    axes.set_ylabel("logins")
    axes.set_title(f"Logins per hour, {today.day.isoformat()}")
    figure.legend(loc="outside lower center", ncols=4, fontsize="small", frameon=False)
    return Chart(f"Logins per hour on {today.day.isoformat()}", _png(figure))


def _dead_letters_per_hour(report: DailyReport) -> Chart:
    figure, axes = _figure()
    today = report.today
    axes.bar(range(24), _stored(today, today.dead_letters_by_hour), width=0.8, color="#c44e52", label="dead letters")
    percent = [
        100 * dead / (dead + logins) if dead + logins else 0.0
        for dead, logins in zip(today.dead_letters_by_hour, today.logins_by_hour, strict=True)
    ]
    rate_axes = axes.twinx()
    rate_axes.plot(range(24), _stored(today, percent), color="#55a868", marker="o", markersize=3)
    rate_axes.set_ylabel("% of messages")
    _hours_axis(axes, today)
    axes.set_ylabel("dead letters")
    axes.set_title(f"Dead letters per hour (bars) and their rate (line), {today.day.isoformat()}")
    return Chart(f"Dead letters per hour on {today.day.isoformat()}", _png(figure))


def _hours_axis(axes: Axes, today: DayInsights) -> None:
    """Hours 00..23 on the x axis; the hours not stored shaded (once in the legend)."""
    missing = set(today.hours_missing)
    label: str | None = "not stored"
    for hour, key in enumerate(hour_keys(today.day)):
        if key in missing:
            axes.axvspan(hour - 0.5, hour + 0.5, color="#e8e8e8", zorder=0, label=label)
            label = None
    axes.set_xlim(-0.5, 23.5)
    axes.set_xticks(range(0, 24, 2), [f"{h:02d}" for h in range(0, 24, 2)])
    axes.set_xlabel("hour (UTC)")


def _figure() -> tuple[Figure, Axes]:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3.2), dpi=80, layout="constrained")
    return figure, figure.subplots()


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
