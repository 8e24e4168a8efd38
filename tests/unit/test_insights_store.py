"""The DuckDB store and the chart in a temporary folder: replacing an hour is idempotent, other hours stay."""

from pathlib import Path

import pytest

from orchestration.insights import charts, store
from orchestration.insights.aggregates import (
    MINUTE_MS,
    WindowTally,
    device_type_distribution,
    events_per_minute,
)
from orchestration.insights.window_reader import PartitionScan, WindowScan
from streaming.offset_ranges import OffsetRange

HOUR = 1_795_593_600_000  # 2026-11-25 08:00 UTC


def scan_of(start_ms: int, device_types: list[str]) -> WindowScan:
    tally = WindowTally(start_ms, start_ms + 60 * MINUTE_MS)
    for i, device_type in enumerate(device_types):
        event = {
            "user_id": "u",
            "device_id": f"d{i}",
            "device_type": device_type,
            "locale": "NY",
            "app_version": "1.0",
        }
        tally.add_record(event, start_ms + i * MINUTE_MS)
    tally.add_dead_letter("invalid_json")
    part = PartitionScan(
        OffsetRange("processed-data", 0, 0, len(device_types)), len(device_types), len(device_types), 0
    )
    return WindowScan(tally, [part], [PartitionScan(OffsetRange("dlq", 0, 0, 1), 1, 1, 0)])


def test_database_path_defaults_under_the_instance_storage_unless_given(tmp_path: Path) -> None:
    assert store.database_path(tmp_path) == tmp_path / "insights" / "insights.duckdb"
    assert store.database_path(tmp_path, str(tmp_path / "elsewhere.duckdb")) == tmp_path / "elsewhere.duckdb"


def test_rematerializing_an_hour_replaces_its_rows_and_keeps_other_hours(tmp_path: Path) -> None:
    database = tmp_path / "insights.duckdb"
    store.save_window(database, "2026-11-25-08:00", scan_of(HOUR, ["ios", "ios", "android"]), HOUR)
    store.save_window(database, "2026-11-25-09:00", scan_of(HOUR + 60 * MINUTE_MS, ["ios"]), HOUR)
    store.save_window(database, "2026-11-25-08:00", scan_of(HOUR, ["ios", "android"]), HOUR)  # the re-run

    device_rows = store.fetch(
        database,
        "SELECT partition_key, device_type, records FROM device_types ORDER BY partition_key, device_type",
    )
    assert device_rows == [
        ("2026-11-25-08:00", "android", 1),
        ("2026-11-25-08:00", "ios", 1),
        ("2026-11-25-09:00", "ios", 1),
    ]
    summary = store.fetch(
        database, "SELECT partition_key, records, dead_letters, unique_devices FROM window_summary ORDER BY 1"
    )
    assert summary == [("2026-11-25-08:00", 2, 1, 2), ("2026-11-25-09:00", 1, 1, 1)]
    minutes = store.fetch(
        database,
        "SELECT count(*), sum(records) FROM events_per_minute WHERE partition_key = ?",
        ["2026-11-25-08:00"],
    )
    assert minutes == [(60, 2)]
    offsets = store.fetch(database, "SELECT partition_key, topic, end_offset FROM offsets_read ORDER BY 1, 2")
    assert offsets == [
        ("2026-11-25-08:00", "dlq", 1),
        ("2026-11-25-08:00", "processed-data", 2),
        ("2026-11-25-09:00", "dlq", 1),
        ("2026-11-25-09:00", "processed-data", 1),
    ]


def test_chart_is_a_png_and_embeds_as_a_data_uri(tmp_path: Path) -> None:
    tally = scan_of(HOUR, ["ios", "android", "ios"]).tally
    path = store.chart_path(tmp_path / "insights.duckdb", "2026-11-25-08:00")
    charts.render_window_chart(events_per_minute(tally), device_type_distribution(tally), "test", path)
    assert path.name == "2026-11-25-0800.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert charts.markdown_image(path, "alt").startswith("![alt](data:image/png;base64,iVBORw0KGgo")


def test_late_events_are_stored_per_hour_and_replaced_on_a_rerun(tmp_path: Path) -> None:
    database = tmp_path / "insights.duckdb"
    year_2001 = 978_307_200_000  # 2001-01-01 00:00 UTC
    first = scan_of(HOUR, ["ios"])
    first.tally.add_late(year_2001, HOUR + 5 * MINUTE_MS)
    first.tally.add_late(year_2001 + 1000, HOUR + 6 * MINUTE_MS)
    store.save_window(database, "2026-11-25-08:00", first, HOUR)
    store.save_window(database, "2026-11-25-09:00", scan_of(HOUR + 60 * MINUTE_MS, ["ios"]), HOUR)
    rows = store.fetch(database, "SELECT partition_key, late_records, oldest_event, max_delay_ms FROM late_events")
    assert sorted(rows) == [
        ("2026-11-25-08:00", 2, store.utc(year_2001), HOUR + 6 * MINUTE_MS - year_2001 - 1000),
        ("2026-11-25-09:00", 0, None, None),
    ]
    store.save_window(database, "2026-11-25-08:00", scan_of(HOUR, ["ios"]), HOUR)  # the re-run finds none
    assert store.fetch(database, "SELECT late_records FROM late_events WHERE partition_key = '2026-11-25-08:00'") == [
        (0,)
    ]


def test_a_write_that_dies_midway_leaves_the_previous_numbers_and_the_rerun_counts_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The insights keep no partial aggregates: an hour is recomputed from processed-data and replaced in one
    transaction, so a run killed while writing leaves the previous numbers, and its re-run counts each record
    once."""
    database = tmp_path / "insights.duckdb"
    store.save_window(database, "2026-11-25-08:00", scan_of(HOUR, ["ios", "ios", "android"]), HOUR)
    real_connect = store.connect

    class DiesMidway:
        """A connection whose third bulk insert fails, as if the process were killed between two tables."""

        def __init__(self, connection: object) -> None:
            self._connection = connection
            self._inserts = 0

        def executemany(self, sql: str, rows: object) -> object:
            self._inserts += 1
            if self._inserts == 3:
                raise KeyboardInterrupt("killed")
            return self._connection.executemany(sql, rows)  # type: ignore[attr-defined]

        def __getattr__(self, name: str) -> object:
            return getattr(self._connection, name)

    monkeypatch.setattr(store, "connect", lambda *args: DiesMidway(real_connect(*args)))
    with pytest.raises(KeyboardInterrupt):
        store.save_window(database, "2026-11-25-08:00", scan_of(HOUR, ["android"] * 5), HOUR)
    monkeypatch.setattr(store, "connect", real_connect)
    summary = "SELECT records FROM window_summary UNION ALL SELECT sum(records) FROM device_types"
    assert store.fetch(database, summary) == [(3,), (3,)]

    store.save_window(database, "2026-11-25-08:00", scan_of(HOUR, ["android"] * 5), HOUR)  # the re-run
    assert store.fetch(database, summary) == [(5,), (5,)]
