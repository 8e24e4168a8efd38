"""The insights area's Dagster definitions: loadable, wired to the right keys, scheduled for the last hour."""

from datetime import UTC, datetime

import dagster as dg

from orchestration.definitions import control_plane
from orchestration.defs.resources import KafkaResource, SchemaRegistryResource, environment_bound
from orchestration.insights.placement import DEFAULT_SLACK_MS, LOG_ORDER_MARGIN_MS, MINUTE_MS


def full_defs() -> dg.Definitions:
    return control_plane(
        {"kafka": environment_bound(KafkaResource), "registry": environment_bound(SchemaRegistryResource)}
    )


def test_definitions_load_with_the_top_level_resource_keys() -> None:
    dg.Definitions.validate_loadable(full_defs())


def test_insight_assets_depend_on_processed_data_and_carry_their_checks() -> None:
    graph = full_defs().resolve_asset_graph()
    insights = {key.to_user_string() for key in graph.get_all_asset_keys() if graph.get(key).group_name == "insights"}
    assert insights == {
        "login_window",
        "device_type_distribution",
        "top_locales",
        "app_version_adoption",
        "unique_users_devices",
        "events_per_minute",
        "dead_letter_rate",
    }
    assert graph.get(dg.AssetKey("login_window")).parent_keys == {dg.AssetKey("processed_data")}
    assert graph.get(dg.AssetKey("processed_data")).group_name == "streams"  # the conversion area's asset
    checks = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
    assert checks == {
        ("login_window", "counts_consistent_with_offsets"),
        ("dead_letter_rate", "dead_letter_rate_below_threshold"),
        ("processed_data", "newest_record_is_recent"),
        ("processed_data", "output_schema_matches_repository"),  # the schema area's drift check
        ("daily_insights_report", "report_covers_all_24_hours"),
    }


def test_schedule_runs_by_default_and_requests_the_previous_hour() -> None:
    defs = full_defs()
    schedule = defs.resolve_schedule_def("insights_hourly_schedule")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.cron_schedule == "20 * * * *"
    # The hour's log (slack, then the log-order margin) is complete before the run reads it.
    assert DEFAULT_SLACK_MS + LOG_ORDER_MARGIN_MS < 20 * MINUTE_MS
    tick = datetime(2026, 11, 25, 9, 20, tzinfo=UTC)
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=tick, repository_def=defs.get_repository_def()
        )
        requests = schedule.evaluate_tick(context).run_requests
    assert [request.partition_key for request in requests or []] == ["2026-11-25-08:00"]
