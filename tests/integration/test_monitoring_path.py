"""The monitoring path end to end, with no converter running: real Prometheus, lag exporter and Pushgateway.

What `kdp stack up --monitoring` starts (`kdp.devstack.monitoring.Monitoring`, on free ports under the test's own
folder; the lag exporter is kminion when it is on PATH, else `kdp.devstack.lag_exporter`) watches the real stack:

1. with no converter running, 10,000 events arrive on a source topic the converter group has committed at 0;
   the lag alerts, computed from the exporter's series only, become pending or firing;
2. a sensor-mode conversion (the real sensor's tick, then the `convert_ranges` run it requests, in process)
   converts them and pushes its counters to the Pushgateway: Prometheus holds them, labelled `mode="sensor"`,
   equal to the run's own figures; with the lag back at 0 the lag alert ends.

The rules are deploy/prometheus/alerts.yml with their expressions untouched; only every `for:` is 2 s and
Prometheus scrapes and evaluates every second, so the alerts move in seconds instead of minutes (the `for:`
durations are covered by `promtool test rules` in tests/unit/test_monitoring_deploy.py). The lag rules watch the
converter group `kdp-converter` (streaming.topics), so this test uses that group, on a topic of its own; a
`kdp stream` of that group running on the same stack at the same time would make the run yield to it and fail.

Everything started here is stopped here. Skips, saying why, where Prometheus or the Pushgateway is not installed
(Debian: `apt-get install prometheus prometheus-pushgateway`).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from confluent_kafka import Consumer, TopicPartition
from kafka_io import create_topics
from metrics_run import free_port
from registry_io import register_output_schema

from kdp.devstack.errors import StackError
from kdp.devstack.monitoring import ALERT_RULES, Binaries, Monitoring, MonitoringPorts
from orchestration.definitions import defs
from orchestration.defs.conversion.sensors import conversion_sensor
from orchestration.defs.resources import KafkaResource, SchemaRegistryResource, environment_bound
from streaming.generator.events import EventFactory, IrregularityRates
from streaming.generator.producer import generate
from streaming.observe.metrics_push import PUSH_JOB
from streaming.settings import Settings
from streaming.topics import CONVERTER_GROUP

pytestmark = pytest.mark.integration

EVENTS = 10_000
ACTIVE = {"pending", "firing"}


def binaries_or_skip() -> None:
    try:
        Binaries.find()
    except StackError as missing:
        pytest.skip(str(missing))


def fast_rules(folder: Path) -> Path:
    """deploy/prometheus/alerts.yml with every `for:` at 2 s; each expression as it is."""
    rules = yaml.safe_load(ALERT_RULES.read_text(encoding="utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rule["for"] = "2s"
    path = folder / "alerts-fast.yml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    return path


class PrometheusApi:
    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str, **params: str) -> Any:
        query = "?" + urllib.parse.urlencode(params) if params else ""
        with urllib.request.urlopen(self.url + path + query, timeout=5) as response:
            return json.loads(response.read())["data"]

    def value(self, expr: str) -> float | None:
        result = self.get("/api/v1/query", query=expr)["result"]
        return float(result[0]["value"][1]) if result else None

    def alert_states(self, topic: str) -> dict[str, str]:
        alerts = self.get("/api/v1/alerts")["alerts"]
        return {a["labels"]["alertname"]: a["state"] for a in alerts if a["labels"].get("topic_name") == topic}

    def wait_for(self, done: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if done():
                    return
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.5)
        raise AssertionError(f"Prometheus: no {what} within {timeout:.0f} s; alerts: {self.get('/api/v1/alerts')}")


@pytest.fixture
def monitoring(stack, tmp_path) -> Iterator[Monitoring]:
    binaries_or_skip()
    ports = MonitoringPorts(prometheus=free_port(), pushgateway=free_port(), lag_exporter=free_port())
    started = Monitoring(tmp_path, ports, rules=fast_rules(tmp_path), interval="1s")
    try:
        started.up({"KDP_BOOTSTRAP": stack.bootstrap})
        yield started
    finally:
        started.down()
        assert [c.name for c in started.status() if c.pid] == []


@pytest.fixture
def source_topic(stack, monkeypatch) -> str:
    """A topic of this test's own, read by the converter group, whose offset 0 is committed: the group exists and
    lags as soon as events arrive, with no converter running."""
    run = uuid.uuid4().hex[:8]
    names = {"source": f"monitored-{run}", "output": f"monitored-{run}-processed", "dlq": f"monitored-{run}.dlq"}
    create_topics(stack.bootstrap, list(names.values()), partitions=1)
    for variable, value in {
        "KDP_BOOTSTRAP": stack.bootstrap,
        "KDP_REGISTRY_URL": stack.registry_url,
        "KDP_SOURCE_TOPIC": names["source"],
        "KDP_OUTPUT_TOPIC": names["output"],
        "KDP_DLQ_TOPIC": names["dlq"],
        "KDP_GROUP_ID": CONVERTER_GROUP,
        "KDP_TRANSACTIONAL_ID": f"monitored-{run}",
        "KDP_DELIVERY": "at-least-once",
    }.items():
        monkeypatch.setenv(variable, value)
    register_output_schema(Settings.from_env())  # the control plane's part: the sensor's run only looks it up
    committer = Consumer({"bootstrap.servers": stack.bootstrap, "group.id": CONVERTER_GROUP})
    try:
        committer.commit(offsets=[TopicPartition(names["source"], 0, 0)], asynchronous=False)
    finally:
        committer.close()
    return names["source"]


def test_lag_alerts_fire_without_a_converter_and_sensor_runs_push_their_counters(
    stack, monitoring, source_topic, monkeypatch
):
    prometheus = PrometheusApi(monitoring.prometheus_url)
    lag = f'kdp:group_lag_messages:max{{topic_name="{source_topic}"}}'
    # A first sample at 0: the growth that follows is what deriv() sees.
    prometheus.wait_for(lambda: prometheus.value(lag) == 0, "lag of 0 read by the exporter")
    assert prometheus.alert_states(source_topic) == {}

    factory = EventFactory(24, IrregularityRates.with_malformed(0.02))
    assert generate({"bootstrap.servers": stack.bootstrap}, source_topic, factory, count=EVENTS).ok

    # No converter runs: the lag the exporter reads from Kafka alone makes the lag alerts go off.
    prometheus.wait_for(lambda: prometheus.value(lag) == EVENTS, f"lag of {EVENTS}")
    prometheus.wait_for(
        lambda: {"KdpConsumerLagGrowing", "KdpConverterNoProgress"} <= set(prometheus.alert_states(source_topic)),
        "lag alerts",
    )
    states = prometheus.alert_states(source_topic)
    exporter = Binaries.find().kminion or "kdp/devstack/lag_exporter.py"
    print(f"[monitoring] exporter {exporter}; no converter, lag {EVENTS}: {states}")
    assert states["KdpConsumerLagGrowing"] in ACTIVE and states["KdpConverterNoProgress"] in ACTIVE, states
    assert prometheus.value('kminion_exporter_up{job="kafka-lag"}') == 1
    assert "KdpLagExporterDown" not in {a["labels"]["alertname"] for a in prometheus.get("/api/v1/alerts")["alerts"]}

    # The sensor's tick and the run it requests, pushing to the Pushgateway.
    monkeypatch.setenv("KDP_PUSHGATEWAY_URL", monitoring.pushgateway_url)
    instance = dg.DagsterInstance.ephemeral()
    tick = conversion_sensor(
        dg.build_sensor_context(instance=instance, resources={"kafka": environment_bound(KafkaResource)})
    )
    [request] = tick.run_requests
    outcome = defs.resolve_job_def("convert_ranges").execute_in_process(
        run_config=request.run_config,
        resources={"kafka": environment_bound(KafkaResource), "registry": environment_bound(SchemaRegistryResource)},
        instance=instance,
        tags=request.tags,
    )
    assert outcome.success
    [materialization] = outcome.asset_materializations_for_node("processed_data")
    figures = {name: materialization.metadata[name].value for name in ("consumed", "processed", "dead_lettered")}
    assert figures["consumed"] == EVENTS and figures["dead_lettered"] > 0
    assert materialization.metadata["metrics_push_failures"].value == 0
    assert materialization.metadata["metrics_pushes"].value >= 2

    pushed = f'{{job="{PUSH_JOB}", mode="sensor", instance="dagster-{source_topic}.0"}}'
    prometheus.wait_for(lambda: prometheus.value(f"kdp_messages_consumed_total{pushed}") == EVENTS, "pushed counters")
    assert prometheus.value(f"kdp_records_processed_total{pushed}") == figures["processed"]
    assert prometheus.value(f"sum(kdp_dead_letters_total{pushed})") == figures["dead_lettered"]
    assert prometheus.value(f"kdp_metrics_push_failures_total{pushed}") == 0
    print(f"[monitoring] sensor run {figures}, pushed and scraped under {pushed}")

    # The group has caught up: the exporter reads 0 and the lag alert ends.
    prometheus.wait_for(lambda: prometheus.value(lag) == 0, "lag back at 0")
    prometheus.wait_for(lambda: "KdpConsumerLagGrowing" not in prometheus.alert_states(source_topic), "lag alert end")
