"""Every operation on the secure stack as its own principal, and each principal refused what it must not do.

The session's secure stack (`secure_stack`, tests/conftest.py) had its topics provisioned as `provisioning`.
Commands run as `kdp` processes with a principal's variables, as after `source $KDP_HOME/credentials/<name>.env`;
Dagster jobs run in process under the same variables (resources left unset, as in a deployment). Volumes are a
few hundred messages: these tests are about who may do what, not about throughput.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, KafkaException, Producer, TopicCollection
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)
from secure_stack import QUIET, as_principal, principal_variables, provision_as_provisioning, settings_of

from kdp.devstack.principals import NAMES
from kdp.devstack.stack import StackInfo
from orchestration.definitions import control_plane, defs
from orchestration.defs.conversion.sensors import conversion_sensor
from orchestration.defs.reassignment.jobs import execute_partition_reassignment, plan_partition_reassignment
from orchestration.defs.resources import KafkaResource, SchemaRegistryResource, environment_bound
from streaming import topics
from streaming.generator.events import EventFactory, IrregularityRates
from streaming.generator.producer import generate

pytestmark = pytest.mark.integration

SOURCE, OUTPUT, DEAD_LETTERS = topics.SOURCE_TOPIC, topics.OUTPUT_TOPIC, topics.DEAD_LETTER_TOPIC
CALL_TIMEOUT = 30
REPLAY_OP = "replay_dead_letters_op"
RESULT_LINE = re.compile(r"^replay (?P<run>[0-9a-f]+)-\d+: read (?P<read>\d+), selected (?P<selected>\d+)", re.M)


def kdp(info: StackInfo, principal: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    """`kdp <arguments>` as `principal`, in a process of its own."""
    environment = {**os.environ, **principal_variables(info, principal)}
    return subprocess.run(
        [sys.executable, "-m", "kdp", *arguments], env=environment, capture_output=True, text=True, timeout=300
    )


def committed_offsets(info: StackInfo, group: str) -> list[int]:
    """The offsets `group` committed on the dead-letter topic (read as admin)."""
    admin = AdminClient({**settings_of(info, "admin").kafka_config(), **QUIET})
    request = [ConsumerGroupTopicPartitions(group)]
    answer = admin.list_consumer_group_offsets(request, request_timeout=CALL_TIMEOUT)[group].result(CALL_TIMEOUT)
    return [tp.offset for tp in answer.topic_partitions if tp.offset >= 0]


@pytest.fixture(scope="module")
def dead_letters(secure_stack: StackInfo) -> None:
    """Login events with malformed ones, written as `generator` and converted by `kdp stream` as `converter`:
    dead letters in every source partition for the replays."""
    factory = EventFactory(21, IrregularityRates.with_malformed(0.3))
    assert generate(settings_of(secure_stack, "generator").kafka_config(), SOURCE, factory, count=300).ok
    streamed = kdp(secure_stack, "converter", "stream", "--until-caught-up")
    assert streamed.returncode == 0, streamed.stderr[-2000:]


# ----------------------------------------------------------------------------------------- the operations


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
def test_kdp_stream_runs_as_the_converter(secure_stack: StackInfo, delivery: str) -> None:
    factory = EventFactory(22, IrregularityRates.with_malformed(0.1))
    assert generate(settings_of(secure_stack, "generator").kafka_config(), SOURCE, factory, count=50).ok

    streamed = kdp(secure_stack, "converter", "stream", "--until-caught-up", "--delivery", delivery)

    assert streamed.returncode == 0, streamed.stderr[-2000:]
    consumed = re.search(r"consumed (\d+)", streamed.stdout)
    assert consumed is not None and int(consumed.group(1)) >= 50, streamed.stdout


@pytest.mark.parametrize(("delivery", "partition"), [("at-least-once", "0"), ("exactly-once", "1")])
def test_kdp_replay_executes_as_the_replay_principal(
    secure_stack: StackInfo, dead_letters: None, delivery: str, partition: str
) -> None:
    """A selection per mode (the source partition): each is a run of its own, with its own group."""
    replayed = kdp(
        secure_stack, "replay", "replay", "--source-partition", partition, "--execute", "--delivery", delivery
    )

    assert replayed.returncode == 0, replayed.stderr[-2000:]
    result = RESULT_LINE.search(replayed.stdout)
    assert result is not None and int(result["selected"]) > 0, replayed.stdout
    assert committed_offsets(secure_stack, f"kdp-replay-{result['run']}")  # its progress, in its own group


@pytest.mark.parametrize("principal", ["generator", "converter", "dagster"])
def test_kdp_replay_as_another_principal_stops_at_once_with_one_line_and_changes_nothing(
    secure_stack: StackInfo, dead_letters: None, principal: str
) -> None:
    started = time.monotonic()
    refused = kdp(secure_stack, principal, "replay", "--source-partition", "2", "--execute")
    print(f"\nkdp replay --execute as {principal}: refused after {time.monotonic() - started:.1f} s")

    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr
    [line] = [line for line in refused.stderr.splitlines() if line.startswith("kdp replay: refused:")]
    assert f"principal {principal!r} is not authorized to" in line
    assert re.search(r"to (READ|WRITE|DESCRIBE) (topic|group) '(user-login\.dlq|processed-data|kdp-replay-\w+)'", line)
    dry_run = kdp(secure_stack, "replay", "replay", "--source-partition", "2")  # the same selection, by its owner
    assert dry_run.returncode == 0 and "starts a new run" in dry_run.stdout  # nothing was committed


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
def test_the_dagster_replay_job_runs_as_the_replay_principal(
    secure_stack: StackInfo, dead_letters: None, delivery: str
) -> None:
    partition = {"at-least-once": 3, "exactly-once": 4}[delivery]
    config = {"ops": {REPLAY_OP: {"config": {"source_partitions": [partition], "dry_run": False}}}}

    with as_principal(secure_stack, "replay", KDP_DELIVERY=delivery):
        result = _replay_job(config)

    assert result.success
    assert result.output_for_node(REPLAY_OP)["selected"] > 0


def test_the_dagster_replay_job_as_another_principal_fails_with_one_line(
    secure_stack: StackInfo, dead_letters: None
) -> None:
    config = {"ops": {REPLAY_OP: {"config": {"source_partitions": [5]}}}}

    with as_principal(secure_stack, "converter"):
        result = _replay_job(config, raise_on_error=False)

    assert not result.success
    [failure] = [event for event in result.all_events if event.event_type == dg.DagsterEventType.STEP_FAILURE]
    description = failure.step_failure_data.user_failure_data.description  # type: ignore[union-attr]
    assert description.startswith("refused: principal 'converter' is not authorized to READ topic 'user-login.dlq'")


def _replay_job(run_config: dict, raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("replay_dead_letters").execute_in_process(
        run_config=run_config,
        resources={"kafka": environment_bound(KafkaResource), "registry": environment_bound(SchemaRegistryResource)},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=raise_on_error,
    )


def test_a_sensor_driven_conversion_runs_as_dagster(secure_stack: StackInfo) -> None:
    factory = EventFactory(23, IrregularityRates.with_malformed(0.1))
    assert generate(settings_of(secure_stack, "generator").kafka_config(), SOURCE, factory, count=60).ok
    instance = dg.DagsterInstance.ephemeral()

    with as_principal(secure_stack, "dagster"):
        context = dg.build_sensor_context(instance=instance, resources={"kafka": environment_bound(KafkaResource)})
        tick = conversion_sensor(context)
        assert tick.run_requests
        convert_ranges = defs.resolve_job_def("convert_ranges")
        for request in tick.run_requests:
            run = convert_ranges.execute_in_process(
                run_config=request.run_config,
                resources={
                    "kafka": environment_bound(KafkaResource),
                    "registry": environment_bound(SchemaRegistryResource),
                },
                instance=instance,
                tags=request.tags,
            )
            assert run.success
        again = conversion_sensor(
            dg.build_sensor_context(
                instance=instance, cursor=tick.cursor, resources={"kafka": environment_bound(KafkaResource)}
            )
        )

    assert again.run_requests == []


def test_provisioning_again_as_provisioning_changes_nothing(secure_stack: StackInfo) -> None:
    provision_as_provisioning(secure_stack)


def test_reassignment_plans_and_executes_as_reassignment(secure_stack: StackInfo, tmp_path: Path) -> None:
    instance = dg.DagsterInstance.ephemeral()

    with as_principal(secure_stack, "reassignment"):
        resources = {"kafka": environment_bound(KafkaResource)}  # bound to the principal's KDP_* variables
        planned = plan_partition_reassignment.execute_in_process(
            run_config={"ops": {"plan_reassignment_op": {"config": {"topics": [SOURCE], "output_dir": str(tmp_path)}}}},
            resources=resources,
            instance=instance,
        )
        assert planned.success
        plan_file = planned.output_for_node("plan_reassignment_op")
        executed = execute_partition_reassignment.execute_in_process(
            run_config={"ops": {"execute_reassignment_op": {"config": {"plan_file": str(plan_file)}}}},
            resources=resources,
            instance=instance,
        )

    assert executed.success


def test_insights_run_as_insights(secure_stack: StackInfo, tmp_path: Path) -> None:
    hour = time.strftime("%Y-%m-%d-%H:00", time.gmtime(time.time() - 3 * 3600))

    with as_principal(secure_stack, "insights", KDP_INSIGHTS_DB=str(tmp_path / "insights.duckdb")):
        resources = {"kafka": environment_bound(KafkaResource), "registry": environment_bound(SchemaRegistryResource)}
        definitions = control_plane(resources)
        job = definitions.resolve_job_def("insights_hourly")
        result = job.execute_in_process(partition_key=hour, instance=dg.DagsterInstance.ephemeral())

    assert result.success


def test_the_lag_exporter_reads_the_converter_groups_commits(secure_stack: StackInfo, dead_letters: None) -> None:
    admin = AdminClient({**settings_of(secure_stack, "lag-exporter").kafka_config(), **QUIET})

    listed = admin.list_consumer_groups(request_timeout=CALL_TIMEOUT).result(CALL_TIMEOUT)
    request = [ConsumerGroupTopicPartitions(topics.CONVERTER_GROUP)]
    offsets = admin.list_consumer_group_offsets(request, request_timeout=CALL_TIMEOUT)
    committed = offsets[topics.CONVERTER_GROUP].result(CALL_TIMEOUT).topic_partitions

    assert topics.CONVERTER_GROUP in {group.group_id for group in listed.valid}
    assert {tp.topic for tp in committed} == {SOURCE} and all(tp.offset >= 0 for tp in committed)


# ---------------------------------------------------------------------------------------------- denials

OPERATIONS = ("READ", "WRITE", "CREATE", "ALTER", "ALTER_CONFIGS")
MAY: dict[str, set[str]] = {
    "generator": {f"WRITE {SOURCE}"},
    "converter": {f"READ {SOURCE}", f"WRITE {OUTPUT}", f"WRITE {DEAD_LETTERS}", "READ group kdp-converter"},
    "replay": {f"READ {DEAD_LETTERS}", f"WRITE {OUTPUT}", f"WRITE {DEAD_LETTERS}", "READ group kdp-replay-probe"},
    "dagster": {
        f"READ {SOURCE}",
        f"WRITE {OUTPUT}",
        f"READ {OUTPUT}",
        f"WRITE {DEAD_LETTERS}",
        "READ group kdp-converter",
        "READ group kdp-insights-probe",
    },
    "provisioning": {
        f"{op} {topic}" for op in ("CREATE", "ALTER", "ALTER_CONFIGS") for topic in (SOURCE, OUTPUT, DEAD_LETTERS)
    },
    "reassignment": {"ALTER cluster"} | {f"ALTER_CONFIGS {topic}" for topic in (SOURCE, OUTPUT, DEAD_LETTERS)},
    "insights": {f"READ {OUTPUT}", f"READ {DEAD_LETTERS}", "READ group kdp-insights-probe"},
    "lag-exporter": set(),
    "schema": set(),
}
"""What each principal must be allowed, of the rights the matrix asks about (the rest it must be refused)."""


def _rights(secure_stack: StackInfo, principal: str) -> set[str]:
    """The rights the cluster grants `principal`, of those the matrix asks about: its word, through KIP-430's
    authorized operations of each topic, group and the cluster."""
    admin = AdminClient({**settings_of(secure_stack, principal).kafka_config(), **QUIET})
    granted: set[str] = set()
    described = admin.describe_topics(
        TopicCollection([SOURCE, OUTPUT, DEAD_LETTERS]),
        request_timeout=CALL_TIMEOUT,
        include_authorized_operations=True,
    )
    for name, future in described.items():
        try:
            allowed = future.result(CALL_TIMEOUT).authorized_operations or []
        except KafkaException as error:
            assert error.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
            allowed = []
        granted |= {f"{op.name} {name}" for op in allowed if op.name in OPERATIONS}
    groups = ["kdp-converter", "kdp-replay-probe", "kdp-insights-probe"]
    for name, future in admin.describe_consumer_groups(
        groups, request_timeout=CALL_TIMEOUT, include_authorized_operations=True
    ).items():
        try:
            allowed = future.result(CALL_TIMEOUT).authorized_operations or []
        except KafkaException as error:
            assert error.args[0].code() == KafkaError.GROUP_AUTHORIZATION_FAILED
            allowed = []
        granted |= {f"{op.name} group {name}" for op in allowed if op.name == "READ"}
    cluster = admin.describe_cluster(request_timeout=CALL_TIMEOUT, include_authorized_operations=True).result(
        CALL_TIMEOUT
    )
    granted |= {f"{op.name} cluster" for op in cluster.authorized_operations or [] if op.name in ("ALTER", "CREATE")}
    return granted


@pytest.mark.parametrize("principal", sorted(MAY))
def test_each_principal_is_granted_what_it_needs_and_refused_the_rest(secure_stack: StackInfo, principal: str) -> None:
    assert _rights(secure_stack, principal) == MAY[principal]


def test_the_matrix_covers_every_declared_principal() -> None:
    assert set(MAY) == set(NAMES) - {"admin"}


@pytest.mark.parametrize(
    ("principal", "topic"),
    [("generator", OUTPUT), ("insights", OUTPUT), ("replay", SOURCE), ("lag-exporter", DEAD_LETTERS)],
)
def test_a_principal_is_refused_a_write_it_must_not_do(secure_stack: StackInfo, principal: str, topic: str) -> None:
    reports: list[KafkaError | None] = []
    producer = Producer({**settings_of(secure_stack, principal).kafka_config(), **QUIET})
    producer.produce(topic, b"not mine to write", on_delivery=lambda error, _message: reports.append(error))
    producer.flush(CALL_TIMEOUT)

    assert [error.code() if error else None for error in reports] == [KafkaError.TOPIC_AUTHORIZATION_FAILED]


@pytest.mark.parametrize(
    ("principal", "transactional_id"), [("replay", "kdp-converter-x"), ("dagster", "kdp-converter-replay-x")]
)
def test_a_principal_is_refused_transactional_ids_not_its_own(
    secure_stack: StackInfo, principal: str, transactional_id: str
) -> None:
    producer = Producer(
        {**settings_of(secure_stack, principal).kafka_config(), **QUIET, "transactional.id": transactional_id}
    )

    with pytest.raises(KafkaException) as refused:
        producer.init_transactions(CALL_TIMEOUT)

    assert refused.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED


@pytest.mark.parametrize("principal", ["dagster", "provisioning", "converter"])
def test_only_reassignment_may_create_acls_and_only_provisioning_topics(
    secure_stack: StackInfo, principal: str
) -> None:
    """ALTER on the cluster, which reassignment needs, is also the right to create ACLs: nobody else has it."""
    admin = AdminClient({**settings_of(secure_stack, principal).kafka_config(), **QUIET})
    grant_self = AclBinding(
        ResourceType.TOPIC,
        "*",
        ResourcePatternType.LITERAL,
        f"User:{principal}",
        "*",
        AclOperation.ALL,
        AclPermissionType.ALLOW,
    )

    with pytest.raises(KafkaException) as refused:
        admin.create_acls([grant_self], request_timeout=CALL_TIMEOUT)[grant_self].result(CALL_TIMEOUT)

    assert refused.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    name = f"{principal}-made-{uuid.uuid4().hex[:8]}"
    with pytest.raises(KafkaException) as not_created:
        admin.create_topics([NewTopic(name, 1, 1)])[name].result(CALL_TIMEOUT)
    assert not_created.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
