"""The measured subjects' side of `make bench`: the report line, the stopwatch, the batch clock, peak memory."""

from __future__ import annotations

import pytest

from bench.converter_subject import BatchClock
from bench.memory import peak_rss_bytes, status_field_bytes
from bench.subject import Stopwatch, SubjectReport, parse_report


def _report(**overrides: object) -> SubjectReport:
    values: dict = {
        "subject": "converter",
        "consumed": 1_000_000,
        "bytes_in": 250_000_000,
        "first_consume_at": 1000.0,
        "last_commit_at": 1010.0,
        "cpu_seconds": 9.0,
        "thread_cpu_seconds": 6.0,
        "peak_rss_bytes": 150 * 2**20,
        "processed": 950_000,
        "dead_lettered": 50_000,
        "details": {"batches": 200},
    }
    values.update(overrides)
    return SubjectReport(**values)


def test_a_report_survives_the_trip_through_stdout_among_other_lines() -> None:
    report = _report()
    stdout = f"consumed 1000000 ...\n{report.line()}\n"
    assert parse_report(stdout) == report


def test_rates_are_over_the_measured_interval() -> None:
    figures = _report().as_dict()
    assert figures["seconds"] == 10.0
    assert figures["msg_per_s"] == 100_000.0
    assert figures["mb_per_s"] == 25.0
    assert figures["cpu_us_per_msg"] == 9.0
    assert figures["thread_cpu_us_per_msg"] == 6.0
    assert figures["peak_rss_mb"] == 150.0


def test_a_subject_that_consumed_nothing_reports_zero_rates() -> None:
    figures = _report(consumed=0, bytes_in=0, first_consume_at=None, last_commit_at=None).as_dict()
    assert figures["seconds"] == 0.0
    assert figures["msg_per_s"] == 0.0
    assert figures["cpu_us_per_msg"] is None


def test_no_report_line_means_the_subject_failed() -> None:
    with pytest.raises(ValueError, match="BENCH-RESULT"):
        parse_report("Traceback (most recent call last):\n")


def test_the_stopwatch_keeps_the_first_consume_and_the_last_commit() -> None:
    stopwatch = Stopwatch()
    stopwatch.consumed()
    first = stopwatch.first_consume_at
    stopwatch.committed()
    stopwatch.consumed()
    stopwatch.committed()
    assert stopwatch.first_consume_at == first
    assert stopwatch.last_commit_at is not None and stopwatch.last_commit_at >= first
    assert stopwatch.cpu_seconds >= 0.0


class _Consumer:
    """Stands in for a confluent_kafka Consumer: hands out the given batches, then nothing."""

    def __init__(self, batches: list[list[str]]) -> None:
        self.batches = batches
        self.group_metadata = "metadata"

    def consume(self, num_messages: int, timeout: float) -> list[str]:
        return self.batches.pop(0) if self.batches else []


def test_the_batch_clock_closes_a_batch_when_the_next_consume_begins() -> None:
    stopwatch = Stopwatch()
    clock = BatchClock(_Consumer([["a", "b"], ["c"]]), stopwatch)
    assert clock.consume(5000, 1.0) == ["a", "b"]
    assert stopwatch.first_consume_at is not None and stopwatch.last_commit_at is None
    clock.consume(5000, 1.0)
    after_first_batch = stopwatch.last_commit_at
    assert after_first_batch is not None
    assert clock.consume(5000, 1.0) == []
    assert stopwatch.last_commit_at is not None and stopwatch.last_commit_at >= after_first_batch
    empty_polls_end = stopwatch.last_commit_at
    clock.consume(5000, 1.0)
    clock.batch_done()
    assert stopwatch.last_commit_at == empty_polls_end  # empty consumes close no batch


def test_the_batch_clock_passes_everything_else_to_the_consumer() -> None:
    assert BatchClock(_Consumer([]), Stopwatch()).group_metadata == "metadata"


def test_status_fields_are_read_in_bytes() -> None:
    status = "Name:\tpython\nVmPeak:\t  500000 kB\nVmHWM:\t  153600 kB\nVmRSS:\t  140000 kB\n"
    assert status_field_bytes(status, "VmHWM") == 153600 * 1024
    assert status_field_bytes(status, "VmSwap") is None


def test_this_process_has_a_peak_resident_set() -> None:
    peak = peak_rss_bytes()
    assert peak is None or peak > 1024 * 1024  # None only where there is no /proc


def test_the_batch_clock_starts_the_profile_at_the_first_batch_only() -> None:
    started: list[str] = []
    clock = BatchClock(_Consumer([[], ["a"], ["b"]]), Stopwatch(), on_first_batch=lambda: started.append("now"))
    clock.consume(5000, 1.0)
    assert started == []  # joining the group, nothing fetched yet
    clock.consume(5000, 1.0)
    clock.consume(5000, 1.0)
    assert started == ["now"]
