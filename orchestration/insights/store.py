"""The DuckDB database of the hourly insights: one table per insight, keyed by the hour partition.

Where: `$KDP_INSIGHTS_DB` when set, else `insights/insights.duckdb` under the Dagster instance's storage
directory, so a dev instance, a test's temporary instance and production each keep their own numbers.
Charts are written next to the database (`charts/<partition>.png`).

Re-materializing an hour replaces that hour's rows and nothing else: each write deletes the partition's rows
of every table and inserts the new ones in one transaction, so a re-run (or a backfill) never duplicates and
a failed write leaves the previous numbers intact. DuckDB allows one writing process per file; two runs that
write at the same moment (a backfill) wait for the lock for a while instead of failing at once.

`window_summary.unique_users`/`unique_devices` and `app_versions.devices` are exact up to 131,072 distinct ids
in the hour and estimates beyond (relative standard error about 0.4 %, see `insights.sketch`).

All timestamps are UTC, stored as naive `TIMESTAMP`s. `late_events` holds, per hour, the records that
arrived in it after their own event hour had closed (see `insights.placement`): a table of its own, so that a
database written before it existed gains it without a migration. The hour's distinct ids, kept so that a day
can count its unique users and devices, are `insights.distinct_counts`' table, written here with the hour's rows.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import tenacity

from orchestration.insights import aggregates, distinct_counts
from orchestration.insights.window_reader import WindowScan

LOCK_WAIT_S = 60.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS window_summary (
    partition_key VARCHAR PRIMARY KEY, window_start TIMESTAMP, window_end TIMESTAMP,
    records BIGINT, dead_letters BIGINT, dead_letter_rate DOUBLE, unique_users BIGINT, unique_devices BIGINT,
    scanned BIGINT, undecodable BIGINT, newest_event TIMESTAMP, materialized_at TIMESTAMP);
CREATE TABLE IF NOT EXISTS device_types (
    partition_key VARCHAR, device_type VARCHAR, records BIGINT, share DOUBLE);
CREATE TABLE IF NOT EXISTS locales (
    partition_key VARCHAR, rank INTEGER, locale VARCHAR, records BIGINT, share DOUBLE);
CREATE TABLE IF NOT EXISTS app_versions (
    partition_key VARCHAR, app_version VARCHAR, logins BIGINT, login_share DOUBLE, devices BIGINT,
    device_share DOUBLE);
CREATE TABLE IF NOT EXISTS events_per_minute (
    partition_key VARCHAR, minute TIMESTAMP, records BIGINT);
CREATE TABLE IF NOT EXISTS dead_letter_reasons (
    partition_key VARCHAR, reason VARCHAR, dead_letters BIGINT, rate DOUBLE);
CREATE TABLE IF NOT EXISTS late_events (
    partition_key VARCHAR, late_records BIGINT, oldest_event TIMESTAMP, max_delay_ms BIGINT);
CREATE TABLE IF NOT EXISTS offsets_read (
    partition_key VARCHAR, topic VARCHAR, kafka_partition INTEGER, start_offset BIGINT, end_offset BIGINT,
    scanned BIGINT, counted BIGINT, undecodable BIGINT);
"""
SCHEMA += distinct_counts.SCHEMA
TABLES = (
    "window_summary",
    "device_types",
    "locales",
    "app_versions",
    "events_per_minute",
    "dead_letter_reasons",
    "late_events",
    "offsets_read",
    distinct_counts.TABLE,
)


def database_path(storage_directory: str | os.PathLike[str], explicit: str | None = None) -> Path:
    """`explicit` (KDP_INSIGHTS_DB) when given, else `insights/insights.duckdb` under `storage_directory`."""
    return Path(explicit) if explicit else Path(storage_directory) / "insights" / "insights.duckdb"


def chart_path(database: Path, partition_key: str) -> Path:
    safe = partition_key.replace(":", "").replace("/", "-")
    return database.parent / "charts" / f"{safe}.png"


def utc(ms: int) -> datetime:
    """Epoch milliseconds as a naive UTC datetime (DuckDB's TIMESTAMP)."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).replace(tzinfo=None)


def connect(database: Path, wait_s: float = LOCK_WAIT_S) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the database, waiting up to `wait_s` while another process holds it."""
    database.parent.mkdir(parents=True, exist_ok=True)
    opening = tenacity.Retrying(
        retry=tenacity.retry_if_exception(
            lambda error: isinstance(error, duckdb.IOException) and "lock" in str(error).lower()
        ),
        stop=tenacity.stop_after_delay(wait_s),
        wait=tenacity.wait_fixed(0.5),
        reraise=True,
    )
    connection = opening(duckdb.connect, str(database))
    connection.execute(SCHEMA)
    return connection


def save_window(
    database: Path, partition_key: str, scan: WindowScan, materialized_at_ms: int, wait_s: float = LOCK_WAIT_S
) -> None:
    """Replace the rows of `partition_key` in every table with those of `scan`, atomically."""
    tally = scan.tally
    uniques = aggregates.unique_users_devices(tally)
    rate = aggregates.dead_letter_rate(tally)
    rows: dict[str, list[Sequence[Any]]] = {
        "window_summary": [
            (
                partition_key,
                utc(tally.start_ms),
                utc(tally.end_ms),
                tally.records,
                rate.dead_letters,
                rate.rate,
                uniques.users,
                uniques.devices,
                scan.scanned,
                scan.undecodable,
                None if tally.newest_event_ms is None else utc(tally.newest_event_ms),
                utc(materialized_at_ms),
            )
        ],
        "device_types": [
            (partition_key, s.value, s.count, s.share) for s in aggregates.device_type_distribution(tally)
        ],
        "locales": [
            (partition_key, rank, s.value, s.count, s.share)
            for rank, s in enumerate(aggregates.distribution(tally.locales), start=1)
        ],
        "app_versions": [
            (partition_key, v.app_version, v.logins, v.login_share, v.devices, v.device_share)
            for v in aggregates.app_version_adoption(tally)
        ],
        "events_per_minute": [
            (partition_key, utc(m.minute_start_ms), m.count) for m in aggregates.events_per_minute(tally)
        ],
        "dead_letter_reasons": [(partition_key, s.value, s.count, s.share) for s in rate.by_reason],
        "late_events": [
            (
                partition_key,
                tally.late_records,
                None if tally.oldest_late_event_ms is None else utc(tally.oldest_late_event_ms),
                tally.max_late_delay_ms,
            )
        ],
        "offsets_read": [
            (
                partition_key,
                p.offsets.topic,
                p.offsets.partition,
                p.offsets.start,
                p.offsets.end,
                p.scanned,
                p.counted,
                p.undecodable,
            )
            for p in [*scan.records, *scan.dead_letters]
        ],
        distinct_counts.TABLE: distinct_counts.hour_rows(partition_key, tally),
    }
    connection = connect(database, wait_s)
    try:
        connection.execute("BEGIN TRANSACTION")
        for table in TABLES:
            connection.execute(f"DELETE FROM {table} WHERE partition_key = ?", [partition_key])
            if rows[table]:
                marks = ", ".join("?" * len(rows[table][0]))
                connection.executemany(f"INSERT INTO {table} VALUES ({marks})", rows[table])
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    finally:
        connection.close()


def fetch(database: Path, sql: str, parameters: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of a read-only query (for tests, notebooks and checks that look back)."""
    connection = connect(database)
    try:
        return connection.execute(sql, list(parameters)).fetchall()
    finally:
        connection.close()
