"""Where a batch's time goes in a latency run: the converter's own stage histograms, read from its metrics.

The converter of a latency run (`kdp stream --metrics-port`) records each batch's stages in
`kdp_batch_stage_seconds{stage}` (`streaming.observe.metrics`): `poll` (waiting for the batch's first message),
`convert`,
`produce`, `flush` (waiting for acknowledgements) and `commit`. The harness scrapes them once, after the run,
and summarises each stage per batch: count, mean, and p50 / p99 estimated from the buckets as Prometheus's
`histogram_quantile` does (linear within a bucket, so a figure is only as fine as the buckets around it).

A batch slower than `SLOW_BATCH_S` is counted per stage (`slow`): one such stall delays every record that
arrives while it lasts, so a handful of them can hold the records' p99 without reaching the batches' p99.

Which stage holds the tail (`holder`): the stage of the batch's own work (convert, produce, flush, commit) with
the largest p99. `poll` is reported beside it but not a candidate: at a light load it is mostly the converter
waiting for the next message, not a record waiting for the converter.
"""

from __future__ import annotations

import math
import urllib.request
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streaming.observe.metrics import ConverterMetrics
from streaming.observe.observer import BATCH_STAGES

STAGE_METRIC = "kdp_batch_stage_seconds"
WORK_STAGES = tuple(stage for stage in BATCH_STAGES if stage != "poll")
SLOW_BATCH_S = 0.05
"""A bucket bound of `kdp_batch_stage_seconds` (`STAGE_SECONDS_BUCKETS`), so that the count is exact."""
STATISTICS = ("batches", "mean_ms", "p50_ms", "p99_ms", "slow")


def scrape(port: int, timeout: float = 10.0) -> str:
    """The converter's metrics page, in Prometheus text format."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as response:  # noqa: S310
        return response.read().decode()


def stage_buckets(text: str) -> dict[str, dict[str, Any]]:
    """Per stage: cumulative bucket counts by upper bound (seconds), the count and the sum, from a metrics page."""
    stages: dict[str, dict[str, Any]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != STAGE_METRIC:
            continue
        for sample in family.samples:
            stage = stages.setdefault(sample.labels["stage"], {"buckets": {}, "count": 0.0, "sum": 0.0})
            if sample.name.endswith("_bucket"):
                stage["buckets"][float(sample.labels["le"])] = sample.value
            elif sample.name.endswith("_count"):
                stage["count"] = sample.value
            elif sample.name.endswith("_sum"):
                stage["sum"] = sample.value
    return stages


def stage_totals(metrics: ConverterMetrics) -> dict[str, float]:
    """Seconds spent in each stage over a run, from a converter's metrics (`batch_stage` sums), 0.001 s."""
    found = stage_buckets(generate_latest(metrics.registry).decode())
    return {stage: round(found[stage]["sum"], 3) for stage in BATCH_STAGES if stage in found}


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """`histogram_quantile(q, ...)` of cumulative `buckets` (upper bound -> count), in seconds; None if empty.

    Linear within the bucket that holds the rank; in the last (+Inf) bucket, the largest finite bound."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] == 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def slower_than(bound: float, buckets: dict[float, float]) -> int | None:
    """How many observations of cumulative `buckets` exceed `bound`, which must be one of their bounds; None if not."""
    if bound not in buckets:
        return None
    return int(max(buckets.values()) - buckets[bound])


def summarise_stages(text: str) -> dict[str, dict[str, float | None]]:
    """Per stage, in `BATCH_STAGES` order: batches, mean, p50 and p99 in milliseconds (0.01 ms), and `slow`: the
    batches over `SLOW_BATCH_S`."""
    found = stage_buckets(text)
    summary: dict[str, dict[str, float | None]] = {}
    for stage in BATCH_STAGES:
        data = found.get(stage)
        if not data or not data["count"]:
            continue
        p50, p99 = quantile(0.5, data["buckets"]), quantile(0.99, data["buckets"])
        summary[stage] = {
            "batches": int(data["count"]),
            "mean_ms": round(data["sum"] / data["count"] * 1000, 2),
            "p50_ms": None if p50 is None else round(p50 * 1000, 2),
            "p99_ms": None if p99 is None else round(p99 * 1000, 2),
            "slow": slower_than(SLOW_BATCH_S, data["buckets"]),
        }
    return summary


def holder(stages: dict[str, dict[str, float | None]]) -> str | None:
    """The stage of the batch's own work with the largest p99 (see the module docstring); None if none."""
    candidates = [(stages[s]["p99_ms"] or 0.0, s) for s in WORK_STAGES if s in stages]
    return max(candidates)[1] if candidates else None


def median_over_runs(runs: list[dict[str, dict[str, float | None]]]) -> dict[str, dict[str, float | None]]:
    """Per stage and statistic, the median over the runs that measured it."""
    summary: dict[str, dict[str, float | None]] = {}
    for stage in BATCH_STAGES:
        measured = [run[stage] for run in runs if stage in run]
        if not measured:
            continue
        summary[stage] = {}
        for statistic in STATISTICS:
            values = sorted(v for v in (m.get(statistic) for m in measured) if v is not None)
            if not values:
                summary[stage][statistic] = None
                continue
            middle = len(values) // 2
            median = values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
            summary[stage][statistic] = round(median, 2)
    return summary
