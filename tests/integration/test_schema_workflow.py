"""`kdp schema check | preview | register`, the Dagster schema jobs and the drift check, on the real stack.

Each test has its own topics and subject (`scenario_settings`); proposed schemas are variants of the
repository's, written to the test's own folder.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from contract_variants import NEW_FIELD, with_new_input_key, without_field
from kafka_io import create_topics, read_all
from registry_io import register_output_schema
from scenario_settings import process_environment, scenario_settings

from orchestration.definitions import defs
from orchestration.defs.conversion.assets import processed_data
from orchestration.defs.resources import KafkaResource, SchemaRegistryResource, environment_bound
from orchestration.defs.schema.checks import output_schema_matches_repository
from orchestration.schema import workflow
from orchestration.schema.contract import load_contract
from orchestration.schema.registry import subject_level
from streaming.generator.events import EventFactory, IrregularityRates
from streaming.generator.producer import generate
from streaming.loop.pipeline import SCHEMAS
from streaming.settings import Settings

pytestmark = pytest.mark.integration

EVENTS = 600
INCOMPATIBLE = SCHEMAS / "evolution" / "incompatible.avsc"


@pytest.fixture
def settings(stack) -> Settings:
    """Two source partitions holding EVENTS generated events; the repository's schema registered."""
    settings = scenario_settings(stack.bootstrap, stack.registry_url, "at-least-once", "schema-workflow")
    create_topics(settings.bootstrap, [settings.source_topic, settings.output_topic, settings.dlq_topic], 2)
    register_output_schema(settings)
    factory = EventFactory(21, IrregularityRates.with_malformed(0.05))
    assert generate(settings.kafka_config(), settings.source_topic, factory, count=EVENTS).ok
    return settings


def kdp_schema(settings: Settings, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kdp", "schema", *arguments],
        env=process_environment(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


def refusal(result: subprocess.CompletedProcess[str], step: str) -> str:
    """The one line a refused step prints, asserting it is one line, exit code 2 and no traceback."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith(f"kdp schema {step}:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_bad_inputs_are_refused_in_one_line_and_change_nothing(settings: Settings, tmp_path: Path) -> None:
    subject = f"{settings.output_topic}-value"
    registry = SchemaRegistryClient(settings.registry_config())
    broken = tmp_path / "broken.avsc"
    broken.write_text("{not json")

    unreadable = refusal(kdp_schema(settings, "check", str(broken)), "check")
    missing = refusal(kdp_schema(settings, "preview", "--topic", f"{settings.source_topic}-missing"), "preview")
    schema, rules = with_new_input_key(tmp_path, required=True)
    incompatible = refusal(
        kdp_schema(settings, "register", "--execute", str(schema), "--rules", str(rules)), "register"
    )
    not_filled = refusal(kdp_schema(settings, "check", str(INCOMPATIBLE)), "check")

    assert "broken.avsc" in unreadable
    assert f"{settings.source_topic}-missing" in missing
    assert repr(subject) in incompatible and NEW_FIELD in incompatible  # the registry's reason, quoted
    assert "field 'country' of the schema is not declared" in not_filled  # the rules do not make it
    assert registry.get_versions(subject) == [1]
    assert subject_level(registry, subject) == "BACKWARD_TRANSITIVE"


def test_preview_reads_a_bounded_window_writes_nothing_and_tells_what_changes(
    settings: Settings, tmp_path: Path
) -> None:
    without_device_id = load_contract(*without_field(tmp_path, "device_id"))

    report = workflow.preview(settings, without_device_id, last=100)

    assert report.messages == 200  # the last 100 of each of the two partitions
    assert [(r.end - r.start) for r in report.ranges] == [100, 100]
    assert report.converted_both > 150
    assert report.changed_records == report.converted_both
    assert dict(report.changed_fields) == {"device_id": report.converted_both}
    assert not report.new_refusals and not report.lifted_refusals
    assert report.bytes_proposed < report.bytes_current
    assert report.readers_agree  # device_id has a default: either reader resolves it
    assert read_all(settings.bootstrap, settings.output_topic) == []
    assert read_all(settings.bootstrap, settings.dlq_topic) == []
    registry = SchemaRegistryClient(settings.registry_config())
    assert registry.get_versions(f"{settings.output_topic}-value") == [1]


def test_preview_exits_1_when_an_old_reader_cannot_read_the_new_records(settings: Settings, tmp_path: Path) -> None:
    """Removing a field without a default is BACKWARD_TRANSITIVE (new readers ignore it in old records), but
    a reader still on the old schema has no value to give it: the preview says so before anything ships."""
    schema, rules = without_field(tmp_path, "app_version_patch")

    result = kdp_schema(settings, "preview", str(schema), "--rules", str(rules), "--last", "50")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "old reader on new records: 0 of" in result.stdout
    assert "first resolution failure: old reader on a new record" in result.stdout


def test_register_is_a_dry_run_until_executed_and_the_drift_check_follows_the_registry(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    subject = f"{settings.output_topic}-value"
    registry = SchemaRegistryClient(settings.registry_config())
    schema, rules = without_field(tmp_path, "device_id")
    proposed = [str(schema), "--rules", str(rules)]
    for name, value in process_environment(settings).items():
        if name.startswith("KDP_"):
            monkeypatch.setenv(name, value)
    resources = {"kafka": environment_bound(KafkaResource), "registry": environment_bound(SchemaRegistryResource)}

    def drift_passes() -> bool:
        """The drift check alone, as Dagster runs it (processed_data is not materialized)."""
        result = dg.materialize(
            [processed_data, output_schema_matches_repository],
            selection=dg.AssetSelection.checks(output_schema_matches_repository),
            resources=resources,
        )
        (evaluation,) = result.get_asset_check_evaluations()
        return evaluation.passed

    assert drift_passes()
    dry = kdp_schema(settings, "register", *proposed)
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "dry run" in dry.stdout and registry.get_versions(subject) == [1]

    executed = kdp_schema(settings, "register", "--execute", *proposed)

    assert executed.returncode == 0, executed.stdout + executed.stderr
    assert registry.get_versions(subject) == [1, 2]
    assert not drift_passes()  # the registry's latest is no longer the repository's schema
    schema, rules = with_new_input_key(tmp_path, required=True)
    check = defs.resolve_job_def("check_schema").execute_in_process(
        run_config={"ops": {"check_schema_op": {"config": {"schema_file": str(schema), "rules_file": str(rules)}}}},
        resources=resources,
        raise_on_error=False,
    )
    assert not check.success
    failure = check.failure_data_for_node("check_schema_op")
    assert failure is not None and NEW_FIELD in str(failure.error) and "version(s) 1, 2" in str(failure.error)
