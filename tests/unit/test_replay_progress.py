"""Where a replay stands (streaming.replay.progress), how its requests are read (streaming.replay.request) and
what a dead letter refused again carries (streaming.replay.headers). Pure."""

from __future__ import annotations

import pytest

from streaming import records
from streaming.offset_ranges import OffsetRange
from streaming.replay.headers import replayed_dead_letter_headers
from streaming.replay.progress import PartitionState, Progress, parse_progress, plan_run, progress_metadata
from streaming.replay.request import parse_time_ms, selection_from_text
from streaming.replay.selection import ReplayError, ReplaySelection

NOW_MS = 1_800_000_000_000


def test_progress_metadata_reads_back_and_other_metadata_is_ignored():
    assert parse_progress(progress_metadata("abc-1", 42)) == Progress("abc-1", 42)
    for other in (None, "", "kdp-replay run=x", "something else entirely", "kdp-replay run=x end=-1"):
        assert parse_progress(other) is None


def test_a_selection_never_run_starts_a_new_run_over_everything_the_topic_holds():
    run = plan_run("dlq", [PartitionState(0, 5, 50, None), PartitionState(1, 0, 0, None)], "sel", NOW_MS)
    assert not run.resumed and run.run_id == f"sel-{NOW_MS}"
    assert run.ranges == [OffsetRange("dlq", 0, 5, 50), OffsetRange("dlq", 1, 0, 0)]
    assert [(tp.partition, tp.offset, tp.metadata) for tp in run.start_commits()] == [
        (0, 5, progress_metadata(run.run_id, 50)),
        (1, 0, progress_metadata(run.run_id, 0)),
    ]


def test_a_finished_run_is_followed_by_a_new_one_from_where_it_ended():
    done = progress_metadata("sel-1", 30)
    states = [PartitionState(0, 0, 80, 30, done), PartitionState(1, 0, 9, 9, None)]  # 1: ended by markers
    run = plan_run("dlq", states, "sel", NOW_MS)
    assert not run.resumed
    assert run.ranges == [OffsetRange("dlq", 0, 30, 80), OffsetRange("dlq", 1, 9, 9)]


def test_an_unfinished_run_is_resumed_with_its_id_and_its_ends():
    states = [
        PartitionState(0, 0, 80, 12, progress_metadata("sel-1", 30)),  # killed at 12 of 30
        PartitionState(1, 0, 50, 20, progress_metadata("sel-1", 20)),  # this partition was finished
        PartitionState(2, 0, 70, 3, progress_metadata("sel-1", 40)),
    ]
    run = plan_run("dlq", states, "sel", NOW_MS)
    assert run.resumed and run.run_id == "sel-1"
    assert run.ranges == [OffsetRange("dlq", 0, 12, 30), OffsetRange("dlq", 2, 3, 40)]


def test_what_retention_deleted_or_a_recreated_topic_starts_at_the_low_watermark():
    states = [PartitionState(0, 100, 150, 40, progress_metadata("s-1", 40)), PartitionState(1, 0, 10, 99, None)]
    expected = [OffsetRange("dlq", 0, 100, 150), OffsetRange("dlq", 1, 0, 10)]
    assert plan_run("dlq", states, "s", NOW_MS).ranges == expected
    resumed = plan_run("dlq", [PartitionState(0, 60, 90, 10, progress_metadata("s-1", 80))], "s", NOW_MS)
    assert resumed.ranges == [OffsetRange("dlq", 0, 60, 80)]


def test_the_headers_of_a_dead_letter_refused_again():
    new = [(records.DLQ_REASON, b"invalid_ip"), (records.DLQ_SOURCE_OFFSET, b"7"), (records.DLQ_REPLAY_COUNT, b"9")]
    taken = {records.DLQ_REASON: "invalid_locale", records.DLQ_REPLAY_COUNT: "1"}
    headers = dict(replayed_dead_letter_headers(new, taken, "run-2"))
    assert headers == {
        records.DLQ_REASON: b"invalid_ip",
        records.DLQ_SOURCE_OFFSET: b"7",
        records.DLQ_REPLAY_COUNT: b"2",
        records.DLQ_REPLAY_PREVIOUS_REASON: b"invalid_locale",
        records.DLQ_REPLAY_ID: b"run-2",
    }


def test_a_request_in_words_becomes_a_selection():
    selection = selection_from_text(
        now_ms=NOW_MS,
        reasons=["rejected_by_broker", "invalid_ip"],
        source_partitions=[2],
        source_offsets="100-200",
        failed_since="2h",
        failed_until="2027-01-15T08:00:00Z",
        limit=50,
    )
    assert selection == ReplaySelection(
        reasons=frozenset({"rejected_by_broker", "invalid_ip"}),
        source_partitions=frozenset({2}),
        source_offsets=(100, 200),
        failed_since_ms=NOW_MS - 7_200_000,
        failed_until_ms=NOW_MS,  # 2027-01-15T08:00:00Z
        limit=50,
    )
    assert parse_time_ms("2027-01-15T08:00:00", NOW_MS) == parse_time_ms("2027-01-15T08:00:00Z", NOW_MS)
    assert parse_time_ms("1799999999000", NOW_MS) == 1_799_999_999_000
    assert selection_from_text(now_ms=NOW_MS) == ReplaySelection()


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ({"reasons": ["no_such_reason"]}, "unknown reason"),
        ({"failed_since": "2099-01-01T00:00:00Z"}, "future"),
        ({"failed_since": "yesterday"}, "ISO 8601"),
        ({"source_offsets": "100"}, "START-END"),
        ({"source_offsets": "200-100"}, "select nothing"),
        ({"limit": 0}, "limit"),
        ({"failed_since": "1h", "failed_until": "2h"}, "window is empty"),
    ],
)
def test_a_request_that_can_only_fail_is_refused_with_its_reason(words, message):
    with pytest.raises(ReplayError, match=message):
        selection_from_text(now_ms=NOW_MS, **words)


def test_the_limit_is_not_part_of_the_selections_progress():
    assert ReplaySelection(limit=5).replay_id("dlq") == ReplaySelection().replay_id("dlq")
