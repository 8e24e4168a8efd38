"""The latency run's stage figures (`bench.stages`), read from a metrics page the converter's own metrics write."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from bench.stages import (
    SLOW_BATCH_S,
    holder,
    median_over_runs,
    quantile,
    slower_than,
    stage_totals,
    summarise_stages,
)
from streaming.observe.metrics import STAGE_SECONDS_BUCKETS, ConverterMetrics


def test_quantile_interpolates_within_the_bucket_that_holds_the_rank():
    buckets = {0.001: 50.0, 0.01: 90.0, 0.1: 100.0, float("inf"): 100.0}
    assert quantile(0.5, buckets) == pytest.approx(0.001)
    assert quantile(0.7, buckets) == pytest.approx(0.001 + 0.009 * 20 / 40)
    assert quantile(0.99, buckets) == pytest.approx(0.01 + 0.09 * 9 / 10)
    assert quantile(0.99, {0.1: 0.0, float("inf"): 0.0}) is None


def test_a_rank_in_the_last_bucket_is_the_largest_finite_bound():
    assert quantile(0.99, {0.1: 50.0, float("inf"): 100.0}) == pytest.approx(0.1)


def test_stages_summarised_from_the_converters_metrics_page():
    metrics = ConverterMetrics(process_metrics=False)
    for _ in range(99):
        metrics.batch_stage("flush", 0.002)
        metrics.batch_stage("convert", 0.0003)
    metrics.batch_stage("flush", 0.2)
    metrics.batch_stage("convert", 0.0003)
    metrics.batch_stage("poll", 0.9)  # idle waiting: reported, never the holder
    summary = summarise_stages(generate_latest(metrics.registry).decode())
    assert list(summary) == ["poll", "convert", "flush"]
    assert summary["flush"]["batches"] == 100
    assert summary["flush"]["mean_ms"] == pytest.approx((99 * 2 + 200) / 100, abs=0.01)
    assert 1.0 <= summary["flush"]["p50_ms"] <= 2.5  # within the bucket holding 2 ms
    assert 0.25 <= summary["convert"]["p99_ms"] <= 0.5
    assert holder(summary) == "flush"
    assert summary["flush"]["slow"] == 1  # the one 200 ms flush
    assert summary["convert"]["slow"] == 0


def test_slow_batches_are_counted_at_a_bound_the_histogram_has():
    assert SLOW_BATCH_S in STAGE_SECONDS_BUCKETS
    buckets = {0.01: 90.0, 0.05: 97.0, 0.1: 99.0, float("inf"): 100.0}
    assert slower_than(0.05, buckets) == 3
    assert slower_than(0.1, buckets) == 1
    assert slower_than(0.07, buckets) is None  # not a bound: the count would be a guess


def test_median_over_runs_per_stage_and_statistic():
    runs = [
        {"flush": {"batches": 10, "mean_ms": 1.0, "p50_ms": 1.0, "p99_ms": 5.0, "slow": 0}},
        {"flush": {"batches": 30, "mean_ms": 3.0, "p50_ms": 2.0, "p99_ms": 50.0, "slow": 2}},
        {"flush": {"batches": 20, "mean_ms": 2.0, "p50_ms": None, "p99_ms": 9.0, "slow": 1}},
    ]
    assert median_over_runs(runs) == {"flush": {"batches": 20, "mean_ms": 2.0, "p50_ms": 1.5, "p99_ms": 9.0, "slow": 1}}


def test_stage_totals_sum_each_stage_over_a_run():
    metrics = ConverterMetrics(process_metrics=False)
    metrics.batch_stage("commit", 0.25)
    metrics.batch_stage("commit", 0.5)
    metrics.batch_stage("flush", 0.125)
    assert stage_totals(metrics) == {"poll": 0.0, "convert": 0.0, "produce": 0.0, "flush": 0.125, "commit": 0.75}
