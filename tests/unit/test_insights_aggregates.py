"""The pure tallies and insight rows of one window, on small hand-made windows whose answers are obvious."""

from datetime import UTC, datetime

import pytest

from orchestration.insights import aggregates
from orchestration.insights.aggregates import MINUTE_MS, NONE_LABEL, WindowTally, epoch_ms

HOUR_START = epoch_ms(datetime(2026, 11, 25, 8, tzinfo=UTC))
HOUR_END = HOUR_START + 60 * MINUTE_MS


def record(user: str, device: str | None, device_type: str, locale: str, version: str) -> dict[str, object]:
    return {
        "user_id": user,
        "device_id": device,
        "device_type": device_type,
        "locale": locale,
        "app_version": version,
    }


@pytest.fixture
def tally() -> WindowTally:
    """Five logins: two users, three devices (one login without a device id), two of them in minute 0."""
    t = WindowTally(HOUR_START, HOUR_END)
    t.add_record(record("u1", "d1", "ios", "NY", "2.3.0"), HOUR_START)
    t.add_record(record("u1", "d1", "ios", "NY", "2.10.0"), HOUR_START + 30_000)  # d1 upgrades in the hour
    t.add_record(record("u2", "d2", "android", "CA", "2.3.0"), HOUR_START + 5 * MINUTE_MS)
    t.add_record(record("u2", "d3", "android", "NY", "2.9.1"), HOUR_START + 59 * MINUTE_MS + 59_999)
    t.add_record(record("u2", None, "unknown", "TX", "2.3.0"), HOUR_START + 5 * MINUTE_MS + 1)
    t.add_dead_letter("invalid_json")
    t.add_dead_letter("invalid_json")
    t.add_dead_letter(None)
    return t


def test_window_bounds_are_half_open() -> None:
    t = WindowTally(HOUR_START, HOUR_END)
    assert t.contains(HOUR_START) and t.contains(HOUR_END - 1)
    assert not t.contains(HOUR_START - 1) and not t.contains(HOUR_END)
    with pytest.raises(ValueError):
        WindowTally(HOUR_END, HOUR_START)


def test_epoch_ms_is_exact_for_datetimes_and_longs() -> None:
    moment = datetime(2026, 11, 25, 8, 0, 0, 123000, tzinfo=UTC)
    assert epoch_ms(moment) == 1_795_593_600_123
    assert epoch_ms(moment.replace(tzinfo=None)) == 1_795_593_600_123  # naive means UTC
    assert epoch_ms(1_795_593_600_123) == 1_795_593_600_123


def test_device_type_distribution_counts_and_shares(tally: WindowTally) -> None:
    rows = aggregates.device_type_distribution(tally)
    assert [(r.value, r.count) for r in rows] == [("android", 2), ("ios", 2), ("unknown", 1)]
    assert [r.share for r in rows] == [0.4, 0.4, 0.2]


def test_top_locales_are_ordered_and_limited(tally: WindowTally) -> None:
    assert [(s.value, s.count) for s in aggregates.top_locales(tally, 2)] == [("NY", 3), ("CA", 1)]
    assert aggregates.top_locales(tally, 2)[0].share == 0.6
    with pytest.raises(ValueError):
        aggregates.top_locales(tally, 0)


def test_app_version_adoption_orders_versions_numerically_and_counts_latest_device_version(
    tally: WindowTally,
) -> None:
    rows = {r.app_version: r for r in aggregates.app_version_adoption(tally)}
    assert list(rows) == ["2.10.0", "2.9.1", "2.3.0"]
    assert (rows["2.3.0"].logins, rows["2.3.0"].devices) == (3, 1)  # d1 moved on to 2.10.0; d2 stayed
    assert (rows["2.10.0"].logins, rows["2.10.0"].devices) == (1, 1)
    assert rows["2.3.0"].device_share == pytest.approx(1 / 3)
    assert sum(r.devices for r in rows.values()) == 3
    assert sum(r.logins for r in rows.values()) == 5


def test_version_key_puts_prerelease_beside_its_release() -> None:
    versions = ["2.4.0-beta", "10.0", "2.10.0", "2.9.9+build.7", "weird"]
    assert sorted(versions, key=aggregates.version_key) == [
        "2.4.0-beta",
        "2.9.9+build.7",
        "2.10.0",
        "10.0",
        "weird",
    ]


def test_unique_users_and_devices_ignore_missing_device_ids(tally: WindowTally) -> None:
    assert aggregates.unique_users_devices(tally) == aggregates.UniqueCounts(records=5, users=2, devices=3)


def test_events_per_minute_covers_every_minute_including_quiet_ones(tally: WindowTally) -> None:
    minutes = aggregates.events_per_minute(tally)
    assert len(minutes) == 60
    assert minutes[0] == aggregates.MinuteCount(HOUR_START, 2)
    assert minutes[5].count == 2 and minutes[59].count == 1
    assert sum(m.count for m in minutes) == 5
    assert sum(1 for m in minutes if m.count == 0) == 57
    assert minutes[59].minute_start_ms == HOUR_END - MINUTE_MS


def test_dead_letter_rate_is_of_all_messages_and_labels_a_missing_reason(tally: WindowTally) -> None:
    rate = aggregates.dead_letter_rate(tally)
    assert (rate.dead_letters, rate.records) == (3, 5)
    assert rate.rate == 3 / 8
    assert [(s.value, s.count) for s in rate.by_reason] == [("invalid_json", 2), (NONE_LABEL, 1)]
    assert sum(s.share for s in rate.by_reason) == pytest.approx(rate.rate)


def test_an_empty_window_has_zero_rates_not_division_errors() -> None:
    empty = WindowTally(HOUR_START, HOUR_END)
    assert aggregates.dead_letter_rate(empty).rate == 0.0
    assert aggregates.device_type_distribution(empty) == []
    assert all(m.count == 0 for m in aggregates.events_per_minute(empty))
    assert empty.newest_event_ms is None


def test_every_breakdown_sums_to_the_record_count(tally: WindowTally) -> None:
    assert set(aggregates.breakdown_totals(tally).values()) == {5}
    assert tally.newest_event_ms == HOUR_END - 1


def test_late_records_keep_the_count_the_oldest_event_and_the_largest_delay() -> None:
    tally = WindowTally(0, 3_600_000)
    tally.add_late(event_ms=-5_000, processed_ms=1_000)
    tally.add_late(event_ms=-10_000, processed_ms=2_000)
    tally.add_late(event_ms=-1_000, processed_ms=20_000)
    assert tally.late_records == 3
    assert tally.oldest_late_event_ms == -10_000
    assert tally.max_late_delay_ms == 21_000
    assert tally.records == 0  # late records stay out of the hour's insights
