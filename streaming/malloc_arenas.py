"""Fewer glibc malloc arenas for the converter's process, so that a burst does not raise its memory for good; and
freed memory handed back to the system, after a large release and once a minute.

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
import threading

log = logging.getLogger(__name__)

ARENAS = 2
"""The Python thread and librdkafka's threads share these. What the sharing costs in lock contention was not
separable from run-to-run noise (two interleaved pairs of `bench.run` throughput runs, with and without)."""

M_ARENA_MAX = -8
"""From glibc's malloc.h."""

GIVE_BACK_EVERY_S = 60.0
"""How often a dedicated converter hands its free heap memory back (`give_back_free_memory_every`)."""


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


def give_back_free_memory_every(
    interval_s: float = GIVE_BACK_EVERY_S, stop: threading.Event | None = None
) -> threading.Thread | None:
    """Start a daemon thread that calls `give_back_free_memory` every `interval_s` until `stop` is set (the
    process's life, without one); None on a C library but glibc.

    Why: even with two arenas, the buffers of a catch-up (after a broker restart, or a new process's first
    backlog after a kill) are freed into the arenas and kept there. Seen in `make soak`: a process's resident
    memory 3% higher for the rest of its life after the coordinator's restart, and each new process after a kill
    up to 3% above the first one; with both, a life stood 6.5% above the first. Handing free pages back makes a
    process's memory follow what it holds, not the most it ever held. Cost: a trim walks the arenas under their
    locks, 4-10 ms measured on a fragmented 200 MB heap, so at most one batch a minute waits that long.
    """
    if platform.libc_ver()[0] != "glibc":
        return None

    until = stop or threading.Event()

    def give_back() -> None:
        while not until.wait(interval_s):
            give_back_free_memory()

    thread = threading.Thread(target=give_back, name="kdp-give-back-memory", daemon=True)
    thread.start()
    return thread
