"""The daily report in Dagster: wired to the hourly assets, scheduled for the day before, held to a deadline,
and materialized from a store of synthetic hours: complete, with a missing hour, and with no data."""

from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pytest

from orchestration.definitions import control_plane
from orchestration.defs.insights.assets import HOURLY
from orchestration.defs.insights.daily_report import DAILY, daily_insights_report
from orchestration.defs.resources import (
    InsightsStorageResource,
    KafkaResource,
    SchemaRegistryResource,
    environment_bound,
)
from orchestration.insights import report, rollup, store
from orchestration.insights.aggregates import MINUTE_MS, WindowTally
from orchestration.insights.window_reader import PartitionScan, WindowScan
from streaming.offset_ranges import OffsetRange

DAY = date(2026, 11, 25)
HOURLY_ASSETS = {
    "login_window",
    "device_type_distribution",
    "top_locales",
    "app_version_adoption",
    "unique_users_devices",
    "events_per_minute",
    "dead_letter_rate",
}


def full_defs() -> dg.Definitions:
    return control_plane(
        {"kafka": environment_bound(KafkaResource), "registry": environment_bound(SchemaRegistryResource)}
    )


def test_the_report_depends_on_the_hourly_insights_a_day_on_its_24_hours() -> None:
    graph = full_defs().resolve_asset_graph()
    node = graph.get(dg.AssetKey("daily_insights_report"))
    assert {key.to_user_string() for key in node.parent_keys} == HOURLY_ASSETS
    assert node.group_name == "insight_reports"
    day_window = DAILY.time_window_for_partition_key(DAY.isoformat())
    assert HOURLY.get_partition_keys_in_time_window(day_window) == rollup.hour_keys(DAY)
    checks = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
    assert ("daily_insights_report", "report_covers_all_24_hours") in checks


def test_the_report_has_a_daily_deadline_freshness_policy() -> None:
    policy = daily_insights_report.specs_by_key[dg.AssetKey("daily_insights_report")].freshness_policy
    assert isinstance(policy, dg.FreshnessPolicy)
    assert (policy.deadline_cron, policy.lower_bound_delta.total_seconds(), policy.timezone) == (  # type: ignore[attr-defined]
        "0 3 * * *",
        3 * 3600,
        "UTC",
    )


def test_the_schedule_runs_by_default_and_requests_the_day_before() -> None:
    full = full_defs()
    schedule = full.resolve_schedule_def("insights_daily_report_schedule")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.cron_schedule == "0 1 * * *"
    tick = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=tick, repository_def=full.get_repository_def()
        )
        requests = schedule.evaluate_tick(context).run_requests
    assert [request.partition_key for request in requests or []] == ["2026-11-25"]
    job = full.resolve_job_def("insights_daily_report")
    assert {key.to_user_string() for key in job.asset_layer.executable_asset_keys} == {"daily_insights_report"}


def save_hours(database: Path, day: date, hours: range) -> None:
    for hour in hours:
        start = int(datetime(day.year, day.month, day.day, hour, tzinfo=UTC).timestamp() * 1000)
        tally = WindowTally(start, start + 60 * MINUTE_MS)
        for i in range(4):
            record = {
                "user_id": f"u{i}",
                "device_id": f"d{i}",
                "device_type": "ios",
                "locale": "NY",
                "app_version": "1",
            }
            tally.add_record(record, start + i * MINUTE_MS)
        tally.add_dead_letter("invalid_json")
        scan = WindowScan(tally, [PartitionScan(OffsetRange("processed", 0, 0, 4), 4, 4, 0)], [])
        store.save_window(database, rollup.hour_keys(day)[hour], scan, start)


def materialize_day(day: date) -> tuple[dict[str, object], dg.AssetCheckEvaluation]:
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [daily_insights_report],
            partition_key=day.isoformat(),
            resources={"insights_storage": environment_bound(InsightsStorageResource)},
            instance=instance,
        )
    assert result.success
    [event] = result.get_asset_materialization_events()
    assert event.materialization is not None
    metadata = {key: value.value for key, value in event.materialization.metadata.items()}
    [check] = result.get_asset_check_evaluations()
    return metadata, check


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "insights" / "insights.duckdb"
    monkeypatch.setenv("KDP_INSIGHTS_DB", str(path))
    monkeypatch.delenv("KDP_INSIGHTS_REPORTS", raising=False)
    return path


def test_a_complete_day_is_reported_and_passes_its_check(database: Path) -> None:
    save_hours(database, DAY, range(24))
    metadata, check = materialize_day(DAY)
    assert check.passed and check.check_name == "report_covers_all_24_hours"
    assert (metadata["hours_present"], metadata["logins"], metadata["unique_users"]) == (24, 96, 4)
    html_path = Path(str(metadata["report_path"]))
    assert html_path == database.parent / "reports" / "2026-11-25.html"
    assert metadata["report"] == html_path.as_uri()
    page = html_path.read_text()
    assert all(f"<h2>{title}</h2>" in page for title in report.SECTION_TITLES)
    preview = str(metadata["preview"])
    assert preview == Path(str(metadata["markdown_path"])).read_text()
    assert all(f"## {title}" in preview for title in report.SECTION_TITLES)


def test_a_day_with_a_missing_hour_fails_its_check_naming_the_hour(database: Path) -> None:
    save_hours(database, DAY, range(23))
    metadata, check = materialize_day(DAY)
    assert not check.passed
    assert check.description == "1 of 24 hours not materialized: 23:00"
    assert check.metadata["hours_missing"].value == ["2026-11-25-23:00"]
    assert metadata["hours_present"] == 23
    assert "Incomplete: 1 of 24 hours not materialized: 23:00." in Path(str(metadata["report_path"])).read_text()


def test_a_day_with_no_data_is_reported_as_such_without_failing(database: Path) -> None:
    save_hours(database, date(2026, 11, 24), range(3))  # another day has data; this one none
    metadata, check = materialize_day(DAY)
    assert not check.passed and check.description == "24 of 24 hours not materialized: 00:00-23:00"
    assert "No data for 2026-11-25" in str(metadata["preview"])
    assert "unique_users" not in metadata or metadata["unique_users"] == 0
