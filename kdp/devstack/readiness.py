"""When is a started stack usable? Waiting for it, and failing fast with the reason when it will not be.

Ready means what a client needs, not a log line: Kafka's metadata lists every broker of the cluster (brokers
that registered with the controller quorum and are unfenced), and the registry's Confluent API answers
`GET /subjects` with 200 (which needs its Kafka journal read). While waiting, every process this start
launched is watched: one that exits ends the wait at once with the last lines of its logs, instead of a
timeout minutes later.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from kdp.devstack import oidc, registry
from kdp.devstack.errors import StackError
from kdp.devstack.logfiles import excerpt

POLL_INTERVAL = 0.2


@dataclass(frozen=True)
class Watched:
    """A process launched by this start, with the logs that explain its death."""

    name: str
    process: subprocess.Popen[bytes]
    logs: tuple[Path, ...]


def check_alive(watched: Sequence[Watched]) -> None:
    """Raise StackError with log excerpts for the first watched process that has exited."""
    for item in watched:
        code = item.process.poll()
        if code is not None:
            details = "\n".join(excerpt(log) for log in item.logs if log.exists())
            raise StackError(
                f"{item.name} exited during start (exit code {code}); the cause is usually in these lines:\n" + details
            )


def kafka_broker_count(admin: AdminClient, timeout: float) -> int:
    """How many brokers the cluster's metadata lists now (0 when the request fails)."""
    try:
        return len(admin.list_topics(timeout=timeout).brokers)
    except KafkaException:
        return 0


def quiet_admin(bootstrap: str, security: Mapping[str, str] | None = None) -> AdminClient:
    """An admin client for probing a cluster that is still starting: no connection-refused noise on stderr.

    `security` holds librdkafka's SASL settings when the cluster requires them (`kdp stack up --secure`).
    """
    settings: dict[str, Any] = {
        **(security or {}),
        "bootstrap.servers": bootstrap,
        "log_level": 0,
        "error_cb": lambda _error: None,
        "reconnect.backoff.max.ms": 500,
    }
    return AdminClient(settings)


def wait_for_kafka(
    bootstrap: str,
    brokers: int,
    watched: Sequence[Watched],
    deadline: float,
    logs: Sequence[Path],
    security: Mapping[str, str] | None = None,
) -> None:
    """Return once metadata lists `brokers` brokers; StackError when a watched process dies or time is up."""
    addresses = [address.rsplit(":", 1) for address in bootstrap.split(",")]
    while not all(_accepts(host, int(port)) for host, port in addresses):
        check_alive(watched)
        _give_up_after(deadline, "Kafka's client ports did not open", logs)
        time.sleep(POLL_INTERVAL)
    admin = quiet_admin(bootstrap, security)
    while (seen := kafka_broker_count(admin, timeout=2)) < brokers:
        check_alive(watched)
        _give_up_after(deadline, f"Kafka's metadata lists {seen} of {brokers} brokers", logs)
        time.sleep(POLL_INTERVAL)


def wait_for_registry(
    url: str,
    watched: Sequence[Watched],
    deadline: float,
    log: Path,
    ca: Path | None = None,
    login: tuple[str, str] | None = None,
) -> None:
    """Return once the registry answers `GET /subjects`; raise StackError when it dies or time is up.

    `ca`: the CA to trust when the registry serves HTTPS; `login`: its basic credentials (the secure stack)."""
    while not registry.answers(url, ca, login):
        check_alive(watched)
        _give_up_after(deadline, f"The registry at {url} does not answer", [log])
        time.sleep(POLL_INTERVAL)


def wait_for_oidc(server: oidc.OidcServer, watched: Sequence[Watched], deadline: float) -> None:
    """Return once the OIDC server serves its master realm; raise StackError when it dies or time is up."""
    while not oidc.answers(server):
        check_alive(watched)
        _give_up_after(deadline, f"The OIDC server at {server.url} does not answer", [server.log_file])
        time.sleep(POLL_INTERVAL)


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _give_up_after(deadline: float, symptom: str, logs: Sequence[Path]) -> None:
    if time.monotonic() > deadline:
        details = "\n".join(excerpt(log) for log in logs if log.exists())
        raise StackError(f"{symptom}, and the start-up time ran out (a slow machine may need `--timeout`).\n{details}")
