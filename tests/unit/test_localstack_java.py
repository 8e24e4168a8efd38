"""Choosing Java: version parsing, and a clear refusal of a runtime too old for the registry."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from localstack.errors import StackError
from localstack.java import find_java, parse_major_version


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
