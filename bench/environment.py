"""What the figures were measured on: machine, software versions, code revision, and how busy it was.

Throughput on a 2-core machine that also runs the broker depends on whatever else runs there, so the load
average is read at the start and at the end of the run and printed beside the figures.
"""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import confluent_kafka

from bench.memory import status_field_bytes
from kdp.devstack.versions import KAFKA_VERSION

PACKAGES = ("confluent-kafka", "msgspec", "fastavro")


def load_average() -> list[float]:
    """1-, 5- and 15-minute load averages."""
    return [round(value, 2) for value in os.getloadavg()]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> float | None:
    try:
        total = status_field_bytes(Path("/proc/meminfo").read_text(), "MemTotal")
    except OSError:
        return None
    return round(total / 2**30, 1) if total else None


def code_revision(repository: Path) -> str:
    """`git describe`-like: the commit, and `+changes` when the working tree differs from it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=repository, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=repository,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}+changes" if dirty else commit


def describe(repository: Path, bootstrap: str) -> dict[str, Any]:
    """Machine and versions, for the results' first section."""
    versions: dict[str, str | None] = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "nproc": os.cpu_count(),
        "memory_gib": memory_gib(),
        "cpu_model": cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "librdkafka": confluent_kafka.libversion()[0],
        "kafka_local_stack": KAFKA_VERSION,
        "bootstrap": bootstrap,
        "packages": versions,
        "code_revision": code_revision(repository),
    }
