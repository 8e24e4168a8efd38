"""The `provision_topics` job against the real broker and registry.

Each test provisions its own three topics (unique names through the KDP_*_TOPIC settings, as a
deployment would rename them), so it neither sees nor disturbs the topics other tests use.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from orchestration.defs.provisioning.jobs import provision_topics
from orchestration.defs.resources import KafkaResource, SchemaRegistryResource, environment_bound
from orchestration.provisioning.declarations import DECLARATIONS_FILE
from orchestration.provisioning.live_state import LiveState, read_live_state
from orchestration.schema.registry import subject_level

pytestmark = pytest.mark.integration


@pytest.fixture
def names(stack, topic_name: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Role -> this test's topic name; the topics and the output's subject are removed afterwards."""
    names = {
        "source": f"{topic_name}-in",
        "output": f"{topic_name}-out",
        "dead_letter": f"{topic_name}-in.dlq",
    }
    monkeypatch.setenv("KDP_SOURCE_TOPIC", names["source"])
    monkeypatch.setenv("KDP_OUTPUT_TOPIC", names["output"])
    monkeypatch.setenv("KDP_DLQ_TOPIC", names["dead_letter"])
    yield names
    admin = AdminClient({"bootstrap.servers": stack.bootstrap})
    existing = set(admin.list_topics(timeout=30).topics)
    created = [name for name in names.values() if name in existing]
    if created:
        for future in admin.delete_topics(created).values():
            future.result(timeout=60)
    registry = SchemaRegistryClient({"url": stack.registry_url})
    if f"{names['output']}-value" in registry.get_subjects():
        registry.delete_subject(f"{names['output']}-value", permanent=False)


def run(stack, **config: object) -> dg.ExecuteInProcessResult:
    return provision_topics.execute_in_process(
        run_config=config,
        resources={
            "kafka": environment_bound(KafkaResource),
            "registry": environment_bound(SchemaRegistryResource),
        },
        raise_on_error=False,
    )


def metadata(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, object]]:
    """Step -> the metadata of its output, as the run view shows it."""
    return {
        str(event.step_key): {key: value.value for key, value in event.step_output_data.metadata.items()}
        for event in result.all_events
        if event.is_successful_output
    }


def summaries(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    return {step: values["summary"] for step, values in metadata(result).items()}


def live(stack, names: dict[str, str]) -> LiveState:
    return read_live_state(AdminClient({"bootstrap.servers": stack.bootstrap}), names.values())


def declarations_with(tmp_path: Path, role: str, partitions: int) -> str:
    """The project's topics.yaml with one partition count changed, written to a file of the test."""
    document = yaml.safe_load(DECLARATIONS_FILE.read_text())
    document["topics"][role]["partitions"] = partitions
    path = tmp_path / "topics.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


def test_the_first_run_creates_everything_and_the_second_changes_nothing(stack, names):
    subject = f"{names['output']}-value"
    registry = SchemaRegistryClient({"url": stack.registry_url})

    first = run(stack)

    assert first.success
    assert summaries(first) == {
        "plan_topic_changes": "3 change(s), 0 error(s)",
        "apply_topic_changes": "applied 3 change(s); verified",
        "register_value_schemas": "1 new schema version(s)",
    }
    state = live(stack, names)
    replication = min(3, stack.brokers)
    assert {name: (t.partitions, t.replication_factors) for name, t in state.topics.items()} == {
        names["source"]: (6, {replication}),
        names["output"]: (6, {replication}),
        names["dead_letter"]: (3, {replication}),
    }
    dlq_configs = state.topics[names["dead_letter"]].configs
    assert dlq_configs["retention.ms"].value == "2592000000" and not dlq_configs["retention.ms"].is_default
    assert dlq_configs["min.insync.replicas"].value == str(min(2, replication))
    assert registry.get_compatibility(subject) == "BACKWARD_TRANSITIVE"
    versions, schema_id = registry.get_versions(subject), registry.get_latest_version(subject).schema_id

    second = run(stack)

    assert second.success
    assert summaries(second) == {
        "plan_topic_changes": "no changes",
        "apply_topic_changes": "no changes",
        "register_value_schemas": "no changes",
    }
    assert live(stack, names) == state
    assert registry.get_versions(subject) == versions
    assert registry.get_latest_version(subject).schema_id == schema_id


def test_a_raised_partition_count_is_applied_and_nothing_else_changes(stack, names, tmp_path):
    assert run(stack).success
    before = live(stack, names)

    result = run(stack, declarations_file=declarations_with(tmp_path, "output", 9))

    assert result.success
    assert summaries(result)["plan_topic_changes"] == "1 change(s), 0 error(s)"
    assert "| add partitions | partitions | 6 | 9 |" in metadata(result)["plan_topic_changes"]["plan"]
    after = live(stack, names)
    assert after.topics[names["output"]].partitions == 9
    assert after.topics[names["source"]] == before.topics[names["source"]]
    assert run(stack, declarations_file=declarations_with(tmp_path, "output", 9)).success


def test_a_lowered_partition_count_fails_naming_the_topic_and_changes_nothing(stack, names, tmp_path):
    assert run(stack).success
    before = live(stack, names)

    result = run(stack, declarations_file=declarations_with(tmp_path, "source", 2))

    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    assert failure.step_key == "apply_topic_changes"
    message = failure.step_failure_data.user_failure_data.description
    assert names["source"] in message and "declared 2 but the topic has 6" in message
    assert live(stack, names) == before


def test_a_dry_run_creates_no_topic_and_registers_no_schema(stack, names):
    registry = SchemaRegistryClient({"url": stack.registry_url})

    result = run(stack, dry_run=True)

    assert result.success
    assert summaries(result)["apply_topic_changes"].startswith("dry run: the brokers accepted 3 change(s)")
    assert live(stack, names).topics == {}
    assert f"{names['output']}-value" not in registry.get_subjects()
    assert subject_level(registry, f"{names['output']}-value") is None


def test_an_operators_level_on_the_subject_is_kept(stack, names):
    subject = f"{names['output']}-value"
    registry = SchemaRegistryClient({"url": stack.registry_url})
    registry.set_compatibility(subject_name=subject, level="FULL_TRANSITIVE")

    result = run(stack)

    assert result.success
    assert summaries(result)["register_value_schemas"] == "1 new schema version(s)"
    assert "FULL_TRANSITIVE (kept)" in str(metadata(result)["register_value_schemas"]["schemas"])
    assert subject_level(registry, subject) == "FULL_TRANSITIVE"
    assert registry.get_versions(subject) == [1]
