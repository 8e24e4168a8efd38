"""Starting measured subjects as processes and collecting their reports (the harness's side).

A `Lane` is where one subject reads and writes: the shared source topic, and its own output topic,
dead-letter topic, consumer group and transactional id, all named after the run and the subject. Its
`environment()` is what `kdp stream` and every subject read (`KDP_*`), laid over the harness's own
environment (so bootstrap, registry and security settings pass through unchanged).

A subject's stdout carries its `BENCH-RESULT` line; its stderr goes to `<out>/logs/<name>.log`, which a
failure quotes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.subject import SubjectReport, parse_report

REPOSITORY = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Lane:
    """The topics and group of one subject; see the module docstring."""

    name: str
    source: str
    output: str
    dlq: str
    group: str

    @classmethod
    def for_subject(cls, run_id: str, name: str, source: str) -> Lane:
        prefix = f"{run_id}-{name}"
        return cls(name, source, f"{prefix}-out", f"{prefix}-dlq", f"{prefix}-group")

    @property
    def topics(self) -> list[str]:
        """The topics this lane writes (the source is shared and created elsewhere)."""
        return [self.output, self.dlq]

    def environment(self, delivery: str = "at-least-once") -> dict[str, str]:
        return {
            "KDP_SOURCE_TOPIC": self.source,
            "KDP_OUTPUT_TOPIC": self.output,
            "KDP_DLQ_TOPIC": self.dlq,
            "KDP_GROUP_ID": self.group,
            "KDP_TRANSACTIONAL_ID": self.group,
            "KDP_DELIVERY": delivery,
        }


def python_module(module: str, *args: str) -> list[str]:
    """The command that runs `python -m module args` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def start(command: Sequence[str], environment: dict[str, str], log_path: Path) -> subprocess.Popen[str]:
    """Start a subject; stdout is piped (for its report), stderr appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a") as log:
        log.write(f"$ {' '.join(command)}\n")
        log.flush()
        return subprocess.Popen(
            list(command),
            cwd=REPOSITORY,
            env={**os.environ, **environment},
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )


def finish(process: subprocess.Popen[str], log_path: Path, timeout: float) -> SubjectReport:
    """Wait for a started subject and return its report; RuntimeError quoting its log if it failed."""
    try:
        stdout, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.terminate()
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        raise RuntimeError(f"{log_path.stem} did not finish within {timeout:.0f}s:\n{log_tail(log_path)}") from None
    try:
        if process.returncode != 0:
            raise ValueError(f"exit status {process.returncode}")
        return parse_report(stdout)
    except ValueError as error:
        raise RuntimeError(f"{log_path.stem} failed ({error}):\n{log_tail(log_path)}") from None


def run(command: Sequence[str], environment: dict[str, str], log_path: Path, timeout: float) -> SubjectReport:
    """Run one subject to its end and return its report."""
    return finish(start(command, environment, log_path), log_path, timeout)


def log_tail(log_path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
