"""The arithmetic of the latency and scaling measurements of `make bench`."""

from __future__ import annotations

import pytest

from bench.latency import (
    _without_logical_types,
    distribution,
    percentile,
    split_warm_up,
    summarise_runs,
    tail_split,
)
from bench.scaling import aggregate
from bench.subject import SubjectReport


def test_percentiles_are_nearest_rank() -> None:
    values = list(range(1, 101))  # 1..100
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 99.9) == 100
    assert percentile([7.0], 99.9) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_a_distribution_sorts_its_values_first() -> None:
    summary = distribution([30.0, 10.0, 20.0, 40.0])
    assert summary == {"p50": 20.0, "p99": 40.0, "p99.9": 40.0, "mean": 25.0, "max": 40.0}


def test_timestamps_decode_as_plain_milliseconds() -> None:
    schema = {
        "type": "record",
        "name": "R",
        "fields": [{"name": "t", "type": {"type": "long", "logicalType": "timestamp-millis"}}],
    }
    assert _without_logical_types(schema)["fields"][0]["type"] == {"type": "long"}


def _process(consumed: int, first: float | None, last: float | None, cpu: float = 1.0) -> SubjectReport:
    return SubjectReport("converter", consumed, consumed * 200, first, last, cpu, cpu / 2, None)


def test_scaling_spans_from_the_first_consume_of_any_process_to_the_last_commit_of_any() -> None:
    together = aggregate([_process(600_000, 100.0, 106.0, cpu=6.0), _process(400_000, 101.0, 110.0, cpu=4.0)])
    assert together == {"consumed": 1_000_000, "seconds": 10.0, "msg_per_s": 100_000.0, "cpu_us_per_msg": 10.0}


def test_a_process_that_found_nothing_left_does_not_stretch_the_span() -> None:
    together = aggregate([_process(1_000, 100.0, 101.0), _process(0, None, None, cpu=0.0)])
    assert together["seconds"] == 1.0
    assert together["msg_per_s"] == 1_000.0


def test_repeated_latency_is_summarised_as_min_median_max_of_each_statistic() -> None:
    runs = [{"latency_ms": {"p50": p50, "p99": p99}} for p50, p99 in ((10.0, 31.0), (12.0, 95.0), (11.0, 28.0))]
    assert summarise_runs(runs) == {
        "p50": {"min": 10.0, "median": 11.0, "max": 12.0},
        "p99": {"min": 28.0, "median": 31.0, "max": 95.0},  # one bad run moves the max, not the median
    }
    two = summarise_runs(runs[:2])
    assert two["p99"]["median"] == 63.0  # an even count: the mean of the middle two
    with pytest.raises(ValueError):
        summarise_runs([])


def test_tail_split_says_which_side_of_batch_start_the_slowest_records_waited_on():
    # 100 records a millisecond apart, 10 ms each (2 of them before batch start), and 2 records caught in one stall
    # of 300 ms after their batch started: they are the nearest-rank p99 and above (the 101st of 102).
    timings = [(float(t), t + 2.0, t + 10.0) for t in range(100)]
    timings += [(50.5, 51.5, 351.5), (51.5, 53.5, 351.5)]
    assert tail_split(timings) == {
        "records": 2,
        "to_batch_mean_ms": 1.5,
        "batch_to_visible_mean_ms": 299.0,
        "windows": 1,
    }


def test_tail_split_counts_windows_of_produce_time():
    spread = [(float(t), t + 1.0, t + 100.0) for t in range(0, 1000, 100)]  # ten records, 100 ms apart
    assert tail_split(spread, p=1.0)["windows"] == 4  # 250 ms windows starting at the first record: 0, 1, 2, 3
    with pytest.raises(ValueError):
        tail_split([])


def test_the_warm_up_is_the_records_produced_in_a_runs_first_seconds():
    timings = [(1000.0 + t, 0.0, 0.0) for t in (0, 500, 1999, 2000, 2500)]
    steady, warm_up = split_warm_up(timings, warm_up_s=2.0)
    assert [t[0] for t in warm_up] == [1000.0, 1500.0, 2999.0]
    assert [t[0] for t in steady] == [3000.0, 3500.0]
    assert split_warm_up([]) == ([], [])
