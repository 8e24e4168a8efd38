"""Executing a plan in batches: largest gain first, batches by bytes, copy time under the throttle (pure)."""

from __future__ import annotations

import pytest

from orchestration.defs.reassignment.plan_report import broker_table, bytes_chart_png
from orchestration.reassignment.batches import batches, copy_seconds, execution_order, gains
from orchestration.reassignment.planner import plan_from_proposal, plan_reassignment

GB = 10**9


def skewed_plan():
    current = {("t", p): [1] for p in range(6)}
    sizes = {("t", p): (p + 1) * GB for p in range(6)}
    return plan_reassignment(current, [1, 2, 3], sizes=sizes, tolerance=0.1)


def test_the_biggest_gain_goes_first_and_reorders_last():
    current = {("t", 0): [1, 2], ("t", 1): [1, 2], ("t", 2): [1, 2]}
    proposed = {("t", 0): [3, 2], ("t", 1): [1, 3], ("t", 2): [2, 1]}
    sizes = {("t", 0): 5 * GB, ("t", 1): 1 * GB, ("t", 2): 9 * GB}
    plan = plan_from_proposal(current, proposed, [1, 2, 3], sizes=sizes)
    order = execution_order(plan)
    assert order == [("t", 0), ("t", 1), ("t", 2)]  # a 5 GB gain, a 1 GB gain, then a reorder copying nothing
    assert gains(plan)[("t", 0)] > gains(plan)[("t", 1)] > 0


def test_batches_cover_every_change_once_and_respect_the_byte_budget():
    plan = skewed_plan()
    cut = batches(plan, 5 * GB)
    flat = [tp for batch in cut for tp in batch]
    assert sorted(flat) == sorted(plan.changed) and len(flat) == len(set(flat))
    for batch in cut:
        copied = sum(plan.sizes[tp] for tp in batch)
        assert copied <= 5 * GB or len(batch) == 1
    with pytest.raises(ValueError, match="positive"):
        batches(plan, 0)


def test_copy_time_is_the_busiest_broker_over_the_throttle():
    plan = skewed_plan()
    sent_by_broker_one = sum(plan.sizes[tp] for tp in plan.moves_by_partition)  # every copy comes from broker 1
    assert copy_seconds(plan, 100 * 10**6) == pytest.approx(sent_by_broker_one / (100 * 10**6))


def test_the_table_and_chart_show_every_broker():
    plan = plan_reassignment({("t", p): [1, 2] for p in range(4)}, [2, 3], sizes={("t", p): GB for p in range(4)})
    table = broker_table(plan)
    roles = {record.data["broker"]: record.data["role"] for record in table.value.records}
    assert roles == {1: "drained", 2: "target", 3: "added"}
    assert bytes_chart_png(plan)[:8] == b"\x89PNG\r\n\x1a\n"
