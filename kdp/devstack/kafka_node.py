"""One Kafka node of the local cluster: its folders, its generated `server.properties`, formatting, launching.

Every node is a combined KRaft broker and controller (`process.roles=broker,controller`) with a static voter
list naming all nodes, so one node is a complete cluster and three nodes are a real quorum with real
replication, on one machine, without ZooKeeper or a separate controller process. Node ids start at 1; node *n*
takes client port `kafka_port + n - 1`, controller port `controller_port + n - 1` and rack `rack-<letter n>`
(so rack-aware replica placement has something to spread over).

Layout under `<home>/kafka/node-<id>/`: `server.properties` (rewritten on every start, so changed ports take
effect), `data/` (the log dir, with `meta.properties` once formatted), `logs/server.log`, `logs/stdout.log`,
`kafka.pid`.
"""

from __future__ import annotations

import base64
import string
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kdp.devstack import processes
from kdp.devstack.config import HOST, StackConfig
from kdp.devstack.errors import StackError
from kdp.devstack.private_files import write_private

LOG4J_CONFIG = Path(__file__).with_name("kafka-log4j2.properties")
MAX_NODES = 9
"""Enough for any local experiment, and it keeps rack names to one letter (rack-a .. rack-i)."""

JVM_OPTIONS = (
    "-Xms128m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
    "--enable-native-access=ALL-UNNAMED",
)
"""Kafka's own start script's G1 settings, with a heap sized for a laptop rather than a server."""


@dataclass(frozen=True)
class KafkaNode:
    """One node's identity, addresses and folders. Pure data: creating one touches nothing on disk."""

    node_id: int
    port: int
    controller_port: int
    folder: Path
    host: str = HOST

    @property
    def rack(self) -> str:
        return f"rack-{string.ascii_lowercase[self.node_id - 1]}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def logs_dir(self) -> Path:
        return self.folder / "logs"

    @property
    def server_log(self) -> Path:
        return self.logs_dir / "server.log"

    @property
    def stdout_log(self) -> Path:
        return self.logs_dir / "stdout.log"

    @property
    def properties_file(self) -> Path:
        return self.folder / "server.properties"

    @property
    def pid_file(self) -> Path:
        return self.folder / "kafka.pid"

    @property
    def marker(self) -> str:
        return processes.marker_argument(self.folder)


def kafka_folder(home: Path) -> Path:
    return home / "kafka"


def plan_nodes(config: StackConfig, brokers: int) -> list[KafkaNode]:
    """The nodes of a cluster of `brokers` nodes under `config.home`, with their ports."""
    if not 1 <= brokers <= MAX_NODES:
        raise StackError(f"A local cluster has 1 to {MAX_NODES} brokers, not {brokers}.")
    return [
        KafkaNode(
            node_id=index + 1,
            port=config.kafka_port + index,
            controller_port=config.controller_port + index,
            folder=kafka_folder(config.home) / f"node-{index + 1}",
            host=config.host,
        )
        for index in range(brokers)
    ]


def existing_node_folders(home: Path) -> list[Path]:
    """Folders of every node that ever existed under `home`, whatever the cluster size now."""
    return sorted(kafka_folder(home).glob("node-*"), key=lambda folder: folder.name)


def formatted_cluster(home: Path) -> tuple[str | None, int]:
    """The cluster id and node count of the data under `home` (None, 0 when nothing is formatted).

    The data itself is the record of the cluster's shape: each formatted node's `data/meta.properties` names
    its cluster. Nodes of different clusters in one home cannot come from `kdp stack` and are reported as an
    error.
    """
    cluster_ids = set()
    count = 0
    for folder in existing_node_folders(home):
        meta = read_properties(folder / "data" / "meta.properties")
        if "cluster.id" in meta:
            cluster_ids.add(meta["cluster.id"])
            count += 1
    if len(cluster_ids) > 1:
        raise StackError(
            f"The Kafka data under {kafka_folder(home)} belongs to several clusters ({sorted(cluster_ids)}); "
            "remove it with `kdp stack down --purge`."
        )
    return (cluster_ids.pop() if cluster_ids else None), count


def replication_settings(cluster_size: int) -> dict[str, str]:
    """Replication of internal and new topics that a cluster of this size can actually satisfy.

    Kafka's defaults (replication factor 3) leave a single node unable to create `__consumer_offsets` or
    `__transaction_state`, so group consumers and transactions hang. With three or more nodes the cluster gets
    the production shape: replication factor 3, two in-sync replicas required (one node may be down).
    """
    factor = min(3, cluster_size)
    min_in_sync = 2 if factor >= 3 else 1
    return {
        "offsets.topic.replication.factor": str(factor),
        "transaction.state.log.replication.factor": str(factor),
        "transaction.state.log.min.isr": str(min_in_sync),
        "share.coordinator.state.topic.replication.factor": str(factor),
        "share.coordinator.state.topic.min.isr": str(min_in_sync),
        "default.replication.factor": str(factor),
        "min.insync.replicas": str(min_in_sync),
    }


def server_properties(
    node: KafkaNode, cluster: Sequence[KafkaNode], overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The complete `server.properties` of `node` in `cluster`, as an ordered mapping. Pure.

    `overrides` (the secure stack's listeners and authorizer, `kdp.devstack.security`) replace or extend it.
    """
    voters = ",".join(f"{member.node_id}@{member.host}:{member.controller_port}" for member in cluster)
    return {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://{node.address},CONTROLLER://{node.host}:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{node.address}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "broker.rack": node.rack,
        "log.dirs": str(node.data_dir),
        "num.partitions": "1",
        # A first consumer group join otherwise waits 3 s for more members; tests and demos join constantly.
        "group.initial.rebalance.delay.ms": "0",
        # Retention is enforced within seconds instead of Kafka's 5 minutes, so that a record deleted too early
        # (tests/integration/test_retention.py) shows up in a test run rather than hours into production.
        "log.retention.check.interval.ms": "10000",
        **replication_settings(len(cluster)),
        **(overrides or {}),
    }


def render_properties(properties: Mapping[str, str]) -> str:
    """Java properties text: backslashes escaped (Windows paths), line breaks as `\\n` (PEM certificates)."""
    lines = ["# Generated by `kdp stack up` (kdp/devstack/kafka_node.py) on every start: edits are overwritten."]
    lines += [f"{key}={_escaped(value)}" for key, value in properties.items()]
    return "\n".join(lines) + "\n"


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def read_properties(path: Path) -> dict[str, str]:
    """The key=value pairs of a simple properties file (comments skipped); empty when the file is absent."""
    try:
        text = path.read_text()
    except OSError:
        return {}
    pairs = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")) and "=" in line:
            key, value = line.split("=", 1)
            pairs[key.strip()] = value.strip()
    return pairs


def new_cluster_id() -> str:
    """A cluster id in Kafka's format: a random UUID as 22 characters of URL-safe base64.

    Made here rather than with `kafka-storage random-uuid` to save a JVM start. Like Kafka, it never starts
    with a dash, which a command line would mistake for an option.
    """
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate


def write_configuration(
    node: KafkaNode, cluster: Sequence[KafkaNode], overrides: Mapping[str, str] | None = None
) -> None:
    """Create the node's folders and (re)write its `server.properties`, readable by its owner only.

    Owner-only because a secure node's file holds the nodes' shared secret.
    """
    for folder in (node.data_dir, node.logs_dir):
        folder.mkdir(parents=True, exist_ok=True)
    write_private(node.properties_file, render_properties(server_properties(node, cluster, overrides)))


def java_command(
    java: str, libs: Path, node: KafkaNode, options: Sequence[str], main_class: str, *arguments: str
) -> list[str]:
    """A JVM running `main_class` with Kafka's classpath, the node's logging and marker, and `options`."""
    return [
        java,
        *JVM_OPTIONS,
        *options,
        node.marker,
        f"-Dlog4j2.configurationFile={LOG4J_CONFIG}",
        f"-Dkafka.logs.dir={node.logs_dir}",
        "-cp",
        str(libs / "*"),
        main_class,
        *arguments,
    ]


def format_storage(
    java: str,
    libs: Path,
    nodes: Sequence[KafkaNode],
    cluster_id: str,
    options: Sequence[str] = (),
    secret_arguments: Sequence[str] = (),
) -> None:
    """Format every node's log dir for `cluster_id`, all in parallel (each is a JVM start of about a second).

    `--ignore-formatted` makes a repeated format of an already formatted node a no-op rather than an error.
    `secret_arguments` (the secure stack's `--add-scram` credentials) reach the tool through a Java argument
    file of mode 0600, deleted afterwards, so that no password shows on a command line (`ps` lists those).
    """
    running = []
    for node in nodes:
        # The launcher expands an argument file given in place of the main class, arguments included.
        argument_file = node.folder / "format.args"
        arguments = ["kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(node.properties_file)]
        quoted = (_quoted(argument) for argument in [*arguments, "--ignore-formatted", *secret_arguments])
        write_private(argument_file, "\n".join(quoted) + "\n")
        command = java_command(java, libs, node, options, f"@{argument_file}")
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        running.append((node, process, argument_file))
    failures = []
    for node, process, argument_file in running:
        try:
            output, _ = process.communicate(timeout=120)
        finally:
            argument_file.unlink(missing_ok=True)
        if process.returncode != 0:
            failures.append(f"node {node.node_id} (exit {process.returncode}):\n{_without_salts(output)}")
    if failures:
        raise StackError("Formatting Kafka storage failed for " + "\n".join(failures))


def _quoted(argument: str) -> str:
    """One argument of a Java argument file: in double quotes, where a backslash escapes (paths may have spaces)."""
    return '"' + argument.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _without_salts(output: str) -> str:
    """The storage tool's output without its echo of stored SCRAM keys (not for a terminal or a log)."""
    return "\n".join(line for line in output.strip().splitlines() if "UserScramCredentialRecord" not in line)


def launch(java: str, libs: Path, node: KafkaNode, options: Sequence[str] = ()) -> subprocess.Popen[bytes]:
    """Start the node's broker+controller JVM in the background; the pid goes to `node.pid_file`."""
    return processes.start(
        java_command(java, libs, node, options, "kafka.Kafka", str(node.properties_file)),
        cwd=node.folder,
        log_file=node.stdout_log,
        pid_file=node.pid_file,
    )
