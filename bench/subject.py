"""What every measured subject process reports, and the clock it reports with (the child's side).

A subject (our converter, a baseline) is a separate process started by the harness on the shared backlog.
It reads its topics and group from the `KDP_*` environment like `kdp stream` does, and when it is done it
prints exactly one line `BENCH-RESULT {json}` on stdout: a `SubjectReport`. Anything else it writes
(logs) goes to stderr, which the harness keeps in a log file.

The measured interval runs from the first consume that returned a message to the end of the last commit
(`Stopwatch`), so process start-up, connecting and joining the group do not count against anyone, and
every subject is timed the same way. Wall-clock epoch seconds are used so that the harness can combine
the intervals of several processes (the scaling runs).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from bench.memory import peak_rss_bytes

RESULT_MARKER = "BENCH-RESULT "


@dataclass
class SubjectReport:
    """One subject's run over the backlog. `seconds` = `last_commit_at - first_consume_at`.

    Both marks are None when the process consumed nothing (a scaling process that joined after its peers
    had read everything).
    """

    subject: str
    consumed: int
    bytes_in: int
    first_consume_at: float | None
    last_commit_at: float | None
    cpu_seconds: float
    """CPU time of the whole process (librdkafka's threads included) over the measured interval."""
    thread_cpu_seconds: float
    """CPU time of the subject's Python thread alone (its loop) over the measured interval."""
    peak_rss_bytes: int | None
    processed: int | None = None
    dead_lettered: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        if self.first_consume_at is None or self.last_commit_at is None:
            return 0.0
        return self.last_commit_at - self.first_consume_at

    @property
    def msg_per_s(self) -> float:
        return self.consumed / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        """Source payload megabytes (10^6 bytes) per second."""
        return self.bytes_in / self.seconds / 1e6 if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "seconds": round(self.seconds, 3),
            "msg_per_s": round(self.msg_per_s, 1),
            "mb_per_s": round(self.mb_per_s, 2),
            "cpu_us_per_msg": round(self.cpu_seconds / self.consumed * 1e6, 2) if self.consumed else None,
            "thread_cpu_us_per_msg": round(self.thread_cpu_seconds / self.consumed * 1e6, 2) if self.consumed else None,
            "peak_rss_mb": round(self.peak_rss_bytes / 2**20, 1) if self.peak_rss_bytes else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SubjectReport:
        names = cls.__dataclass_fields__
        return cls(**{key: value for key, value in data.items() if key in names})

    def line(self) -> str:
        return RESULT_MARKER + json.dumps(asdict(self))


def parse_report(stdout: str) -> SubjectReport:
    """The report in a subject's stdout; ValueError if there is none (the subject failed before the end)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return SubjectReport.from_dict(json.loads(line[len(RESULT_MARKER) :]))
    raise ValueError("the subject printed no BENCH-RESULT line")


class Stopwatch:
    """Marks the first consume that returned messages and the end of the latest commit.

    Beside wall-clock time it reads, at both marks, the CPU time of the whole process (all threads) and of
    the calling thread (the subject's loop, which must call both marks): on a machine shared with the
    broker and other work, CPU per message is the steadier figure, and it leaves out start-up (imports,
    schema registration), which is no part of the per-message cost.
    """

    def __init__(self) -> None:
        self.first_consume_at: float | None = None
        self.last_commit_at: float | None = None
        self._cpu_at_first = self._cpu_at_last = (0.0, 0.0)

    def consumed(self) -> None:
        if self.first_consume_at is None:
            self.first_consume_at = time.time()
            self._cpu_at_first = (time.process_time(), time.thread_time())

    def committed(self) -> None:
        self.last_commit_at = time.time()
        self._cpu_at_last = (time.process_time(), time.thread_time())

    @property
    def cpu_seconds(self) -> float:
        return self._cpu_at_last[0] - self._cpu_at_first[0]

    @property
    def thread_cpu_seconds(self) -> float:
        return self._cpu_at_last[1] - self._cpu_at_first[1]


def report(
    subject: str,
    stopwatch: Stopwatch,
    consumed: int,
    bytes_in: int,
    *,
    processed: int | None = None,
    dead_lettered: int | None = None,
    **details: Any,
) -> SubjectReport:
    """Print this process's `BENCH-RESULT` line (peak memory read now) and return the report."""
    result = SubjectReport(
        subject=subject,
        consumed=consumed,
        bytes_in=bytes_in,
        first_consume_at=stopwatch.first_consume_at,
        last_commit_at=stopwatch.last_commit_at,
        cpu_seconds=stopwatch.cpu_seconds,
        thread_cpu_seconds=stopwatch.thread_cpu_seconds,
        peak_rss_bytes=peak_rss_bytes(),
        processed=processed,
        dead_lettered=dead_lettered,
        details=details,
    )
    print(result.line(), flush=True)
    return result
