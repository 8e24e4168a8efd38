"""The group watcher of every fault test knows all the partitions of a topic created a moment before.

The cause of the exactly-once "frozen" flake (issue 16, item 5): a topic is created through the
controller, and each of the three brokers learns of it when it has applied the new metadata. The watcher
asked one of them for the topic's partitions at once; a broker that had not caught up answered "unknown
topic" with no partitions, which `list_topics` returns without raising. The watcher then summed the
committed offsets of no partition at all, 0 for ever, and timed out after 120 s while the converter (which
subscribes, and so learns the partitions at the next metadata refresh) committed thousands of batches.

This test creates topics the way the scenarios do and asks a fresh client for them at once, counting how
often a broker does not know the topic yet (the race, printed), and asserts that the watcher, built the
same way, always knows every partition.
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer
from fault_cluster import FaultCluster
from fault_ledger import GroupProgress
from scenario_settings import scenario_settings

pytestmark = pytest.mark.faults

TOPICS = 40


def test_a_watcher_made_right_after_creation_knows_every_partition(cluster: FaultCluster):
    unknown_at_once = 0
    for _ in range(TOPICS):
        settings = scenario_settings(cluster.info.bootstrap, cluster.info.registry_url or "", "exactly-once", "new")
        cluster.create_topics([settings.source_topic], partitions=3)
        raw = Consumer({"bootstrap.servers": cluster.info.bootstrap, "group.id": f"probe-{uuid.uuid4()}"})
        try:
            if not raw.list_topics(settings.source_topic, timeout=30).topics[settings.source_topic].partitions:
                unknown_at_once += 1
        finally:
            raw.close()
        watcher = GroupProgress(settings)
        try:
            assert len(watcher.partitions) == 3
        finally:
            watcher.close()
    print(f"[fault] a topic just created was unknown to the broker asked {unknown_at_once} times in {TOPICS}")
