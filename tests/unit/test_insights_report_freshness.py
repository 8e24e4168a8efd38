"""The daily report's freshness policy as Dagster's daemon evaluates it: a report made by 03:00 UTC passes, a
day without one fails from 03:00, and the next report passes again.

Drives one evaluation of the daemon's freshness loop (the code `dagster-daemon` runs every 30 s) over the
project's definitions, at frozen clock times, against a test instance. These are Dagster's test utilities
(not public API): a Dagster upgrade that moves them breaks this test, not the project.
"""

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg
import pytest
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.test_utils import InProcessTestWorkspaceLoadTarget, freeze_time
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._daemon.freshness import FreshnessDaemon

REPORT = dg.AssetKey("daily_insights_report")
CODE = InProcessCodeLocationOrigin(LoadableTargetOrigin(module_name="orchestration.definitions", attribute="defs"))


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as test_instance:
        yield test_instance


def freshness_at(instance: dg.DagsterInstance, now: datetime) -> FreshnessState | None:
    with freeze_time(now), WorkspaceProcessContext(instance, InProcessTestWorkspaceLoadTarget(CODE)) as workspace:
        asyncio.run(FreshnessDaemon()._evaluate_assets(workspace))  # one iteration of the daemon
    record = instance.get_freshness_state_records([REPORT]).get(REPORT)
    return None if record is None else record.freshness_state


def report_made(instance: dg.DagsterInstance, at: datetime, day: str) -> None:
    with freeze_time(at):
        instance.report_runless_asset_event(dg.AssetMaterialization(REPORT, partition=day))


def test_a_report_missing_at_the_deadline_fails_its_freshness_until_one_is_made(instance: dg.DagsterInstance) -> None:
    assert freshness_at(instance, datetime(2026, 11, 25, 4, tzinfo=UTC)) == FreshnessState.UNKNOWN  # never made

    report_made(instance, datetime(2026, 11, 25, 1, 0, tzinfo=UTC), "2026-11-24")  # by the schedule, on time
    assert freshness_at(instance, datetime(2026, 11, 25, 4, tzinfo=UTC)) == FreshnessState.PASS
    assert freshness_at(instance, datetime(2026, 11, 26, 2, 59, tzinfo=UTC)) == FreshnessState.PASS  # not yet due

    assert freshness_at(instance, datetime(2026, 11, 26, 3, 1, tzinfo=UTC)) == FreshnessState.FAIL  # none today

    report_made(instance, datetime(2026, 11, 26, 9, 30, tzinfo=UTC), "2026-11-25")  # late, by hand
    assert freshness_at(instance, datetime(2026, 11, 26, 9, 31, tzinfo=UTC)) == FreshnessState.PASS
