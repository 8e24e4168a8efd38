"""What the soak records of the converter besides memory and descriptors, so that a failure explains itself.

Every sample reads, for the converter process alive at the time:

* its thread count, and how many librdkafka clients live in it (their `rdk:main` threads, from
  `/proc/<pid>/task`): a client that outlives its use (a producer replaced but not released) shows there, not
  only as memory and descriptors (each holds a thread and sockets per broker);
* its own counters from its Prometheus endpoint (`KDP_METRICS_PORT`): producers replaced, transactions aborted
  and committed, batches redone;
* the latest librdkafka statistics of each of its clients, from the file `KDP_STATISTICS_FILE` names
  (`streaming.observe.client_statistics`): per client, the broker connections up and known, how often they connected,
  the requests waiting to be sent (outbuf) or answered (waitresp), the producer's queue (msgq) and the queue of
  events for the application (replyq), and the bytes received and sent.
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

COUNTERS = {
    "kdp_producer_replacements_total": "producer_replacements",
    "kdp_batches_redone_total": "batches_redone",
}


@dataclass(frozen=True)
class ClientDetail:
    """One librdkafka client's state at its latest statistics."""

    name: str
    brokers_up: int
    brokers_known: int
    connects: int
    outbuf: int
    waitresp: int
    msgq: int
    replyq: int
    rx_mb: float
    tx_mb: float
    state: str
    """A producer's transaction state, a consumer's group state."""

    @classmethod
    def of(cls, stats: dict[str, Any]) -> ClientDetail:
        every = list(stats.get("brokers", {}).values())
        learned = [b for b in every if b.get("source") == "learned" and b.get("nodeid", -1) >= 0]
        return cls(
            name=str(stats.get("client")),
            brokers_up=sum(1 for b in learned if b.get("state") == "UP"),
            brokers_known=len(learned),
            # Every entry, the coordinators' logical connections included (transactional and group requests).
            connects=sum(b.get("connects") or 0 for b in every),
            outbuf=sum(b.get("outbuf_cnt") or 0 for b in every),
            waitresp=sum(b.get("waitresp_cnt") or 0 for b in every),
            msgq=int(stats.get("msg_cnt") or 0),
            replyq=int(stats.get("replyq") or 0),
            rx_mb=(stats.get("rx_bytes") or 0) / 1e6,
            tx_mb=(stats.get("tx_bytes") or 0) / 1e6,
            state=str((stats.get("eos") or {}).get("txn_state") or (stats.get("cgrp") or {}).get("state") or "-"),
        )

    @property
    def text(self) -> str:
        return (
            f"{self.name.removeprefix('rdkafka#')}: up {self.brokers_up}/{self.brokers_known}, connects "
            f"{self.connects}, outbuf {self.outbuf}, waitresp {self.waitresp}, msgq {self.msgq}, replyq "
            f"{self.replyq}, rx {self.rx_mb:.0f} MB, tx {self.tx_mb:.0f} MB, {self.state}"
        )


@dataclass(frozen=True)
class Detail:
    threads: int
    kafka_clients: int
    producer_replacements: int
    transactions_aborted: int
    batches_redone: int
    consumer: ClientDetail | None
    producer: ClientDetail | None

    @property
    def text(self) -> str:
        clients = "; ".join(c.text for c in (self.consumer, self.producer) if c is not None) or "no statistics yet"
        return (
            f"threads {self.threads}, Kafka clients {self.kafka_clients}, producers replaced "
            f"{self.producer_replacements}, transactions aborted {self.transactions_aborted}, batches redone "
            f"{self.batches_redone}; {clients}"
        )


def read_detail(pid: int, metrics_port: int, statistics_file: Path, metrics_host: str = "127.0.0.1") -> Detail:
    """The detail of converter process `pid` now; -1 for what could not be read (the process just started).
    `metrics_host`: where its metrics endpoint is reached (another address for a converter in a namespace)."""
    counters = _counters(metrics_host, metrics_port)
    latest = _latest_statistics(statistics_file, pid)
    return Detail(
        threads=_threads(pid),
        kafka_clients=kafka_clients(pid),
        producer_replacements=counters.get("producer_replacements", -1),
        transactions_aborted=counters.get("transactions_aborted", -1),
        batches_redone=counters.get("batches_redone", -1),
        consumer=ClientDetail.of(latest["consumer"]) if "consumer" in latest else None,
        producer=ClientDetail.of(latest["producer"]) if "producer" in latest else None,
    )


def _threads(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def kafka_clients(pid: int) -> int:
    """librdkafka names its threads `rdk:<role>`; every client (consumer, producer, admin) has one `rdk:main`."""
    count = 0
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                count += Path(f"/proc/{pid}/task/{task}/comm").read_text().strip() == "rdk:main"
    except OSError:
        return -1
    return count


def _counters(host: str, port: int) -> dict[str, int]:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    counters: dict[str, int] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in COUNTERS:
                counters[COUNTERS[sample.name]] = int(sample.value)
            elif sample.name == "kdp_transactions_total" and sample.labels.get("outcome") == "aborted":
                counters["transactions_aborted"] = int(sample.value)
    return counters


def _latest_statistics(path: Path, pid: int, tail_bytes: int = 256_000) -> dict[str, dict[str, Any]]:
    """The latest statistics line of each client type of process `pid` (the file's tail is enough: every
    client writes a line every few seconds)."""
    try:
        with path.open("rb") as file:
            file.seek(max(file.seek(0, 2) - tail_bytes, 0))
            lines = file.read().decode(errors="replace").splitlines()
    except OSError:
        return {}
    latest: dict[str, dict[str, Any]] = {}
    for line in reversed(lines):
        try:
            stats = json.loads(line)
        except ValueError:
            continue  # the first line of the tail is cut, the last may be half written
        kind = stats.get("type")
        if stats.get("pid") == pid and kind not in latest:
            latest[kind] = stats
        if len(latest) == 2:
            break
    return latest
