"""Execute a reassignment plan on a live cluster: throttle, reassign, wait, verify, un-throttle.

librdkafka (confluent-kafka) has no reassignment API, so this adapter uses kafka-python's
`KafkaAdminClient` (`alter_partition_reassignments`, `list_partition_reassignments`, incremental
`alter_configs`, `elect_leaders`).

Contract of `execute`:
- refuses a stale plan (a partition's replicas are neither the plan's `current` nor its `proposed`)
  and partitions that are already being reassigned, before changing anything;
- with a throttle, sets `leader/follower.replication.throttled.rate` on every broker that sends or
  receives a copy, and `leader/follower.replication.throttled.replicas` on the moving topics (as
  `kafka-reassign-partitions` does: leaders = current replicas, followers = new replicas);
- waits until no plan partition is being reassigned and each has exactly the planned replicas, or
  raises `ReassignmentTimeout` (the reassignment keeps running in the cluster; `verify` tells how far);
- removes the throttle in every case, success or failure: a forgotten throttle silently caps
  replication (also of later, unrelated catch-ups) until someone deletes it;
- then asks for a preferred-leader election on partitions whose first replica changed, so leaders
  follow the new order now rather than at the next automatic rebalance.

The throttle keys are deleted, not restored: like Kafka's own tool, this assumes no one else keeps
throttles on the same brokers and topics.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from kafka import TopicPartition
from kafka.admin import AlterConfigOp, ConfigResource, ConfigResourceType, KafkaAdminClient

from orchestration.reassignment.planner import Partition, Plan
from streaming.settings import Settings

BROKER_RATE_KEYS = ("leader.replication.throttled.rate", "follower.replication.throttled.rate")
LEADER_REPLICAS_KEY = "leader.replication.throttled.replicas"
FOLLOWER_REPLICAS_KEY = "follower.replication.throttled.replicas"
PREFERRED_ELECTION = 0


class ReassignmentError(RuntimeError):
    """The cluster refused or did not complete the reassignment; the message says where and why."""


class StalePlanError(ReassignmentError):
    """The cluster's assignment changed since the plan was made: plan again from the current state."""


class ReassignmentTimeout(ReassignmentError):
    """Replicas were still catching up at the deadline. `statuses` shows each partition's state."""

    def __init__(self, message: str, statuses: dict[Partition, PartitionStatus]):
        super().__init__(message)
        self.statuses = statuses


class PartitionStatus(StrEnum):
    COMPLETE = "complete"  # replicas equal the plan, nothing in progress
    IN_PROGRESS = "in_progress"  # the cluster is still copying
    NOT_APPLIED = "not_applied"  # replicas differ from the plan and nothing is in progress
    MISSING = "missing"  # the topic or partition no longer exists


@dataclass(frozen=True)
class Throttles:
    """Dynamic configs that throttle a plan's copies: per broker id and per topic."""

    brokers: dict[int, dict[str, str]] = field(default_factory=dict)
    topics: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class ExecutionReport:
    """What `execute` did: status per changed partition, the throttle it set and removed, election errors."""

    statuses: dict[Partition, PartitionStatus]
    throttles: Throttles
    leader_election_errors: dict[Partition, str]
    seconds: float


def kafka_python_admin(settings: Settings, **overrides: object) -> KafkaAdminClient:
    """A kafka-python admin client for the same cluster and security settings as the data plane."""
    config = {**settings.kafka_python_config(), "client_id": "kdp-reassignment"}
    return KafkaAdminClient(**(config | overrides))


def throttle_configs(plan: Plan, bytes_per_second: int) -> Throttles:
    """The throttle of `plan` (pure): only partitions gaining replicas copy data, so only they are throttled.

    Replica lists use Kafka's `partition:broker,...` format.
    """
    if bytes_per_second <= 0:
        raise ValueError(f"throttle must be a positive byte rate, got {bytes_per_second}")
    leaders: dict[str, list[str]] = defaultdict(list)
    followers: dict[str, list[str]] = defaultdict(list)
    brokers: set[int] = set()
    for (topic, partition), added in sorted(plan.moves_by_partition.items()):
        sources = plan.current[topic, partition]
        leaders[topic] += [f"{partition}:{b}" for b in sources]
        followers[topic] += [f"{partition}:{b}" for b in added]
        brokers |= set(sources) | set(added)
    rate = str(bytes_per_second)
    return Throttles(
        brokers={b: dict.fromkeys(BROKER_RATE_KEYS, rate) for b in sorted(brokers)},
        topics={
            topic: {
                LEADER_REPLICAS_KEY: ",".join(leaders[topic]),
                FOLLOWER_REPLICAS_KEY: ",".join(followers[topic]),
            }
            for topic in sorted(leaders)
        },
    )


def execute(
    admin: KafkaAdminClient,
    plan: Plan,
    *,
    throttle_bytes_per_second: int | None = None,
    timeout_s: float = 600.0,
    poll_interval_s: float = 1.0,
    elect_preferred_leaders: bool = True,
) -> ExecutionReport:
    """Apply `plan` and wait for it (see the module docstring for the guarantees)."""
    started = time.monotonic()
    changed = plan.changed
    if not changed:
        return ExecutionReport({}, Throttles(), {}, 0.0)
    _refuse_stale_or_busy(admin, plan)
    throttles = throttle_configs(plan, throttle_bytes_per_second) if throttle_bytes_per_second else Throttles()
    try:
        _alter_configs(admin, throttles, AlterConfigOp.SET)
        refused = {
            tp: error
            for tp, error in admin.alter_partition_reassignments(
                {TopicPartition(*tp): list(replicas) for tp, replicas in changed.items()}
            ).items()
            if error is not None
        }
        if refused:
            raise ReassignmentError(f"the cluster refused the reassignment of {_describe_errors(refused)}")
        statuses = _wait_until_complete(admin, plan, started + timeout_s, poll_interval_s)
    finally:
        remove_throttles(admin, throttles)
    election_errors = _elect_new_leaders(admin, plan) if elect_preferred_leaders else {}
    return ExecutionReport(statuses, throttles, election_errors, time.monotonic() - started)


def verify(admin: KafkaAdminClient, plan: Plan) -> dict[Partition, PartitionStatus]:
    """Where each changed partition of `plan` stands in the cluster now."""
    changed = plan.changed
    if not changed:
        return {}
    ongoing = admin.list_partition_reassignments([TopicPartition(*tp) for tp in changed])
    in_progress = {(tp.topic, tp.partition) for tp in ongoing}
    actual = _replicas(admin, {topic for topic, _ in changed})
    statuses = {}
    for tp, replicas in sorted(changed.items()):
        if tp not in actual:
            statuses[tp] = PartitionStatus.MISSING
        elif tp in in_progress:
            statuses[tp] = PartitionStatus.IN_PROGRESS
        elif actual[tp] == replicas:
            statuses[tp] = PartitionStatus.COMPLETE
        else:
            statuses[tp] = PartitionStatus.NOT_APPLIED
    return statuses


def remove_throttles(admin: KafkaAdminClient, throttles: Throttles) -> None:
    """Delete the throttle keys of `throttles` (deleting an unset key is harmless, so this is idempotent)."""
    _alter_configs(admin, throttles, AlterConfigOp.DELETE)


def current_throttles(admin: KafkaAdminClient, brokers: Iterable[int], topics: Iterable[str]) -> Throttles:
    """The throttle keys currently set on `brokers` and `topics` (to check that none were left behind)."""
    resources = [ConfigResource(ConfigResourceType.BROKER, str(b), list(BROKER_RATE_KEYS)) for b in brokers]
    resources += [
        ConfigResource(ConfigResourceType.TOPIC, t, [LEADER_REPLICAS_KEY, FOLLOWER_REPLICAS_KEY]) for t in topics
    ]
    if not resources:
        return Throttles()
    described = admin.describe_configs(resources, config_filter="modified")

    def values(configs: dict[str, dict[str, object]], keys: Iterable[str]) -> dict[str, str]:
        return {key: str(configs[key]["value"]) for key in keys if key in configs and configs[key]["value"]}

    brokers_set = {
        int(name): values(configs, BROKER_RATE_KEYS) for name, configs in described.get("broker", {}).items()
    }
    topics_set = {
        name: values(configs, (LEADER_REPLICAS_KEY, FOLLOWER_REPLICAS_KEY))
        for name, configs in described.get("topic", {}).items()
    }
    return Throttles(
        brokers={b: v for b, v in sorted(brokers_set.items()) if v},
        topics={t: v for t, v in sorted(topics_set.items()) if v},
    )


def _refuse_stale_or_busy(admin: KafkaAdminClient, plan: Plan) -> None:
    changed = plan.changed
    actual = _replicas(admin, {topic for topic, _ in changed})
    stale = {tp: actual.get(tp) for tp in changed if actual.get(tp) not in (plan.current[tp], plan.proposed[tp])}
    if stale:
        raise StalePlanError(f"replicas changed since planning (partition: now): {stale}; plan again")
    busy = admin.list_partition_reassignments([TopicPartition(*tp) for tp in changed])
    if busy:
        names = sorted((tp.topic, tp.partition) for tp in busy)
        raise ReassignmentError(f"already being reassigned: {names}; wait for it or cancel it first")


def _wait_until_complete(
    admin: KafkaAdminClient, plan: Plan, deadline: float, poll_interval_s: float
) -> dict[Partition, PartitionStatus]:
    while True:
        statuses = verify(admin, plan)
        if all(status is PartitionStatus.COMPLETE for status in statuses.values()):
            return statuses
        failed = {tp: s for tp, s in statuses.items() if s in (PartitionStatus.MISSING, PartitionStatus.NOT_APPLIED)}
        if failed:
            raise ReassignmentError(f"reassignment ended without the planned replicas: {failed}")
        if time.monotonic() >= deadline:
            pending = sorted(tp for tp, s in statuses.items() if s is not PartitionStatus.COMPLETE)
            raise ReassignmentTimeout(f"still copying at the deadline: {pending}", statuses)
        time.sleep(poll_interval_s)


def _elect_new_leaders(admin: KafkaAdminClient, plan: Plan) -> dict[Partition, str]:
    """Preferred-leader election where the first replica changed; errors are reported, not raised."""
    new_leaders: dict[str, list[int]] = defaultdict(list)
    for (topic, partition), replicas in sorted(plan.changed.items()):
        if replicas[0] != plan.current[topic, partition][0]:
            new_leaders[topic].append(partition)
    if not new_leaders:
        return {}
    response = admin.elect_leaders(PREFERRED_ELECTION, dict(new_leaders), raise_errors=False)
    errors = {}
    for result in response.replica_election_results:
        for partition in result.partition_result:
            # 0 = elected, 84 = ELECTION_NOT_NEEDED (the preferred replica already leads)
            if partition.error_code not in (0, 84):
                errors[result.topic, partition.partition_id] = partition.error_message or str(partition.error_code)
    return errors


def _replicas(admin: KafkaAdminClient, topics: Iterable[str]) -> dict[Partition, tuple[int, ...]]:
    replicas = {}
    for topic in admin.describe_topics(sorted(topics)):
        if topic.get("error_code"):
            continue
        for partition in topic["partitions"]:
            replicas[topic["name"], partition["partition_index"]] = tuple(partition["replica_nodes"])
    return replicas


def _alter_configs(admin: KafkaAdminClient, throttles: Throttles, op: AlterConfigOp) -> None:
    resources = [
        ConfigResource(ConfigResourceType.BROKER, str(b), {key: (op, value) for key, value in configs.items()})
        for b, configs in throttles.brokers.items()
    ]
    resources += [
        ConfigResource(ConfigResourceType.TOPIC, topic, {key: (op, value) for key, value in configs.items()})
        for topic, configs in throttles.topics.items()
    ]
    if not resources:
        return
    results = admin.alter_configs(resources, raise_on_unknown=False, incremental=True)
    failures = {
        f"{kind} {name}": outcome
        for kind, outcomes in results.items()
        for name, outcome in outcomes.items()
        if outcome != "OK"
    }
    if failures:
        raise ReassignmentError(f"could not {op.name.lower()} throttle configs: {failures}")


def _describe_errors(errors: dict[TopicPartition, object]) -> str:
    return ", ".join(f"{tp.topic}-{tp.partition}: {error}" for tp, error in sorted(errors.items()))
