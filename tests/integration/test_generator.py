"""The generator against the real broker: every event arrives once, keyed by its user."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest
from kafka_io import create_topics, read_all

from kdp.devstack.stack import StackInfo
from streaming.generator.events import FIELDS, EventFactory, IrregularityRates
from streaming.generator.producer import generate

pytestmark = pytest.mark.integration

COUNT = 5_000
PARTITIONS = 3


def test_generated_events_arrive_once_keyed_by_user(stack: StackInfo, topic_name: str) -> None:
    create_topics(stack.bootstrap, [topic_name], partitions=PARTITIONS)
    factory = EventFactory(seed=2024, rates=IrregularityRates.with_malformed(0.1))
    summary = generate({"bootstrap.servers": stack.bootstrap}, topic_name, factory, count=COUNT, progress_every_s=0)

    assert summary.ok, summary.errors
    assert (summary.produced, summary.delivered, summary.failed) == (COUNT, COUNT, 0)

    messages = read_all(stack.bootstrap, topic_name)
    assert len(messages) == COUNT

    partitions_of_user: dict[bytes, set[int]] = defaultdict(set)
    keyed_records = empty = missing_device_type = 0
    for message in messages:
        key, value, partition = message.key(), message.value(), message.partition()
        assert key is not None and value is not None and partition is not None  # every message is keyed
        partitions_of_user[key].add(partition)
        if value == b"":
            empty += 1
            continue
        try:
            record = json.loads(value)
        except ValueError:
            continue
        if isinstance(record, dict) and tuple(record) == FIELDS[:-1]:
            missing_device_type += 1
        if isinstance(record, dict) and isinstance(record.get("user_id"), str):
            assert record["user_id"].encode() == key
            keyed_records += 1

    assert keyed_records > 0.9 * COUNT
    assert empty == summary.by_kind["empty"]
    assert missing_device_type == summary.by_kind["missing_device_type"]
    assert all(len(partitions) == 1 for partitions in partitions_of_user.values())
    assert len({p for partitions in partitions_of_user.values() for p in partitions}) == PARTITIONS
