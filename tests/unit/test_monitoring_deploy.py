"""The monitoring files under deploy/ against the metrics really exported.

Grafana cannot be had on these machines, so the dashboard is read as data: every query of every panel may
only name series that `streaming.observe.metrics` exports, that Dagster runs push (`streaming.observe.metrics_push`,
and the
Pushgateway's own per-group series), that the lag exporter serves (`kdp.devstack.lag_exporter`, kminion's names),
that the alert rules record, or Prometheus's own `up`.
Prometheus's `promtool` (Debian's `prometheus` package) checks the scrape configurations and the rules and runs
the rules' unit tests; without it those tests skip, saying so.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kdp.devstack import lag_exporter
from kdp.devstack.monitoring import MonitoringPorts, prometheus_config
from streaming.observe.metrics import ConverterMetrics
from streaming.observe.metrics_push import PUSH_JOB, MetricsPusher
from streaming.settings import Settings
from streaming.topics import CONVERTER_GROUP

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "kdp-converter.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian: apt-get install prometheus)"
)

#: Series that Prometheus makes itself for every target.
PROMETHEUS_OWN = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
#: Series that the Pushgateway adds to every group pushed to it.
PUSHGATEWAY_OWN = {"push_time_seconds", "push_failure_time_seconds"}
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right"}
_KEYWORDS |= {"inf", "nan"}


#: The sample names each metric type exposes, by the suffixes prometheus_client gives them.
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "info": ("_info",),
}


def exported_names(metrics: ConverterMetrics) -> set[str]:
    """Every series name the endpoint can expose, including labelled series not yet set (a lag gauge
    before the first statistics): what a dashboard or an alert rule may query."""
    names: set[str] = set()
    for family in metrics.registry.collect():
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects (functions, keywords, labels and ranges left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', "", expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges and subqueries, $__rate_interval included
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)  # label lists
    names = set()
    for match in re.finditer(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        following = expr[match.end() :].lstrip()
        if following.startswith("(") or match.group().lower() in _KEYWORDS:
            continue  # a function or an aggregation, not a series
        names.add(match.group())
    return names


def unknown_names(expr: str, known: set[str]) -> set[str]:
    return metric_names(expr) - known


@pytest.fixture(scope="module")
def alert_rules() -> dict[str, Any]:
    return yaml.safe_load((PROMETHEUS / "alerts.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def known_names(alert_rules) -> set[str]:
    """What a query may name: the converter's series (scraped or pushed with the push-failure counter), the lag
    exporter's, the rules' recorded series, Prometheus's and the Pushgateway's own."""
    recorded = {rule["record"] for group in alert_rules["groups"] for rule in group["rules"] if "record" in rule}
    metrics = ConverterMetrics()
    MetricsPusher(metrics.registry, "http://pushgateway:9091", mode="sensor", instance="i")
    exported = exported_names(metrics) | set(lag_exporter.SERIES)
    return exported | recorded | PROMETHEUS_OWN | PUSHGATEWAY_OWN


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # a collapsed row keeps its panels inside
    return found


# --- the query parser, on snippets whose answer is known ---------------------------------------------------
@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("sum(rate(kdp_messages_consumed_total[5m]))", {"kdp_messages_consumed_total"}),
        (
            'histogram_quantile(0.99, sum by (le) (rate(kdp_batch_duration_seconds_bucket{job="x"}[$__rate_interval])))',  # noqa: E501
            {"kdp_batch_duration_seconds_bucket"},
        ),
        (
            "sum by (job, instance) (rate(a_total[5m])) == 0 and on (job, instance) sum by (job, instance) (b) > 0",
            {"a_total", "b"},
        ),
        ("deriv(kdp:consumer_lag_messages:sum[10m]) > 0", {"kdp:consumer_lag_messages:sum"}),
        ("x / y > 1e6 unless z offset 5m", {"x", "y", "z"}),
    ],
)
def test_metric_names_reads_promql(expr, names):
    assert metric_names(expr) == names


def test_a_misspelt_metric_is_caught(known_names):
    """The check can fail: a counter without its `_total`, a made-up name."""
    assert unknown_names("sum(rate(kdp_messages_consumed[5m]))", known_names) == {"kdp_messages_consumed"}
    assert unknown_names("kdp_lag_total", known_names) == {"kdp_lag_total"}


# --- Grafana -----------------------------------------------------------------------------------------------
def test_every_panel_queries_only_metrics_the_converter_exports(dashboard, known_names):
    problems = []
    queried = set()
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            names = metric_names(target["expr"])
            queried |= names
            if not names:
                problems.append(f"{panel['title']}: {target['expr']!r} names no metric")
            if names - known_names:
                problems.append(f"{panel['title']}: {sorted(names - known_names)} not exported")
    assert problems == []
    # And the dashboard shows what the issue asks for, not a subset.
    for wanted in (
        "kdp_messages_consumed_total",
        "kdp_records_processed_total",
        "kdp_dead_letters_total",
        "kdp_batches_total",
        "kdp_batches_redone_total",
        "kdp_batch_duration_seconds_bucket",
        "kdp_end_to_end_latency_seconds_bucket",
        "kdp_consumer_lag_messages",
        "kdp_transactions_total",
        "kdp_producer_replacements_total",
        "kdp_consumer_replacements_total",
        "kdp_kafka_broker_rtt_seconds",
        "kdp_kafka_producer_queue_messages",
    ):
        assert wanted in queried, wanted


def test_dashboard_panels_use_the_provisioned_data_source(dashboard):
    provisioned = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uids = {source["uid"] for source in provisioned["datasources"]}
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] in uids, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] in uids, panel["title"]


def test_compose_provisions_grafana_and_prometheus_with_these_files():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    services = compose["services"]
    mounts = {
        name: {volume.split(":")[0]: volume.split(":")[1] for volume in services[name]["volumes"]}
        for name in ("prometheus", "grafana")
    }
    assert mounts["prometheus"]["./deploy/prometheus"] == "/etc/prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    assert mounts["grafana"]["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    dashboards_in_container = mounts["grafana"]["./deploy/grafana/dashboards"]
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "kdp.yml").read_text())
    assert [p["options"]["path"] for p in provider["providers"]] == [dashboards_in_container]
    # The converter serves on the port Prometheus scrapes.
    scrape = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    job = next(j for j in scrape["scrape_configs"] if j["job_name"] == "kdp-converter")
    converter_port = int(services["converter"]["environment"]["KDP_METRICS_PORT"])
    assert [sd["port"] for sd in job["dns_sd_configs"]] == [converter_port]
    assert job["dns_sd_configs"][0]["names"] == ["converter"]


def test_kubernetes_pods_are_annotated_for_scraping_on_the_metrics_port():
    docs = [d for d in yaml.safe_load_all((ROOT / "deploy" / "k8s" / "converter-deployment.yaml").read_text()) if d]
    config_map = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    template = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]
    port = Settings.from_env(config_map).metrics_port
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == port
    assert annotations["prometheus.io/path"] == "/metrics"
    ports = template["spec"]["containers"][0]["ports"]
    assert {"name": "metrics", "containerPort": port, "protocol": "TCP"} in ports


# --- Prometheus: the rules and configurations, by its own tool ---------------------------------------------
def test_alert_rules_name_only_exported_metrics(alert_rules, known_names):
    problems = []
    for group in alert_rules["groups"]:
        for rule in group["rules"]:
            names = metric_names(rule["expr"])
            if not names or names - known_names:
                problems.append(f"{rule.get('alert') or rule.get('record')}: {sorted(names - known_names)}")
    assert problems == []
    alerts = {rule["alert"] for group in alert_rules["groups"] for rule in group["rules"] if "alert" in rule}
    assert {
        "KdpConsumerLagGrowing",
        "KdpDeadLetterRatioHigh",
        "KdpConverterNoProgress",
        "KdpConverterStuck",
        "KdpLagExporterDown",
        "KdpProducerReplacedRepeatedly",
        "KdpMetricsPushFailing",
        "KdpPushgatewayDown",
    } <= alerts


def rules_by_name(alert_rules) -> dict[str, dict[str, Any]]:
    return {rule.get("alert") or rule["record"]: rule for group in alert_rules["groups"] for rule in group["rules"]}


def test_lag_alerts_read_only_the_exporter_so_they_fire_without_a_converter(alert_rules):
    """No series of `kdp stream` may feed the lag alerts: they would go silent exactly when no converter runs."""
    rules = rules_by_name(alert_rules)
    converter_series = exported_names(ConverterMetrics())
    for name in ("KdpConsumerLagGrowing", "KdpConverterNoProgress"):
        recorded = metric_names(rules[name]["expr"])
        sources = set().union(*(metric_names(rules[r]["expr"]) for r in recorded if r in rules))
        assert sources and sources <= set(lag_exporter.SERIES), (name, sources)
        assert not (sources | recorded) & converter_series, name
    # They watch the converter group, named where the code names it.
    for record in ("kdp:group_lag_messages:max", "kdp:group_committed_offsets:max"):
        assert f'group_id="{CONVERTER_GROUP}"' in rules[record]["expr"], record


def scrape_jobs(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in config["scrape_configs"]}


def test_every_scrape_configuration_has_the_jobs_the_rules_name(alert_rules):
    """Compose, Kubernetes and `kdp stack up --monitoring` name their jobs alike; the Pushgateway's job keeps the
    pushed labels (honor_labels), or every pushed series would be relabelled job="pushgateway"."""
    named = set()
    for rule in rules_by_name(alert_rules).values():
        named |= set(re.findall(r'job="([^"]+)"', rule["expr"]))
    assert named == {"kafka-lag", "pushgateway", "kdp-converter"}
    configs = {
        "compose": yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text()),
        "kubernetes": yaml.safe_load((PROMETHEUS / "kubernetes-pods.yml").read_text()),
        "local": prometheus_config(MonitoringPorts(), PROMETHEUS / "alerts.yml"),
    }
    for where, config in configs.items():
        jobs = scrape_jobs(config)
        assert named <= set(jobs), where
        assert jobs["pushgateway"].get("honor_labels") is True, where
        assert not jobs["kafka-lag"].get("honor_labels"), where
        assert PUSH_JOB not in jobs, where  # pushed series keep a job of their own, never a scrape job's


def test_kubernetes_monitoring_pods_are_scraped_by_their_jobs():
    docs = [d for d in yaml.safe_load_all((ROOT / "deploy" / "k8s" / "monitoring.yaml").read_text()) if d]
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    jobs = scrape_jobs(yaml.safe_load((PROMETHEUS / "kubernetes-pods.yml").read_text()))
    for job, deployment in (("kafka-lag", "kdp-kminion"), ("pushgateway", "kdp-pushgateway")):
        template = deployments[deployment]["spec"]["template"]
        app = template["metadata"]["labels"]["app.kubernetes.io/name"]
        keep = next(r for r in jobs[job]["relabel_configs"] if "app_kubernetes_io_name" in r["source_labels"][0])
        assert keep["regex"] == app, job
        annotations = template["metadata"]["annotations"]
        port = int(annotations["prometheus.io/port"])
        assert annotations["prometheus.io/scrape"] == "true"
        assert port in [p["containerPort"] for p in template["spec"]["containers"][0]["ports"]], job


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=PROMETHEUS, check=False, timeout=60)


@needs_promtool
def test_promtool_accepts_the_rules():
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_accepts_the_compose_scrape_configuration():
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_accepts_the_kubernetes_scrape_configuration():
    result = promtool("check", "config", "kubernetes-pods.yml")
    if "field kubernetes_sd_configs not found" in result.stdout + result.stderr:
        pytest.skip("this promtool is built without Kubernetes service discovery (Debian's package)")
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_alert_rules_pass_their_unit_tests():
    """alerts.test.yml: each alert fires on its synthetic story at the stated time, and not before."""
    result = promtool("test", "rules", "alerts.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr
