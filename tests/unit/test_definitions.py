"""The control plane's definitions load, validate, and hold what the README promises."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from orchestration.definitions import defs

ROOT = Path(__file__).resolve().parents[2]


def test_definitions_are_loadable():
    dg.Definitions.validate_loadable(defs)


def test_the_jobs_sensor_and_schedule_are_there_and_automation_runs_by_default():
    jobs = {job.name for job in defs.jobs or []}
    assert {
        "provision_topics",
        "convert_ranges",
        "plan_partition_reassignment",
        "execute_partition_reassignment",
        "check_schema",
        "preview_schema",
        "register_schema",
    } <= jobs
    sensor = next(s for s in defs.sensors or [] if s.name == "conversion_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds is not None and sensor.minimum_interval_seconds < 60
    assert all(s.default_status == dg.DefaultScheduleStatus.RUNNING for s in defs.schedules or [])


def test_the_drift_check_watches_processed_data():
    checks = {key.name: key.asset_key for check in defs.asset_checks or [] for key in check.check_keys}
    assert checks["output_schema_matches_repository"] == dg.AssetKey("processed_data")


def test_dg_check_defs_loads_the_project():
    """What `make dev` and `make demo` rely on: `dg` finds the project through pyproject's [tool.dg]."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dg"), "check", "defs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All definitions loaded successfully" in result.stdout + result.stderr


def test_resources_are_bound_to_the_kdp_variables(monkeypatch):
    """The UI shows each field's variable (secrets by name only); unset optional ones keep Settings' default."""
    from orchestration.defs.resources import KafkaResource, SchemaRegistryResource, environment_bound

    monkeypatch.setenv("KDP_SASL_PASSWORD", "secret")
    monkeypatch.setenv("KDP_BATCH_SIZE", "100")
    monkeypatch.delenv("KDP_GROUP_ID", raising=False)
    kafka = environment_bound(KafkaResource)
    registry = environment_bound(SchemaRegistryResource)
    bound = {
        "bootstrap": kafka.bootstrap,
        "registry_url": registry.registry_url,
        "sasl_password": kafka.sasl_password,
        "batch_size": kafka.batch_size,
    }
    assert {field: getattr(value, "env_var_name", None) for field, value in bound.items()} == {
        "bootstrap": "KDP_BOOTSTRAP",
        "registry_url": "KDP_REGISTRY_URL",
        "sasl_password": "KDP_SASL_PASSWORD",
        "batch_size": "KDP_BATCH_SIZE",
    }
    assert isinstance(kafka.batch_size, int)  # dg.EnvVar.int: Dagster converts the value for an int field
    assert kafka.group_id is None


def test_a_run_without_a_required_variable_names_it(tmp_path):
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("KDP_BOOTSTRAP", "KDP_REGISTRY_URL")}
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dg"), "launch", "--job", "provision_topics"],
        cwd=ROOT,
        env={**env, "DAGSTER_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode != 0
    for name in ("KDP_BOOTSTRAP", "KDP_REGISTRY_URL"):
        assert f'environment variable "{name}" which is not set' in result.stdout + result.stderr


def test_a_scaffolded_definition_is_loaded_without_being_listed(tmp_path):
    """A file added under `orchestration/defs/` (as `dg scaffold defs` adds one) is part of the code location:
    `orchestration.definitions` loads the folder, it lists nothing by hand. Checked on a copy of the package."""
    import shutil

    copy = tmp_path / "orchestration"
    shutil.copytree(ROOT / "orchestration", copy, ignore=shutil.ignore_patterns("__pycache__"))
    scaffolded = copy / "defs" / "scaffolded"
    scaffolded.mkdir()
    (scaffolded / "__init__.py").write_text("")
    (scaffolded / "assets.py").write_text(
        "import dagster as dg\n\n\n@dg.asset\ndef scaffolded_asset() -> None:\n    pass\n", encoding="utf-8"
    )
    probe = (
        "import orchestration.definitions as d, dagster as dg; "
        "print(d.__file__); print(dg.AssetKey('scaffolded_asset') in d.defs.resolve_all_asset_keys())"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path), "KDP_BOOTSTRAP": "x:1", "KDP_REGISTRY_URL": "http://x:1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    where, found = result.stdout.split()
    assert where.startswith(str(copy)) and found == "True"
