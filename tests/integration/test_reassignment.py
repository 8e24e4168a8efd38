"""The reassignment planner and executor on a real three-broker cluster, and against Kafka's `--generate`.

The cluster is a private one (its own KDP_HOME in a temporary folder, free ports, no registry) so that
moving replicas and throttling brokers never disturbs the shared stack other tests use. Each node
has its own rack (rack-a, rack-b, rack-c), so the plans are rack-aware as in production.

What is shown, per scenario: the plan hits its lower bound of moves; the executor throttles the copy,
ends with exactly the planned replicas and leaders, loses no data (end offsets unchanged), and leaves
no throttle behind, also when it gives up at its deadline. The move counts of our plan, its lower
bound and Kafka's `--generate` are printed (run with `-s` to see them).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka.admin import KafkaAdminClient

from kdp.devstack.config import StackConfig
from kdp.devstack.java import find_java
from kdp.devstack.maven import kafka_libs
from kdp.devstack.ports import config_on_free_ports
from kdp.devstack.stack import LocalStack, StackInfo
from orchestration.reassignment.cluster_state import read_cluster_state
from orchestration.reassignment.executor import (
    PartitionStatus,
    ReassignmentTimeout,
    Throttles,
    current_throttles,
    execute,
    kafka_python_admin,
    verify,
)
from orchestration.reassignment.plan_json import parse_reassignment_json
from orchestration.reassignment.planner import Partition, plan_reassignment
from streaming.settings import Settings

pytestmark = pytest.mark.integration

BROKERS = (1, 2, 3)
PARTITIONS = 12


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StackInfo, StackConfig]]:
    config = config_on_free_ports(tmp_path_factory.mktemp("kdp-reassignment"))
    local = LocalStack(config)
    try:
        yield local.up(brokers=len(BROKERS), with_registry=False), config
    finally:
        local.down(purge=True)


@pytest.fixture(scope="module")
def admin(cluster) -> AdminClient:
    return AdminClient({"bootstrap.servers": cluster[0].bootstrap})


@pytest.fixture(scope="module")
def kafka_admin(cluster) -> Iterator[KafkaAdminClient]:
    client = kafka_python_admin(Settings(bootstrap=cluster[0].bootstrap))
    yield client
    client.close()


def create_topic(admin: AdminClient, bootstrap: str, name: str, layout: list[list[int]], kib: int) -> None:
    """A topic with an explicit replica layout and `kib` KiB of records in each partition."""
    admin.create_topics([NewTopic(name, len(layout), replica_assignment=layout)])[name].result(timeout=30)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "compression.type": "none"})
    payload = bytes(1024)
    for partition in range(len(layout)):
        for _ in range(kib):
            producer.produce(name, payload, partition=partition)
            producer.poll(0)
    assert producer.flush(60) == 0


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "reassignment-test-offsets"})
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in range(PARTITIONS)}
    finally:
        consumer.close()


def kafka_generate(
    config: StackConfig, bootstrap: str, topic: str, work: Path, *options: str
) -> dict[Partition, tuple[int, ...]]:
    """Kafka's own proposal: `kafka-reassign-partitions --generate` for `topic` over all brokers."""
    topics_file = work / "topics-to-move.json"
    topics_file.write_text(json.dumps({"version": 1, "topics": [{"topic": topic}]}))
    command = [
        find_java(config.java).executable,
        "-cp",
        f"{kafka_libs(config.cache)}/*",
        "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
        "--bootstrap-server",
        bootstrap,
        "--topics-to-move-json-file",
        str(topics_file),
        "--broker-list",
        ",".join(map(str, BROKERS)),
        "--generate",
        *options,
    ]
    output = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout
    lines = output.splitlines()
    proposal = lines[lines.index("Proposed partition reassignment configuration") + 1]
    return parse_reassignment_json(proposal)


def moves_between(current: dict[Partition, tuple[int, ...]], proposed: dict[Partition, tuple[int, ...]]) -> int:
    return sum(len(set(replicas) - set(current[tp])) for tp, replicas in proposed.items())


def wait_for_leaders(admin: AdminClient, topic: str, expected: dict[Partition, tuple[int, ...]]) -> dict[int, int]:
    """Leader of each partition once they equal the planned first replicas (elections take a moment)."""
    deadline = time.monotonic() + 60
    while True:
        partitions = admin.list_topics(topic, timeout=30).topics[topic].partitions
        leaders = {p: meta.leader for p, meta in partitions.items()}
        if all(leaders[p] == expected[topic, p][0] for p in leaders) or time.monotonic() > deadline:
            return leaders
        time.sleep(0.5)


def report(scenario: str, ours: int, bound: int, kafka: int | None) -> None:
    print(f"\n[reassignment] {scenario}: ours {ours} moves, lower bound {bound}, kafka --generate {kafka}")


def test_spreading_a_topic_from_one_broker_over_three(cluster, admin, kafka_admin, topic_name, tmp_path):
    info, config = cluster
    create_topic(admin, info.bootstrap, topic_name, [[1]] * PARTITIONS, kib=256)
    before = end_offsets(info.bootstrap, topic_name)

    state = read_cluster_state(admin, [topic_name])
    assert state.assignment == {(topic_name, p): (1,) for p in range(PARTITIONS)}
    assert state.brokers == BROKERS
    assert state.racks == {1: "rack-a", 2: "rack-b", 3: "rack-c"}
    plan = plan_reassignment(state.assignment, state.brokers, state.racks)
    proposal = kafka_generate(config, info.bootstrap, topic_name, tmp_path)
    kafka_moves = moves_between(state.assignment, proposal)
    kafka_counts = Counter(b for replicas in proposal.values() for b in replicas)
    report("12 partitions RF 1 from broker 1 to 1,2,3", plan.moves, plan.lower_bound, kafka_moves)
    assert plan.moves == plan.lower_bound == 8
    # Kafka's proposal starts at a random broker: fewer moves than ours only by leaving brokers uneven.
    if kafka_moves < plan.moves:
        assert max(kafka_counts.values()) - min(kafka_counts.values()) > 1

    result = execute(kafka_admin, plan, throttle_bytes_per_second=20_000_000, timeout_s=180)

    assert set(result.throttles.brokers) == set(BROKERS)
    assert set(result.statuses.values()) == {PartitionStatus.COMPLETE}
    assert read_cluster_state(admin, [topic_name]).assignment == plan.proposed
    assert current_throttles(kafka_admin, BROKERS, [topic_name]) == Throttles()
    assert end_offsets(info.bootstrap, topic_name) == before
    leaders = wait_for_leaders(admin, topic_name, plan.proposed)
    assert Counter(leaders.values()) == {1: 4, 2: 4, 3: 4}


def test_raising_the_replication_factor_from_one_to_three(cluster, admin, kafka_admin, topic_name):
    info, _ = cluster
    create_topic(admin, info.bootstrap, topic_name, [[1 + p % 3] for p in range(PARTITIONS)], kib=256)
    before = end_offsets(info.bootstrap, topic_name)

    state = read_cluster_state(admin, [topic_name])
    plan = plan_reassignment(state.assignment, state.brokers, state.racks, replication_factor=3)
    report("12 partitions RF 1 -> 3 on 1,2,3 (--generate cannot change RF)", plan.moves, plan.lower_bound, None)
    assert plan.moves == plan.lower_bound == 2 * PARTITIONS
    assert all(plan.proposed[tp][0] == state.assignment[tp][0] for tp in plan.proposed), "leaders stay"

    result = execute(kafka_admin, plan, throttle_bytes_per_second=20_000_000, timeout_s=180)

    assert set(result.statuses.values()) == {PartitionStatus.COMPLETE}
    described = admin.list_topics(topic_name, timeout=30).topics[topic_name].partitions
    assert all(sorted(meta.replicas) == [1, 2, 3] for meta in described.values())
    assert all(sorted(meta.isrs) == [1, 2, 3] for meta in described.values()), "every new replica caught up"
    assert current_throttles(kafka_admin, BROKERS, [topic_name]) == Throttles()
    assert end_offsets(info.bootstrap, topic_name) == before
    assert verify(kafka_admin, plan) == dict.fromkeys(plan.changed, PartitionStatus.COMPLETE)


def test_adding_a_broker_to_a_two_broker_topic_against_kafkas_generate(cluster, admin, topic_name, tmp_path):
    info, config = cluster
    layout = [[1, 2] if p % 2 else [2, 1] for p in range(PARTITIONS)]
    create_topic(admin, info.bootstrap, topic_name, layout, kib=1)
    state = read_cluster_state(admin, [topic_name])
    plan = plan_reassignment(state.assignment, state.brokers, state.racks)
    assert plan.moves == plan.lower_bound == 8
    assert plan.replicas_after == {1: 8, 2: 8, 3: 8}

    # Kafka's proposals ignore the current layout: when one moves less than ours, it leaves brokers uneven.
    for options in ((), ("--disable-rack-aware",)) * 3:
        proposal = kafka_generate(config, info.bootstrap, topic_name, tmp_path, *options)
        counts = Counter(b for replicas in proposal.values() for b in replicas)
        kafka_moves = moves_between(state.assignment, proposal)
        per_broker = dict(sorted(counts.items()))
        scenario = f"12 partitions RF 2 on 1,2 to 1,2,3 {' '.join(options)} (kafka per broker {per_broker})"
        report(scenario, plan.moves, plan.lower_bound, kafka_moves)
        if kafka_moves < plan.moves:
            assert max(counts.values()) - min(counts.values()) > 1


def test_the_throttle_is_removed_when_the_executor_gives_up(cluster, admin, kafka_admin, topic_name):
    info, _ = cluster
    create_topic(admin, info.bootstrap, topic_name, [[1]] * PARTITIONS, kib=2048)
    state = read_cluster_state(admin, [topic_name])
    plan = plan_reassignment(state.assignment, state.brokers, state.racks)
    seen_while_running: list[Throttles] = []
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            execute(
                kafka_admin_for_thread,
                plan,
                throttle_bytes_per_second=50_000,
                timeout_s=8,
                poll_interval_s=0.5,
            )
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            outcome.append(error)

    kafka_admin_for_thread = kafka_python_admin(Settings(bootstrap=info.bootstrap))
    worker = threading.Thread(target=run)
    worker.start()
    while worker.is_alive():
        throttles = current_throttles(kafka_admin, BROKERS, [topic_name])
        # The executor sets the brokers' rates one broker at a time: wait for the whole throttle.
        if throttles.topics and set(throttles.brokers) == set(BROKERS):
            seen_while_running.append(throttles)
            break
        time.sleep(0.2)
    worker.join(timeout=120)
    kafka_admin_for_thread.close()

    assert seen_while_running, "the throttle was in force on every broker and the topic while copying"
    assert len(outcome) == 1 and isinstance(outcome[0], ReassignmentTimeout)
    assert PartitionStatus.IN_PROGRESS in outcome[0].statuses.values()
    assert current_throttles(kafka_admin, BROKERS, [topic_name]) == Throttles()
    # Unthrottled, the cluster finishes the job on its own.
    deadline = time.monotonic() + 120
    while set(verify(kafka_admin, plan).values()) != {PartitionStatus.COMPLETE} and time.monotonic() < deadline:
        time.sleep(1)
    assert set(verify(kafka_admin, plan).values()) == {PartitionStatus.COMPLETE}


def test_the_dagster_jobs_plan_then_execute_the_planning_runs_plan(cluster, admin, topic_name, tmp_path, monkeypatch):
    """The control-plane path: `plan_partition_reassignment` records the plan (and writes it as files),
    `execute_...` carries out the latest planning run's plan, then the same run's plan chosen by its id."""
    import dagster as dg

    from orchestration.defs.reassignment.jobs import execute_partition_reassignment, plan_partition_reassignment
    from orchestration.defs.resources import KafkaResource, environment_bound

    info, _config = cluster
    monkeypatch.setenv("KDP_BOOTSTRAP", info.bootstrap)
    create_topic(admin, info.bootstrap, topic_name, [[1]] * PARTITIONS, kib=64)
    before = end_offsets(info.bootstrap, topic_name)
    resources = {"kafka": environment_bound(KafkaResource)}
    instance = dg.DagsterInstance.ephemeral()

    planned = plan_partition_reassignment.execute_in_process(
        run_config={"ops": {"plan_reassignment_op": {"config": {"topics": [topic_name], "output_dir": str(tmp_path)}}}},
        resources=resources,
        instance=instance,
    )
    assert planned.success
    plan_file = Path(planned.output_for_node("plan_reassignment_op"))
    proposed = parse_reassignment_json(plan_file.read_text())
    rollback = parse_reassignment_json(plan_file.with_name(plan_file.name.replace("-plan", "-rollback")).read_text())
    assert set(rollback) == set(proposed) and set(rollback.values()) == {(1,)}  # only what moves, as it was
    assert sum(len(set(r) - {1}) for r in proposed.values()) == 8  # the lower bound, as the planner test shows
    output = next(e for e in planned.all_events if e.event_type_value == "STEP_OUTPUT")
    shown = output.event_specific_data.metadata
    assert shown["replica_moves"].value == 8  # the fewest replica moves, as the planner test shows
    # weighed by size now (DescribeLogDirs; equal-sized partitions here): the bound is in bytes
    assert 0 < shown["lower_bound_bytes"].value <= shown["bytes_to_copy"].value

    executed = execute_partition_reassignment.execute_in_process(
        run_config={"ops": {"execute_reassignment_op": {"config": {"throttle_bytes_per_second": 20_000_000}}}},
        resources=resources,
        instance=instance,
    )
    assert executed.success
    after = read_cluster_state(admin, [topic_name]).assignment
    assert {tp: replicas for tp, replicas in after.items() if tp in proposed} == proposed
    assert Counter(len(r) for r in after.values()) == {1: PARTITIONS}
    assert Counter(r[0] for r in after.values()) == {1: 4, 2: 4, 3: 4}
    assert end_offsets(info.bootstrap, topic_name) == before

    again = execute_partition_reassignment.execute_in_process(
        run_config={"ops": {"execute_reassignment_op": {"config": {"plan_run_id": planned.run_id}}}},
        resources=resources,
        instance=instance,
    )
    assert again.success and again.output_for_node("execute_reassignment_op")["changed_partitions"] == 0


def test_skewed_sizes_are_balanced_by_bytes_within_the_bound_beside_kafkas_generate(
    cluster, admin, kafka_admin, topic_name, tmp_path, monkeypatch
):
    """Three big partitions all on brokers 1 and 2, nine small ones spread: by replica count the topic is
    balanced, by bytes broker 3 is nearly empty. The plan (sizes from DescribeLogDirs) brings every broker
    within the tolerance, copies no more than the bound plus the tolerance's slack; then the Dagster job
    executes it one batch at a time: stopped after the first batch, resumed, complete."""
    import dagster as dg

    from orchestration.defs.reassignment.jobs import execute_partition_reassignment
    from orchestration.defs.resources import KafkaResource, environment_bound
    from orchestration.reassignment.cluster_load import read_log_dirs
    from orchestration.reassignment.planner import plan_from_proposal

    info, config = cluster
    big = [[1, 2], [2, 1], [1, 2]]
    small = [[2, 3], [3, 1], [1, 3], [3, 2], [2, 3], [3, 1], [1, 3], [3, 2], [2, 1]]
    layout = big + small
    admin.create_topics([NewTopic(topic_name, len(layout), replica_assignment=layout)])[topic_name].result(timeout=30)
    producer = Producer({"bootstrap.servers": info.bootstrap, "linger.ms": 20, "compression.type": "none"})
    for partition in range(len(layout)):
        for _ in range(2048 if partition < len(big) else 256):  # KiB
            producer.produce(topic_name, bytes(1024), partition=partition)
            producer.poll(0)
    assert producer.flush(60) == 0

    state = read_cluster_state(admin, [topic_name])
    sizes = {}
    deadline = time.monotonic() + 60
    while len(sizes) < len(layout) and time.monotonic() < deadline:  # every replica has flushed its segment
        sizes = read_log_dirs(kafka_admin, [topic_name]).sizes
        time.sleep(0.5)
    plan = plan_reassignment(state.assignment, state.brokers, state.racks, sizes=sizes, tolerance=0.1)
    low, high = plan.disk_band()
    mean = sum(plan.bytes_after[b] for b in BROKERS) / len(BROKERS)
    kafka = plan_from_proposal(
        state.assignment, kafka_generate(config, info.bootstrap, topic_name, tmp_path), state.brokers, sizes=sizes
    )

    def per_broker(bytes_on: dict[int, int]) -> str:
        return ", ".join(f"{b}: {bytes_on[b] / 2**20:.1f} MiB" for b in BROKERS)

    ours_copied, kafka_copied = plan.bytes_copied / 2**20, kafka.bytes_copied / 2**20
    print(f"\n[reassignment] skewed sizes, before: {per_broker(plan.bytes_before)}")
    print(f"  ours: {ours_copied:.1f} MiB copied ({plan.moves} replicas), after {per_broker(plan.bytes_after)}")
    print(f"  lower bound {plan.lower_bound / 2**20:.1f} MiB; band {low / 2**20:.1f}-{high / 2**20:.1f} MiB")
    print(f"  kafka --generate: {kafka_copied:.1f} MiB ({kafka.moves} replicas), after {per_broker(kafka.bytes_after)}")
    assert max(plan.bytes_before[b] for b in BROKERS) > high, "the input is skewed beyond the tolerance"
    assert all(low <= plan.bytes_after[b] <= high for b in BROKERS)
    assert plan.lower_bound <= plan.bytes_copied <= plan.lower_bound + plan.tolerance * mean
    assert plan.replicas_after == {1: 8, 2: 8, 3: 8}

    plan_file = tmp_path / "plan.json"
    plan_file.write_text(plan.to_json())
    monkeypatch.setenv("KDP_BOOTSTRAP", info.bootstrap)
    resources, instance = {"kafka": environment_bound(KafkaResource)}, dg.DagsterInstance.ephemeral()

    def run(max_batches):  # type: ignore[no-untyped-def]
        options = {"plan_file": str(plan_file), "throttle_bytes_per_second": 20_000_000, "batch_bytes": 2**21}
        if max_batches is not None:
            options["max_batches"] = max_batches
        result = execute_partition_reassignment.execute_in_process(
            run_config={"ops": {"execute_reassignment_op": {"config": options}}}, resources=resources, instance=instance
        )
        assert result.success
        return result.output_for_node("execute_reassignment_op")

    first = run(1)
    assert first["batches_done"] == 1 and first["batches_total"] > 1 and first["remaining_partitions"] > 0
    rest = run(None)
    # the resumed run plans only what is left (gains are recomputed from the new assignment, so the rest
    # may be cut into batches differently) and runs every batch
    assert rest["remaining_partitions"] == 0 and rest["batches_done"] == rest["batches_total"]
    assert 0 < rest["changed_partitions"] < first["changed_partitions"]
    assert read_cluster_state(admin, [topic_name]).assignment == {
        tp: plan.proposed.get(tp, replicas) for tp, replicas in state.assignment.items()
    }
    assert current_throttles(kafka_admin, BROKERS, [topic_name]) == Throttles()
