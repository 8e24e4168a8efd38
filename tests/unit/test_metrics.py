"""The converter's Prometheus metrics: what each observer call and librdkafka statistics document exports,
the HTTP endpoint, the port setting, and the converter's calls at its batch boundaries (against fakes)."""

from __future__ import annotations

import json
import socket
import urllib.request
from collections.abc import Iterator

import pytest
from fakes.rig import NOW_MS, Rig, login
from prometheus_client.parser import text_string_to_metric_families

from kdp.cli import main
from streaming.conversion.convert import Lanes
from streaming.observe.metrics import ConverterMetrics, MetricsPortInUse, partition_lag
from streaming.observe.observer import BatchReport
from streaming.observe.running_insights import RunningInsights
from streaming.settings import Settings, SettingsError


def value(metrics: ConverterMetrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    assert found is not None, f"{name}{labels} is not exported"
    return found


def report(
    consumed: int, processed: int, reasons: dict[str, int] | None = None, *, seconds: float = 0.1, **fields: object
) -> BatchReport:
    """A delivered batch's report: `processed` records and the `reasons` of its dead letters."""
    tallies = RunningInsights()
    for _ in range(processed):
        tallies.add_record("android", "CA")
    for reason, count in (reasons or {}).items():
        for _ in range(count):
            tallies.add_rejection(reason)
    assert consumed == tallies.processed + tallies.dead_lettered
    defaults: dict[str, object] = dict(
        bytes_in=0,
        processed_at_ms=0,
        oldest_source_ms=None,
        newest_source_ms=None,
        next_offsets={("t", 0): consumed},
        careful=False,
    )
    return BatchReport(consumed=consumed, tallies=tallies, seconds=seconds, **{**defaults, **fields})  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- observer calls ------------------------------------------------------------------------------------------
def test_a_delivered_batch_adds_its_tallies():
    metrics = ConverterMetrics(process_metrics=False)
    metrics.batch_delivered(report(10, 7, {"invalid_json": 2, "empty": 1}, bytes_in=900, seconds=0.2))
    metrics.batch_delivered(report(5, 5, bytes_in=500, seconds=0.1))
    assert value(metrics, "kdp_messages_consumed_total") == 15
    assert value(metrics, "kdp_records_processed_total") == 12
    assert value(metrics, "kdp_dead_letters_total", reason="invalid_json") == 2
    assert value(metrics, "kdp_dead_letters_total", reason="empty") == 1
    assert value(metrics, "kdp_dead_letters_total", reason="missing_field") == 0  # exists before its first
    assert value(metrics, "kdp_bytes_consumed_total") == 1400
    assert value(metrics, "kdp_batches_total") == 2
    assert value(metrics, "kdp_batch_duration_seconds_count") == 2
    assert value(metrics, "kdp_batch_duration_seconds_sum") == pytest.approx(0.3)


def test_latency_is_commit_time_minus_the_oldest_source_timestamp():
    metrics = ConverterMetrics(process_metrics=False, clock=lambda: 1_003.5)
    metrics.batch_delivered(report(1, 1, oldest_source_ms=1_000_000, newest_source_ms=1_002_000))
    metrics.batch_delivered(report(1, 1, oldest_source_ms=None))  # a source without timestamps
    assert value(metrics, "kdp_end_to_end_latency_seconds_count") == 1
    assert value(metrics, "kdp_end_to_end_latency_seconds_sum") == pytest.approx(3.5)
    assert value(metrics, "kdp_end_to_end_latency_seconds_bucket", le="2.5") == 0
    assert value(metrics, "kdp_end_to_end_latency_seconds_bucket", le="5.0") == 1


def test_redos_transactions_and_replacements_are_counted():
    metrics = ConverterMetrics(process_metrics=False)
    metrics.batch_redone("timeout", {("t", 0): 5}, learned=False)
    metrics.transaction_aborted("timeout")
    metrics.transaction_committed(1)
    metrics.transaction_committed(2)
    metrics.producer_replaced("fatal: INVALID_TXN_STATE", fenced=False)
    metrics.consumer_replaced("fatal")
    metrics.consumer_replaced("fatal")
    assert value(metrics, "kdp_batches_redone_total") == 1
    assert value(metrics, "kdp_transactions_total", outcome="committed") == 2
    assert value(metrics, "kdp_transactions_total", outcome="aborted") == 1
    assert value(metrics, "kdp_producer_replacements_total") == 1
    assert value(metrics, "kdp_consumer_replacements_total") == 2


# --- librdkafka statistics (shaped as librdkafka 2.x emits them; fields trimmed) -----------------------------
def partition(number: int, **fields: object) -> dict[str, object]:
    base = {"partition": number, "desired": True, "fetch_state": "active", "app_offset": -1001}
    base.update(committed_offset=-1001, ls_offset=-1001, hi_offset=-1001, consumer_lag=-1)
    return {**base, **fields}


def consumer_stats(partitions: list[dict[str, object]], rtt_avg_us: int = 2000) -> str:
    return json.dumps(
        {
            "name": "rdkafka#consumer-1",
            "type": "consumer",
            "brokers": {
                "127.0.0.1:9092/1": {
                    "nodeid": 1,
                    "source": "learned",
                    "outbuf_cnt": 3,
                    "rtt": {"avg": rtt_avg_us, "p99": 4000, "cnt": 5},
                },
                "127.0.0.1:9092/bootstrap": {"nodeid": -1, "source": "configured", "outbuf_cnt": 0, "rtt": {}},
                "GroupCoordinator": {"nodeid": -1, "source": "logical", "outbuf_cnt": 0, "rtt": {"cnt": 1}},
            },
            "topics": {"user-login": {"partitions": {str(p["partition"]): p for p in partitions}}},
        }
    )


def test_lag_per_partition_from_the_last_stable_offset_and_the_position():
    metrics = ConverterMetrics(process_metrics=False)
    metrics.on_statistics(
        consumer_stats(
            [
                partition(0, app_offset=900, committed_offset=800, ls_offset=1000, hi_offset=1002),
                # Exactly-once: the transaction commits offsets, the consumer's committed_offset stays behind.
                partition(1, app_offset=500, committed_offset=10, ls_offset=500),
                # Assigned, nothing consumed yet: the group's commit is the position.
                partition(2, committed_offset=40, ls_offset=100),
                partition(-1, desired=False, fetch_state="none"),  # librdkafka's internal unassigned partition
            ]
        )
    )
    assert value(metrics, "kdp_consumer_lag_messages", topic="user-login", partition="0") == 100
    assert value(metrics, "kdp_consumer_lag_messages", topic="user-login", partition="1") == 0
    assert value(metrics, "kdp_consumer_lag_messages", topic="user-login", partition="2") == 60
    assert (
        metrics.registry.get_sample_value("kdp_consumer_lag_messages", {"topic": "user-login", "partition": "-1"})
        is None
    )


def test_a_revoked_partition_loses_its_lag_series():
    metrics = ConverterMetrics(process_metrics=False)
    metrics.on_statistics(
        consumer_stats([partition(0, app_offset=1, ls_offset=5), partition(1, app_offset=1, ls_offset=9)])
    )
    metrics.on_statistics(
        consumer_stats([partition(0, app_offset=5, ls_offset=5), partition(1, fetch_state="stopped", ls_offset=9)])
    )
    assert value(metrics, "kdp_consumer_lag_messages", topic="user-login", partition="0") == 0
    assert (
        metrics.registry.get_sample_value("kdp_consumer_lag_messages", {"topic": "user-login", "partition": "1"})
        is None
    )


@pytest.mark.parametrize(
    ("fields", "lag"),
    [
        ({"app_offset": 3, "ls_offset": 10}, 7),
        ({"app_offset": 3, "ls_offset": -1001}, None),  # end not known yet
        ({"ls_offset": 10}, None),  # position not known yet
        ({"app_offset": 12, "ls_offset": 10}, 0),  # statistics taken between two fetches
        ({"app_offset": 3, "ls_offset": 10, "desired": False}, None),
        ({"app_offset": 3, "ls_offset": 10, "fetch_state": "none"}, None),
    ],
)
def test_partition_lag(fields, lag):
    assert partition_lag(partition(0, **fields)) == lag


def test_brokers_round_trip_and_queue_depth():
    metrics = ConverterMetrics(process_metrics=False)
    metrics.on_statistics(consumer_stats([]))
    assert value(metrics, "kdp_kafka_broker_rtt_seconds", client="consumer", broker="1", quantile="avg") == 0.002
    assert value(metrics, "kdp_kafka_broker_rtt_seconds", client="consumer", broker="1", quantile="0.99") == 0.004
    assert value(metrics, "kdp_kafka_broker_outbuf_requests", client="consumer", broker="1") == 3
    # The bootstrap and coordinator entries are not brokers of their own.
    assert (
        metrics.registry.get_sample_value("kdp_kafka_broker_outbuf_requests", {"client": "consumer", "broker": "-1"})
        is None
    )
    producer = {"type": "producer", "msg_cnt": 1200, "msg_size": 345_000, "brokers": {}}
    metrics.on_statistics(json.dumps(producer))
    assert value(metrics, "kdp_kafka_producer_queue_messages") == 1200
    assert value(metrics, "kdp_kafka_producer_queue_bytes") == 345_000
    # The consumer's broker left the cluster: its series go.
    metrics.on_statistics(json.dumps({"type": "consumer", "brokers": {}, "topics": {}}))
    assert (
        metrics.registry.get_sample_value("kdp_kafka_broker_outbuf_requests", {"client": "consumer", "broker": "1"})
        is None
    )


def test_unreadable_statistics_are_logged_not_raised(caplog):
    metrics = ConverterMetrics(process_metrics=False)
    metrics.on_statistics("{not json")
    metrics.on_statistics(json.dumps({"type": "consumer", "topics": {"t": {"partitions": {"0": {"partition": "x"}}}}}))
    assert "unreadable librdkafka statistics" in caplog.text


def test_client_config_asks_librdkafka_for_statistics():
    metrics = ConverterMetrics(process_metrics=False)
    config = metrics.client_config()
    assert config["statistics.interval.ms"] > 0
    assert config["stats_cb"] == metrics.on_statistics


# --- the endpoint and its setting --------------------------------------------------------------------------
def test_serves_prometheus_text_format_over_http():
    metrics = ConverterMetrics()
    metrics.batch_delivered(report(3, 2, {"empty": 1}))
    port = free_port()
    stop = metrics.serve(port, "127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
    finally:
        stop()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("kdp_messages_consumed_total", ())] == 3
    assert samples[("kdp_dead_letters_total", (("reason", "empty"),))] == 1
    assert ("process_resident_memory_bytes", ()) in samples


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("0.0.0.0", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_a_port_in_use_fails_naming_the_setting(busy_port):
    with pytest.raises(MetricsPortInUse, match=rf"KDP_METRICS_PORT={busy_port} \(--metrics-port\).*already in use"):
        ConverterMetrics().serve(busy_port)


def test_kdp_stream_with_a_port_in_use_stops_before_touching_kafka(busy_port, capsys, monkeypatch):
    monkeypatch.setenv("KDP_BOOTSTRAP", "127.0.0.1:1")  # nothing listens there: the port check comes first
    assert main(["stream", "--metrics-port", str(busy_port)]) == 2
    assert f"KDP_METRICS_PORT={busy_port}" in capsys.readouterr().err


def test_metrics_port_setting():
    assert Settings.from_env({}).metrics_port is None
    assert Settings.from_env({"KDP_METRICS_PORT": "9464"}).metrics_port == 9464
    assert Settings.from_env({"KDP_METRICS_PORT": "9464"}, metrics_port=9000).metrics_port == 9000
    for bad in ("metrics", "0", "70000"):
        with pytest.raises(SettingsError, match="KDP_METRICS_PORT"):
            Settings.from_env({"KDP_METRICS_PORT": bad})


# --- the converter's calls at its batch boundaries, on the in-memory broker ---------------------------------
@pytest.mark.parametrize("mode", ["at-least-once", "exactly-once"])
def test_the_converter_feeds_the_metrics_the_same_counts_as_its_summary(mode):
    """One batch fails mid-way and is redone; a producer is fenced and replaced (exactly-once); a consumer
    breaks and is replaced. The counters still equal the run's own summary."""
    rig = Rig(mode, partitions=2, batch_size=10)
    metrics = ConverterMetrics(process_metrics=False, clock=lambda: NOW_MS / 1000 + 2)
    rig.observer = metrics  # type: ignore[assignment]
    for partition in (0, 1):
        values = [login(partition * 1000 + i, valid=i % 4 != 0) for i in range(25)]
        rig.broker.write(rig.settings.source_topic, values, partition=partition, timestamp=NOW_MS - 5000)
    if mode == "exactly-once":
        rig.broker.faults.abort_commits = 1  # the first transaction is aborted at its commit, then redone
        rig.broker.faults.on_commit.append(lambda: rig.broker.fence("converter-a"))  # fenced after a batch
    else:
        rig.broker.faults.time_out_deliveries = 1  # the first batch's first delivery times out, then redone
    rig.broker.faults.on_commit.append(lambda: setattr(rig.broker.faults, "break_consumers", 1))
    converter = rig.converter()
    converter.subscribe()
    summary = converter.run(until_caught_up=True)
    converter.close()

    counts = metrics.counts()
    assert summary.consumed == 50 and summary.dead_lettered > 0
    assert (counts["consumed"], counts["processed"], counts["dead_lettered"]) == (
        summary.consumed,
        summary.processed,
        summary.dead_lettered,
    )
    assert counts["dead_letters_by_reason"] == dict(summary.insights.reasons)
    by_engine = {name: counts[f"by_engine_{name}"] for name in Lanes._fields}
    assert by_engine == {name: summary.by_engine[name] for name in Lanes._fields}
    assert sum(by_engine.values()) == summary.consumed
    assert (counts["batches"], counts["redone_batches"]) == (summary.batches, summary.redone_batches)
    assert counts["redone_batches"] >= 1
    assert counts["consumer_replacements"] == 1
    if mode == "exactly-once":
        assert counts["transactions_committed"] == summary.batches
        assert counts["transactions_aborted"] >= 1
        assert counts["producer_replacements"] == 1
    else:
        assert (counts["transactions_committed"], counts["transactions_aborted"]) == (0, 0)
    # Source timestamps 5 s before processing, committed 2 s after it: 7 s, one observation per batch.
    assert value(metrics, "kdp_end_to_end_latency_seconds_count") == summary.batches
    assert value(metrics, "kdp_end_to_end_latency_seconds_sum") == pytest.approx(7.0 * summary.batches)
    assert value(metrics, "kdp_batch_duration_seconds_count") == summary.batches


def test_counts_for_runs_too_short_to_scrape():
    metrics = ConverterMetrics(process_metrics=False)
    metrics.batch_delivered(report(10, 7, {"invalid_json": 2, "empty": 1}, lanes=Lanes(6, 3, 1)))
    metrics.transaction_committed(1)
    metrics.batch_redone("timeout", {("t", 0): 0}, learned=False)
    metrics.transaction_aborted("timeout")
    assert metrics.counts() == {
        "consumed": 10,
        "processed": 7,
        "by_engine_native": 6,
        "by_engine_fast": 3,
        "by_engine_reference": 1,
        "dead_lettered": 3,
        "dead_letters_by_reason": {"invalid_json": 2, "empty": 1},
        "batches": 1,
        "redone_batches": 1,
        "transactions_committed": 1,
        "transactions_aborted": 1,
        "producer_replacements": 0,
        "consumer_replacements": 0,
    }


def test_stage_timings_and_failed_offset_commits_are_exported():
    metrics = ConverterMetrics(process_metrics=False)
    metrics.batch_stage("flush", 0.004)
    metrics.batch_stage("flush", 0.006)
    metrics.batch_stage("commit", 0.0002)
    metrics.offset_commit_failed("Broker: Request timed out")
    assert value(metrics, "kdp_batch_stage_seconds_count", stage="flush") == 2
    assert value(metrics, "kdp_batch_stage_seconds_sum", stage="flush") == pytest.approx(0.01)
    assert value(metrics, "kdp_batch_stage_seconds_bucket", stage="commit", le="0.00025") == 1
    assert value(metrics, "kdp_batch_stage_seconds_count", stage="poll") == 0  # every stage exported from the start
    assert value(metrics, "kdp_offset_commit_failures_total") == 1


@pytest.mark.parametrize("mode", ["at-least-once", "exactly-once"])
def test_the_converter_times_every_stage_of_its_batches(mode):
    rig = Rig(mode, batch_size=10)
    metrics = ConverterMetrics(process_metrics=False)
    rig.observer = metrics  # type: ignore[assignment]
    rig.broker.write(rig.settings.source_topic, [login(i) for i in range(25)], timestamp=NOW_MS - 5000)
    converter = rig.converter()
    converter.subscribe()
    summary = converter.run(until_caught_up=True)
    converter.close()
    for stage in ("poll", "convert", "produce", "flush", "commit"):
        assert value(metrics, "kdp_batch_stage_seconds_count", stage=stage) == summary.batches == 3, stage
