"""A `kdp stream --metrics-port` process on the real stack, and reading its endpoint: shared by the metrics tests."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families
from scenario_settings import process_environment as environment

from streaming.settings import Settings

SUMMARY = re.compile(r"consumed (\d+), processed (\d+), dead letters (\d+)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@dataclass
class StreamProcess:
    """`kdp stream` in a subprocess, serving its metrics on `port`."""

    process: subprocess.Popen[str]
    port: int

    @classmethod
    def start(cls, settings: Settings, port: int | None = None) -> StreamProcess:
        port = port or free_port()
        command = [sys.executable, "-m", "kdp", "stream", "--metrics-port", str(port), "--log-every", "2"]
        process = subprocess.Popen(
            command, env=environment(settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        return cls(process, port)

    def scrape(self) -> Samples | None:
        """The endpoint's samples now; None while it does not answer yet."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as response:
                return parse(response.read().decode())
        except (urllib.error.URLError, ConnectionError):
            return None

    def scrape_until(self, done: Callable[[Samples], bool], what: str, timeout: float = 120.0) -> Samples:
        """Scrape until `done(samples)`; fails with the process's output if it exits or `timeout` passes."""
        deadline = time.monotonic() + timeout
        samples: Samples | None = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                out, err = self.process.communicate()
                raise AssertionError(f"kdp stream exited ({self.process.returncode}) waiting for {what}: {out}{err}")
            samples = self.scrape()
            if samples is not None and done(samples):
                return samples
            time.sleep(0.5)
        self.stop()
        raise AssertionError(f"no {what} within {timeout:.0f} s; last scrape: {samples}; output: {self.output()}")

    def stop(self) -> tuple[int, int, int]:
        """SIGTERM (finish the batch, commit, leave), then the run's own summary: consumed, processed, dead."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        out, err = self.process.communicate(timeout=120)
        self._output = out + err
        match = SUMMARY.search(out)
        assert self.process.returncode == 0 and match, self._output
        return int(match[1]), int(match[2]), int(match[3])

    def output(self) -> str:
        return getattr(self, "_output", "")


def total(samples: Samples, name: str) -> float:
    """The sum of every series of `name` (over all label values)."""
    return sum(value for (sample, _labels), value in samples.items() if sample == name)


def series(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: value for (sample, labels), value in samples.items() if sample == name}
