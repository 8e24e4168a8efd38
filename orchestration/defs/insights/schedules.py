"""When the hourly insights run: at minute 15 of every hour, for the hour that ended 15 minutes earlier.

Minute 15, not 0 or 5: the reader looks `slack_minutes` (10 by default) past the hour's end for records that
arrived late in the log, and that part of the log must already exist when it reads. The schedule starts
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
    minute_of_hour=15,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
