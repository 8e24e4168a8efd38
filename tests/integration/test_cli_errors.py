"""Bad input and unreachable services end a `kdp` command with one line naming the setting, exit code 2,
and no traceback; each case runs `kdp` as a subprocess, as a user would.

Kafka and the registry are addressed at 127.0.0.1:1 (nothing listens there), so the commands wait out
their deadlines (30 s for Kafka, 60 s for the registry) before they give up.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from scenario_settings import process_environment, scenario_settings

pytestmark = pytest.mark.integration

NOWHERE = "127.0.0.1:1"


def kdp(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kdp", *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def assert_one_line_naming(result: subprocess.CompletedProcess[str], setting: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("kdp: ") and setting in last, last


def test_an_unreachable_kafka_is_named(stack):
    settings = scenario_settings(NOWHERE, stack.registry_url, "at-least-once", "unreachable-kafka")
    result = kdp(["stream", "--until-caught-up"], process_environment(settings))
    assert_one_line_naming(result, f"KDP_BOOTSTRAP={NOWHERE}")


def test_an_unreachable_registry_is_named(stack):
    settings = scenario_settings(stack.bootstrap, f"http://{NOWHERE}", "at-least-once", "unreachable-registry")
    result = kdp(["stream", "--until-caught-up"], process_environment(settings))
    assert_one_line_naming(result, "KDP_REGISTRY_URL")
