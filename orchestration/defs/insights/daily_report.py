"""The daily insights report: one UTC day of the hourly insights, as an HTML file a person reads.

`daily_insights_report` is partitioned by day and depends on the hourly insight assets (Dagster maps a day
to its 24 hours). It rolls up what the insights store holds for the day, the previous day and the same day
a week before (`insights.rollup`), and writes `<day>.html` and `<day>.md` under the reports folder
(`insights.report_files`: beside the insights database in the instance's storage, or `$KDP_INSIGHTS_REPORTS`).
The materialization links the file and previews the Markdown, charts included, in the Dagster UI.

`report_covers_all_24_hours` fails when the report is missing hours (named as ranges) or cannot merge the
unique counts; the run still succeeds, so a day with gaps is reported, visibly incomplete, and a day
with no data at all gives a report that says so. Re-materializing the day after a backfill of the
missing hours replaces the files.

The freshness policy expects a materialization every day between 00:00 and 03:00 UTC: the schedule
(`schedules.insights_daily_report_schedule`) runs at 01:00, after the last hour's insights (00:20). The
daemon evaluates the policy and marks the asset failing in the UI's freshness status when no report was
made by 03:00.

No `from __future__ import annotations` here: Dagster reads the config parameter type of the decorated
function at import time, and string annotations make it refuse it.
"""

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from orchestration.defs.insights.assets import (
    APP_VERSION_ADOPTION,
    DEAD_LETTER_RATE,
    DEVICE_TYPE_DISTRIBUTION,
    EVENTS_PER_MINUTE,
    LOGIN_WINDOW,
    TOP_LOCALES,
    UNIQUE_USERS_DEVICES,
)
from orchestration.defs.resources import InsightsStorageResource
from orchestration.insights import report, report_files, report_render, rollup
from orchestration.insights.daily_charts import draw_daily_charts

REPORT_GROUP = "insight_reports"
DAILY = dg.DailyPartitionsDefinition(start_date="2026-11-01", timezone="UTC")
REPORT_ASSET = "daily_insights_report"

REPORT_COMPLETE = dg.AssetCheckSpec(
    "report_covers_all_24_hours",
    asset=REPORT_ASSET,
    description="The report is made of all 24 hourly insights of its day, with their unique ids; fails "
    "naming the hours that are missing.",
)
REPORT_DEADLINE = dg.FreshnessPolicy.cron(
    deadline_cron="0 3 * * *", lower_bound_delta=timedelta(hours=3), timezone="UTC"
)
"""A report materialized each day between 00:00 and 03:00 UTC; later, the asset is failing its freshness."""


class DailyReportConfig(dg.Config):
    top_locales: int = 10
    """How many locales the report lists, most frequent first."""


@dg.asset(
    name=REPORT_ASSET,
    description="The day's hourly insights rolled up into one HTML report (and Markdown), compared with the "
    "previous day and the same day last week.",
    partitions_def=DAILY,
    deps=[
        LOGIN_WINDOW,
        DEVICE_TYPE_DISTRIBUTION,
        TOP_LOCALES,
        APP_VERSION_ADOPTION,
        UNIQUE_USERS_DEVICES,
        EVENTS_PER_MINUTE,
        DEAD_LETTER_RATE,
    ],
    group_name=REPORT_GROUP,
    kinds={"html", "duckdb"},
    check_specs=[REPORT_COMPLETE],
    freshness_policy=REPORT_DEADLINE,
)
def daily_insights_report(
    context: dg.AssetExecutionContext, config: DailyReportConfig, insights_storage: InsightsStorageResource
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    day = context.partition_time_window.start.date()
    database = insights_storage.database(context)
    today, previous, last_week = rollup.load_days(database, [day, day - timedelta(days=1), day - timedelta(days=7)])
    daily = report.DailyReport(today, previous, last_week)
    sections = report.build_sections(daily, draw_daily_charts(daily), config.top_locales)
    footer = report.generated_line(datetime.fromtimestamp(time.time(), tz=UTC))
    html_path, md_path = report_files.write_report(
        insights_storage.reports(database),
        day,
        report_render.render_html(daily.title, sections, footer),
        report_render.render_markdown(daily.title, sections, footer),
    )
    context.log.info(
        f"{day}: {len(today.hours_present)} of 24 hours, {today.logins} logins, {today.dead_letters} dead letters; "
        f"report {html_path}"
    )
    yield dg.MaterializeResult(metadata=_metadata(today, html_path, md_path))
    yield completeness(today)


def _metadata(today: rollup.DayInsights, html_path: Path, md_path: Path) -> dict[str, dg.MetadataValue]:
    return {
        "report": dg.MetadataValue.url(html_path.as_uri()),
        "report_path": dg.MetadataValue.path(str(html_path)),
        "markdown_path": dg.MetadataValue.path(str(md_path)),
        "preview": dg.MetadataValue.md(md_path.read_text(encoding="utf-8")),
        "hours_present": dg.MetadataValue.int(len(today.hours_present)),
        "logins": dg.MetadataValue.int(today.logins),
        "dead_letters": dg.MetadataValue.int(today.dead_letters),
        "dead_letter_rate": dg.MetadataValue.float(today.dead_letter_rate),
        "late_records": dg.MetadataValue.int(today.late_records),
        **(
            {}
            if today.uniques.users is None or today.uniques.devices is None
            else {
                "unique_users": dg.MetadataValue.int(today.uniques.users),
                "unique_devices": dg.MetadataValue.int(today.uniques.devices),
            }
        ),
    }


def completeness(today: rollup.DayInsights) -> dg.AssetCheckResult:
    """Pass when the day's report is made of all its 24 hours (with their ids); else say what is missing."""
    problems = report.completeness_problems(today)
    return dg.AssetCheckResult(
        check_name=REPORT_COMPLETE.name,
        asset_key=REPORT_COMPLETE.asset_key,
        passed=not problems,
        description="; ".join(problems) or None,
        metadata={
            "hours_present": dg.MetadataValue.int(len(today.hours_present)),
            "hours_missing": dg.MetadataValue.json(today.hours_missing),
        },
    )
