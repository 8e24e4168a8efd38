"""How an hour's distinct users and devices are kept so that hours can be merged, and how they are merged.

A distinct count does not add up: a user who logs in at 08:00 and at 17:00 is one user of the day, so the
day's unique users are the size of the *union* of its hours' ids, never the sum of the hours' counts. Each
hour therefore keeps a mergeable summary of its ids, and every roll-up over hours goes through
`merged_counts`, the one function that reads that summary.

The summary is a theta sketch in its stored form: per (hour, kind), a threshold `theta` and the 64-bit
hashes of the ids (`hash_id`) that are below it. An hour that kept every id's hash has `theta = EXACT`; a
bounded-memory bottom-k sketch keeps only the hashes below a smaller theta. Both merge the same way: over
a set of hours, theta is the smallest of theirs, the distinct hashes below it are counted, and the count is
scaled by 2^64 / theta unless theta is `EXACT` (then it is the exact count of the union, up to 64-bit hash
collisions: about one in 36 million for a million ids). So hours written as exact sets and hours written as
sketches merge with each other, as long as they use the same `hash_id`.

The hourly tally counts with such a sketch (`orchestration.insights.sketch.DistinctSketch`, exact until it
holds more ids than its capacity), and `hour_rows` stores its theta and kept hashes as they are.

An hour always has its two rows, empty ones included, so "this hour kept no ids" (stored before the table
existed) is told apart from "nobody logged in", and the day's uniques are then reported unknown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb

from orchestration.insights.aggregates import WindowTally
from orchestration.insights.sketch import EXACT, DistinctSketch

TABLE = "distinct_ids"
USERS = "users"
DEVICES = "devices"

SCHEMA = f"CREATE TABLE IF NOT EXISTS {TABLE} (partition_key VARCHAR, kind VARCHAR, theta UBIGINT, hashes UBIGINT[]);"


@dataclass(frozen=True)
class UniqueTotals:
    """Distinct users and devices over a set of hours; `None` when some of those hours kept no ids, since a
    union that misses hours would be an undercount presented as a fact. `exact` is False when a sketch
    had to drop ids and the counts are estimates."""

    users: int | None
    devices: int | None
    hours_without_ids: tuple[str, ...] = ()
    exact: bool = True


def _stored(sketch: DistinctSketch) -> tuple[int, list[int]]:
    return sketch.theta, sorted(sketch.entries)


def hour_rows(partition_key: str, tally: WindowTally) -> list[Sequence[Any]]:
    """The rows that keep the hour's distinct ids: one per kind, the sketch's theta and its kept hashes."""
    return [
        (partition_key, USERS, *_stored(tally.users)),
        (partition_key, DEVICES, *_stored(tally.devices)),
    ]


def merged_counts(connection: duckdb.DuckDBPyConnection, partition_keys: Sequence[str]) -> UniqueTotals:
    """Distinct users and devices over the stored hours `partition_keys` (hours whose insights exist: an
    hour never materialized is the completeness check's business, not a gap in the ids)."""
    if not partition_keys:
        return UniqueTotals(0, 0)
    marks = ", ".join("?" * len(partition_keys))
    kept = connection.execute(
        f"SELECT DISTINCT partition_key FROM {TABLE} WHERE partition_key IN ({marks})", list(partition_keys)
    ).fetchall()
    without = tuple(sorted(set(partition_keys) - {key for (key,) in kept}))
    if without:
        return UniqueTotals(None, None, without)
    rows = connection.execute(
        f"""
        WITH hours AS (SELECT kind, theta, hashes FROM {TABLE} WHERE partition_key IN ({marks})),
             bound AS (SELECT kind, min(theta) AS theta FROM hours GROUP BY kind),
             kept AS (SELECT DISTINCT kind, unnest(hashes) AS hash FROM hours)
        SELECT bound.kind, bound.theta, count(kept.hash)
        FROM bound LEFT JOIN kept ON kept.kind = bound.kind AND kept.hash < bound.theta
        GROUP BY bound.kind, bound.theta
        """,
        list(partition_keys),
    ).fetchall()
    estimates = {str(kind): _estimate(int(count), int(theta)) for kind, theta, count in rows}
    exact = all(int(theta) == EXACT for _, theta, _ in rows)
    return UniqueTotals(estimates.get(USERS, 0), estimates.get(DEVICES, 0), exact=exact)


def _estimate(kept: int, theta: int) -> int:
    """Distinct ids from the hashes kept below theta: the count itself when nothing was dropped."""
    return kept if theta == EXACT else round(kept * float(1 << 64) / theta)
