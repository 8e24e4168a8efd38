"""The schema registry of the local stack: Apicurio Registry, storing its schemas in the stack's own Kafka.

Why Apicurio: it ships as a plain archive on Maven Central (Confluent's registry does not), and its
Confluent-compatible API (`/apis/ccompat/v7`) works with confluent-kafka's `SchemaRegistryClient` and Avro
serializers unchanged. With `kafkasql` storage its state is a Kafka topic (`kafkasql-journal`), so schemas,
ids and compatibility settings survive restarts of both processes and vanish only with the Kafka data.

Layout under `<home>/registry/`: `registry.log` (Quarkus logs to stdout, which goes there) and `registry.pid`.
"""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kdp.devstack import processes
from kdp.devstack.config import HOST, StackConfig

COMPATIBILITY = "BACKWARD"
"""The global compatibility level, as in Confluent's default: a new schema must read data of the last one."""

JVM_OPTIONS = (
    "-Xms64m",
    "-Xmx384m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "--enable-native-access=ALL-UNNAMED",
)
"""A small heap, and the client compiler only: the registry serves a handful of lookups per pipeline start,
so optimising JIT work is wasted. Measured: about a third less CPU to start (5.3 s instead of 8 s of CPU time)
and 210-260 MB resident instead of 260-280 MB."""


@dataclass(frozen=True)
class RegistryProcess:
    """The registry's folders and addresses under one home. Pure data."""

    folder: Path
    port: int
    management_port: int
    host: str = HOST
    tls: bool = False
    """The secure stack's registry: HTTPS only, with the stack's certificate (`kdp.devstack.certificates`)."""

    @classmethod
    def of(cls, config: StackConfig, tls: bool = False) -> RegistryProcess:
        return cls(config.home / "registry", config.registry_port, config.registry_management_port, config.host, tls)

    @property
    def log_file(self) -> Path:
        return self.folder / "registry.log"

    @property
    def pid_file(self) -> Path:
        return self.folder / "registry.pid"

    @property
    def marker(self) -> str:
        return processes.marker_argument(self.folder)

    @property
    def url(self) -> str:
        """The Confluent-compatible base URL (what `KDP_REGISTRY_URL` holds)."""
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}/apis/ccompat/v7"


def command(
    java: str, install: Path, registry: RegistryProcess, bootstrap: str, options: Sequence[str] = ()
) -> list[str]:
    """The registry's JVM command line.

    - HTTP API and management (health) endpoints on the stack's host only (loopback by default).
    - `kafkasql` storage on the stack's Kafka; a consumer poll timeout of 1 s instead of the default cuts the
      start-up, which is mostly waiting on polls of the journal, from about 26 s to about 9 s.
    - Global compatibility BACKWARD from the first request on (checked after start by `ensure_compatibility`).
    """
    return [
        java,
        *JVM_OPTIONS,
        *options,
        registry.marker,
        f"-Dquarkus.http.host={registry.host}",
        f"-Dquarkus.http.{'ssl-port' if registry.tls else 'port'}={registry.port}",
        f"-Dquarkus.management.host={registry.host}",
        f"-Dquarkus.management.port={registry.management_port}",
        "-Dquarkus.console.color=false",
        "-Dapicurio.storage.kind=kafkasql",
        f"-Dapicurio.kafkasql.bootstrap.servers={bootstrap}",
        "-Dapicurio.kafkasql.consumer.poll.timeout=1000",
        f"-Dapicurio.rules.global.compatibility={COMPATIBILITY}",
        "-jar",
        str(install / "quarkus-run.jar"),
    ]


def launch(
    java: str, install: Path, registry: RegistryProcess, bootstrap: str, options: Sequence[str] = ()
) -> subprocess.Popen[bytes]:
    """Start the registry in the background with extra JVM `options`; its pid goes to `registry.pid_file`."""
    registry.folder.mkdir(parents=True, exist_ok=True)
    return processes.start(
        command(java, install, registry, bootstrap, options),
        cwd=registry.folder,
        log_file=registry.log_file,
        pid_file=registry.pid_file,
    )


def answers(url: str, ca: Path | None = None, login: tuple[str, str] | None = None) -> bool:
    """True when the registry's API lists subjects (HTTP 200): the API is up and its storage is readable.

    `ca`: the CA certificate to trust for an HTTPS registry (the secure stack's `tls/ca.pem`); `login`: the
    basic credentials of a registry that requires them (the secure stack's admin).
    """
    try:
        request = _request(f"{url}/subjects", login)
        with urllib.request.urlopen(request, timeout=2, context=_trusting(ca)) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def ensure_compatibility(url: str, ca: Path | None = None, login: tuple[str, str] | None = None) -> str:
    """Make the global compatibility level BACKWARD; return what was done ("already BACKWARD" or "set now").

    The start flag is the intended way; this check guards against a registry version that ignores it (3.0.x
    did) by setting it through the API, which persists it in the journal.
    """
    context = _trusting(ca)
    with urllib.request.urlopen(_request(f"{url}/config", login), timeout=5, context=context) as response:
        current = json.load(response).get("compatibilityLevel")
    if current == COMPATIBILITY:
        return f"already {COMPATIBILITY}"
    request = _request(f"{url}/config", login, json.dumps({"compatibility": COMPATIBILITY}).encode(), "PUT")
    with urllib.request.urlopen(request, timeout=5, context=context):
        return f"set now (was {current})"


def _request(
    url: str, login: tuple[str, str] | None, data: bytes | None = None, method: str = "GET"
) -> urllib.request.Request:
    headers = {"Content-Type": "application/vnd.schemaregistry.v1+json"}
    if login is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(login).encode()).decode()
    return urllib.request.Request(url, data=data, headers=headers, method=method)


def _trusting(ca: Path | None) -> ssl.SSLContext | None:
    """A TLS context that trusts `ca` only (None: the defaults, for plain HTTP)."""
    return ssl.create_default_context(cafile=str(ca)) if ca is not None else None
