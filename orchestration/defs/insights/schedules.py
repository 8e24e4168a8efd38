"""When the insights run: the hourly ones at minute 20 of every hour, for the hour that ended 20 minutes
earlier; the daily report at 01:00 UTC, for the day before.

Minute 20, not 0 or 5: the hour counts the records processed up to `slack_minutes` (10 by default) after
its end, and the reader reads 5 minutes further for records appended out of processing order
(`orchestration.insights.placement`); that part of the log must already exist when it reads. The schedule starts
RUNNING so that a fresh deployment produces insights without a click (the daemon must be running). The job
also runs the freshness check of `processed_data`, so a stalled converter shows up hourly even when its
last hours look fine.

The daily report runs at 01:00, 40 minutes after the day's last hour was read (00:20), and well before its
freshness deadline (03:00, see `daily_report`). An hour that was not ready then is named by the report's
completeness check; re-materializing the day once it is there replaces the report.
"""

import dagster as dg

from orchestration.defs.insights.assets import GROUP, HOURLY
from orchestration.defs.insights.checks import processed_data_freshness
from orchestration.defs.insights.daily_report import DAILY, daily_insights_report

insights_hourly_job = dg.define_asset_job(
    "insights_hourly",
    selection=dg.AssetSelection.groups(GROUP) | dg.AssetSelection.checks(processed_data_freshness),
    description="Read one hour of processed-data and dead letters, store and check the hour's insights.",
)


# Written out rather than built with `build_schedule_from_partitioned_job`, which calls Dagster's deprecated
# `JobDefinition.run_request_for_partition` (dagster 1.13).
@dg.schedule(
    job=insights_hourly_job,
    cron_schedule="20 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="At minute 20 of every hour, the insights of the hour that ended 20 minutes earlier.",
)
def insights_hourly_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    an_hour_before = context.scheduled_execution_time.timestamp() - 3600  # 09:20 -> 08:20, in the hour 08:00
    return dg.RunRequest(partition_key=HOURLY.get_partition_key_for_timestamp(an_hour_before))


insights_daily_report_job = dg.define_asset_job(
    "insights_daily_report",
    selection=dg.AssetSelection.assets(daily_insights_report),
    description="Roll up one day of hourly insights into the daily HTML report and check it is complete.",
)


@dg.schedule(
    job=insights_daily_report_job,
    cron_schedule="0 1 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="At 01:00 UTC, the report of the day before.",
)
def insights_daily_report_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    a_day_before = context.scheduled_execution_time.timestamp() - 86_400  # 12-07 01:00 -> 12-06 01:00
    return dg.RunRequest(partition_key=DAILY.get_partition_key_for_timestamp(a_day_before))
