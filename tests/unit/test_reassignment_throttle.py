"""The replication throttle a plan needs (pure part of the executor): who sends, who receives, no one else."""

from __future__ import annotations

import pytest

from orchestration.reassignment.executor import (
    BROKER_RATE_KEYS,
    FOLLOWER_REPLICAS_KEY,
    LEADER_REPLICAS_KEY,
    throttle_configs,
)
from orchestration.reassignment.planner import plan_reassignment


def test_sources_get_the_leader_throttle_and_destinations_the_follower_throttle():
    current = {("events", 0): [1, 2], ("events", 1): [1, 2], ("logs", 0): [2, 1]}
    plan = plan_reassignment(current, [1, 2, 3])
    throttles = throttle_configs(plan, 1_000_000)
    moving = plan.moves_by_partition
    assert moving, "the new broker must receive something"
    for topic, configs in throttles.topics.items():
        leaders = configs[LEADER_REPLICAS_KEY].split(",")
        followers = configs[FOLLOWER_REPLICAS_KEY].split(",")
        expected_leaders = [f"{p}:{b}" for (t, p), _ in sorted(moving.items()) if t == topic for b in current[t, p]]
        expected_followers = [f"{p}:{b}" for (t, p), added in sorted(moving.items()) if t == topic for b in added]
        assert leaders == expected_leaders
        assert followers == expected_followers
    assert set(throttles.topics) == {topic for topic, _ in moving}


def test_only_brokers_that_send_or_receive_are_rate_limited():
    current = {("events", 0): [1], ("events", 1): [1], ("events", 2): [2], ("events", 3): [2]}
    plan = plan_reassignment(current, [1, 2, 3, 4])
    throttles = throttle_configs(plan, 5_000)
    involved = {b for tp, added in plan.moves_by_partition.items() for b in (*current[tp], *added)}
    assert set(throttles.brokers) == involved
    assert all(configs == dict.fromkeys(BROKER_RATE_KEYS, "5000") for configs in throttles.brokers.values())


def test_a_reorder_only_plan_copies_nothing_and_needs_no_throttle():
    # Broker 1 leads both partitions; balancing leaders reorders one of them, which moves no data.
    plan = plan_reassignment({("events", 0): [1, 2], ("events", 1): [1, 2]}, [1, 2])
    assert plan.changed and plan.moves == 0
    throttles = throttle_configs(plan, 1_000)
    assert throttles.brokers == {} and throttles.topics == {}


def test_a_throttle_must_be_a_positive_rate():
    plan = plan_reassignment({("events", 0): [1]}, [1, 2])
    with pytest.raises(ValueError, match="positive byte rate"):
        throttle_configs(plan, 0)
