"""streaming.observe.metrics_push: what a run pushes, when, and that an unreachable Pushgateway never fails it.

A small HTTP server in this process stands in for the Pushgateway (it records what prometheus_client's
`push_to_gateway` sends); tests/integration/test_monitoring_path.py pushes to a real one.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from prometheus_client.parser import text_string_to_metric_families

from streaming.observe.metrics import ConverterMetrics
from streaming.observe.metrics_push import PUSH_JOB, MetricsPusher
from streaming.settings import Settings, SettingsError


class Recorder(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]]

    def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(("PUT", self.path, body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[HTTPServer]:
    server = HTTPServer(("127.0.0.1", 0), Recorder)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def values(body: bytes) -> dict[str, float]:
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
        if not sample.labels
    }


def test_a_run_pushes_at_start_and_end_under_its_grouping_key(gateway):
    metrics = ConverterMetrics(process_metrics=False)
    url = f"http://127.0.0.1:{gateway.server_port}"
    with MetricsPusher(metrics.registry, url, mode="sensor", instance="dagster-user-login.0", interval=3600):
        metrics.consumed.inc(42)
    received = gateway.received
    assert len(received) == 2
    assert {path for _method, path, _body in received} == {
        f"/metrics/job/{PUSH_JOB}/instance/dagster-user-login.0/mode/sensor"
    }
    first, last = values(received[0][2]), values(received[-1][2])
    assert first["kdp_messages_consumed_total"] == 0  # the start: Prometheus sees the increase from 0
    assert last["kdp_messages_consumed_total"] == 42
    assert last["kdp_metrics_push_failures_total"] == 0


def test_a_long_run_pushes_every_interval(gateway):
    metrics = ConverterMetrics(process_metrics=False)
    url = f"http://127.0.0.1:{gateway.server_port}"
    pushes = threading.Semaphore(0)
    real_push = []

    def push(*args, **kwargs):
        from prometheus_client import push_to_gateway

        real_push.append(1)
        push_to_gateway(*args, **kwargs)
        pushes.release()

    with MetricsPusher(metrics.registry, url, mode="replay", instance="replay-x", interval=0.05, push=push):
        for _ in range(4):  # the start's push, then three periodic ones while the "run" lasts
            assert pushes.acquire(timeout=30)
    assert len(gateway.received) == len(real_push) >= 5


def test_an_unreachable_pushgateway_is_a_warning_and_a_counted_failure(caplog):
    metrics = ConverterMetrics(process_metrics=False)
    url = f"http://127.0.0.1:{closed_port()}"
    pusher = MetricsPusher(metrics.registry, url, mode="sensor", instance="i", interval=3600)
    with caplog.at_level(logging.WARNING, logger="streaming.observe.metrics_push"), pusher:
        metrics.consumed.inc(7)
    assert (pusher.pushes, pusher.failures) == (0, 2)
    assert metrics.registry.get_sample_value("kdp_metrics_push_failures_total") == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("KDP_PUSHGATEWAY_URL=" + url in w for w in warnings), warnings


def test_a_run_that_raises_still_pushes_its_figures(gateway):
    metrics = ConverterMetrics(process_metrics=False)
    url = f"http://127.0.0.1:{gateway.server_port}"
    with pytest.raises(RuntimeError), MetricsPusher(metrics.registry, url, mode="sensor", instance="i", interval=3600):
        metrics.consumed.inc(3)
        raise RuntimeError("the run failed")
    assert values(gateway.received[-1][2])["kdp_messages_consumed_total"] == 3


def test_without_a_url_nothing_is_pushed_or_counted():
    metrics = ConverterMetrics(process_metrics=False)
    calls = []
    with MetricsPusher(metrics.registry, "", mode="sensor", instance="i", push=lambda *a, **k: calls.append(a)) as p:
        metrics.consumed.inc()
    assert calls == [] and not p.enabled
    assert metrics.registry.get_sample_value("kdp_metrics_push_failures_total") is None


def test_the_setting_is_read_and_checked():
    assert Settings.from_env({}).pushgateway_url == ""
    assert Settings.from_env({"KDP_PUSHGATEWAY_URL": "http://pgw:9091"}).pushgateway_url == "http://pgw:9091"
    with pytest.raises(SettingsError, match="KDP_PUSHGATEWAY_URL='pgw:9091' must start with http"):
        Settings.from_env({"KDP_PUSHGATEWAY_URL": "pgw:9091"})
