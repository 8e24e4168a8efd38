"""The few cluster and registry calls the harness makes: topics, message counts, group state, clean-up.

Each benchmark run creates its own topics (a fresh backlog, and output topics per subject, all prefixed
with the run's id) and, unless asked to keep them, deletes them and their schema subjects at the end, so
repeated runs do not fill the broker's disk.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from confluent_kafka import Consumer, ConsumerGroupState, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient

from orchestration.schema.registry import register_value_schema
from streaming.loop.pipeline import PROCESSED_SCHEMA
from streaming.schema_registry import load_schema
from streaming.settings import Settings
from streaming.topics import value_subject


def create_topics(settings: Settings, names: Iterable[str], partitions: int) -> None:
    """Create fresh topics (replication factor 1 on a one-node stack, else the broker default)."""
    admin = AdminClient(settings.kafka_config())
    brokers = len(admin.list_topics(timeout=30).brokers)
    replication = 1 if brokers == 1 else -1
    futures = admin.create_topics([NewTopic(name, partitions, replication) for name in names], operation_timeout=30)
    for future in futures.values():
        future.result()


def register_output_schema(settings: Settings, output_topic: str) -> None:
    """Register the output schema under `output_topic`'s subject, as provisioning does: converters only look
    it up."""
    client = SchemaRegistryClient(settings.registry_config())
    register_value_schema(client, value_subject(output_topic), load_schema(PROCESSED_SCHEMA))


def delete_run_artifacts(settings: Settings, prefix: str) -> list[str]:
    """Delete every topic, consumer group and schema subject whose name starts with `prefix`, best effort.

    Returns what could not be deleted, as text; clean-up never hides the results of a run.
    """
    admin = AdminClient(settings.kafka_config())
    problems = []
    topics = [name for name in admin.list_topics(timeout=30).topics if name.startswith(prefix)]
    if topics:
        for name, future in admin.delete_topics(topics, operation_timeout=30).items():
            try:
                future.result()
            except KafkaException as error:
                problems.append(f"topic {name}: {error}")
    listed = admin.list_consumer_groups(request_timeout=30).result()
    groups = [g.group_id for g in listed.valid if g.group_id.startswith(prefix)]
    if groups:
        for name, future in admin.delete_consumer_groups(groups, request_timeout=30).items():
            try:
                future.result()
            except KafkaException as error:
                problems.append(f"group {name}: {error}")
    registry = SchemaRegistryClient(settings.registry_config())
    for subject in registry.get_subjects():
        if subject.startswith(prefix):
            try:
                registry.delete_subject(subject)
                registry.delete_subject(subject, permanent=True)
            except Exception as error:  # noqa: BLE001 - any registry failure is only reported
                problems.append(f"subject {subject}: {error}")
    return problems


def end_offsets(settings: Settings, topic: str) -> dict[int, tuple[int, int]]:
    """Low and high watermarks of every partition of `topic`."""
    consumer = Consumer({**settings.kafka_config(), "group.id": "bench-watermarks", "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30) for p in partitions}
    finally:
        consumer.close()


def message_count(settings: Settings, topic: str) -> int:
    """Messages in a topic written without transactions (with transactions, markers take offsets too)."""
    return sum(high - low for low, high in end_offsets(settings, topic).values())


def wait_for_stable_group(settings: Settings, group: str, members: int, timeout: float = 60.0) -> None:
    """Return once `group` is stable with `members` members that all own partitions; TimeoutError if not."""
    admin = AdminClient(settings.kafka_config())
    deadline = time.monotonic() + timeout
    state = "unknown"
    while time.monotonic() < deadline:
        try:
            description = admin.describe_consumer_groups([group])[group].result(timeout=10)
        except KafkaException:
            time.sleep(0.2)
            continue
        owners = [m for m in description.members if m.assignment and m.assignment.topic_partitions]
        state = f"{description.state}, {len(description.members)} members, {len(owners)} with partitions"
        if description.state == ConsumerGroupState.STABLE and len(owners) == members:
            return
        time.sleep(0.2)
    raise TimeoutError(f"group {group} did not become stable with {members} members in {timeout:.0f}s ({state})")
