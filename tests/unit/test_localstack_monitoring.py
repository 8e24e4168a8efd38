"""kdp.devstack.monitoring's checks before anything starts: its port settings and the binaries it needs.

tests/integration/test_monitoring_path.py starts and stops the real processes.
"""

from __future__ import annotations

import pytest

from kdp.devstack import monitoring
from kdp.devstack.errors import StackError
from kdp.devstack.monitoring import Binaries, MonitoringPorts, kminion_environment


def test_ports_default_to_compose_and_move_with_their_settings():
    assert MonitoringPorts.from_env({}) == MonitoringPorts(9090, 9091, 9308)
    moved = MonitoringPorts.from_env({"KDP_PROMETHEUS_PORT": "19090", "KDP_LAG_EXPORTER_PORT": "19308"})
    assert moved == MonitoringPorts(19090, 9091, 19308)


@pytest.mark.parametrize("value", ["http", "0", "70000", "-1"])
def test_a_bad_port_names_its_setting(value):
    with pytest.raises(StackError, match=f"KDP_PUSHGATEWAY_PORT='{value}' must be a port number"):
        MonitoringPorts.from_env({"KDP_PUSHGATEWAY_PORT": value})


def test_missing_binaries_are_named_with_the_packages_that_bring_them(monkeypatch):
    monkeypatch.setattr(
        monitoring.shutil, "which", lambda name: "/usr/bin/prometheus" if name == "prometheus" else None
    )
    with pytest.raises(StackError) as error:
        Binaries.find()
    assert str(error.value).startswith("pushgateway not found on PATH")
    assert "apt-get install -y prometheus prometheus-pushgateway" in str(error.value)


def test_debians_pushgateway_name_is_found(monkeypatch):
    found = {"prometheus": "/usr/bin/prometheus", "prometheus-pushgateway": "/usr/bin/prometheus-pushgateway"}
    monkeypatch.setattr(monitoring.shutil, "which", found.get)
    assert Binaries.find() == Binaries("/usr/bin/prometheus", "/usr/bin/prometheus-pushgateway", None)


def test_kminion_is_used_when_installed(monkeypatch):
    found = {"prometheus": "/p", "prometheus-pushgateway": "/g", "kminion": "/usr/local/bin/kminion"}
    monkeypatch.setattr(monitoring.shutil, "which", found.get)
    assert Binaries.find().kminion == "/usr/local/bin/kminion"


def test_kminion_is_configured_for_the_stacks_security():
    plain = kminion_environment({"KDP_BOOTSTRAP": "127.0.0.1:9092"}, "127.0.0.1", 9308)
    assert plain == {
        "KAFKA_BROKERS": "127.0.0.1:9092",
        "MINION_CONSUMERGROUPS_SCRAPEMODE": "adminApi",
        "EXPORTER_HOST": "127.0.0.1",
        "EXPORTER_PORT": "9308",
    }
    secure = kminion_environment(
        {
            "KDP_BOOTSTRAP": "127.0.0.1:9093",
            "KDP_SECURITY_PROTOCOL": "SASL_SSL",
            "KDP_SASL_MECHANISM": "SCRAM-SHA-512",
            "KDP_SASL_USERNAME": "admin",
            "KDP_SASL_PASSWORD": "secret",
            "KDP_SSL_CA_LOCATION": "/home/tls/ca.pem",
        },
        "127.0.0.1",
        9308,
    )
    assert secure["KAFKA_TLS_ENABLED"] == secure["KAFKA_SASL_ENABLED"] == "true"
    assert secure["KAFKA_TLS_CAFILEPATH"] == "/home/tls/ca.pem"
    assert (secure["KAFKA_SASL_MECHANISM"], secure["KAFKA_SASL_USERNAME"]) == ("SCRAM-SHA-512", "admin")
    assert secure["KAFKA_SASL_PASSWORD"] == "secret"
