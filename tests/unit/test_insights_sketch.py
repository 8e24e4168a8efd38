"""The distinct-count sketch: exact while small, within 1 % at 1 M and 2 M distinct ids, mergeable, bounded."""

from __future__ import annotations

import random
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestration.insights import record_tally
from orchestration.insights.sketch import CAPACITY, EXACT, DistinctSketch, K, hash_id


def test_the_hash_stays_the_same() -> None:
    """Pinned values: a change of hash would make sketches of different versions impossible to merge."""
    assert hash_id("") == 17280346270528514342
    assert hash_id("abc") == 3741276987793851837
    assert hash_id("é") != hash_id("e")  # UTF-8 bytes, not characters folded


@pytest.mark.skipif(not record_tally.native_available(), reason="the native kernel is not built")
@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_the_native_kernel_hashes_ids_as_python_does(text: str) -> None:
    import kdp_native

    assert kdp_native.insights_hash_id(text) == hash_id(text)


def test_counts_are_exact_up_to_the_capacity() -> None:
    sketch = DistinctSketch()
    ids = [str(uuid.UUID(int=random.Random(1).getrandbits(128) + i)) for i in range(2000)]
    for text in ids * 2:
        sketch.update(hash_id(text))
    assert sketch.exact and sketch.estimate() == 2000
    small = DistinctSketch(k=8, capacity=16)
    for i in range(16):
        small.update(hash_id(f"id-{i}"))
    assert small.exact and small.estimate() == 16
    small.update(hash_id("id-16"))
    assert not small.exact and len(small.entries) == 8 and small.theta < EXACT


@pytest.mark.parametrize(("distinct", "seed"), [(1_000_000, 1), (1_000_000, 2), (2_000_000, 3)])
def test_the_estimate_is_within_one_percent_at_millions_of_distinct_ids(distinct: int, seed: int) -> None:
    """Uniform 64-bit hashes (what `hash_id` gives, see the next test), each id seen twice."""
    rng = random.Random(seed)
    hashes = [rng.getrandbits(64) for _ in range(distinct)]
    sketch = DistinctSketch()
    for key_hash in hashes:
        sketch.update(key_hash)
    for key_hash in hashes[: distinct // 10]:
        sketch.update(key_hash)
    assert not sketch.exact and len(sketch.entries) <= CAPACITY
    assert abs(sketch.estimate() - distinct) / distinct < 0.01


@pytest.mark.skipif(not record_tally.native_available(), reason="the native kernel is not built (hashing 1 M ids)")
def test_hashing_real_ids_keeps_the_estimate_within_one_percent_at_a_million() -> None:
    import kdp_native

    rng = random.Random(7)
    sketch = DistinctSketch()
    for _ in range(1_000_000):
        sketch.update(kdp_native.insights_hash_id(str(uuid.UUID(int=rng.getrandbits(128)))))
    assert abs(sketch.estimate() - 1_000_000) / 1_000_000 < 0.01
    sequential = DistinctSketch()
    for i in range(1_000_000):
        sequential.update(kdp_native.insights_hash_id(f"user-{i}"))
    assert abs(sequential.estimate() - 1_000_000) / 1_000_000 < 0.01


def test_each_id_keeps_its_latest_value_and_values_are_counted_by_it() -> None:
    sketch = DistinctSketch()
    sketch.update(hash_id("d1"), 10, "2.3.0")
    sketch.update(hash_id("d1"), 20, "2.4.0")
    sketch.update(hash_id("d1"), 15, "2.3.1")  # older: ignored
    sketch.update(hash_id("d2"), 5, "2.3.0")
    sketch.update(hash_id("d2"), 5, "2.4.0")  # a tie: the later update wins
    assert sketch.estimate_by_value() == {"2.4.0": 2}


def test_values_scale_with_the_estimate_beyond_the_capacity() -> None:
    rng = random.Random(4)
    sketch = DistinctSketch()
    for i in range(400_000):
        sketch.update(rng.getrandbits(64), 0, "new" if i % 4 == 0 else "old")
    by_value = sketch.estimate_by_value()
    assert not sketch.exact
    assert abs(by_value["new"] - 100_000) / 100_000 < 0.03
    assert abs(by_value["old"] - 300_000) / 300_000 < 0.03
    assert abs(sum(by_value.values()) - sketch.estimate()) <= 2


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 300)), st.lists(st.integers(0, 300)))
def test_merging_two_sketches_counts_the_union(left: list[int], right: list[int]) -> None:
    one, other, both = (
        DistinctSketch(k=16, capacity=32),
        DistinctSketch(k=16, capacity=32),
        DistinctSketch(k=16, capacity=32),
    )
    for n in left:
        one.update(hash_id(str(n)), n, "l")
        both.update(hash_id(str(n)), n, "l")
    for n in right:
        other.update(hash_id(str(n)), n, "r")
    one.merge(other)
    assert all(h < one.theta for h in one.entries) and len(one.entries) <= 32
    union = set(left) | set(right)
    if one.exact:
        assert one.estimate() == len(union)
    else:  # the kept hashes are exactly the union's below theta
        assert set(one.entries) == {hash_id(str(n)) for n in union if hash_id(str(n)) < one.theta}


def test_a_merge_below_the_capacity_is_exact_with_the_latest_values() -> None:
    one, other = DistinctSketch(), DistinctSketch()
    one.update(hash_id("a"), 1, "x")
    other.update(hash_id("a"), 2, "y")
    other.update(hash_id("b"), 1, "x")
    one.merge(other)
    assert one.estimate() == 2 and one.estimate_by_value() == {"x": 1, "y": 1}
    with pytest.raises(ValueError, match="k="):
        one.merge(DistinctSketch(k=K // 2))
