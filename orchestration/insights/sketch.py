"""Distinct counts in bounded memory: a bottom-k (KMV, "theta") sketch of hashed ids, exact while small. Pure.

An hour's distinct users and devices are counted by hashing each id to 64 bits (`hash_id`) and keeping only
the hashes below a threshold theta: every hash while there are at most `CAPACITY` of them (the count is then
exact), and once there are more, the `K` smallest (theta becomes the next one), after which a hash is kept
only when it is below theta. Since hashes are uniform, the kept fraction of all distinct ids is theta / 2^64,
so the estimate is `kept * 2^64 / theta`: relative standard error about `1 / sqrt(K)`, 0.4 % for K = 65,536
(within 1 % in about 99 % of hours; `tests/unit/test_insights_sketch.py` checks it at 1 M and 2 M
distinct). Memory is at most `CAPACITY` entries, whatever the number of distinct ids.

Each kept id carries the event time and value of its latest update (`>=` wins, so on a tie the later
update), which is how the devices on each app version at their latest login are counted: the kept devices
are a uniform sample of all devices, so each version's share of them, scaled like the total, estimates its
count (exact while the sketch is).

Two sketches merge (`merge`): the union of their kept entries below the smaller theta is a sketch of the
union of their ids, so distinct ids over several hours can be counted from the hours' sketches.

This is the Theta sketch of Apache DataSketches with a payload. The library (PyPI `datasketches`) is not used
because its per-id `update` from Python costs more than the insights' whole budget per record, and its
Python Theta sketch has no payload for "latest value per id"; the native kernel (`native/src/insights.rs`)
implements the same sketch, the same hash and the same rebuild rule, so both give identical states.

The hash is 64-bit FNV-1a over the UTF-8 bytes followed by the MurmurHash3 64-bit finalizer (FNV-1a alone
mixes its last bytes poorly; the finalizer spreads every input bit over the output): a few lines, identical
in Rust and Python, no dependency.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

K = 65_536
"""Entries kept after a rebuild; the relative standard error of an estimate is about 1 / sqrt(K)."""
CAPACITY = 2 * K
"""Entries kept before a rebuild: counts up to this many distinct ids are exact."""
EXACT = (1 << 64) - 1
"""Theta of a sketch that has never been rebuilt: every hash below it is kept."""
_MASK = (1 << 64) - 1
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3


def hash_id(text: str) -> int:
    """The 64-bit hash of an id (FNV-1a, then the MurmurHash3 finalizer); the native kernel's, bit for bit."""
    h = _FNV_OFFSET
    for byte in text.encode():
        h = ((h ^ byte) * _FNV_PRIME) & _MASK
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _MASK
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _MASK
    return h ^ (h >> 33)


@dataclass
class DistinctSketch:
    """Distinct ids (by hash), each with the time and value of its latest update; see the module docstring."""

    theta: int = EXACT
    entries: dict[int, tuple[int, str]] = field(default_factory=dict)
    """Hash -> (time, value) of the id's latest update, for every kept hash (all of them below theta)."""
    k: int = K
    capacity: int = CAPACITY

    def update(self, key_hash: int, when: int = 0, value: str = "") -> None:
        if key_hash >= self.theta:
            return
        seen = self.entries.get(key_hash)
        if seen is None:
            self.entries[key_hash] = (when, value)
            if len(self.entries) > self.capacity:
                self._rebuild()
        elif when >= seen[0]:
            self.entries[key_hash] = (when, value)

    def _rebuild(self) -> None:
        """Keep the `k` smallest hashes; theta becomes the next smallest (itself no longer kept)."""
        ordered = sorted(self.entries)
        self.theta = ordered[self.k]
        self.entries = {h: self.entries[h] for h in ordered[: self.k]}

    @property
    def exact(self) -> bool:
        return self.theta == EXACT

    def estimate(self) -> int:
        """The number of distinct ids: exact while `exact`, else the theta estimate, rounded."""
        return len(self.entries) if self.exact else round(self._scale(len(self.entries)))

    def estimate_by_value(self) -> Counter[str]:
        """Per value, the ids whose latest update carried it (exact while `exact`; the same scaling otherwise)."""
        kept = Counter(value for _, value in self.entries.values())
        if self.exact:
            return kept
        return Counter({value: round(self._scale(count)) for value, count in kept.items()})

    def _scale(self, kept: int) -> float:
        return kept * 18446744073709551616.0 / self.theta

    def merge(self, other: DistinctSketch) -> None:
        """Add `other`'s ids (same `k`): afterwards this sketch keeps every hash of both id sets below its theta
        (the smaller of the two, lowered by a rebuild if needed), so it estimates their union."""
        if other.k != self.k:
            raise ValueError(f"cannot merge a sketch of k={other.k} into one of k={self.k}")
        self.theta = min(self.theta, other.theta)
        merged = {h: v for h, v in self.entries.items() if h < self.theta}
        for key_hash, (when, value) in other.entries.items():
            if key_hash < self.theta:
                seen = merged.get(key_hash)
                if seen is None or when >= seen[0]:
                    merged[key_hash] = (when, value)
        self.entries = merged
        if len(self.entries) > self.capacity:
            self._rebuild()
