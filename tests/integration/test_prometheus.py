"""A real Prometheus scrapes a real `kdp stream` and evaluates deploy/prometheus/alerts.yml; one alert is made to fire.

The rules are the deployed ones with one change: every `for:` is 0s, so that an alert fires at its first
true evaluation instead of after minutes (the `for:` durations themselves are covered by the rules' unit tests,
`promtool test rules`, in tests/unit/test_monitoring_deploy.py). Prometheus scrapes and evaluates every second.

The story: the converter runs on an empty topic and Prometheus has scraped its zeroed counters; then only
malformed messages arrive, every one becomes a dead letter, and `KdpDeadLetterRatioHigh` fires. What
Prometheus scraped must equal the run's own summary.

Skips, saying why, where the `prometheus` binary is absent (Debian: `apt-get install prometheus`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from confluent_kafka import Producer
from kafka_io import create_topics
from metrics_run import StreamProcess, free_port
from registry_io import register_output_schema
from scenario_settings import scenario_settings

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
PROMETHEUS = shutil.which("prometheus")
MALFORMED = 300


class PrometheusServer:
    """A Prometheus process of this test's own, on a free loopback port, with its data in `home`."""

    def __init__(self, home: Path, target_port: int) -> None:
        rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
        for group in rules["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    rule["for"] = "0s"
        (home / "alerts.yml").write_text(yaml.safe_dump(rules), encoding="utf-8")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": ["alerts.yml"],
            "scrape_configs": [
                {"job_name": "kdp-converter", "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}
            ],
        }
        (home / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
        self.port = free_port()
        self.log = home / "prometheus.log"
        assert PROMETHEUS is not None
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [
                    PROMETHEUS,
                    f"--config.file={home / 'prometheus.yml'}",
                    f"--storage.tsdb.path={home / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def get(self, path: str, **params: str) -> Any:
        url = f"http://127.0.0.1:{self.port}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read()) if path.startswith("/api/") else response.status

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.get("/api/v1/query", query=expr)["data"]["result"]

    def scalar(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None

    def firing(self) -> dict[str, dict[str, Any]]:
        alerts = self.get("/api/v1/alerts")["data"]["alerts"]
        return {a["labels"]["alertname"]: a for a in alerts if a["state"] == "firing"}

    def wait_for(self, done: Callable[[], bool], what: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"prometheus exited: {self.log.read_text()}")
            try:
                if done():
                    return
            except (urllib.error.URLError, ConnectionError):
                pass  # not listening yet
            time.sleep(0.5)
        raise AssertionError(f"Prometheus: no {what} within {timeout:.0f} s; log: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def converter(stack) -> Iterator[tuple[StreamProcess, Any]]:
    settings = scenario_settings(stack.bootstrap, stack.registry_url, "at-least-once", "prometheus")
    create_topics(settings.bootstrap, [settings.source_topic, settings.output_topic, settings.dlq_topic], 1)
    register_output_schema(settings)
    stream = StreamProcess.start(settings)
    try:
        yield stream, settings
    finally:
        if stream.process.poll() is None:
            stream.process.kill()
            stream.process.wait()


@pytest.mark.skipif(PROMETHEUS is None, reason="prometheus not installed (Debian: apt-get install prometheus)")
def test_real_prometheus_scrapes_the_converter_and_the_dead_letter_alert_fires(converter, tmp_path):
    stream, settings = converter
    stream.scrape_until(lambda s: ("kdp_messages_consumed_total", ()) in s, "metrics endpoint")
    prometheus = PrometheusServer(tmp_path, stream.port)
    try:
        prometheus.wait_for(lambda: prometheus.get("/-/ready") == 200, "readiness")
        # A sample of the counters at 0 first: the increase that follows is what rate() sees.
        prometheus.wait_for(
            lambda: prometheus.scalar('kdp_messages_consumed_total{job="kdp-converter"}') == 0,
            "scrape of the converter",
        )
        assert "KdpDeadLetterRatioHigh" not in prometheus.firing()

        producer = Producer({"bootstrap.servers": settings.bootstrap})
        for n in range(MALFORMED):
            producer.produce(settings.source_topic, b'{"user_id": "not json, never closed %d' % n)
        assert producer.flush(30) == 0

        prometheus.wait_for(lambda: "KdpDeadLetterRatioHigh" in prometheus.firing(), "KdpDeadLetterRatioHigh firing")
        alert = prometheus.firing()["KdpDeadLetterRatioHigh"]
        assert alert["labels"]["job"] == "kdp-converter"
        assert alert["annotations"]["summary"].startswith("100%")
        assert "KdpConverterDown" not in prometheus.firing()
        prometheus.wait_for(
            lambda: prometheus.scalar('sum(kdp_dead_letters_total{job="kdp-converter"})') == MALFORMED,
            "all dead letters scraped",
        )
        scraped = {
            "consumed": prometheus.scalar('kdp_messages_consumed_total{job="kdp-converter"}'),
            "processed": prometheus.scalar('kdp_records_processed_total{job="kdp-converter"}'),
            "invalid_json": prometheus.scalar('kdp_dead_letters_total{job="kdp-converter", reason="invalid_json"}'),
        }
        # Every rule, recording and alerting, evaluates without error on the real series.
        groups = prometheus.get("/api/v1/rules")["data"]["groups"]
        health = {rule["name"]: rule["health"] for group in groups for rule in group["rules"]}
        assert len(health) == sum(len(g["rules"]) for g in yaml.safe_load(ALERTS.read_text())["groups"])
        assert set(health.values()) == {"ok"}, health
    finally:
        prometheus.stop()
        consumed, processed, dead = stream.stop()

    print(f"[prometheus] scraped {scraped}; summary consumed {consumed}, processed {processed}, dead letters {dead}")
    assert (consumed, processed, dead) == (MALFORMED, 0, MALFORMED)
    assert scraped == {"consumed": consumed, "processed": processed, "invalid_json": dead}
