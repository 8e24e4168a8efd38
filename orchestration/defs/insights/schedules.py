"""When the hourly insights run: at minute 20 of every hour, for the hour that ended 20 minutes earlier.

Minute 20, not 0 or 5: the hour counts the records processed up to `slack_minutes` (10 by default) after
its end, and the reader reads 5 minutes further for records appended out of processing order
(`orchestration.insights.placement`); that part of the log must already exist when it reads. The schedule starts
RUNNING so that a fresh deployment produces insights without a click (the daemon must be running). The job
also runs the freshness check of `processed_data`, so a stalled converter shows up hourly even when its
last hours look fine.
"""

import dagster as dg

from orchestration.defs.insights.assets import GROUP, HOURLY
from orchestration.defs.insights.checks import processed_data_freshness

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
