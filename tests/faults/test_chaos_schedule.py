"""The chaos run's schedule (`chaos_schedule.py`): replayable from its seed, every kind present, inside the run.

Pure logic, so not marked `faults`: it runs with the unit tests."""

from __future__ import annotations

from chaos_schedule import DRAIN_S, HOLD_S, KINDS, WARM_UP_S, schedule
from hypothesis import given
from hypothesis import strategies as st


@given(seed=st.integers(0, 2**32), faults=st.integers(len(KINDS), 30))
def test_a_seed_gives_one_schedule_with_every_kind_inside_the_run(seed: int, faults: int) -> None:
    drawn = schedule(seed, 1800, [1, 2, 3], faults)
    assert drawn == schedule(seed, 1800, [1, 2, 3], faults)
    assert len(drawn) == faults and {fault.kind for fault in drawn} == set(KINDS)
    assert [fault.at_s for fault in drawn] == sorted(fault.at_s for fault in drawn)
    for fault in drawn:
        low, high = HOLD_S[fault.kind]
        assert low <= fault.hold_s <= high
        assert fault.at_s >= WARM_UP_S and fault.at_s + fault.hold_s <= 1800 - DRAIN_S
        assert (fault.broker in (1, 2, 3)) == fault.kind.startswith("broker")
    assert sum(fault.kind == "schema registration" for fault in drawn) == 1


def test_two_seeds_give_two_schedules() -> None:
    assert schedule(1, 1800, [1, 2, 3], 12) != schedule(2, 1800, [1, 2, 3], 12)


def test_too_few_faults_or_too_short_a_run_is_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="one of each"):
        schedule(1, 1800, [1, 2, 3], len(KINDS) - 1)
    with pytest.raises(ValueError, match="no time for faults"):
        schedule(1, 240, [1, 2, 3], len(KINDS))
