"""CPU profile of the converter's hot path: cProfile over a real run, summarised as top-N tables.

The converter subject runs under cProfile (`python -m bench.converter_subject --profile FILE
--max-messages N`, profiling from its first batch) on the shared backlog, in its own group and output
topics, at-least-once. cProfile
sees only Python code in the converter's thread: librdkafka's own threads (fetching, compressing,
sending) are not in it, and time spent inside a C call such as `Consumer.consume` or `Producer.flush`
shows up as that call. Profiling inflates the cost of small Python functions, so read the shares, not the
absolute microseconds; the throughput figures come from unprofiled runs.
"""

from __future__ import annotations

import pstats
import sysconfig
from pathlib import Path
from typing import Any

from bench.runner import REPOSITORY

TOP = 15


def function_label(file: str, line: int, name: str) -> str:
    """`streaming/conversion/transform.py:120(transform)`, `site:confluent_kafka/...`, or a builtin's own name."""
    if file == "~" or not file:
        return name
    path = Path(file)
    site = Path(sysconfig.get_paths()["purelib"])
    for root, prefix in ((REPOSITORY, ""), (site, "site:")):
        try:
            return f"{prefix}{path.relative_to(root)}:{line}({name})"
        except ValueError:
            continue
    return f"{path.name}:{line}({name})"


def summarise(stats_file: Path, messages: int, top: int = TOP) -> dict[str, Any]:
    """Top functions by cumulative and by own (self) time, with microseconds per converted message."""
    stats = pstats.Stats(str(stats_file))
    rows = []
    for (file, line, name), (_primitive, calls, own, cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": function_label(file, line, name),
                "calls": calls,
                "self_s": round(own, 4),
                "cumulative_s": round(cumulative, 4),
                "self_us_per_msg": round(own / messages * 1e6, 3) if messages else None,
                "cumulative_us_per_msg": round(cumulative / messages * 1e6, 3) if messages else None,
            }
        )
    total = stats.total_tt  # type: ignore[attr-defined]
    return {
        "messages": messages,
        "profiled_seconds": round(total, 3),
        "by_cumulative": sorted(rows, key=lambda r: r["cumulative_s"], reverse=True)[:top],
        "by_self": sorted(rows, key=lambda r: r["self_s"], reverse=True)[:top],
    }
