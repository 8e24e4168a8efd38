"""How the chaos run judges memory (`chaos_verdict.py`): a catch-up's peak is allowed within the clients' bounds,
memory left behind after the faults is not, and a run without settled samples is not passed unjudged.

Pure logic, so not marked `faults`: it runs with the unit tests."""

from __future__ import annotations

from chaos_verdict import SETTLE_S, Span, memory_verdict, settled
from soak import Sample
from soak_detail import Detail

DETAIL = Detail(threads=15, kafka_clients=2, producer_replacements=0, transactions_aborted=0, batches_redone=0,
                consumer=None, producer=None)  # fmt: skip
BUFFERS_MB = 160.0


def sample(minute: float, rss_mb: float, *, pid: int = 1, started_minute: float = -1.0, fds: int = 32) -> Sample:
    return Sample(minute * 60, pid, (minute - started_minute) * 60, rss_mb, fds, 0, DETAIL)


def run(*rss_by_minute: float, pid_from: dict[int, int] | None = None) -> list[Sample]:
    """One sample a minute; `pid_from`: the minute each new process (a kill) started."""
    starts = sorted((pid_from or {}).items())
    samples = []
    for minute, rss in enumerate(rss_by_minute):
        started, pid = next(((m, p) for m, p in reversed(starts) if m <= minute), (-1, 1))
        samples.append(sample(minute, rss, pid=pid, started_minute=started))
    return samples


PARTITION = Span(struck_s=3 * 60, recovered_s=4 * 60)


def test_a_catch_up_peak_that_is_given_back_passes() -> None:
    samples = run(80, 80, 80, 80, 139, 95, 81, 80, 81, 80)
    verdict = memory_verdict(samples, [PARTITION], BUFFERS_MB)
    assert verdict.passed, verdict.text
    assert [s.at_s / 60 for s in verdict.settled] == [7, 8, 9]
    assert verdict.baseline_rss_mb == 80


def test_memory_left_behind_after_the_faults_fails() -> None:
    samples = run(80, 80, 80, 80, 110, 90, 86, 86, 86, 86)
    verdict = memory_verdict(samples, [PARTITION], BUFFERS_MB)
    assert not verdict.passed and verdict.worst_settled_rss_mb == 86


def test_memory_left_behind_fails_in_a_later_process_too() -> None:
    kill = Span(struck_s=5 * 60, recovered_s=5 * 60 + 8)
    samples = run(80, 80, 80, 80, 100, 81, 81, 88, 88, 88, 88, 88, pid_from={5: 2})
    assert not memory_verdict(samples, [PARTITION, kill], BUFFERS_MB).passed


def test_descriptors_left_behind_fail() -> None:
    samples = run(80, 80, 80, 80, 80, 80, 80, 80, 80, 80)
    samples[-1] = sample(9, 80, fds=40)
    assert not memory_verdict(samples, [PARTITION], BUFFERS_MB).passed


def test_a_peak_above_the_clients_bounds_fails_even_if_given_back() -> None:
    samples = run(80, 80, 80, 80, 80 + BUFFERS_MB + 1, 80, 80, 80, 80, 80)
    verdict = memory_verdict(samples, [PARTITION], BUFFERS_MB)
    assert not verdict.passed and verdict.largest_rss_mb > verdict.ceiling_mb


def test_a_run_that_never_settles_is_not_passed_unjudged() -> None:
    late = Span(struck_s=6 * 60, recovered_s=7 * 60)
    verdict = memory_verdict(run(80, 80, 80, 80, 80, 80, 80, 80, 80, 80), [PARTITION, late], BUFFERS_MB)
    assert not verdict.passed and not verdict.settled
    assert "not judged" in verdict.text


def test_a_fault_that_never_recovered_settles_nothing_after_it() -> None:
    stuck = Span(struck_s=3 * 60, recovered_s=None)
    assert not settled(sample(20, 80), [stuck])
    assert settled(sample(2, 80), [stuck])  # before it struck


def test_settled_means_long_enough_after_every_recovery_so_far() -> None:
    assert not settled(Sample(4 * 60 + SETTLE_S - 1, 1, 600, 80, 32, 0, DETAIL), [PARTITION])
    assert settled(Sample(4 * 60 + SETTLE_S, 1, 600, 80, 32, 0, DETAIL), [PARTITION])
