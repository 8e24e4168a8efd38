"""What a planned restart of the converter group's coordinator leaves in an exactly-once converter: nothing.

The broker that coordinates the group is stopped gracefully, and the transactional producer's metadata drops it
(librdkafka then retires its broker object), while the producer's cache of group coordinators still points at
that object. Its next `send_offsets_to_transaction` waits for the object to come up, which never happens
(confluentinc/librdkafka#5511, open against librdkafka 2.16): `ExactlyOnce` declares the call stuck and starts a
successor, and nothing is lost. The stuck call holds the old producer (+13 descriptors and +6 threads here, and
the soak of issue 28 saw +34 MB) until a connection of that producer changes state, which its idle connections
closing now brings about; the next transaction then releases it (`streaming.delivery.exactly_once.StuckCalls`).
Without the idle close, the producer was still held a minute after the broker came back.
"""

from __future__ import annotations

import os
import time

import pytest
from confluent_kafka import Consumer, TopicPartition
from fault_cluster import FaultCluster
from scenario_settings import scenario_settings
from soak_detail import kafka_clients

from streaming.delivery.contract import BatchFailed
from streaming.delivery.exactly_once import ExactlyOnce

pytestmark = pytest.mark.faults


def test_a_producer_replaced_after_its_group_coordinator_left_is_released(cluster: FaultCluster):
    """Released within a minute of the replacement: the idle close plus the next transaction."""
    settings = scenario_settings(cluster.info.bootstrap, "http://unused", "exactly-once", "coordinator-left")
    cluster.create_topics([settings.source_topic, settings.output_topic])
    consumer = Consumer({**settings.kafka_config(), "group.id": settings.group_id})
    consumer.subscribe([settings.source_topic])
    consumer.poll(5)
    delivery = ExactlyOnce(settings.kafka_config(), settings.transactional_id)
    committed = 0

    def transaction() -> bool:
        nonlocal committed
        delivery.begin()
        for _ in range(100):
            delivery.producer.produce(settings.output_topic, b"x" * 100)
        try:
            delivery.complete(consumer, [TopicPartition(settings.source_topic, 0, committed + 1)])
        except BatchFailed:
            delivery.abandon()
            return False
        committed += 1
        return True

    try:
        assert transaction()
        clients_before = kafka_clients(os.getpid())
        coordinator = cluster.group_coordinator(settings.group_id)
        cluster.stop_broker(coordinator)
        deadline = time.monotonic() + 30
        while coordinator in delivery.producer.list_topics(timeout=10).brokers and time.monotonic() < deadline:
            time.sleep(1)
        transaction()  # stuck: the producer is replaced and the batch fails (no loss: it is redone)
        cluster.heal()
        cluster.wait_in_sync()
        replaced = time.monotonic()
        assert transaction(), "the successor could not commit"
        assert delivery.replaced_producers == 1
        while kafka_clients(os.getpid()) != clients_before and time.monotonic() - replaced < 60:
            time.sleep(1)
            assert transaction(), "the successor could not commit"
        held = time.monotonic() - replaced
        print(f"[fault] coordinator left: the replaced producer released {held:.0f} s after its successor started")
        assert kafka_clients(os.getpid()) == clients_before, (
            f"Kafka clients {clients_before} before, {kafka_clients(os.getpid())} a minute after the replacement; "
            f"stuck calls still running: {len(delivery.stuck_calls)}"
        )
        assert len(delivery.stuck_calls) == 0
    finally:
        consumer.close()
