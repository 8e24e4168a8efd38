"""The conversion sensor and its runs against the real stack: pending ranges, each converted once."""

from __future__ import annotations

import uuid
from collections import Counter

import dagster as dg
import pytest
from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from kafka_io import create_topics, read_all
from registry_io import register_output_schema

from orchestration.definitions import defs
from orchestration.defs.conversion.jobs import run_config_for
from orchestration.defs.conversion.sensors import conversion_sensor
from orchestration.defs.resources import KafkaResource, SchemaRegistryResource, environment_bound
from streaming.delivery.dead_letter import read_dead_letter_headers
from streaming.generator.events import EventFactory, IrregularityRates
from streaming.generator.producer import generate
from streaming.offset_ranges import OffsetRange
from streaming.settings import Settings

pytestmark = pytest.mark.integration
EVENTS = 6_000


@pytest.fixture
def topics(stack, monkeypatch):
    run = uuid.uuid4().hex[:8]
    names = {"source": f"login-{run}", "output": f"processed-{run}", "dlq": f"login-{run}.dlq"}
    for variable, value in {
        "KDP_BOOTSTRAP": stack.bootstrap,
        "KDP_REGISTRY_URL": stack.registry_url,
        "KDP_SOURCE_TOPIC": names["source"],
        "KDP_OUTPUT_TOPIC": names["output"],
        "KDP_DLQ_TOPIC": names["dlq"],
        "KDP_GROUP_ID": f"converter-{run}",
        "KDP_TRANSACTIONAL_ID": f"converter-{run}",
    }.items():
        monkeypatch.setenv(variable, value)
    create_topics(stack.bootstrap, list(names.values()), partitions=3)
    register_output_schema(Settings.from_env())
    return names


def _tick(instance: dg.DagsterInstance, cursor: str | None = None):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"kafka": environment_bound(KafkaResource)}
    )
    return conversion_sensor(context)


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
def test_sensor_requests_exactly_the_pending_ranges_and_runs_convert_each_message_once(
    stack, topics, monkeypatch, delivery
):
    monkeypatch.setenv("KDP_DELIVERY", delivery)
    factory = EventFactory(11, IrregularityRates.with_malformed(0.05))
    assert generate({"bootstrap.servers": stack.bootstrap}, topics["source"], factory, count=EVENTS).ok
    ends = Counter()
    for m in read_all(stack.bootstrap, topics["source"]):
        ends[m.partition()] = max(ends[m.partition()], m.offset() + 1)

    instance = dg.DagsterInstance.ephemeral()
    result = _tick(instance)
    ranges = sorted(OffsetRange.parse(r.run_key) for r in result.run_requests)
    assert ranges == [OffsetRange(topics["source"], p, 0, ends[p]) for p in sorted(ends)]
    observation = result.asset_events[0]
    assert observation.metadata["lag"].value == EVENTS

    resources = {"kafka": environment_bound(KafkaResource), "registry": environment_bound(SchemaRegistryResource)}
    convert_ranges = defs.resolve_job_def("convert_ranges")
    for request in result.run_requests:
        outcome = convert_ranges.execute_in_process(
            run_config=request.run_config, resources=resources, instance=instance, tags=request.tags
        )
        assert outcome.success
        [materialization] = outcome.asset_materializations_for_node("processed_data")
        metadata = materialization.metadata
        assert metadata["consumed"].value == metadata["processed"].value + metadata["dead_lettered"].value > 0
        written = SchemaRegistryClient({"url": stack.registry_url, "timeout": 30}).get_latest_version(
            f"{topics['output']}-value"
        )
        assert metadata["schema_subject"].value == f"{topics['output']}-value"
        assert (metadata["schema_id"].value, metadata["schema_version"].value) == (written.schema_id, written.version)

    again = _tick(instance, result.cursor)
    assert again.run_requests == []
    assert again.asset_events[0].metadata["lag"].value == 0

    deserialize = AvroDeserializer(SchemaRegistryClient({"url": stack.registry_url, "timeout": 30}))
    context = SerializationContext(topics["output"], MessageField.VALUE)
    records = [deserialize(m.value(), context) for m in read_all(stack.bootstrap, topics["output"])]
    positions = Counter((r["source_partition"], r["source_offset"]) for r in records)
    for m in read_all(stack.bootstrap, topics["dlq"]):
        headers = read_dead_letter_headers(m.headers())
        positions[(int(headers["kdp.dlq.source.partition"]), int(headers["kdp.dlq.source.offset"]))] += 1
    assert len(positions) == EVENTS and set(positions.values()) == {1}

    # Re-running a range that is already committed converts nothing more.
    rerun = convert_ranges.execute_in_process(
        run_config=result.run_requests[0].run_config, resources=resources, instance=instance
    )
    [materialization] = rerun.asset_materializations_for_node("processed_data")
    assert materialization.metadata["consumed"].value == 0


def test_sensor_yields_to_a_running_stream_in_the_same_group(stack, topics):
    factory = EventFactory(5)
    assert generate({"bootstrap.servers": stack.bootstrap}, topics["source"], factory, count=100).ok
    import os

    member = Consumer({"bootstrap.servers": stack.bootstrap, "group.id": os.environ["KDP_GROUP_ID"]})
    try:
        member.subscribe([topics["source"]])
        for _ in range(30):
            member.poll(0.5)
            if member.assignment():
                break
        assert member.assignment(), "the stand-in for kdp stream never joined the group"
        result = _tick(dg.DagsterInstance.ephemeral())
        assert not result.run_requests
        assert "active member" in (result.skip_reason.skip_message if result.skip_reason else "")
    finally:
        member.close()


def test_sensor_skips_with_advice_when_the_source_topic_is_missing(stack, monkeypatch):
    monkeypatch.setenv("KDP_BOOTSTRAP", stack.bootstrap)
    monkeypatch.setenv("KDP_SOURCE_TOPIC", f"missing-{uuid.uuid4().hex[:8]}")
    result = _tick(dg.DagsterInstance.ephemeral())
    assert isinstance(result, dg.SkipReason)
    assert "provision_topics" in (result.skip_message or "")


def test_a_run_whose_output_schema_is_not_registered_fails_naming_the_subject_and_the_command(stack, monkeypatch):
    run = uuid.uuid4().hex[:8]
    names = {"KDP_SOURCE_TOPIC": f"login-{run}", "KDP_OUTPUT_TOPIC": f"processed-{run}", "KDP_DLQ_TOPIC": f"dlq-{run}"}
    environment = {**names, "KDP_GROUP_ID": f"converter-{run}", "KDP_TRANSACTIONAL_ID": f"converter-{run}"}
    for variable, value in {
        **environment,
        "KDP_BOOTSTRAP": stack.bootstrap,
        "KDP_REGISTRY_URL": stack.registry_url,
    }.items():
        monkeypatch.setenv(variable, value)
    create_topics(stack.bootstrap, list(names.values()), partitions=1)

    outcome = defs.resolve_job_def("convert_ranges").execute_in_process(
        run_config=run_config_for([OffsetRange(names["KDP_SOURCE_TOPIC"], 0, 0, 1)]),
        resources={"kafka": environment_bound(KafkaResource), "registry": environment_bound(SchemaRegistryResource)},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )

    assert not outcome.success
    failure = outcome.failure_data_for_node("processed_data")
    assert failure is not None
    assert f"'processed-{run}-value'" in str(failure.error) and "kdp schema register --execute" in str(failure.error)
    registry = SchemaRegistryClient({"url": stack.registry_url, "timeout": 30})
    assert f"processed-{run}-value" not in registry.get_subjects()
