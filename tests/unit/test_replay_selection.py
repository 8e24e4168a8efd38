"""Which dead letters a replay takes (streaming.replay.selection): criteria, validation, limits, no loops."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streaming import records
from streaming.records import Reason
from streaming.replay.selection import ReplayError, ReplaySelection, Verdict, replay_count

NOW_MS = 1_800_000_000_000


def dead_letter(
    reason: str = "invalid_locale",
    partition: int = 0,
    offset: int = 10,
    failed_at: int = NOW_MS - 1000,
    **extra: str,
) -> dict[str, str]:
    return {
        records.DLQ_REASON: reason,
        records.DLQ_SOURCE_PARTITION: str(partition),
        records.DLQ_SOURCE_OFFSET: str(offset),
        records.DLQ_FAILED_AT: str(failed_at),
        **extra,
    }


def test_an_empty_selection_takes_every_dead_letter():
    assert ReplaySelection().verdict(dead_letter(), "r1", taken=0) is Verdict.SELECTED


@pytest.mark.parametrize(
    ("selection", "headers", "verdict"),
    [
        (ReplaySelection(reasons=frozenset({"rejected_by_broker"})), dead_letter(), Verdict.NOT_SELECTED),
        (ReplaySelection(reasons=frozenset({"invalid_locale"})), dead_letter(), Verdict.SELECTED),
        (ReplaySelection(source_partitions=frozenset({1, 2})), dead_letter(partition=0), Verdict.NOT_SELECTED),
        (ReplaySelection(source_partitions=frozenset({1, 2})), dead_letter(partition=2), Verdict.SELECTED),
        (ReplaySelection(source_offsets=(0, 10)), dead_letter(offset=10), Verdict.NOT_SELECTED),
        (ReplaySelection(source_offsets=(10, 11)), dead_letter(offset=10), Verdict.SELECTED),
        (ReplaySelection(failed_since_ms=NOW_MS), dead_letter(failed_at=NOW_MS - 1), Verdict.NOT_SELECTED),
        (ReplaySelection(failed_until_ms=NOW_MS - 1), dead_letter(failed_at=NOW_MS - 1), Verdict.NOT_SELECTED),
        (ReplaySelection(failed_until_ms=NOW_MS), dead_letter(failed_at=NOW_MS - 1), Verdict.SELECTED),
        (ReplaySelection(), dead_letter(**{records.DLQ_REPLAY_COUNT: "3"}), Verdict.EXHAUSTED),
        (ReplaySelection(max_replays=4), dead_letter(**{records.DLQ_REPLAY_COUNT: "3"}), Verdict.SELECTED),
        (ReplaySelection(), dead_letter(**{records.DLQ_REPLAY_ID: "r1"}), Verdict.OWN_OUTPUT),
        (ReplaySelection(), dead_letter(**{records.DLQ_REPLAY_ID: "r0"}), Verdict.SELECTED),
    ],
)
def test_each_criterion(selection, headers, verdict):
    assert selection.verdict(headers, "r1", taken=0) is verdict


def test_the_limit_counts_what_was_taken():
    selection = ReplaySelection(limit=2)
    assert selection.verdict(dead_letter(), "r", taken=1) is Verdict.SELECTED
    assert selection.verdict(dead_letter(), "r", taken=2) is Verdict.NOT_SELECTED


@pytest.mark.parametrize(
    ("selection", "says"),
    [
        (ReplaySelection(reasons=frozenset({"no_such_reason"})), "unknown reason"),
        (ReplaySelection(reasons=frozenset()), "no reason given"),
        (ReplaySelection(source_offsets=(5, 5)), "select nothing"),
        (ReplaySelection(failed_since_ms=NOW_MS + 60_000), "future"),
        (ReplaySelection(failed_since_ms=NOW_MS - 10, failed_until_ms=NOW_MS - 20), "empty"),
        (ReplaySelection(limit=0), "limit"),
        (ReplaySelection(max_replays=0), "max replays"),
        (ReplaySelection(source_partitions=frozenset({-1})), "partitions"),
    ],
)
def test_bad_selections_fail_with_a_clear_error(selection, says):
    with pytest.raises(ReplayError, match=says):
        selection.validate(NOW_MS)


def test_every_reason_code_can_be_selected():
    ReplaySelection(reasons=frozenset(r.value for r in Reason)).validate(NOW_MS)


def test_the_same_selection_has_the_same_id_and_another_has_another():
    a = ReplaySelection(reasons=frozenset({"invalid_ip", "invalid_locale"}), limit=5)
    b = ReplaySelection(reasons=frozenset({"invalid_locale", "invalid_ip"}), limit=5)
    assert a.replay_id("dlq") == b.replay_id("dlq")
    assert a.replay_id("dlq") != ReplaySelection(limit=5).replay_id("dlq")
    assert a.replay_id("dlq") != a.replay_id("other.dlq")


def test_replay_count_is_zero_for_a_first_failure():
    assert replay_count(dead_letter()) == 0
    assert replay_count(dead_letter(**{records.DLQ_REPLAY_COUNT: "2"})) == 2


reasons = st.sampled_from([r.value for r in Reason])


@given(
    headers=st.builds(
        dead_letter,
        reason=reasons,
        partition=st.integers(0, 5),
        offset=st.integers(0, 100),
        failed_at=st.integers(NOW_MS - 10_000, NOW_MS),
    ),
    chosen=st.none() | st.frozensets(reasons, min_size=1),
    partitions=st.none() | st.frozensets(st.integers(0, 5), min_size=1),
    offsets=st.none() | st.tuples(st.integers(0, 50), st.integers(51, 100)),
    since=st.none() | st.integers(NOW_MS - 10_000, NOW_MS),
)
def test_a_selected_dead_letter_meets_every_criterion_and_a_refused_one_misses_one(
    headers, chosen, partitions, offsets, since
):
    selection = ReplaySelection(
        reasons=chosen, source_partitions=partitions, source_offsets=offsets, failed_since_ms=since
    )
    selection.validate(NOW_MS)
    meets = [
        chosen is None or headers[records.DLQ_REASON] in chosen,
        partitions is None or int(headers[records.DLQ_SOURCE_PARTITION]) in partitions,
        offsets is None or offsets[0] <= int(headers[records.DLQ_SOURCE_OFFSET]) < offsets[1],
        since is None or int(headers[records.DLQ_FAILED_AT]) >= since,
    ]
    verdict = selection.verdict(headers, "r", taken=0)
    assert (verdict is Verdict.SELECTED) == all(meets)
