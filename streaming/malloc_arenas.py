"""Fewer glibc malloc arenas for the converter's process, so that a burst does not raise its memory for good; and
a way to hand freed memory back to the system after a large release.

Why: glibc gives threads that contend for the allocator their own arenas, up to 8 per core, and an arena it
seldom gives back to the system. librdkafka runs a thread per broker connection plus its main and background
threads, and a catch-up after a pause (a broker restart, a rebalance) makes them allocate fetch and produce
buffers at several times their usual rate. Measured on the local stack, `kdp stream` exactly-once at 1,000
msg/s with three 3 s pauses: resident memory stood 5.5% above its steady state after the catch-ups with glibc's
default, 2.1% above with two arenas (`make soak` fails a process whose memory grows more than 5%).

`limit_malloc_arenas` is `mallopt(M_ARENA_MAX, n)`: glibc's own knob, the one `MALLOC_ARENA_MAX` sets, applied
by `streaming.loop.pipeline.open_dedicated_converter` (`kdp stream`) before the Kafka clients start their threads
(arenas are made as threads first allocate). It is process-wide, so Dagster runs, which share their process, do
not apply it. It leaves alone an
operator's choice (`MALLOC_ARENA_MAX` or `GLIBC_TUNABLES` with `glibc.malloc.arena_max` in the environment)
and any C library but glibc (musl has no per-thread arenas).
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform

log = logging.getLogger(__name__)

ARENAS = 2
"""The Python thread and librdkafka's threads share these. What the sharing costs in lock contention was not
separable from run-to-run noise (two interleaved pairs of `bench.run` throughput runs, with and without)."""

M_ARENA_MAX = -8
"""From glibc's malloc.h."""


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap the process's glibc malloc arenas at `arenas`; True when done, False when left alone (see module)."""
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if os.environ.get("MALLOC_ARENA_MAX") or "glibc.malloc.arena_max" in tunables:
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    done = ctypes.CDLL(None).mallopt(M_ARENA_MAX, arenas) == 1
    if not done:
        log.info("glibc refused mallopt(M_ARENA_MAX, %d): keeping its default arenas", arenas)
    return done


def give_back_free_memory() -> bool:
    """Hand the heap's free pages back to the system (glibc's `malloc_trim(0)`); True when glibc released any.

    For a rare, large release (a Kafka client destroyed while the process goes on): glibc keeps freed memory for
    reuse, so the process's resident memory would otherwise stay at its peak. Costs a walk of the arenas
    (about a millisecond here); a no-op on any C library but glibc.
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    return bool(ctypes.CDLL(None).malloc_trim(0))
