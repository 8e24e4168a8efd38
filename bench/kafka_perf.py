"""Baseline (d): Kafka's own perf tools, the broker's ceiling on this machine.

`org.apache.kafka.tools.ProducerPerformance` writes as many records as the backlog holds into a fresh
topic of the same partition count, with payloads taken from a file of generator events (so sizes and
compressibility match the backlog) and producer settings like the converter's (acks=all, idempotence,
lz4, linger 5 ms). `org.apache.kafka.tools.ConsumerPerformance` reads the whole backlog in its own
group. Both are the Java clients from the jars the local stack runs (`kdp.devstack.maven.kafka_libs`),
on the stack's Java (`kdp.devstack.java.find_java`). They measure one direction each; the converter
does both at once, on the same two cores as the broker, so its ceiling is below either.

Their MB are 2^20 bytes; the results convert them to the 10^6 used everywhere else in `bench`.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

from kdp.devstack.config import StackConfig
from kdp.devstack.java import find_java
from kdp.devstack.maven import kafka_libs
from streaming.generator.events import EventFactory, IrregularityRates
from streaming.settings import Settings

PRODUCER_CLASS = "org.apache.kafka.tools.ProducerPerformance"
CONSUMER_CLASS = "org.apache.kafka.tools.ConsumerPerformance"
JVM_OPTIONS = ("-Xms128m", "-Xmx512m", "--enable-native-access=ALL-UNNAMED")
MEBIBYTE_IN_MB = 2**20 / 1e6

_PRODUCER_SUMMARY = re.compile(
    r"(?P<records>\d+) records sent, (?P<rate>[\d.]+) records/sec \((?P<mib>[\d.]+) MB/sec\), "
    r"(?P<avg>[\d.]+) ms avg latency, (?P<max>[\d.]+) ms max latency, (?P<p50>\d+) ms 50th, "
    r"(?P<p95>\d+) ms 95th, (?P<p99>\d+) ms 99th, (?P<p999>\d+) ms 99\.9th"
)


class KafkaPerfUnavailable(RuntimeError):
    """The perf tools cannot run here (no jars, no Java, or a secured cluster the harness cannot configure)."""


def parse_producer_summary(output: str) -> dict[str, Any]:
    """The last summary line of ProducerPerformance's output as numbers; ValueError if there is none."""
    matches = list(_PRODUCER_SUMMARY.finditer(output))
    if not matches:
        raise ValueError("no 'records sent' summary line in ProducerPerformance output")
    m = matches[-1]
    return {
        "records": int(m["records"]),
        "msg_per_s": float(m["rate"]),
        "mb_per_s": round(float(m["mib"]) * MEBIBYTE_IN_MB, 2),
        "latency_ms": {
            "avg": float(m["avg"]),
            "p50": int(m["p50"]),
            "p95": int(m["p95"]),
            "p99": int(m["p99"]),
            "p99.9": int(m["p999"]),
            "max": float(m["max"]),
        },
    }


def parse_consumer_summary(output: str) -> dict[str, Any]:
    """ConsumerPerformance's header and value lines as numbers; ValueError if they are missing.

    `msg_per_s` is over the fetch time (first fetch to the end, without the group join), the interval
    closest to the one our subjects are timed over; `msg_per_s_with_join` includes the join.
    """
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for i, line in enumerate(lines[:-1]):
        if line.startswith("start.time"):
            names = [name.strip() for name in line.split(",")]
            values = dict(zip(names, (value.strip() for value in lines[i + 1].split(",")), strict=False))
            break
    else:
        raise ValueError("no 'start.time, ...' header in ConsumerPerformance output")
    return {
        "records": int(values["data.consumed.in.nMsg"]),
        "msg_per_s": float(values["fetch.nMsg.sec"]),
        "mb_per_s": round(float(values["fetch.MB.sec"]) * MEBIBYTE_IN_MB, 2),
        "msg_per_s_with_join": float(values["nMsg.sec"]),
        "join_ms": int(values["rebalance.time.ms"]),
        "fetch_ms": int(values["fetch.time.ms"]),
    }


def write_payload_file(path: Path, count: int = 10_000, seed: int = 7) -> Path:
    """Well-formed generator events, one per line (the tool picks one at random per record)."""
    events = EventFactory(seed, IrregularityRates.with_malformed(0.0)).batch(count, now=1_790_000_000)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\n".join(event.value for event in events))
    return path


class KafkaPerfTools:
    """Runs the two tools against the cluster of `settings` (plaintext only)."""

    def __init__(self, settings: Settings) -> None:
        if settings.security_protocol != "PLAINTEXT":
            raise KafkaPerfUnavailable(
                f"the perf tools are run here only against PLAINTEXT clusters, not {settings.security_protocol}"
            )
        libs = kafka_libs(StackConfig.from_env().cache)
        if not any(libs.glob("kafka-tools-*.jar")):
            raise KafkaPerfUnavailable(f"no kafka-tools jar in {libs} (`kdp stack up` downloads it)")
        self.settings = settings
        self.java = find_java().executable
        self.classpath = f"{libs}/*"

    def _run(self, main_class: str, args: list[str], timeout: float) -> str:
        command = [self.java, *JVM_OPTIONS, "-cp", self.classpath, main_class, *args]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        if completed.returncode != 0:
            raise RuntimeError(f"{main_class} exited {completed.returncode}:\n{completed.stderr[-2000:]}")
        return completed.stdout

    def produce(self, topic: str, records: int, payload_file: Path, timeout: float = 300) -> dict[str, Any]:
        properties = [
            f"bootstrap.servers={self.settings.bootstrap}",
            "acks=all",
            "enable.idempotence=true",
            "linger.ms=5",
            "batch.size=1000000",
            "compression.type=lz4",
        ]
        args = ["--topic", topic, "--num-records", str(records), "--throughput", "-1"]
        args += ["--payload-file", str(payload_file), "--command-property", *properties]
        return parse_producer_summary(self._run(PRODUCER_CLASS, args, timeout))

    def consume(self, topic: str, records: int, group: str, timeout: float = 300) -> dict[str, Any]:
        args = ["--bootstrap-server", self.settings.bootstrap, "--topic", topic, "--num-records", str(records)]
        args += ["--group", group, "--timeout", "30000"]
        return parse_consumer_summary(self._run(CONSUMER_CLASS, args, timeout))
