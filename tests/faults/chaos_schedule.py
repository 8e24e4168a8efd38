"""The fault schedule of the chaos run (`chaos.py`): which fault, when, for how long, drawn from one seed.

Pure: the same seed, length and brokers give the same schedule, so a failing run is replayed by passing its seed
back (`make chaos CHAOS_SEED=...`). Every kind of fault occurs at least once; the rest are drawn at random, start
at random times between the warm-up and the drain, and may overlap: `chaos.py` serialises only the faults that
act on the same cluster processes (brokers and registry), so that two brokers are never out at once (the topics
keep two in-sync replicas of three) and healing one fault never cuts another short.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

KINDS = (
    "converter kill",
    "broker kill",
    "broker restart",
    "network partition",
    "registry outage",
    "reassignment",
    "schema registration",
)
HOLD_S = {
    "converter kill": (0.0, 0.0),
    "broker kill": (10.0, 40.0),
    "broker restart": (0.0, 0.0),
    "network partition": (10.0, 55.0),
    "registry outage": (20.0, 90.0),
    "reassignment": (0.0, 0.0),
    "schema registration": (0.0, 0.0),
}
"""How long a fault lasts before it is healed, drawn uniformly from the range. A partition reaches past the
transaction timeout (30 s) and the group's session timeout (45 s); a broker kill past the brokers' session."""
ONCE = frozenset({"schema registration"})
"""Registering the same new schema version twice changes nothing the second time."""
WARM_UP_S = 180.0
"""The run's first three minutes: no fault, so that the converter's memory has a baseline (`chaos_verdict`)."""
DRAIN_S = 480.0
"""The run's last eight minutes: no fault starts, and the longest hold ends before them, so that the converter
catches up and settles, and its memory is judged after the faults (`chaos_verdict`)."""


@dataclass(frozen=True)
class Fault:
    kind: str
    at_s: float
    """Seconds after the run started."""
    hold_s: float
    """Seconds between inflicting the fault and healing it; 0 for one that needs no healing."""
    broker: int | None = None
    """The broker it acts on, for the broker faults."""

    @property
    def text(self) -> str:
        target = f" of broker {self.broker}" if self.broker is not None else ""
        hold = f", held {self.hold_s:.0f} s" if self.hold_s else ""
        return f"{self.kind}{target} at {self.at_s / 60:.1f} min{hold}"


def schedule(seed: int, seconds: float, brokers: Sequence[int], faults: int) -> list[Fault]:
    """`faults` faults (at least one of each kind) over a run of `seconds`, ordered by start time."""
    if faults < len(KINDS):
        raise ValueError(f"{faults} faults cannot hold one of each of the {len(KINDS)} kinds")
    latest = seconds - DRAIN_S - max(high for _, high in HOLD_S.values())
    if latest <= WARM_UP_S:
        raise ValueError(f"a run of {seconds:.0f} s leaves no time for faults between warm-up and drain")
    rng = random.Random(seed)
    repeatable = [kind for kind in KINDS if kind not in ONCE]
    kinds = list(KINDS) + [rng.choice(repeatable) for _ in range(faults - len(KINDS))]
    rng.shuffle(kinds)
    drawn = []
    for kind in kinds:
        low, high = HOLD_S[kind]
        broker = rng.choice(list(brokers)) if kind.startswith("broker") else None
        drawn.append(Fault(kind, round(rng.uniform(WARM_UP_S, latest), 1), round(rng.uniform(low, high), 1), broker))
    return sorted(drawn, key=lambda fault: fault.at_s)


def overlaps(faults: Sequence[Fault], spans: dict[Fault, tuple[float, float]]) -> dict[Fault, list[Fault]]:
    """For each fault, the others whose span (inflicted to recovered, as measured) met its own."""
    return {
        fault: [
            other
            for other in faults
            if other is not fault and fault in spans and other in spans
            and spans[other][0] < spans[fault][1] and spans[fault][0] < spans[other][1]
        ]
        for fault in faults
    }  # fmt: skip
