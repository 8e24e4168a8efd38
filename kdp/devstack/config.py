"""Where the local stack keeps things and which ports it uses, read once from the environment.

Two folders, on purpose apart:

- the *cache* (`$KDP_CACHE`, default `~/.cache/kdp`) holds what was downloaded from Maven Central. It is
  shared by every clone and every `KDP_HOME` on the machine, so only the very first start pays for downloads;
- the *home* (`$KDP_HOME`, default `<repo>/.kdp`) holds one stack's state: data, generated configuration, pid
  files and logs. Deleting it (`kdp stack down --purge`) resets the cluster without downloading anything
  again.

Ports: Kafka node *i* (0-based) listens on `kafka_port + i` for clients and `controller_port + i` for the
KRaft quorum; the registry serves its API on `registry_port` and health on `registry_management_port`.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from kdp.devstack.errors import StackError

ENV_HOME = "KDP_HOME"
ENV_CACHE = "KDP_CACHE"
ENV_JAVA = "KDP_JAVA"
ENV_KAFKA_PORT = "KDP_KAFKA_PORT"
ENV_CONTROLLER_PORT = "KDP_CONTROLLER_PORT"
ENV_REGISTRY_PORT = "KDP_REGISTRY_PORT"
ENV_REGISTRY_MGMT_PORT = "KDP_REGISTRY_MGMT_PORT"
ENV_OIDC_PORT = "KDP_OIDC_PORT"
ENV_HOST = "KDP_STACK_HOST"

HOST = "127.0.0.1"
"""Every process listens on loopback by default: the stack is for this machine, never for the network."""


def default_home() -> Path:
    """`<repo>/.kdp` when running from a checkout (the usual case), else `./.kdp`.

    The repository is recognised by its `pyproject.toml` beside the `kdp` package; an installed copy of the package
    (in site-packages) must not keep state next to itself, hence the fallback to the working directory.
    """
    repo = Path(__file__).resolve().parents[2]
    if (repo / "pyproject.toml").is_file():
        return repo / ".kdp"
    return Path.cwd() / ".kdp"


def default_cache() -> Path:
    """`$XDG_CACHE_HOME/kdp`, else `~/.cache/kdp`: outside any clone, so clones and CI share downloads."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kdp"


@dataclass(frozen=True)
class StackConfig:
    """Folders, ports and Java override of one local stack. Build it with `from_env`."""

    home: Path
    cache: Path
    kafka_port: int = 9092
    controller_port: int = 9192
    registry_port: int = 8081
    registry_management_port: int = 9000
    oidc_port: int = 8180
    """The secure stack's OpenID Connect server (`kdp.devstack.oidc`)."""
    java: str | None = None
    """An explicit Java executable (`$KDP_JAVA`); None lets `kdp.devstack.java` choose."""
    host: str = HOST
    """The IPv4 address every process listens on and advertises (`$KDP_STACK_HOST`). Another address than
    loopback is for tests that put clients in a network namespace (a real network partition)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> StackConfig:
        """Read `KDP_*` variables; keyword overrides (command-line flags) win over the environment.

        Overrides whose value is None are ignored, so an argparse namespace with unset flags can be passed as
        is. Raises StackError naming the variable when a port is not a number in 1..65535.
        """
        env = os.environ if env is None else env
        config = cls(
            home=Path(env.get(ENV_HOME) or default_home()).expanduser().absolute(),
            cache=Path(env.get(ENV_CACHE) or default_cache()).expanduser().absolute(),
            kafka_port=_port(env, ENV_KAFKA_PORT, cls.kafka_port),
            controller_port=_port(env, ENV_CONTROLLER_PORT, cls.controller_port),
            registry_port=_port(env, ENV_REGISTRY_PORT, cls.registry_port),
            registry_management_port=_port(env, ENV_REGISTRY_MGMT_PORT, cls.registry_management_port),
            oidc_port=_port(env, ENV_OIDC_PORT, cls.oidc_port),
            java=env.get(ENV_JAVA) or None,
            host=_host(env, ENV_HOST, cls.host),
        )
        given = {name: value for name, value in overrides.items() if value is not None}
        for name in ("home", "cache"):
            if name in given:
                given[name] = Path(str(given[name])).expanduser().absolute()
        return replace(config, **given)  # type: ignore[arg-type]

    def bootstrap(self, brokers: int) -> str:
        """Every node's client address, comma-separated (clients need only one, but any one may be down)."""
        return ",".join(f"{self.host}:{self.kafka_port + index}" for index in range(brokers))


def _host(env: Mapping[str, str], name: str, default: str) -> str:
    raw = env.get(name)
    if not raw:
        return default
    try:
        address = ipaddress.IPv4Address(raw)
    except ipaddress.AddressValueError:
        raise StackError(f"{name}={raw!r} is not an IPv4 address (clients are told to connect to it).") from None
    if address.is_unspecified:
        raise StackError(f"{name}={raw!r}: the stack advertises this address to clients, so it must be a real one.")
    return raw


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    try:
        port = int(raw)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise StackError(f"{name}={raw!r} is not a port number (1-65535); fix or unset it.")
    return port
