"""When the hourly insights run: at minute 20 of every hour, for the hour that ended 20 minutes earlier.

Minute 20, not 0 or 5: the hour counts the records processed up to `slack_minutes` (10 by default) after
its end, and the reader reads 5 minutes further for records appended out of processing order
(`orchestration.insights.placement`); that part of the log must already exist when it reads. The schedule starts
RUNNING so that a fresh deployment produces insights without a click (the daemon must be running). The job
also runs the freshness check of `processed_data`, so a stalled converter shows up hourly even when its
last hours look fine.
"""

import dagster as dg

from orchestration.defs.insights.assets import GROUP
from orchestration.defs.insights.checks import processed_data_freshness

insights_hourly_job = dg.define_asset_job(
    "insights_hourly",
    selection=dg.AssetSelection.groups(GROUP) | dg.AssetSelection.checks(processed_data_freshness),
    description="Read one hour of processed-data and dead letters, store and check the hour's insights.",
)

insights_hourly_schedule = dg.build_schedule_from_partitioned_job(
    insights_hourly_job,
    name="insights_hourly_schedule",
    minute_of_hour=20,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
