"""kdp.devstack.lag_exporter: its series from given offsets (the pure core), and Kafka unreachable as `up` 0.

tests/integration/test_monitoring_path.py runs it against the real stack, scraped by a real Prometheus.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kdp.devstack.lag_exporter import SERIES, ClusterOffsets, LagCollector, lag_metrics


def samples(metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in metrics for s in family.samples}


def scrape(read) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(LagCollector(read))
    return samples(text_string_to_metric_families(generate_latest(registry).decode()))


def test_lag_is_the_high_watermark_minus_the_committed_offset_per_partition_and_topic():
    offsets = ClusterOffsets(
        committed={
            "kdp-converter": {("user-login", 0): 100, ("user-login", 1): 40, ("gone", 0): 5},
            "team": {("processed-data", 0): 900},
        },
        high={("user-login", 0): 150, ("user-login", 1): 40, ("processed-data", 0): 800},
    )
    found = samples(lag_metrics(offsets))
    group = ("group_id", "kdp-converter")
    assert found[(SERIES[0], (group, ("partition_id", "0"), ("topic_name", "user-login")))] == 50
    assert found[(SERIES[0], (group, ("partition_id", "1"), ("topic_name", "user-login")))] == 0
    assert found[(SERIES[1], (group, ("topic_name", "user-login")))] == 50
    assert found[(SERIES[2], (group, ("topic_name", "user-login")))] == 140
    # A committed offset past the high watermark (a truncated log) is no negative lag; no watermark, no series.
    assert found[(SERIES[1], (("group_id", "team"), ("topic_name", "processed-data")))] == 0
    assert not [key for key in found if ("topic_name", "gone") in key[1]]
    assert found[("kminion_exporter_up", ())] == 1


def test_an_incomplete_read_is_up_0_with_what_was_read():
    offsets = ClusterOffsets(committed={"g": {("t", 0): 1}}, high={("t", 0): 3}, complete=False)
    found = samples(lag_metrics(offsets))
    assert found[("kminion_exporter_up", ())] == 0
    assert found[(SERIES[1], (("group_id", "g"), ("topic_name", "t")))] == 2


def test_kafka_unreachable_is_up_0_and_no_lag():
    def unreachable() -> ClusterOffsets:
        raise ConnectionError("Kafka is away")

    assert scrape(unreachable) == {("kminion_exporter_up", ()): 0.0}


def test_each_scrape_reads_the_offsets_again():
    reads = iter(
        [ClusterOffsets({"g": {("t", 0): 0}}, {("t", 0): 10}), ClusterOffsets({"g": {("t", 0): 0}}, {("t", 0): 25})]
    )
    key = (SERIES[1], (("group_id", "g"), ("topic_name", "t")))
    registry = CollectorRegistry()
    registry.register(LagCollector(lambda: next(reads)))
    first = samples(text_string_to_metric_families(generate_latest(registry).decode()))
    second = samples(text_string_to_metric_families(generate_latest(registry).decode()))
    assert (first[key], second[key]) == (10, 25)
