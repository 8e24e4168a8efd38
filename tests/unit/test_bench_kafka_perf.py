"""Reading the summaries of Kafka's ProducerPerformance and ConsumerPerformance."""

from __future__ import annotations

import pytest

from bench.kafka_perf import parse_consumer_summary, parse_producer_summary

PRODUCER_OUTPUT = """\
556789 records sent, 111357.8 records/sec (27.25 MB/sec), 250.4 ms avg latency, 470.0 ms max latency.
1000000 records sent, 125944.584383 records/sec (25.85 MB/sec), 254.13 ms avg latency, 468.00 ms max latency, \
280 ms 50th, 304 ms 95th, 314 ms 99th, 317 ms 99.9th.
"""

CONSUMER_OUTPUT = """\
start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, \
fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec
2026-11-25 09:56:22:552, 2026-11-25 09:56:23:795, 47.2266, 37.9940, 200000, 160901.0459, 505, 738, 63.9926, \
271002.7100
"""


def test_the_producer_summary_is_the_final_line_with_percentiles() -> None:
    summary = parse_producer_summary(PRODUCER_OUTPUT)
    assert summary["records"] == 1_000_000
    assert summary["msg_per_s"] == pytest.approx(125944.584383)
    assert summary["mb_per_s"] == pytest.approx(25.85 * 1.048576, abs=0.01)  # MiB -> 10^6 bytes
    assert summary["latency_ms"] == {"avg": 254.13, "p50": 280, "p95": 304, "p99": 314, "p99.9": 317, "max": 468.0}


def test_producer_output_without_a_summary_is_an_error() -> None:
    with pytest.raises(ValueError, match="records sent"):
        parse_producer_summary(PRODUCER_OUTPUT.splitlines()[0])


def test_the_consumer_rate_is_over_the_fetch_time_and_the_join_is_kept_apart() -> None:
    summary = parse_consumer_summary(CONSUMER_OUTPUT)
    assert summary["records"] == 200_000
    assert summary["msg_per_s"] == pytest.approx(271002.71)
    assert summary["msg_per_s_with_join"] == pytest.approx(160901.0459)
    assert summary["join_ms"] == 505
    assert summary["fetch_ms"] == 738
    assert summary["mb_per_s"] == pytest.approx(63.9926 * 1.048576, abs=0.01)


def test_consumer_output_without_its_header_is_an_error() -> None:
    with pytest.raises(ValueError, match="start.time"):
        parse_consumer_summary(CONSUMER_OUTPUT.splitlines()[-1])
