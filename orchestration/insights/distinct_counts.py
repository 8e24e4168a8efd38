"""How an hour's distinct users and devices are kept so that hours can be merged, and how they are merged.

A distinct count does not add up: a user who logs in at 08:00 and at 17:00 is one user of the day, so the
day's unique users are the size of the *union* of its hours' user sets, never the sum of the hours' counts.
Each hour therefore keeps a mergeable summary of its ids, and every roll-up over hours goes through
`merged_counts`, the one function that knows what the summary is.

Today the summary is exact: the hour's distinct ids, one row per (hour, kind) holding a DuckDB `VARCHAR[]`
list, and the merge counts the distinct ids of the lists. An hour always has its two rows, empty lists
included, so "this hour kept no ids" (stored before the table existed) is told apart from "nobody logged
in". Exact sets cost about as much space as the ids themselves (the tally already holds them in memory,
see `aggregates`); a switch to a mergeable sketch (HyperLogLog, CPC) would change `SCHEMA`, `hour_rows` and
`merged_counts` here and nothing else: callers see only `UniqueTotals`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from orchestration.insights.aggregates import WindowTally

TABLE = "unique_sets"
USERS = "users"
DEVICES = "devices"
KINDS = (USERS, DEVICES)

SCHEMA = f"CREATE TABLE IF NOT EXISTS {TABLE} (partition_key VARCHAR, kind VARCHAR, ids VARCHAR[]);"


@dataclass(frozen=True)
class UniqueTotals:
    """Distinct users and devices over a set of hours; `None` when some of those hours kept no ids, since a
    union that misses hours would be an undercount presented as a fact."""

    users: int | None
    devices: int | None
    hours_without_ids: tuple[str, ...]


def hour_rows(partition_key: str, tally: WindowTally) -> list[Sequence[Any]]:
    """The rows that keep the hour's distinct ids: one per kind, sorted ids (stable files, easy to diff)."""
    return [
        (partition_key, USERS, sorted(tally.users)),
        (partition_key, DEVICES, sorted(tally.device_versions)),
    ]


def merged_counts(connection: duckdb.DuckDBPyConnection, partition_keys: Sequence[str]) -> UniqueTotals:
    """Distinct users and devices over the stored hours `partition_keys` (hours whose insights exist: an hour
    never materialized is the completeness check's business, not a gap in the ids)."""
    if not partition_keys:
        return UniqueTotals(0, 0, ())
    marks = ", ".join("?" * len(partition_keys))
    kept = connection.execute(
        f"SELECT DISTINCT partition_key FROM {TABLE} WHERE partition_key IN ({marks})", list(partition_keys)
    ).fetchall()
    without = tuple(sorted(set(partition_keys) - {key for (key,) in kept}))
    if without:
        return UniqueTotals(None, None, without)
    counts = dict(
        connection.execute(
            f"SELECT kind, count(DISTINCT id) FROM (SELECT kind, unnest(ids) AS id FROM {TABLE} "
            f"WHERE partition_key IN ({marks})) GROUP BY kind",
            list(partition_keys),
        ).fetchall()
    )
    return UniqueTotals(counts.get(USERS, 0), counts.get(DEVICES, 0), ())
