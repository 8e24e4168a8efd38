"""A Linux network namespace joined to this host by a veth pair: a real network between a process and the stack.

A process started with `exec_prefix` lives in the namespace and reaches the host only through the pair, at
`host_address`. `cut()` takes the host's end of the pair down: from then on the process's packets go nowhere,
with no reset and no refusal, as when a cable is pulled or a switch dies; the stack itself keeps running and
serving everyone else. `heal()` brings the link back.

Needs root (or CAP_NET_ADMIN) and the `ip` tool; `NetworkNamespace.create` raises `NamespaceUnavailable`
otherwise, so a test can skip with the reason.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass


class NamespaceUnavailable(RuntimeError):
    """This machine or user cannot create network namespaces."""


def _ip(*arguments: str) -> None:
    result = subprocess.run(["ip", *arguments], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise NamespaceUnavailable(f"ip {' '.join(arguments)}: {result.stderr.strip()}")


@dataclass
class NetworkNamespace:
    name: str
    host_link: str
    host_address: str
    inside_address: str

    @classmethod
    def create(cls) -> NetworkNamespace:
        """A new namespace on a /30 of its own under 10.213.0.0/16 (chosen at random, checked unused)."""
        if shutil.which("ip") is None:
            raise NamespaceUnavailable("the `ip` tool (iproute2) is not installed")
        tag = secrets.token_hex(3)
        subnet = int(tag, 16) % 16384  # 16384 /30 subnets in 10.213.0.0/16
        base = f"10.213.{subnet // 64}.{(subnet % 64) * 4}"
        prefix = base.rsplit(".", 1)[0]
        last = int(base.rsplit(".", 1)[1])
        namespace = cls(f"kdp-{tag}", f"kdph{tag}", f"{prefix}.{last + 1}", f"{prefix}.{last + 2}")
        namespace._set_up()
        return namespace

    def _set_up(self) -> None:
        inside_link = self.host_link.replace("kdph", "kdpc")
        _ip("netns", "add", self.name)
        try:
            _ip("link", "add", self.host_link, "type", "veth", "peer", "name", inside_link)
            _ip("link", "set", inside_link, "netns", self.name)
            _ip("addr", "add", f"{self.host_address}/30", "dev", self.host_link)
            _ip("link", "set", self.host_link, "up")
            _ip("-n", self.name, "addr", "add", f"{self.inside_address}/30", "dev", inside_link)
            _ip("-n", self.name, "link", "set", inside_link, "up")
            _ip("-n", self.name, "link", "set", "lo", "up")
        except NamespaceUnavailable:
            self.delete()
            raise

    @property
    def exec_prefix(self) -> list[str]:
        """Put before a command to run it inside the namespace (`ip netns exec` execs it: same pid)."""
        return ["ip", "netns", "exec", self.name]

    def cut(self) -> None:
        """The partition: the host's end of the link goes down, every packet across it is lost."""
        _ip("link", "set", self.host_link, "down")

    def heal(self) -> None:
        _ip("link", "set", self.host_link, "up")

    def delete(self) -> None:
        """Remove the pair and the namespace (deleting either end of a veth pair deletes both)."""
        subprocess.run(["ip", "link", "del", self.host_link], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=30)


@contextlib.contextmanager
def network_namespace(on_unavailable: Callable[[str], object]) -> Iterator[NetworkNamespace]:
    """A namespace for the block, deleted after it; when none can be made, `on_unavailable` is called with the
    reason (`pytest.skip` for a test that needs one, `pytest.fail` for a run that is nothing without one)."""
    try:
        created = NetworkNamespace.create()
    except NamespaceUnavailable as why:
        on_unavailable(f"no network namespace here: {why}")
        raise
    try:
        yield created
    finally:
        created.delete()
