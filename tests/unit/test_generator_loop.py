"""The generator's pacing, its command-line flags, and its failure accounting (no broker needed)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading

import pytest

from streaming.cli.generate import add_generate_parser, rates_from_args
from streaming.generator.events import EventFactory, Irregularity, IrregularityRates
from streaming.generator.producer import MAX_BATCH, TokenBucket, batch_size_for, generate
from streaming.shutdown import Shutdown

#: Nothing listens on port 1, so every message times out after `message.timeout.ms`.
UNREACHABLE = {"bootstrap.servers": "127.0.0.1:1", "message.timeout.ms": 500}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def send_paced(bucket: TokenBucket, clock: FakeClock, batches: int, batch: int, oversleep: float = 0.0) -> None:
    """Behave like the generator: reserve a batch, sleep what the bucket says (plus some), send."""
    for _ in range(batches):
        delay = bucket.reserve(batch)
        if delay > 0:
            clock.now += delay + oversleep


def test_token_bucket_holds_the_rate_exactly_on_a_fake_clock() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=50_000, capacity=1000, clock=clock)
    send_paced(bucket, clock, batches=500, batch=500)  # 250k messages
    assert clock.now - 1000.0 == pytest.approx(250_000 / 50_000)


def test_token_bucket_pays_oversleep_back() -> None:
    """Sleeping 1 ms too long each time (10 % of a slice) does not lower the long-run rate."""
    clock = FakeClock()
    bucket = TokenBucket(rate=50_000, capacity=1000, clock=clock)
    send_paced(bucket, clock, batches=1000, batch=500, oversleep=0.001)
    elapsed = clock.now - 1000.0
    assert 500_000 / elapsed == pytest.approx(50_000, rel=0.011)


def test_token_bucket_saves_at_most_its_capacity_while_idle() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=100, capacity=20, clock=clock)
    clock.now += 3600  # an hour idle earns 20 tokens, not 360k
    assert bucket.reserve(20) == 0
    assert bucket.reserve(10) == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("rate", "expected"), [(0, MAX_BATCH), (1, 1), (5_000, 50), (50_000, 500), (1_000_000, MAX_BATCH)]
)
def test_batches_carry_about_ten_milliseconds_of_messages(rate: float, expected: int) -> None:
    assert batch_size_for(rate) == expected


def generate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kdp")
    add_generate_parser(parser.add_subparsers(dest="command"))
    return parser


def test_flags_give_the_rates_and_bounds() -> None:
    args = generate_parser().parse_args(
        [
            "generate",
            "--rate",
            "20000",
            "--count",
            "500",
            "--seed",
            "3",
            "--malformed-rate",
            "0.1",
            "--empty-rate",
            "0.02",
        ]
    )
    assert (args.rate, args.count, args.duration, args.seed) == (20000.0, 500, None, 3)
    rates = rates_from_args(args).by_kind()
    assert rates[Irregularity.MISSING_DEVICE_TYPE] == 0.05
    assert rates[Irregularity.EMPTY] == pytest.approx(0.04)
    assert rates[Irregularity.NOT_JSON] == pytest.approx(0.02)
    assert callable(args.handler)


def test_without_count_or_duration_the_run_is_unbounded() -> None:
    args = generate_parser().parse_args(["generate"])
    assert args.count is None and args.duration is None
    assert args.rate > 0  # a polite default, not a flood


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--rate", "-5"], "--rate"),
        (["--count", "0"], "--count"),
        (["--duration", "-1"], "--duration"),
        (["--missing-device-type-rate", "1.5"], "--missing-device-type-rate"),
        (["--not-json-rate", "-0.1"], "--not-json-rate"),
        (["--malformed-rate", "abc"], "--malformed-rate"),
    ],
)
def test_bad_flags_are_refused_naming_the_flag(argv: list[str], flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        generate_parser().parse_args(["generate", *argv])
    assert exit_info.value.code == 2
    assert f"argument {flag}" in capsys.readouterr().err


def test_rates_adding_up_to_over_one_are_refused_naming_the_flags(capsys: pytest.CaptureFixture[str]) -> None:
    args = generate_parser().parse_args(["generate", "--malformed-rate", "0.9", "--empty-rate", "0.5"])
    with pytest.raises(SystemExit) as exit_info:
        args.handler(args)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "--malformed-rate" in error and "--empty-rate" in error and "add up to 1.45" in error


def test_undelivered_messages_are_counted_as_failures(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="streaming.generator.producer")  # librdkafka's connection refusals
    factory = EventFactory(seed=1, rates=IrregularityRates.with_malformed(0.5), users=50)
    summary = generate(UNREACHABLE, "user-login", factory, rate=0, count=40, progress_every_s=0)
    assert summary.produced == 40 and summary.stopped_by == "count"
    assert summary.delivered == 0 and summary.failed == 40
    assert not summary.ok
    assert sum(summary.by_kind.values()) == 40 and "empty" in summary.by_kind
    assert any("timed out" in error for error in summary.errors)


def test_a_stop_request_ends_an_unbounded_run_and_flushes(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="streaming.generator.producer")
    stop = threading.Event()
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    summary = generate(UNREACHABLE, "user-login", EventFactory(seed=2, users=50), rate=200, stop=stop)
    timer.join()
    assert summary.stopped_by == "stop request"
    assert summary.produced > 0
    assert summary.failed == summary.produced  # every message accounted for after the flush


def test_a_duration_bound_ends_the_run(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.CRITICAL, logger="streaming.generator.producer")
    summary = generate(UNREACHABLE, "user-login", EventFactory(seed=3, users=50), rate=100, duration_s=0.2)
    assert summary.stopped_by == "duration"
    assert summary.failed == summary.produced > 0


def test_sigint_stops_and_flushes_then_the_previous_handler_returns(caplog: pytest.LogCaptureFixture) -> None:
    """What `kdp generate` does: SIGINT, through `Shutdown`, stops the loop, which flushes and returns."""
    caplog.set_level(logging.INFO, logger="streaming.shutdown")
    before = signal.getsignal(signal.SIGINT)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with Shutdown("stopping and flushing", "abandoning the flush").on_signals() as shutdown:
        summary = generate(
            UNREACHABLE,
            "user-login",
            EventFactory(seed=4, users=50),
            rate=200,
            stop=shutdown.stop,
            abandon=shutdown.abandon,
        )
    timer.join()
    assert summary.stopped_by == "stop request"
    assert summary.failed == summary.produced > 0
    assert signal.getsignal(signal.SIGINT) is before
    assert "SIGINT received: stopping and flushing" in caplog.text


def test_a_second_signal_abandons_the_flush() -> None:
    shutdown = Shutdown()
    shutdown.on_signal(signal.SIGTERM, None)
    assert shutdown.stop.is_set() and not shutdown.abandon.is_set()
    shutdown.on_signal(signal.SIGINT, None)
    assert shutdown.abandon.is_set()


def test_an_abandoned_flush_returns_at_once_counting_what_was_not_acknowledged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.CRITICAL, logger="streaming.generator.producer")
    abandon = threading.Event()
    abandon.set()
    summary = generate(
        {**UNREACHABLE, "message.timeout.ms": 60_000},
        "user-login",
        EventFactory(seed=5, users=50),
        count=30,
        abandon=abandon,
        flush_timeout_s=120,
    )
    assert summary.produced == 30 and summary.failed == 30 and not summary.ok
