"""Scaling: 1, 2, 3 converter processes sharing one consumer group over the 6-partition backlog.

The processes are started together, each with its own `--instance` name, and each runs until its
partitions are caught up. They join the group one after the other, so the group rebalances while the
first ones already work: that cost is part of scaling out and is kept in the figure. The aggregate
throughput is every message consumed divided by the span from the first process's first consume to the
last process's last commit. On a 2-core machine that also runs the broker, more processes mostly share
the same cores; the figure says how much a second and a third process still add.

The output schema is registered before the processes start, as provisioning does in a deployment:
converters that register a new subject at the same moment can collide in the registry (Apicurio answers
409 to the second one creating the subject's compatibility rule), which is no part of what is measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import runner
from bench.kafka_admin import create_topics, register_output_schema
from bench.subject import SubjectReport
from streaming.settings import Settings


def aggregate(reports: list[SubjectReport]) -> dict[str, Any]:
    """Messages, span and msg/s of processes that worked on one backlog together (idle ones add nothing)."""
    starts = [r.first_consume_at for r in reports if r.first_consume_at is not None]
    ends = [r.last_commit_at for r in reports if r.last_commit_at is not None]
    consumed = sum(r.consumed for r in reports)
    span = max(ends) - min(starts) if starts and ends else 0.0
    return {
        "consumed": consumed,
        "seconds": round(span, 3),
        "msg_per_s": round(consumed / span, 1) if span > 0 else 0.0,
        "cpu_us_per_msg": round(sum(r.cpu_seconds for r in reports) / consumed * 1e6, 2) if consumed else None,
    }


def measure_scaling(
    settings: Settings, run_id: str, source: str, processes: int, logs: Path, timeout: float, partitions: int = 6
) -> dict[str, Any]:
    """Run `processes` converters at-least-once in one group over `source`; aggregate and per process."""
    lane = runner.Lane.for_subject(run_id, f"scale{processes}", source)
    create_topics(settings, lane.topics, partitions)
    register_output_schema(settings, lane.output)
    log_paths = [logs / f"scale{processes}-{i}.log" for i in range(1, processes + 1)]
    started = [
        runner.start(
            runner.python_module("bench.converter_subject", "--instance", f"scale{processes}-{i}"),
            lane.environment(),
            log_path,
        )
        for i, log_path in enumerate(log_paths, start=1)
    ]
    reports = [runner.finish(process, log_path, timeout) for process, log_path in zip(started, log_paths, strict=True)]
    return {
        "processes": processes,
        **aggregate(reports),
        "per_process": [
            {key: r.as_dict()[key] for key in ("consumed", "seconds", "msg_per_s", "cpu_us_per_msg", "peak_rss_mb")}
            for r in reports
        ],
    }
