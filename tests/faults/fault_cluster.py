"""Faults a test inflicts on a local stack of its own: kill or freeze brokers, stop the registry, heal.

Every fault goes through the stack's own pid files (`kdp.devstack.processes.running_pid` checks the marker on
the command line), so only this stack's JVMs are ever signalled, never the developer's or another test's.
Healing is `LocalStack.up`, which is idempotent and starts exactly what is not running: a killed broker
comes back on its own data and ports, as it would after a crash on a real host.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass

from confluent_kafka import ElectionType, KafkaError, TopicCollection
from confluent_kafka.admin import AdminClient, NewTopic

from kdp.devstack import kafka_node, processes
from kdp.devstack.errors import StackError
from kdp.devstack.kafka_node import KafkaNode
from kdp.devstack.registry import RegistryProcess
from kdp.devstack.stack import LocalStack, StackInfo

STOP_TIMEOUT = 60.0
PORT_WAIT = 30.0


@dataclass
class FaultCluster:
    """A running stack (`info`) started by `local`, and the faults the tests inflict on it."""

    local: LocalStack
    info: StackInfo

    @property
    def nodes(self) -> list[KafkaNode]:
        return kafka_node.plan_nodes(self.local.config, self.info.brokers)

    @property
    def registry(self) -> RegistryProcess:
        return RegistryProcess.of(self.local.config)

    def broker_pid(self, node_id: int) -> int | None:
        node = self.nodes[node_id - 1]
        return processes.running_pid(node.pid_file, node.marker)

    def registry_pid(self) -> int | None:
        return processes.running_pid(self.registry.pid_file, self.registry.marker)

    def kill_broker(self, node_id: int) -> None:
        """SIGKILL one broker's JVM (no clean shutdown: the others find out by timeouts) and wait until it is gone."""
        pid = self.broker_pid(node_id)
        assert pid is not None, f"broker {node_id} is not running"
        os.kill(pid, signal.SIGKILL)
        _wait_until(lambda: self.broker_pid(node_id) is None, f"broker {node_id} (pid {pid}) to die")

    def freeze_brokers(self) -> None:
        """SIGSTOP every broker: sockets stay open but nothing answers, like a host or network stall."""
        for node in self.nodes:
            pid = self.broker_pid(node.node_id)
            assert pid is not None, f"broker {node.node_id} is not running"
            os.kill(pid, signal.SIGSTOP)

    def thaw_brokers(self) -> None:
        """SIGCONT every broker that runs (a no-op for those not frozen)."""
        for node in self.nodes:
            pid = self.broker_pid(node.node_id)
            if pid is not None:
                os.kill(pid, signal.SIGCONT)

    def stop_broker(self, node_id: int) -> None:
        """Stop one broker gracefully (SIGTERM, as an operator's rolling restart does): it hands over its
        leaderships and group coordinators before it exits."""
        node = self.nodes[node_id - 1]
        stopped = processes.stop(node.pid_file, node.marker, STOP_TIMEOUT)
        assert stopped is not None, f"broker {node_id} was not running"
        # A broker that ignored SIGTERM was killed after the timeout: that is a crash, not the graceful stop
        # the scenario claims to measure (see conftest.sigterm_disposition_kept for the cause seen once).
        assert not stopped.killed, f"broker {node_id}: {stopped}"

    def out_of_sync(self) -> list[str]:
        """Partitions of every topic (internal ones included) with a replica outside the in-sync set."""
        admin = AdminClient({"bootstrap.servers": self.info.bootstrap})
        names = list(admin.list_topics(timeout=30).topics)
        described = admin.describe_topics(TopicCollection(names), request_timeout=30)
        lagging = []
        for name, future in described.items():
            for partition in future.result(timeout=60).partitions:
                if {r.id for r in partition.isr} != {r.id for r in partition.replicas}:
                    lagging.append(f"{name}[{partition.id}]")
        return lagging

    def wait_in_sync(self, timeout: float = 180.0) -> float:
        """Seconds until every replica of every partition is back in sync (what a rolling restart waits for
        before it stops the next broker, so that two in-sync replicas remain throughout)."""
        began = time.monotonic()
        _wait_until(lambda: not self.out_of_sync(), "every replica to be back in sync", timeout, poll=1.0)
        return time.monotonic() - began

    def elect_preferred_leaders(self) -> int:
        """Hand every partition's leadership back to its preferred replica; the number of partitions that moved.

        What an operator runs after a planned restart (`kafka-leader-election.sh --election-type PREFERRED
        --all-topic-partitions`): a restarted broker comes back as a follower of everything, and without an
        election its leaderships return only at the controller's next imbalance check (up to 5 min later,
        `leader.imbalance.check.interval.seconds`), so clients keep a skewed layout until then."""
        admin = AdminClient({"bootstrap.servers": self.info.bootstrap})
        # No timeout keywords: confluent-kafka 2.16.1's elect_leaders raises SystemError on any (its argument
        # format string and keyword list disagree); the defaults are socket.timeout.ms, 60 s.
        results = admin.elect_leaders(ElectionType.PREFERRED, None).result(timeout=90)
        failed = {
            f"{tp.topic}[{tp.partition}]": error
            for tp, error in results.items()
            if error is not None and error.args[0].code() != KafkaError.ELECTION_NOT_NEEDED
        }
        assert not failed, f"preferred-leader election failed: {failed}"
        return sum(1 for error in results.values() if error is None)

    def group_coordinator(self, group_id: str) -> int:
        """The broker that coordinates consumer group `group_id` (its offsets, and in exactly-once mode the
        offsets its transactions commit)."""
        admin = AdminClient({"bootstrap.servers": self.info.bootstrap})
        description = admin.describe_consumer_groups([group_id], request_timeout=30)[group_id].result(timeout=60)
        return int(description.coordinator.id)

    def stop_registry(self) -> None:
        """Stop the registry (SIGTERM, as an operator or an orchestrator would)."""
        stopped = processes.stop(self.registry.pid_file, self.registry.marker, STOP_TIMEOUT)
        assert stopped is not None, "the registry was not running"
        assert not stopped.killed, f"the registry: {stopped}"

    def heal(self) -> float:
        """Thaw every broker and start whatever is not running; seconds until the whole stack is usable.

        A port of a node stopped a moment ago can be reported taken for a little while (seen once in a rolling
        restart: the controller port of the node just stopped); `up` is tried again for `PORT_WAIT` seconds,
        then fails with the sockets that hold the ports.
        """
        began = time.monotonic()
        self.thaw_brokers()
        while True:
            try:
                self.local.up(brokers=self.info.brokers, with_registry=self.info.registry_url is not None)
                return time.monotonic() - began
            except StackError as error:
                if "already in use" not in str(error):
                    raise
                if time.monotonic() - began > PORT_WAIT:
                    holders = subprocess.run(["ss", "-tanp"], capture_output=True, text=True).stdout
                    ports = re.findall(r"^\s+(\d+):", str(error), re.M)
                    lines = [line for line in holders.splitlines() if any(f":{port} " in line for port in ports)]
                    raise StackError(f"{error}\nSockets on those ports:\n" + "\n".join(lines)) from error
                time.sleep(1.0)

    def create_topics(self, names: list[str], partitions: int = 3) -> None:
        """Topics as production has them: replication 3 (or the cluster size), two in-sync replicas required."""
        replication = min(3, self.info.brokers)
        create_topics(self.info.bootstrap, names, partitions, replication, min_insync=min(2, replication))


def create_topics(bootstrap: str, names: list[str], partitions: int, replication: int, min_insync: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    config = {"min.insync.replicas": str(min_insync)}
    futures = admin.create_topics(
        [NewTopic(name, partitions, replication, config=config) for name in names], operation_timeout=30
    )
    for future in futures.values():
        future.result(timeout=60)


def _wait_until(condition, what: str, timeout: float = 30.0, poll: float = 0.1) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(poll)
