import pytest

from orchestration.conversion.pending import pending_ranges, total_lag
from streaming.offset_ranges import OffsetRange


def test_key_round_trip_with_dotted_topic():
    r = OffsetRange("user-login.v2", 3, 100, 250)
    assert r.key == "user-login.v2:3:100-250"
    assert OffsetRange.parse(r.key) == r
    assert len(r) == 150


def test_rejects_backwards_range():
    with pytest.raises(ValueError):
        OffsetRange("t", 0, 10, 5)


def test_pending_starts_at_commit_or_low_watermark_and_skips_busy_partitions():
    high = {0: 100, 1: 50, 2: 10, 3: 40}
    low = {0: 0, 1: 20, 2: 0, 3: 0}
    committed = {0: 60, 1: 5, 2: 10, 3: None}
    ranges = pending_ranges("t", high, low, committed, in_flight={3}, max_range=1000)
    assert ranges == [OffsetRange("t", 0, 60, 100), OffsetRange("t", 1, 20, 50)]


def test_pending_is_capped_per_partition():
    ranges = pending_ranges("t", {0: 1000}, {0: 0}, {0: None}, set(), max_range=300)
    assert ranges == [OffsetRange("t", 0, 0, 300)]


def test_lag_counts_from_commit_or_low_watermark():
    assert total_lag({0: 100, 1: 50}, {0: 0, 1: 20}, {0: 60, 1: None}) == 40 + 30
