"""Is a port free, before a JVM finds out the slow way?

A Kafka node or the registry that cannot bind dies a few seconds into its start with a stack trace in its log.
Checking every port up front turns that into one clear message naming the port, what it was meant for and the
setting that moves it.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Mapping
from pathlib import Path

from kdp.devstack.config import HOST, StackConfig
from kdp.devstack.errors import StackError


def is_port_free(port: int, host: str = HOST) -> bool:
    """True when a server could listen on host:port now.

    SO_REUSEADDR mirrors what the JVM's server sockets do, so a port left in TIME_WAIT by a just-stopped node
    counts as free (it is), while any listener, on this address or on the wildcard address, counts as taken.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def ensure_ports_free(wanted: Mapping[str, int], host: str = HOST) -> None:
    """Raise StackError listing every taken port; `wanted` maps a purpose (with its setting) to a port."""
    taken = [f"  {port}: {purpose}" for purpose, port in wanted.items() if not is_port_free(port, host)]
    if taken:
        raise StackError(
            "These ports are already in use by another program:\n"
            + "\n".join(taken)
            + "\nStop that program, or choose other ports with the flags or environment variables named."
        )


def free_port_block(size: int, low: int = 20000, high: int = 32000, attempts: int = 200) -> int:
    """The first port of `size` consecutive free ports, picked at random in [low, high).

    For tests that run a second stack beside the developer's one. The default range stays below Linux's
    ephemeral ports (32768-60999), which outgoing connections take at random: a port picked there can be taken
    by any client between this check and the JVM's bind. Even below it, free now is not a reservation; the
    up-front check of `ensure_ports_free` then reports the port.
    """
    for _ in range(attempts):
        first = random.randrange(low, high - size)
        if all(is_port_free(port) for port in range(first, first + size)):
            return first
    raise StackError(f"Found no {size} consecutive free ports between {low} and {high}.")


def config_on_free_ports(home: Path, brokers: int = 3, env: Mapping[str, str] | None = None) -> StackConfig:
    """A stack configuration under `home` on a block of free ports with room for `brokers` nodes.

    For a stack beside the developer's (tests, experiments); `env` is read as by `StackConfig.from_env`
    (the download cache, `KDP_STACK_HOST`), the ports chosen here win over it.
    """
    first = free_port_block(2 * brokers + 3)
    return StackConfig.from_env(
        env,
        home=home,
        kafka_port=first,
        controller_port=first + brokers,
        registry_port=first + 2 * brokers,
        registry_management_port=first + 2 * brokers + 1,
        oidc_port=first + 2 * brokers + 2,
    )
