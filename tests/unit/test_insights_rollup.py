"""The day's roll-up from the store: counts add up, uniques are merged (never summed), gaps are named."""

from datetime import UTC, date, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestration.insights import distinct_counts, rollup, store
from orchestration.insights.aggregates import MINUTE_MS, WindowTally
from orchestration.insights.window_reader import PartitionScan, WindowScan
from streaming.offset_ranges import OffsetRange

DAY = date(2026, 11, 25)
HOUR_MS = 60 * MINUTE_MS


def hour_start_ms(day: date, hour: int) -> int:
    return int(datetime(day.year, day.month, day.day, hour, tzinfo=UTC).timestamp() * 1000)


def scan_of(
    day: date,
    hour: int,
    logins: list[tuple[str, str, str]],
    dead: list[str] = (),  # type: ignore[assignment]
    late: list[int] = (),  # type: ignore[assignment]
) -> WindowScan:
    """An hour with `logins` as (user, device, locale), dead letters by reason, late records by delay (ms)."""
    start = hour_start_ms(day, hour)
    tally = WindowTally(start, start + HOUR_MS)
    for i, (user, device, locale) in enumerate(logins):
        record = {"user_id": user, "device_id": device, "device_type": "ios", "locale": locale, "app_version": "2.1"}
        tally.add_record(record, start + i % 60 * MINUTE_MS)
    for reason in dead:
        tally.add_dead_letter(reason)
    for delay in late:
        tally.add_late(start - delay, start)
    counted = len(logins)
    return WindowScan(tally, [PartitionScan(OffsetRange("processed", 0, 0, counted), counted, counted, 0)], [])


def save(database: Path, day: date, hour: int, scan: WindowScan) -> None:
    store.save_window(database, rollup.hour_keys(day)[hour], scan, hour_start_ms(day, hour))


def test_hour_keys_are_the_24_hours_of_the_day_in_order() -> None:
    keys = rollup.hour_keys(DAY)
    assert (len(keys), keys[0], keys[13], keys[-1]) == (24, "2026-11-25-00:00", "2026-11-25-13:00", "2026-11-25-23:00")


def test_a_day_with_nothing_stored_is_empty_and_misses_every_hour(tmp_path: Path) -> None:
    database = tmp_path / "insights.duckdb"
    save(database, date(2026, 11, 24), 23, scan_of(date(2026, 11, 24), 23, [("u", "d", "NY")]))  # the day before
    [day] = rollup.load_days(database, [DAY])
    assert not day.has_data
    assert (day.logins, day.uniques.users, day.hours_missing) == (0, 0, rollup.hour_keys(DAY))


def test_a_user_seen_in_two_hours_is_one_user_of_the_day(tmp_path: Path) -> None:
    database = tmp_path / "insights.duckdb"
    save(database, DAY, 8, scan_of(DAY, 8, [("alice", "phone", "NY"), ("bob", "laptop", "CA")]))
    save(database, DAY, 17, scan_of(DAY, 17, [("alice", "phone", "NY"), ("alice", "tablet", "NY")], dead=["bad"]))
    [day] = rollup.load_days(database, [DAY])
    hourly_users = store.fetch(database, "SELECT sum(unique_users) FROM window_summary")
    assert hourly_users == [(3,)]  # what a sum of the hours would wrongly say
    assert (day.uniques.users, day.uniques.devices) == (2, 3)
    assert day.logins == 4 and day.dead_letters == 1
    assert day.locales == {"NY": 3, "CA": 1}
    assert day.logins_by_hour[8] == 2 and day.logins_by_hour[17] == 2 and day.dead_letters_by_hour[17] == 1
    assert len(day.hours_missing) == 22 and "2026-11-25-08:00" not in day.hours_missing


def test_uniques_of_hours_stored_without_ids_are_unknown_not_undercounted(tmp_path: Path) -> None:
    database = tmp_path / "insights.duckdb"
    save(database, DAY, 0, scan_of(DAY, 0, [("alice", "phone", "NY")]))
    save(database, DAY, 1, scan_of(DAY, 1, [("bob", "laptop", "NY")]))
    connection = store.connect(database)
    connection.execute(f"DELETE FROM {distinct_counts.TABLE} WHERE partition_key = '2026-11-25-01:00'")  # as before ids
    connection.close()
    [day] = rollup.load_days(database, [DAY])
    assert day.uniques == distinct_counts.UniqueTotals(None, None, ("2026-11-25-01:00",))
    assert day.logins == 2


def test_an_hour_with_no_logins_keeps_empty_id_sets_and_merges_to_zero(tmp_path: Path) -> None:
    database = tmp_path / "insights.duckdb"
    save(database, DAY, 3, scan_of(DAY, 3, [], dead=["invalid_json"]))
    [day] = rollup.load_days(database, [DAY])
    assert day.uniques == distinct_counts.UniqueTotals(0, 0, ())
    assert (day.logins, day.dead_letters, day.dead_letter_rate) == (0, 1, 1.0)


ids = st.sampled_from([f"id{i}" for i in range(12)])
hour_data = st.tuples(
    st.lists(st.tuples(ids, ids, st.sampled_from(["NY", "CA", "TX"])), max_size=8),
    st.lists(st.sampled_from(["invalid_json", "missing_field"]), max_size=3),
    st.lists(st.integers(min_value=HOUR_MS, max_value=10**9), max_size=3),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hours=st.dictionaries(st.integers(min_value=0, max_value=23), hour_data, max_size=6))
def test_the_day_is_the_merge_of_its_hours(tmp_path_factory: object, hours: dict) -> None:  # type: ignore[type-arg]
    database = tmp_path_factory.mktemp("rollup") / "insights.duckdb"  # type: ignore[attr-defined]
    for hour, (logins, dead, late) in hours.items():
        save(database, DAY, hour, scan_of(DAY, hour, logins, dead, late))
    [day] = rollup.load_days(database, [DAY])

    all_logins = [login for logins, _, _ in hours.values() for login in logins]
    assert day.logins == len(all_logins) == sum(day.logins_by_hour)
    for breakdown in (day.locales, day.device_types, day.app_versions):
        assert sum(breakdown.values()) == day.logins
    assert day.uniques.users == len({user for user, _, _ in all_logins})
    assert day.uniques.devices == len({device for _, device, _ in all_logins})
    hourly_users = [len({user for user, _, _ in logins}) for logins, _, _ in hours.values()]
    assert max(hourly_users, default=0) <= (day.uniques.users or 0) <= sum(hourly_users)
    assert day.dead_letters == sum(len(dead) for _, dead, _ in hours.values()) == sum(day.dead_letters_by_hour)
    assert sum(day.dead_letter_reasons.values()) == day.dead_letters
    delays = [delay for _, _, late in hours.values() for delay in late]
    assert day.late_records == len(delays)
    assert day.max_late_delay_ms == (max(delays) if delays else None)
    assert day.hours_missing == [key for h, key in enumerate(rollup.hour_keys(DAY)) if h not in hours]
    assert day.has_data == bool(hours)
