"""How the chaos run (`chaos.py`) judges the converter's memory and descriptors: bounded, and back where they
started once the faults are over.

Why not the soak's check (`soak.growth_verdict`, a life's last sample against its first): the soak spaces its
faults so that every life has a calm stretch, while chaos overlaps faults and kills the converter at random, so a
life can end in the middle of a catch-up (seen: a process at 139 MB, 30 s before a planned kill, catching up a
50 s network partition). A catch-up's buffers are what the fault costs, bounded by the clients' settings, not a
leak. What the run judges instead, decided before the runs it reports:

* the baseline: the first process's samples after its warm-up and before the first fault (the schedule keeps the
  first `chaos_schedule.WARM_UP_S` free of faults for them);
* bounded: no sample after warm-up above the baseline plus the bytes the converter's Kafka clients may buffer
  (the consumer's `queued.max.messages.kbytes` and the producer's `queue.buffering.max.kbytes`);
* back: every *settled* sample (one taken `SETTLE_S` or more after every fault struck before it recovered) within
  the soak's `GROWTH_LIMIT` (+5%) of the baseline, for resident memory and for open descriptors. Memory a fault
  leaves behind for good fails this, whichever process holds it. The schedule ends with a quiet stretch
  (`chaos_schedule.DRAIN_S`), so a run has settled samples; fewer than `SETTLED_AT_LEAST` fails the run rather
  than passing it unjudged.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from soak import GROWTH_LIMIT, Sample, warm_samples

SETTLE_S = 180.0
"""After a fault's recovery (the group committing again), the converter catches up its backlog and the process
hands its free memory back within a minute (`streaming.malloc_arenas.give_back_free_memory_every`): three
samples' time covers both, and a new process's warm-up after a kill."""
SETTLED_AT_LEAST = 2


@dataclass(frozen=True)
class Span:
    """One fault, in seconds since the run started: when it struck and when the converter recovered from it
    (None: it never did, and no later sample is settled)."""

    struck_s: float
    recovered_s: float | None


@dataclass(frozen=True)
class MemoryVerdict:
    passed: bool
    baseline_rss_mb: float
    baseline_fds: float
    ceiling_mb: float
    settled: list[Sample]
    largest_rss_mb: float
    worst_settled_rss_mb: float
    worst_settled_fds: int

    @property
    def text(self) -> str:
        if len(self.settled) < SETTLED_AT_LEAST:
            judged = f"{len(self.settled)} settled samples, {SETTLED_AT_LEAST} needed: not judged"
        else:
            judged = (
                f"{len(self.settled)} settled samples: RSS at most {self.worst_settled_rss_mb:.1f} MB "
                f"({self.worst_settled_rss_mb / self.baseline_rss_mb - 1:+.1%}), fds at most {self.worst_settled_fds} "
                f"({self.worst_settled_fds / self.baseline_fds - 1:+.1%}), limit +{GROWTH_LIMIT:.0%}"
            )
        return (
            f"baseline RSS {self.baseline_rss_mb:.1f} MB, fds {self.baseline_fds:.0f}; {judged}; largest sample "
            f"{self.largest_rss_mb:.1f} MB (ceiling {self.ceiling_mb:.0f} MB): {'pass' if self.passed else 'FAIL'}"
        )


def settled(sample: Sample, spans: Sequence[Span]) -> bool:
    """True when every fault that struck before `sample` recovered `SETTLE_S` or more before it."""
    return all(
        span.recovered_s is not None and span.recovered_s + SETTLE_S <= sample.at_s
        for span in spans
        if span.struck_s <= sample.at_s
    )


def memory_verdict(samples: Sequence[Sample], spans: Sequence[Span], client_buffers_mb: float) -> MemoryVerdict:
    """See the module docstring. `client_buffers_mb`: what the converter's Kafka clients may hold at most."""
    warm = warm_samples(samples)
    first_fault = min((span.struck_s for span in spans), default=float("inf"))
    before = [s for s in warm if s.at_s < first_fault and s.pid == warm[0].pid] if warm else []
    assert before, "no sample of the first process after its warm-up and before the first fault: no baseline"
    rss_base = statistics.median(s.rss_mb for s in before)
    fds_base = statistics.median(s.open_fds for s in before)
    ceiling = rss_base + client_buffers_mb
    calm = [s for s in warm if s.at_s >= first_fault and settled(s, spans)]
    largest = max(s.rss_mb for s in warm)
    worst_rss = max((s.rss_mb for s in calm), default=float("nan"))
    worst_fds = max((s.open_fds for s in calm), default=-1)
    passed = (
        len(calm) >= SETTLED_AT_LEAST
        and largest <= ceiling
        and worst_rss <= rss_base * (1 + GROWTH_LIMIT)
        and worst_fds <= fds_base * (1 + GROWTH_LIMIT)
    )
    return MemoryVerdict(passed, rss_base, fds_base, ceiling, calm, largest, worst_rss, worst_fds)
