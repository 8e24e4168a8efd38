"""The planner's input read from a live cluster: replica assignment, brokers and racks (confluent-kafka).

A thin adapter: it only describes topics and the cluster and reshapes the answer into the plain
types `plan_reassignment` takes, so the planner stays pure and testable without Kafka.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import TopicCollection
from confluent_kafka.admin import AdminClient

Partition = tuple[str, int]


@dataclass(frozen=True)
class ClusterState:
    """`assignment`: (topic, partition) -> replicas, preferred leader first; `racks`: None without racks."""

    assignment: dict[Partition, tuple[int, ...]]
    brokers: tuple[int, ...]
    racks: dict[int, str] | None


def read_cluster_state(
    admin: AdminClient, topics: Iterable[str] | None = None, timeout_s: float = 15.0
) -> ClusterState:
    """Describe `topics` (default: all but internal ones such as `__consumer_offsets`) and the brokers.

    Racks are returned only when every broker has one: Kafka's own rack-aware placement refuses a
    cluster where only some brokers have racks, and so does the planner.
    Raises the client's KafkaException when a topic does not exist or the cluster does not answer.
    """
    names = sorted(topics) if topics is not None else _user_topics(admin, timeout_s)
    cluster = admin.describe_cluster(request_timeout=timeout_s).result()
    brokers = tuple(sorted(node.id for node in cluster.nodes))
    racks = {node.id: node.rack for node in cluster.nodes if node.rack}
    assignment: dict[Partition, tuple[int, ...]] = {}
    if names:
        futures = admin.describe_topics(TopicCollection(names), request_timeout=timeout_s)
        for name in names:
            description = futures[name].result()
            for partition in description.partitions:
                assignment[name, partition.id] = tuple(node.id for node in partition.replicas)
    return ClusterState(
        assignment=dict(sorted(assignment.items())),
        brokers=brokers,
        racks=racks if len(racks) == len(brokers) else None,
    )


def _user_topics(admin: AdminClient, timeout_s: float) -> list[str]:
    metadata = admin.list_topics(timeout=timeout_s)
    return sorted(name for name in metadata.topics if not name.startswith("__"))
