"""Merging hours' distinct ids: exact summaries give the size of the union, sketched ones the theta estimate of
the union, and the two kinds merge with each other."""

from collections.abc import Iterable

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestration.insights import distinct_counts
from orchestration.insights.distinct_counts import DEVICES, TABLE, USERS, UniqueTotals, merged_counts
from orchestration.insights.sketch import EXACT, hash_id


def test_hash_is_the_hourly_sketchs_bit_for_bit() -> None:
    """Pinned values of 64-bit FNV-1a + MurmurHash3 fmix64: a changed hash would stop old hours merging."""
    assert hash_id("") == 17280346270528514342
    assert hash_id("alice") == 3821251815001557236
    assert hash_id("5f0c1f4e-7c54-4a2e-9a0e-2b1f3c4d5e6f") == 6979411657576445540
    assert hash_id("ü") == 11137300356903075105


def bottom_k(ids: Iterable[str], k: int) -> tuple[int, list[int]]:
    """What a bottom-k sketch of `ids` stores: every hash while at most k, else the k smallest and theta = the
    next one."""
    hashes = sorted({hash_id(i) for i in ids})
    if len(hashes) <= k:
        return EXACT, hashes
    return hashes[k], hashes[:k]


def store_hours(hours: dict[str, tuple[int, list[int]]]) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.execute(distinct_counts.SCHEMA)
    for key, (theta, hashes) in hours.items():
        for kind in (USERS, DEVICES):
            connection.execute(f"INSERT INTO {TABLE} VALUES (?, ?, ?, ?)", [key, kind, theta, hashes])
    return connection


def reference_union(hours: Iterable[tuple[int, list[int]]]) -> tuple[int, bool]:
    """The theta union estimate, computed plainly: smallest theta, distinct kept hashes below it, scaled."""
    summaries = list(hours)
    theta = min(theta for theta, _ in summaries)
    kept = {h for _, hashes in summaries for h in hashes if h < theta}
    return (len(kept), True) if theta == EXACT else (round(len(kept) * 2.0**64 / theta), False)


ids = st.lists(st.integers(min_value=0, max_value=400).map(lambda i: f"user-{i}"), max_size=120)


@settings(max_examples=40, deadline=None)
@given(hours=st.lists(ids, min_size=1, max_size=5), k=st.sampled_from([8, 32, 1000]))
def test_merged_counts_equal_the_theta_union_of_exact_and_sketched_hours(hours: list[list[str]], k: int) -> None:
    summaries = {f"2026-11-25-{h:02d}:00": bottom_k(hour, k) for h, hour in enumerate(hours)}
    totals = merged_counts(store_hours(summaries), list(summaries))
    expected, exact = reference_union(summaries.values())
    assert totals == UniqueTotals(expected, expected, (), exact)
    if exact:  # every hour kept all its hashes: the size of the union, never the sum of the hours
        assert totals.users == len({i for hour in hours for i in hour})


def test_an_estimate_of_many_ids_is_close_to_the_union_not_the_sum() -> None:
    """Eight overlapping hours of 6,000 ids each (48,000 by a sum), 20,000 distinct, sketched with k = 1024."""
    everyone = [f"user-{i}" for i in range(20_000)]
    hours = {f"2026-11-25-{h:02d}:00": bottom_k(everyone[h * 2_000 : h * 2_000 + 6_000], 1024) for h in range(8)}
    totals = merged_counts(store_hours(hours), list(hours))
    assert not totals.exact
    assert totals.users == pytest.approx(20_000, rel=0.1)  # 1 / sqrt(1024) = 3 % standard error; 20,000 ids


def test_no_hours_is_zero_and_an_hour_without_ids_makes_the_counts_unknown() -> None:
    connection = store_hours({"2026-11-25-00:00": (EXACT, [hash_id("a")])})
    assert merged_counts(connection, []) == UniqueTotals(0, 0)
    assert merged_counts(connection, ["2026-11-25-00:00", "2026-11-25-01:00"]) == UniqueTotals(
        None, None, ("2026-11-25-01:00",)
    )
