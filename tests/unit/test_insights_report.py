"""The daily report's content and markup, from synthetic days: every section, changes, gaps, no data, escaping."""

import html
import re
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from orchestration.insights import report, report_files, report_render
from orchestration.insights.comparison import NO_DATA, compare_breakdown, count_change, rate_change
from orchestration.insights.daily_charts import draw_daily_charts
from orchestration.insights.distinct_counts import UniqueTotals
from orchestration.insights.rollup import DayInsights, hour_keys

DAY = date(2026, 11, 25)


def day_of(day: date, scale: int = 1, hours: range = range(24), **changes: object) -> DayInsights:
    """A plausible day: 10 logins an hour times `scale` in `hours`, a few dead letters and late records."""
    by_hour = tuple(10 * scale if h in hours else 0 for h in range(24))
    logins = sum(by_hour)
    insights = DayInsights(
        day=day,
        hours_present=tuple(hour_keys(day)[h] for h in hours),
        logins=logins,
        dead_letters=3 * scale,
        uniques=UniqueTotals(7 * scale, 5 * scale, ()),
        device_types={"ios": logins // 2, "android": logins - logins // 2},
        locales={"NY": logins - 2 * scale, "CA": scale, "TX": scale},
        app_versions={"2.9.0": logins // 2, "2.10.0": logins - logins // 2},
        dead_letter_reasons={"invalid_json": 2 * scale, "missing_field": scale},
        late_records=scale,
        oldest_late_event=datetime(2026, 11, 20, 4, 5, 6),
        max_late_delay_ms=3 * 3_600_000,
        logins_by_hour=by_hour,
        dead_letters_by_hour=tuple(3 * scale if h == 5 else 0 for h in range(24)),
    )
    return replace(insights, **changes)  # type: ignore[arg-type]


def empty(day: date) -> DayInsights:
    return DayInsights(day=day, hours_present=())


def a_report(today: DayInsights, previous: DayInsights | None = None, last_week: DayInsights | None = None):  # type: ignore[no-untyped-def]
    return report.DailyReport(
        today, previous or day_of(date(2026, 11, 24)), last_week or day_of(date(2026, 11, 18), scale=2)
    )


def test_count_change_shows_difference_and_relative_size_and_tells_unknown_from_zero() -> None:
    assert count_change(110, 100) == "+10 (+10.0%)"
    assert count_change(1_500, 3_000) == "-1,500 (-50.0%)"
    assert count_change(5, 0) == "new"
    assert count_change(0, 0) == "0"
    assert count_change(5, None) == count_change(None, 5) == NO_DATA
    assert rate_change(0.03, 0.01) == "+2.00 pp"
    assert rate_change(0.03, None) == NO_DATA


def test_compare_breakdown_counts_a_value_absent_before_as_zero_but_a_day_without_data_as_unknown() -> None:
    rows = compare_breakdown({"NY": 3, "CA": 1}, {"NY": 2}, None)
    assert [(r.value, r.count, r.previous_day, r.last_week) for r in rows] == [("NY", 3, 2, None), ("CA", 1, 0, None)]
    assert [r.change_previous_day for r in rows] == ["+1 (+50.0%)", "new"]
    assert rows[0].share == 0.75 and rows[0].change_last_week == NO_DATA


def test_hour_ranges_compress_consecutive_hours() -> None:
    keys = hour_keys(DAY)
    assert report.hour_ranges([keys[h] for h in (0, 1, 2, 5, 13, 14)]) == "00:00-02:00, 05:00, 13:00-14:00"
    assert report.hour_ranges(keys) == "00:00-23:00"


def test_a_full_day_has_every_section_with_its_comparisons() -> None:
    daily = a_report(day_of(DAY, scale=3))
    sections = report.build_sections(daily, draw_daily_charts(daily), top_locales=2)
    assert [s.title for s in sections] == list(report.SECTION_TITLES)
    by_title = {s.title: s for s in sections}
    assert report.completeness_problems(daily.today) == []
    logins = by_title[report.LOGINS]
    assert logins.table is not None and logins.chart is not None
    assert logins.table.rows[0] == ("logins", "720", "240", "+480 (+200.0%)", "480", "+240 (+50.0%)")
    uniques = by_title[report.UNIQUES].table
    assert uniques is not None and uniques.rows[0][:4] == ("unique users", "21", "7", "+14 (+200.0%)")
    locales = by_title[report.LOCALES]
    assert locales.table is not None and [row[0] for row in locales.table.rows] == ["NY", "CA"]
    assert "The 2 most frequent of 3 locales." in locales.paragraphs
    versions = by_title[report.APP_VERSIONS].table
    assert versions is not None and [row[0] for row in versions.rows] == ["2.10.0", "2.9.0"]  # newest first
    dead = by_title[report.DEAD_LETTERS]
    assert dead.chart is not None and dead.table is not None
    assert dead.table.rows[0][:3] == ("all reasons", "9", f"{9 / 729:.2%}")
    assert [row[0] for row in dead.table.rows[1:]] == ["invalid_json", "missing_field"]
    late = by_title[report.LATE_EVENTS].table
    assert late is not None and late.rows[0][:2] == ("late records", "3") and late.rows[2][1] == "3 h 00 min"


def test_a_day_without_data_says_so_and_nothing_else() -> None:
    daily = a_report(empty(DAY))
    sections = report.build_sections(daily, draw_daily_charts(daily))
    assert [s.title for s in sections] == [report.COVERAGE]
    assert sections[0].paragraphs[0].startswith("No data for 2026-11-25")
    assert report.completeness_problems(daily.today) == ["24 of 24 hours not materialized: 00:00-23:00"]


def test_earlier_days_without_data_are_compared_as_not_available() -> None:
    daily = a_report(day_of(DAY), empty(date(2026, 11, 24)), empty(date(2026, 11, 18)))
    sections = {s.title: s for s in report.build_sections(daily, report.DailyCharts())}
    table = sections[report.LOGINS].table
    assert table is not None and table.rows[0] == ("logins", "240", NO_DATA, NO_DATA, NO_DATA, NO_DATA)
    assert "2026-11-24 (no data)" in sections[report.COVERAGE].paragraphs[-1]


def test_missing_hours_and_unmergeable_uniques_make_the_report_incomplete_and_say_which() -> None:
    today = day_of(DAY, hours=range(2, 23), uniques=UniqueTotals(None, None, (hour_keys(DAY)[7],)))
    problems = report.completeness_problems(today)
    assert problems == [
        "3 of 24 hours not materialized: 00:00-01:00, 23:00",
        "unique users and devices unknown: hours stored without their ids: 07:00",
    ]
    sections = {s.title: s for s in report.build_sections(a_report(today), report.DailyCharts())}
    assert f"Incomplete: {problems[0]}." in sections[report.COVERAGE].paragraphs
    assert (
        "Compared with the previous day, 2026-11-24 (24 of 24 hours), and the same day last week, "
        "2026-11-18 (24 of 24 hours): a change against a day with fewer hours stored says little."
    ) in sections[report.COVERAGE].paragraphs
    uniques = sections[report.UNIQUES].table
    assert uniques is not None and uniques.rows[0][1:4] == (NO_DATA, "7", NO_DATA)


def test_a_day_whose_hours_counted_nothing_reports_zeros() -> None:
    zero = DayInsights(day=DAY, hours_present=tuple(hour_keys(DAY)))
    sections = {s.title: s for s in report.build_sections(a_report(zero), report.DailyCharts())}
    assert list(sections) == list(report.SECTION_TITLES)
    assert "No logins and no dead letters were recorded in the stored hours." in sections[report.COVERAGE].paragraphs
    assert "None recorded." in sections[report.LOCALES].paragraphs


def test_html_is_self_contained_with_every_section_table_and_chart() -> None:
    daily = a_report(day_of(DAY))
    sections = report.build_sections(daily, draw_daily_charts(daily))
    page = report_render.render_html(daily.title, sections, "generated")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    for title in report.SECTION_TITLES:
        assert f"<h2>{html.escape(title)}</h2>" in page
    assert page.count("<table>") == len(report.SECTION_TITLES) - 1  # every section but the coverage
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 2
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing loaded from elsewhere
    markdown = report_render.render_markdown(daily.title, sections, "generated")
    for title in report.SECTION_TITLES:
        assert f"## {title}" in markdown
    assert markdown.count("](data:image/png;base64,") == 2
    assert "](data:" not in report_render.render_markdown(daily.title, sections, "generated", charts=False)


@given(value=st.text(min_size=1, max_size=30))
def test_any_value_from_the_data_is_escaped_in_html_and_cannot_break_a_markdown_table(value: str) -> None:
    today = day_of(DAY, locales={value: 240})
    sections = report.build_sections(a_report(today), report.DailyCharts())
    page = report_render.render_html("t", sections, "f")
    cell = re.search(r"<h2>Top locales</h2>.*?<tbody><tr><td>(.*?)</td>", page, re.S)
    assert cell is not None and html.unescape(cell.group(1)) == value  # the value, whole, inside its cell
    markdown = report_render.render_markdown("t", sections, "f")
    [locale_row] = [line for line in markdown.splitlines() if "| 240 | 100.0% |" in line]
    assert len(re.findall(r"(?<!\\)\|", locale_row)) == 8  # 7 cells: no unescaped pipe from the value


def test_report_files_replace_the_days_files_under_the_reports_folder(tmp_path: Path) -> None:
    database = tmp_path / "insights" / "insights.duckdb"
    assert report_files.reports_directory(database) == tmp_path / "insights" / "reports"
    directory = report_files.reports_directory(database, str(tmp_path / "out"))
    report_files.write_report(directory, DAY, "<p>old</p>", "old")
    html_path, md_path = report_files.write_report(directory, DAY, "<p>new</p>", "new")
    assert (html_path.name, md_path.name) == ("2026-11-25.html", "2026-11-25.md")
    assert html_path.read_text() == "<p>new</p>" and md_path.read_text() == "new"
    assert sorted(p.name for p in directory.iterdir()) == ["2026-11-25.html", "2026-11-25.md"]
