"""The shortcuts that make the planner fast at scale lose nothing.

`independent_parts` cuts the placement into one problem per rack when RF equals the number of racks
(or more generally when the rack bounds, tightened by the replication factor, fix each rack's share).
Evidence that the cut loses nothing: on small random clusters, solving every part exactly gives the
same goal values, goal by goal, as solving the whole problem exactly, and the parts put together are a
valid placement. `_greedy_leader_spread` lets the leader LP skip minimising the spread: its value is
always the spread of a real choice of leaders, so it never claims a spread that cannot be had.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestration.reassignment.assignment_model import independent_parts, solve_exact
from orchestration.reassignment.planner import _greedy_leader_spread, _placement_problem


@st.composite
def racked_clusters(draw):
    """RF = number of racks (2 or 3), 2 brokers per rack, random replicas and sizes."""
    racks = draw(st.integers(2, 3))
    targets = tuple(range(1, 2 * racks + 1))
    rack_of = {b: f"rack-{(b - 1) % racks}" for b in targets}
    items = draw(st.integers(1, 5))
    held = np.zeros((items, len(targets)), dtype=bool)
    for i in range(items):
        held[i, draw(st.lists(st.integers(0, len(targets) - 1), min_size=1, max_size=racks, unique=True))] = True
    sizes = np.array([draw(st.integers(0, 1000)) for _ in range(items)], dtype=float)
    tolerance = draw(st.sampled_from([0.0, 0.1, 0.3]))
    return held, sizes, np.full(items, racks), targets, rack_of, tolerance


@given(racked_clusters())
@settings(max_examples=40, deadline=None)
def test_solving_each_rack_alone_reaches_the_same_goals_as_the_whole(case):
    held, sizes, wanted, targets, rack_of, tolerance = case
    problem, goals = _placement_problem(held, sizes, wanted, targets, rack_of, tolerance, None, weighed=True)
    parts = independent_parts(problem, goals)
    assert len(parts) == len(set(rack_of.values()))

    whole = solve_exact(problem, goals)
    x = np.zeros(problem.shape)
    totals = dict.fromkeys(whole.goal_values, 0.0)
    for items, brokers, part, part_goals in parts:
        solved = solve_exact(part, part_goals)
        x[np.ix_(items, brokers)] = solved.x
        for name, value in solved.goal_values.items():
            totals[name] += value
    for name, value in whole.goal_values.items():
        assert totals[name] == pytest.approx(value, abs=1e-4), name
    assert np.array_equal(np.rint(x).sum(axis=1), wanted)
    for rack in set(rack_of.values()):
        in_rack = [k for k, b in enumerate(targets) if rack_of[b] == rack]
        assert np.all(np.rint(x[:, in_rack]).sum(axis=1) == 1)


def test_rack_bounds_that_leave_a_choice_keep_the_problem_whole():
    """RF 2 over three racks: a partition may skip any one rack, so the racks are coupled."""
    held = np.array([[True, True, False, False, False, False]])
    targets = (1, 2, 3, 4, 5, 6)
    rack_of = {b: f"rack-{(b - 1) % 3}" for b in targets}
    problem, goals = _placement_problem(held, np.array([5.0]), np.array([2]), targets, rack_of, 0.1, None, weighed=True)
    assert len(independent_parts(problem, goals)) == 1


@given(
    st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=3, unique=True), min_size=1, max_size=6),
    st.lists(st.integers(0, 100), min_size=6, max_size=6),
    st.lists(st.integers(0, 3), min_size=6, max_size=6),
    st.sampled_from([0.0, 0.1, 0.5]),
)
@settings(max_examples=80, deadline=None)
def test_the_greedy_leader_spread_is_one_that_some_choice_of_leaders_has(replica_lists, loads, today, allowance):
    """The leader LP skips minimising the spread when this value is within the allowance, so it must never
    claim less than is possible: it is the spread of a real choice of leaders (by enumeration)."""
    items, brokers = len(replica_lists), 4
    allowed = np.zeros((items, brokers), dtype=bool)
    for i, replicas in enumerate(replica_lists):
        allowed[i, replicas] = True
    weights = np.array(loads[:items], dtype=float) / 50
    current = np.zeros_like(allowed)
    current[np.arange(items), today[:items]] = True  # today's leader, not always still a replica
    reached = _greedy_leader_spread(allowed, weights, current, allowance)
    spreads = []
    for leaders in itertools.product(*replica_lists):
        load = np.bincount(leaders, weights, minlength=brokers)
        spreads.append(load.max() - load.min())
    assert min(abs(s - reached) for s in spreads) < 1e-9
