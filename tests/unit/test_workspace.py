"""One Dagster code location for every process: workspace.yaml, [tool.dg], compose and Kubernetes.

`dagster dev`, the containers' webserver and daemon read workspace.yaml; `dg` reads pyproject.toml's
[tool.dg]. Both must name the same module under the same location name, or runs launched by one appear
under another location in the other. The last test loads the file the way Dagster does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
IMAGE_WORKSPACE = "/app/workspace.yaml"  # where `COPY . /app` puts the file in the image


def workspace_location() -> dict[str, str]:
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text(encoding="utf-8"))
    [entry] = workspace["load_from"]
    return entry["python_module"]


def dagster_commands() -> dict[str, list[str]]:
    """The webserver's and the daemon's command, from compose and from the Kubernetes manifests."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))["services"]
    commands = {f"compose {name}": compose[name]["command"] for name in ("dagster-webserver", "dagster-daemon")}
    manifests: list[dict[str, Any]] = [
        doc for doc in yaml.safe_load_all((ROOT / "deploy/k8s/dagster.yaml").read_text(encoding="utf-8")) if doc
    ]
    for doc in manifests:
        if doc["kind"] == "Deployment":
            [container] = doc["spec"]["template"]["spec"]["containers"]
            commands[f"k8s {doc['metadata']['name']}"] = container["command"]
    return commands


def test_workspace_names_the_location_of_tool_dg():
    dg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["dg"]["project"]
    assert workspace_location() == {
        "module_name": dg["code_location_target_module"],
        "location_name": dg["code_location_name"],
    }


def test_the_packaged_dg_project_is_the_one_of_tool_dg():
    """`orchestration/dg.toml` (read by `dg.load_from_defs_folder`, shipped in the wheel) and [tool.dg] (read by
    the `dg` command line in a checkout) describe one project."""
    dg = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["dg"]["project"]
    packaged = tomllib.loads((ROOT / "orchestration" / "dg.toml").read_text(encoding="utf-8"))["project"]
    assert packaged == {key: dg[key] for key in ("root_module", "code_location_target_module", "code_location_name")}
    assert dg.get("defs_module", f"{dg['root_module']}.defs") == "orchestration.defs"


def test_containers_load_the_repository_workspace():
    commands = dagster_commands()
    assert set(commands) == {
        "compose dagster-webserver",
        "compose dagster-daemon",
        "k8s dagster-webserver",
        "k8s dagster-daemon",
    }
    for where, command in commands.items():
        assert command[command.index("--workspace") + 1] == IMAGE_WORKSPACE, where
    allowed = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert "!workspace.yaml" in allowed


def test_dagster_validates_the_workspace(tmp_path):
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    result = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env={**os.environ, "DAGSTER_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "kafka-data-pipeline" in result.stdout + result.stderr
