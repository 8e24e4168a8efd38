"""The insights area: hourly partitioned assets computed from processed-data, their checks and schedule, and
the daily report that rolls them up, with its own schedule.

Resources expected under the keys `kafka` (`KafkaResource`) and `registry` (`SchemaRegistryResource`),
bound by the top-level `orchestration.definitions`.
"""

import dagster as dg

from orchestration.defs.insights.assets import hourly_insights
from orchestration.defs.insights.checks import processed_data_freshness
from orchestration.defs.insights.daily_report import daily_insights_report
from orchestration.defs.insights.schedules import insights_daily_report_schedule, insights_hourly_schedule

defs = dg.Definitions(
    assets=[hourly_insights, daily_insights_report],
    asset_checks=[processed_data_freshness],
    schedules=[insights_hourly_schedule, insights_daily_report_schedule],
)
