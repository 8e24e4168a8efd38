"""Each insights check on synthetic windows: it passes on good evidence and fails, saying why, on bad."""

import dataclasses

import pytest

from orchestration.defs.insights.checks import counts_consistency, dead_letter_rate_check, freshness_result
from orchestration.insights.aggregates import MINUTE_MS, WindowTally
from orchestration.insights.window_reader import PartitionScan, WindowScan
from streaming.offset_ranges import OffsetRange

START = 1_795_593_600_000  # 2026-11-25 08:00 UTC
END = START + 60 * MINUTE_MS


def window(records: int, dead_letters: int) -> WindowTally:
    tally = WindowTally(START, END)
    for i in range(records):
        event = {
            "user_id": f"u{i % 3}",
            "device_id": f"d{i}",
            "device_type": "ios",
            "locale": "NY",
            "app_version": "1.0",
        }
        tally.add_record(event, START + i * 1000)
    for _ in range(dead_letters):
        tally.add_dead_letter("invalid_json")
    return tally


def consistent_scan(records: int = 6, dead_letters: int = 1) -> WindowScan:
    """Records spread over two partitions (with a commit marker offset each), dead letters on one."""
    first = records // 2
    return WindowScan(
        tally=window(records, dead_letters),
        records=[
            PartitionScan(
                OffsetRange("processed-data", 0, 10, 10 + first + 2),
                scanned=first + 1,
                counted=first,
                undecodable=0,
            ),
            PartitionScan(
                OffsetRange("processed-data", 1, 0, records - first + 1),
                scanned=records - first,
                counted=records - first,
                undecodable=0,
            ),
        ],
        dead_letters=[
            PartitionScan(OffsetRange("user-login.dlq", 0, 4, 4 + dead_letters), dead_letters, dead_letters, 0)
        ],
    )


def test_consistent_counts_pass() -> None:
    result = counts_consistency(consistent_scan())
    assert result.passed, result.description
    assert result.metadata["records"].value == 6
    assert result.metadata["offsets_read"].value == 5 + 4


def test_more_messages_than_offsets_read_fails() -> None:
    scan = consistent_scan()
    bad = dataclasses.replace(scan.records[1], scanned=scan.records[1].span + 1)
    scan.records[1] = bad
    result = counts_consistency(scan)
    assert not result.passed
    assert "processed-data/1" in (result.description or "") and "offsets" in (result.description or "")


def test_an_undecodable_record_fails() -> None:
    scan = consistent_scan()
    scan.records[0] = dataclasses.replace(scan.records[0], undecodable=1)
    result = counts_consistency(scan)
    assert not result.passed
    assert "1 records could not be decoded" in (result.description or "")


def test_a_breakdown_that_does_not_sum_to_the_total_fails() -> None:
    scan = consistent_scan()
    scan.tally.locales["CA"] += 1  # a record counted twice in one breakdown
    result = counts_consistency(scan)
    assert not result.passed
    assert "locales sum to 7, not 6" in (result.description or "")


def test_partition_counts_that_disagree_with_the_window_total_fail() -> None:
    scan = consistent_scan()
    scan.dead_letters[0] = dataclasses.replace(scan.dead_letters[0], counted=0)
    result = counts_consistency(scan)
    assert not result.passed
    assert "0 dead letters" in (result.description or "")


@pytest.mark.parametrize(
    ("records", "dead_letters", "passed"), [(9, 1, True), (8, 1, False), (0, 0, True), (0, 1, False)]
)
def test_dead_letter_rate_threshold_is_inclusive(records: int, dead_letters: int, passed: bool) -> None:
    result = dead_letter_rate_check(window(records, dead_letters), max_rate=0.10)
    assert result.passed is passed
    if not passed:
        assert "exceeds 10.00%" in (result.description or "") and "invalid_json" in (result.description or "")


def test_freshness_passes_when_recent_and_fails_when_stale_or_empty() -> None:
    now = START + 60 * MINUTE_MS
    assert freshness_result(now - 14 * MINUTE_MS, now, max_age_minutes=15).passed
    stale = freshness_result(now - 16 * MINUTE_MS, now, max_age_minutes=15)
    assert not stale.passed and "16.0 min old" in (stale.description or "")
    assert not freshness_result(None, now, max_age_minutes=15).passed


def test_late_records_are_shown_and_must_agree_with_the_partitions() -> None:
    scan = consistent_scan()
    scan.tally.add_late(978_307_200_000, START + 1000)  # an event of 2001, processed in this hour
    scan.records[0] = dataclasses.replace(scan.records[0], late=1)
    result = counts_consistency(scan)
    assert result.passed, result.description
    assert result.metadata["late_records"].value == 1

    scan.records[0] = dataclasses.replace(scan.records[0], late=0)
    result = counts_consistency(scan)
    assert not result.passed
    assert "partitions counted 0 late records, the window totals 1" in (result.description or "")


def test_a_partition_counting_more_than_it_delivered_fails() -> None:
    scan = consistent_scan()
    scan.records[1] = dataclasses.replace(scan.records[1], late=1)  # counted + late > scanned
    result = counts_consistency(scan)
    assert not result.passed
    assert "processed-data/1" in (result.description or "") and "late of" in (result.description or "")
