"""Kafka's reassignment JSON as plans write it: the shape `kafka-reassign-partitions --execute` takes."""

from __future__ import annotations

import json

import pytest

from orchestration.reassignment.plan_json import parse_reassignment_json, reassignment_json
from orchestration.reassignment.planner import plan_reassignment


def twelve_on_broker_one():
    return plan_reassignment({("events", p): [1] for p in range(12)}, [1, 2, 3], replication_factor=2)


def test_plan_json_has_kafkas_shape_with_one_log_dir_per_replica():
    document = json.loads(twelve_on_broker_one().to_json())
    assert document["version"] == 1
    assert set(document) == {"version", "partitions"}
    for entry in document["partitions"]:
        assert set(entry) == {"topic", "partition", "replicas", "log_dirs"}
        assert isinstance(entry["partition"], int)
        assert all(isinstance(b, int) for b in entry["replicas"])
        assert entry["log_dirs"] == ["any"] * len(entry["replicas"])


def test_only_changed_partitions_are_written_sorted_by_topic_and_partition():
    current = {("b", 0): [1, 2], ("a", 1): [1, 2], ("a", 0): [2, 1], ("a", 2): [1, 2]}
    plan = plan_reassignment(current, [1, 2, 3])
    written = json.loads(plan.to_json())["partitions"]
    keys = [(e["topic"], e["partition"]) for e in written]
    assert keys == sorted(plan.changed)
    assert set(keys) == {tp for tp in current if plan.proposed[tp] != tuple(current[tp])}
    assert 0 < len(keys) < len(current)


def test_rollback_restores_the_current_assignment_of_exactly_the_changed_partitions():
    plan = twelve_on_broker_one()
    rollback = parse_reassignment_json(plan.rollback_json())
    assert rollback == {tp: plan.current[tp] for tp in plan.changed}
    assert parse_reassignment_json(plan.to_json()) == plan.changed


def test_an_unchanged_plan_writes_an_empty_partition_list():
    plan = plan_reassignment({("events", 0): [1, 2], ("events", 1): [2, 1]}, [1, 2])
    assert json.loads(plan.to_json()) == {"version": 1, "partitions": []}


def test_the_same_plan_always_gives_the_same_bytes():
    assert reassignment_json({("b", 1): [3, 1], ("a", 0): [1]}) == reassignment_json({("a", 0): [1], ("b", 1): [3, 1]})


def test_kafkas_generate_output_is_read_too():
    # `--generate` prints its proposal on one line, with log_dirs.
    proposal = '{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[2,3],"log_dirs":["any","any"]}]}'
    assert parse_reassignment_json(proposal) == {("t", 0): (2, 3)}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"partitions": []}', "not a reassignment document"),
        ('{"version": 1, "partitions": [{"topic": "t", "replicas": [1]}]}', "malformed partition entry"),
        (
            '{"version": 1, "partitions": [{"topic": "t", "partition": 0, "replicas": [1]},'
            ' {"topic": "t", "partition": 0, "replicas": [2]}]}',
            "appears twice",
        ),
    ],
)
def test_malformed_documents_are_refused_with_the_reason(text, message):
    with pytest.raises(ValueError, match=message):
        parse_reassignment_json(text)
