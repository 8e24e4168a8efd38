"""`kdp stack up --monitoring`: Prometheus, a Pushgateway and the lag exporter beside the local stack, no Docker.

What runs, each a background process tracked by a pid file under `$KDP_HOME/monitoring/` (`kdp.devstack.processes`):

* Prometheus (Debian's `prometheus` package), evaluating deploy/prometheus/alerts.yml, scraping the three jobs
  that deploy/prometheus/prometheus.yml scrapes in compose: `kafka-lag` (the exporter), `pushgateway` (with
  `honor_labels`, so pushed series keep their `job`), `kdp-converter` (a `kdp stream --metrics-port 9464` on this
  machine, when one runs);
* the Pushgateway (Debian's `prometheus-pushgateway`), where Dagster runs push their metrics: point them at it
  with `KDP_PUSHGATEWAY_URL`;
* the lag exporter: kminion, the exporter compose and Kubernetes run, when a `kminion` binary is on PATH;
  otherwise `python -m kdp.devstack.lag_exporter`, which serves kminion's series (its docstring says why).

Ports default to those of compose and move with `KDP_PROMETHEUS_PORT`, `KDP_PUSHGATEWAY_PORT` and
`KDP_LAG_EXPORTER_PORT`. The binaries are looked up on PATH; when missing, the error says which Debian packages
bring them. Everything listens on loopback only.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kdp.devstack import processes
from kdp.devstack.config import HOST
from kdp.devstack.errors import StackError
from kdp.devstack.logfiles import excerpt
from kdp.devstack.ports import ensure_ports_free
from streaming.settings import Settings

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
ALERT_RULES = REPO / "deploy" / "prometheus" / "alerts.yml"
CONVERTER_METRICS_PORT = 9464
"""Where the `kdp-converter` job looks for a local `kdp stream --metrics-port` (compose's KDP_METRICS_PORT)."""
APT_HINT = "apt-get update && apt-get install -y prometheus prometheus-pushgateway"
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


@dataclass(frozen=True)
class MonitoringPorts:
    prometheus: int = 9090
    pushgateway: int = 9091
    lag_exporter: int = 9308

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MonitoringPorts:
        environ = os.environ if environ is None else environ
        values = {}
        for field, name in (
            ("prometheus", "KDP_PROMETHEUS_PORT"),
            ("pushgateway", "KDP_PUSHGATEWAY_PORT"),
            ("lag_exporter", "KDP_LAG_EXPORTER_PORT"),
        ):
            raw = environ.get(name)
            if raw:
                if not raw.isdigit() or not 1 <= int(raw) <= 65535:
                    raise StackError(f"{name}={raw!r} must be a port number between 1 and 65535")
                values[field] = int(raw)
        return cls(**values)


@dataclass(frozen=True)
class Binaries:
    prometheus: str
    pushgateway: str
    kminion: str | None = None
    """Optional: without it the local lag exporter serves kminion's series."""

    @classmethod
    def find(cls) -> Binaries:
        """Prometheus and the Pushgateway from PATH (Debian names the latter `prometheus-pushgateway`), and
        kminion if it is there."""
        prometheus = shutil.which("prometheus")
        pushgateway = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
        missing = [name for name, found in (("prometheus", prometheus), ("pushgateway", pushgateway)) if not found]
        if prometheus is None or pushgateway is None:
            raise StackError(f"{' and '.join(missing)} not found on PATH; on Debian or Ubuntu: {APT_HINT}")
        return cls(prometheus, pushgateway, shutil.which("kminion"))


def kminion_environment(kafka_environment: Mapping[str, str], host: str, port: int) -> dict[str, str]:
    """kminion's configuration (its environment variables) for the cluster the `KDP_*` settings name."""
    settings = Settings.from_env(kafka_environment)
    found = {
        "KAFKA_BROKERS": settings.bootstrap,
        "MINION_CONSUMERGROUPS_SCRAPEMODE": "adminApi",
        "EXPORTER_HOST": host,
        "EXPORTER_PORT": str(port),
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        found["KAFKA_TLS_ENABLED"] = "true"
        if settings.ssl_ca_location:
            found["KAFKA_TLS_CAFILEPATH"] = settings.ssl_ca_location
    if settings.security_protocol.startswith("SASL"):
        found["KAFKA_SASL_ENABLED"] = "true"
        found["KAFKA_SASL_MECHANISM"] = settings.sasl_mechanism or ""
        found["KAFKA_SASL_USERNAME"] = settings.sasl_username or ""
        found["KAFKA_SASL_PASSWORD"] = settings.sasl_password or ""
    return found


def prometheus_config(ports: MonitoringPorts, rules: Path, interval: str = "15s", host: str = HOST) -> dict[str, Any]:
    """The local Prometheus's configuration: compose's jobs (same names, so the same rules) on loopback."""
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(rules)],
        "scrape_configs": [
            {"job_name": "kafka-lag", "static_configs": [{"targets": [f"{host}:{ports.lag_exporter}"]}]},
            {
                "job_name": "pushgateway",
                "honor_labels": True,
                "static_configs": [{"targets": [f"{host}:{ports.pushgateway}"]}],
            },
            {"job_name": "kdp-converter", "static_configs": [{"targets": [f"{host}:{CONVERTER_METRICS_PORT}"]}]},
            {"job_name": "prometheus", "static_configs": [{"targets": [f"{host}:{ports.prometheus}"]}]},
        ],
    }


@dataclass(frozen=True)
class Component:
    name: str
    pid: int | None
    address: str
    log: Path


class Monitoring:
    """The monitoring processes of one KDP_HOME (in `<home>/monitoring`).

    `rules` and `interval` exist for tests that need alerts to fire in seconds: by default Prometheus evaluates
    deploy/prometheus/alerts.yml every 15 s, as in compose.
    """

    NAMES = ("lag-exporter", "pushgateway", "prometheus")

    def __init__(
        self,
        home: Path,
        ports: MonitoringPorts | None = None,
        *,
        rules: Path = ALERT_RULES,
        interval: str = "15s",
        host: str = HOST,
    ) -> None:
        self.folder = home / "monitoring"
        self.ports = ports or MonitoringPorts.from_env()
        self.rules = rules
        self.interval = interval
        self.host = host

    # -- addresses ---------------------------------------------------------------------------------------
    @property
    def prometheus_url(self) -> str:
        return f"http://{self.host}:{self.ports.prometheus}"

    @property
    def pushgateway_url(self) -> str:
        return f"http://{self.host}:{self.ports.pushgateway}"

    @property
    def lag_exporter_url(self) -> str:
        return f"http://{self.host}:{self.ports.lag_exporter}"

    def _pid_file(self, name: str) -> Path:
        return self.folder / f"{name}.pid"

    def _log(self, name: str) -> Path:
        return self.folder / f"{name}.log"

    @property
    def _marker(self) -> str:
        """Every command line carries the monitoring folder (a path argument): `processes` checks it."""
        return str(self.folder)

    # -- actions -----------------------------------------------------------------------------------------
    def running(self) -> bool:
        return any(processes.running_pid(self._pid_file(n), self._marker) for n in self.NAMES)

    def up(self, kafka_environment: Mapping[str, str], timeout: float = READY_TIMEOUT) -> None:
        """Start the three processes (unless they run) and wait until each answers over HTTP.

        `kafka_environment`: the `KDP_*` settings by which the exporter reaches Kafka (bootstrap, security).
        A process that fails to start stops the others started here and raises StackError with its log.
        """
        if self.running():
            log.info("monitoring already runs (Prometheus on %s)", self.prometheus_url)
            return
        binaries = Binaries.find()
        ensure_ports_free(
            {
                "Prometheus (KDP_PROMETHEUS_PORT)": self.ports.prometheus,
                "Pushgateway (KDP_PUSHGATEWAY_PORT)": self.ports.pushgateway,
                "lag exporter (KDP_LAG_EXPORTER_PORT)": self.ports.lag_exporter,
            },
            self.host,
        )
        self.folder.mkdir(parents=True, exist_ok=True)
        config = self.folder / "prometheus.yml"
        config.write_text(yaml.safe_dump(prometheus_config(self.ports, self.rules, self.interval, self.host)))
        environment = dict(os.environ)
        exporter, exporter_environment = self._exporter(binaries.kminion, kafka_environment, environment)
        commands = {
            "lag-exporter": exporter,
            "pushgateway": [
                binaries.pushgateway,
                f"--web.listen-address={self.host}:{self.ports.pushgateway}",
                f"--persistence.file={self.folder / 'pushgateway.state'}",
            ],
            "prometheus": [
                binaries.prometheus,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.folder / 'prometheus-data'}",
                f"--web.listen-address={self.host}:{self.ports.prometheus}",
            ],
        }
        ready_path = {"lag-exporter": "/metrics", "pushgateway": "/-/ready", "prometheus": "/-/ready"}
        urls = {"lag-exporter": self.lag_exporter_url, "pushgateway": self.pushgateway_url}
        urls["prometheus"] = self.prometheus_url
        started: dict[str, subprocess.Popen[bytes]] = {}
        try:
            for name, command in commands.items():
                log.info("starting %s (%s)", name, command[0])
                env = exporter_environment if name == "lag-exporter" else environment
                started[name] = self._start(name, command, env)
            deadline = time.monotonic() + timeout
            for name, process in started.items():
                self._await(name, process, urls[name] + ready_path[name], deadline)
        except BaseException:
            self.down()
            raise
        log.info("monitoring up: Prometheus %s, Pushgateway %s", self.prometheus_url, self.pushgateway_url)

    def down(self) -> list[str]:
        """Stop what runs; one line per process stopped."""
        pid_files = [self._pid_file(n) for n in self.NAMES]
        ended = processes.stop_all(pid_files, {p: self._marker for p in pid_files}, STOP_TIMEOUT)
        return [f"{path.stem}: {stopped}" for path, stopped in ended.items()]

    def status(self) -> list[Component]:
        addresses = {
            "lag-exporter": self.lag_exporter_url + "/metrics",
            "pushgateway": self.pushgateway_url,
            "prometheus": self.prometheus_url,
        }
        return [
            Component(name, processes.running_pid(self._pid_file(name), self._marker), addresses[name], self._log(name))
            for name in self.NAMES
        ]

    # -- parts ---------------------------------------------------------------------------------------------
    def _exporter(
        self, kminion: str | None, kafka_environment: Mapping[str, str], environment: dict[str, str]
    ) -> tuple[list[str], dict[str, str]]:
        """The lag exporter's command and environment: kminion when there is one, else the local exporter. Only
        the exporter gets the Kafka settings (credentials included), never Prometheus or the Pushgateway."""
        if kminion:
            # kminion reads its configuration from the environment and ignores its arguments: the folder
            # argument only marks the process as this monitoring's (`processes`).
            configuration = kminion_environment(kafka_environment, self.host, self.ports.lag_exporter)
            return [kminion, f"--home={self.folder}"], {**environment, **configuration}
        command = [sys.executable, "-m", "kdp.devstack.lag_exporter", f"--home={self.folder}"]
        command += [f"--port={self.ports.lag_exporter}", f"--address={self.host}"]
        return command, {**environment, **kafka_environment, "PYTHONPATH": str(REPO)}

    def _start(self, name: str, command: list[str], environment: Mapping[str, str]) -> subprocess.Popen[bytes]:
        return processes.start(command, self.folder, self._log(name), self._pid_file(name), env=environment)

    def _await(self, name: str, process: subprocess.Popen[bytes], url: str, deadline: float) -> None:
        while True:
            if process.poll() is not None:
                raise StackError(
                    f"{name} exited during start (exit code {process.returncode}):\n{excerpt(self._log(name))}"
                )
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise StackError(f"{name} did not answer on {url} in time:\n{excerpt(self._log(name))}")
            time.sleep(0.2)
