"""The local stack against real clients.

Kafka takes records and gives them back, `up` is idempotent, and a three-broker cluster has the shape
rack-aware replication needs.
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, PartitionMetadata

from kdp.devstack import processes
from kdp.devstack.errors import StackError
from kdp.devstack.kafka_node import existing_node_folders
from kdp.devstack.stack import LocalStack, StackInfo

pytestmark = pytest.mark.integration


def _create_topic(admin: AdminClient, name: str, partitions: int, replication: int = -1) -> None:
    """Create a topic; replication -1 takes the cluster's `default.replication.factor`."""
    admin.create_topics([NewTopic(name, partitions, replication)])[name].result(timeout=30)


def _partitions_once_known(admin: AdminClient, topic: str, count: int) -> list[PartitionMetadata]:
    """The topic's partitions, once the broker answering has learnt of all of them.

    A created topic reaches every broker's metadata cache shortly after the controller accepts it; asking
    right away may get an empty answer from another broker.
    """
    for _ in range(100):
        partitions = admin.list_topics(topic, timeout=30).topics[topic].partitions
        if len(partitions) == count:
            return list(partitions.values())
        time.sleep(0.1)
    raise AssertionError(f"{topic} never showed {count} partitions in the metadata")


def test_records_produced_are_consumed_back_in_order(stack: StackInfo, topic_name: str) -> None:
    admin = AdminClient({"bootstrap.servers": stack.bootstrap})
    _create_topic(admin, topic_name, partitions=1)
    sent = [(f"user-{i % 3}".encode(), f"login {i}".encode()) for i in range(20)]
    producer = Producer({"bootstrap.servers": stack.bootstrap, "enable.idempotence": True})
    for key, value in sent:
        producer.produce(topic_name, value=value, key=key)
    assert producer.flush(30) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": stack.bootstrap,
            "group.id": f"test-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic_name])
    received = []
    try:
        while len(received) < len(sent):
            message = consumer.poll(30)
            assert message is not None, f"only {len(received)} of {len(sent)} records came back"
            assert message.error() is None, message.error()
            received.append((message.key(), message.value()))
    finally:
        consumer.close()
    assert received == sent


def test_metadata_lists_every_broker_of_the_stack(stack: StackInfo) -> None:
    metadata = AdminClient({"bootstrap.servers": stack.bootstrap}).list_topics(timeout=30)
    assert len(metadata.brokers) == stack.brokers


def test_up_on_a_running_stack_changes_nothing(stack: StackInfo) -> None:
    if stack.home is None:
        pytest.skip("the stack was named by KDP_BOOTSTRAP/KDP_REGISTRY_URL, not started by `kdp stack`")
    local = LocalStack()
    pids_before = {component.name: component.pid for component in local.status().components}

    again = local.up(brokers=stack.brokers)

    assert again == stack
    assert {component.name: component.pid for component in local.status().components} == pids_before


def test_three_brokers_form_one_rack_aware_cluster(isolated_stack: LocalStack, topic_name: str) -> None:
    info = isolated_stack.up(brokers=3, with_registry=False)
    admin = AdminClient({"bootstrap.servers": info.bootstrap})

    cluster = admin.describe_cluster(request_timeout=30).result(timeout=30)
    assert sorted((node.id, node.rack) for node in cluster.nodes) == [
        (1, "rack-a"),
        (2, "rack-b"),
        (3, "rack-c"),
    ]
    assert len(admin.list_topics(timeout=30).brokers) == 3

    broker_config = admin.describe_configs([ConfigResource(ConfigResource.Type.BROKER, "1")])
    settings = next(iter(broker_config.values())).result(timeout=30)
    assert settings["min.insync.replicas"].value == "2"
    assert settings["offsets.topic.replication.factor"].value == "3"

    _create_topic(admin, topic_name, partitions=3)
    partitions = _partitions_once_known(admin, topic_name, count=3)
    assert {len(partition.replicas) for partition in partitions} == {3}

    isolated_stack.down()
    folders = existing_node_folders(isolated_stack.config.home)
    assert len(folders) == 3
    assert all(processes.read_pid(folder / "kafka.pid") is None for folder in folders)
    with pytest.raises(StackError, match="--purge"):
        isolated_stack.up(brokers=1, with_registry=False)
