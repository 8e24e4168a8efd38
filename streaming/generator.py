"""The producing loop of `kdp generate`: login events from `streaming.events` into the source topic.

Contract of `generate()`:
- produces events from an `EventFactory` to `topic`, keyed by user id, at `rate` messages per second
  (0 = as fast as possible), until `count` messages, `duration_s` seconds, a stop request (the `stop`
  event, SIGINT or SIGTERM when called from the main thread) or a fatal producer error, whichever comes first;
- always flushes before returning (for up to `flush_timeout_s`; a second signal abandons the flush), and
  counts a message that was not acknowledged by then as failed;
- returns a `GenerateSummary`: produced, delivered, failed, counts by irregularity kind, elapsed time.
  `summary.ok` is false when any message failed; the command then exits non-zero.

Throughput: pacing is a token bucket consulted once per small batch (about 10 ms of messages), never a
sleep per message, so 10k-100k msg/s stay accurate; the producer is idempotent (retries cannot duplicate
or reorder) and lingers a little to send large, lz4-compressed batches.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from streaming.backpressure import produce_when_room
from streaming.events import MALFORMED_KINDS, EventFactory, Irregularity, IrregularityRates
from streaming.settings import Settings

log = logging.getLogger(__name__)

#: Producer settings for throughput with safe retries; callers' settings (bootstrap, security) win.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,  # implies acks=all and bounded in-flight requests: no duplicates on retry
    "linger.ms": 20,  # wait up to 20 ms to fill a batch
    "batch.num.messages": 10_000,
    "batch.size": 1_000_000,
    "compression.type": "lz4",  # cheap on the CPU; login JSON compresses well
    "queue.buffering.max.messages": 500_000,
}
MAX_BATCH = 1000  # events generated and handed to the producer between two pacing decisions
PACING_SLICE_S = 0.01  # at a set rate, one batch carries about this much time's worth of messages
MAX_ERRORS_KEPT = 5
ERROR_REPEAT_S = 10.0  # a non-fatal client error of one kind is logged at most this often


class TokenBucket:
    """Admits `rate` messages per second on average, with at most `capacity` saved up while idle.

    `reserve(n)` takes `n` tokens at once, going into debt if need be, and returns how many seconds the
    caller must wait before sending them. Because every message is paid for, an oversleep or a slow batch
    is made up by the next ones and the long-run rate stays exact; a stall longer than `capacity / rate`
    is not made up with a burst. The clock is injectable so tests can run it on a fake one.
    """

    def __init__(self, rate: float, capacity: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or capacity <= 0:
            raise ValueError("rate and capacity must be positive")
        self.rate, self.capacity = rate, capacity
        self._clock = clock
        self._tokens = 0.0
        self._last = clock()

    def reserve(self, n: int) -> float:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate) - n
        self._last = now
        return max(0.0, -self._tokens / self.rate)


def batch_size_for(rate: float) -> int:
    """Messages per pacing step: about `PACING_SLICE_S` worth at `rate`, between 1 and `MAX_BATCH`."""
    if rate <= 0:
        return MAX_BATCH
    return max(1, min(MAX_BATCH, int(rate * PACING_SLICE_S)))


@dataclass
class GenerateSummary:
    produced: int = 0
    delivered: int = 0
    failed: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    elapsed_s: float = 0.0
    stopped_by: str = ""  # "count", "duration", "stop request" or "fatal error"
    errors: list[str] = field(default_factory=list)  # the first few delivery or fatal errors

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.delivered == self.produced

    @property
    def rate(self) -> float:
        return self.produced / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "produced": self.produced,
            "delivered": self.delivered,
            "failed": self.failed,
            "by_kind": self.by_kind,
            "elapsed_s": round(self.elapsed_s, 3),
            "rate_per_s": round(self.rate, 1),
            "stopped_by": self.stopped_by,
            "errors": self.errors,
            "ok": self.ok,
        }


class _DeliveryTally:
    """Counts delivery reports and reports client errors (both called from poll/flush, in this thread).

    A broker that is down makes librdkafka report the same transport error several times a second, so each
    kind of non-fatal error is logged at most once per `ERROR_REPEAT_S`.
    """

    def __init__(self, summary: GenerateSummary, stop: threading.Event) -> None:
        self._summary, self._stop = summary, stop
        self._last_logged: dict[str, float] = {}

    def _keep(self, text: str) -> None:
        if len(self._summary.errors) < MAX_ERRORS_KEPT:
            self._summary.errors.append(text)

    def on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self._summary.delivered += 1
        else:
            self._summary.failed += 1
            self._keep(f"delivery to {message.topic()} failed: {error.str()} ({error.name()})")

    def on_error(self, error: KafkaError) -> None:
        if error.fatal():
            self._keep(f"fatal producer error: {error.str()} ({error.name()})")
            self._summary.stopped_by = "fatal error"
            self._stop.set()
            return
        now = time.monotonic()
        if now - self._last_logged.get(error.name(), -ERROR_REPEAT_S) >= ERROR_REPEAT_S:
            self._last_logged[error.name()] = now
            log.warning("producer: %s (%s)", error.str(), error.name())


@dataclass
class _Interrupts:
    """What the operator asked for: `stop` producing (first signal), then `abandon` the flush (second)."""

    stop: threading.Event
    abandon: threading.Event = field(default_factory=threading.Event)

    def on_signal(self, signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if not self.stop.is_set():
            log.info("%s received: stopping and flushing (send it again to abandon the flush)", name)
            self.stop.set()
        else:
            log.info("%s received again: abandoning the flush", name)
            self.abandon.set()

    @contextmanager
    def from_signals(self) -> Iterator[None]:
        """While inside, SIGINT and SIGTERM call `on_signal` (only in the main thread; elsewhere a no-op)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in previous:
            signal.signal(sig, self.on_signal)
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def generate(
    producer_config: Mapping[str, Any],
    topic: str,
    factory: EventFactory,
    *,
    rate: float = 0,
    count: int | None = None,
    duration_s: float | None = None,
    progress_every_s: float = 5.0,
    flush_timeout_s: float = 30.0,
    stop: threading.Event | None = None,
) -> GenerateSummary:
    """Produce events until a bound or a stop request; see the module docstring for the contract.

    `producer_config` is librdkafka configuration (at least `bootstrap.servers`); it is laid over
    `PRODUCER_DEFAULTS`. With neither `count` nor `duration_s`, it runs until stopped.
    """
    if rate < 0:
        raise ValueError("rate must be >= 0")
    if count is not None and count < 0:
        raise ValueError("count must be >= 0")
    if duration_s is not None and duration_s < 0:
        raise ValueError("duration_s must be >= 0")
    interrupts = _Interrupts(stop if stop is not None else threading.Event())
    summary = GenerateSummary()
    tally = _DeliveryTally(summary, interrupts.stop)
    producer = Producer(
        {
            # librdkafka's own log repeats what error_cb reports (a down broker: several lines a second).
            "log_level": 0,
            **PRODUCER_DEFAULTS,
            **producer_config,
            "on_delivery": tally.on_delivery,
            "error_cb": tally.on_error,
            "logger": log,
        }
    )
    started = time.monotonic()
    with interrupts.from_signals():
        kinds = _produce_until_bound(
            producer, topic, factory, summary, interrupts.stop, rate, count, duration_s, progress_every_s
        )
        undelivered = _flush(producer, flush_timeout_s, interrupts.abandon)
    if undelivered:
        summary.failed += undelivered
        if len(summary.errors) < MAX_ERRORS_KEPT:
            summary.errors.append(f"{undelivered} messages were not acknowledged before the flush ended")
    summary.elapsed_s = time.monotonic() - started
    summary.by_kind = {kind.value: kinds[kind] for kind in Irregularity if kinds[kind]}
    return summary


def _produce_until_bound(
    producer: Producer,
    topic: str,
    factory: EventFactory,
    summary: GenerateSummary,
    stop: threading.Event,
    rate: float,
    count: int | None,
    duration_s: float | None,
    progress_every_s: float,
) -> Counter[Irregularity]:
    """The paced loop: one batch per step; records why it stopped in `summary.stopped_by`."""
    batch = batch_size_for(rate)
    bucket = TokenBucket(rate, capacity=2 * batch) if rate > 0 else None
    kinds: Counter[Irregularity] = Counter()
    produce, poll = producer.produce, producer.poll
    started = time.monotonic()
    deadline = started + duration_s if duration_s is not None else float("inf")
    next_progress = started + progress_every_s if progress_every_s > 0 else float("inf")
    while True:
        now = time.monotonic()
        if stop.is_set():
            summary.stopped_by = summary.stopped_by or "stop request"
            return kinds
        if count is not None and summary.produced >= count:
            summary.stopped_by = "count"
            return kinds
        if now >= deadline:
            summary.stopped_by = "duration"
            return kinds
        if now >= next_progress:
            _log_progress(summary, now - started)
            next_progress = now + progress_every_s
        n = batch if count is None else min(batch, count - summary.produced)
        if bucket is not None:
            delay = bucket.reserve(n)
            # Wait on the stop event rather than sleeping, so a signal or the deadline cuts a long wait;
            # the top of the loop then records why it stopped.
            if delay > 0 and (stop.wait(min(delay, deadline - now)) or time.monotonic() >= deadline):
                continue
        for key, value, kind in factory.batch(n, now=time.time()):
            try:
                produce(topic, value, key)
            except BufferError:
                if not _produce_when_queue_has_room(producer, topic, key, value, stop):
                    break
            kinds[kind] += 1
            summary.produced += 1
        poll(0)


def _produce_when_queue_has_room(
    producer: Producer, topic: str, key: bytes, value: bytes, stop: threading.Event
) -> bool:
    """Retry a message the full local queue refused, serving delivery reports meanwhile (a broker that is
    down fills the queue); False, and the message is not produced, if a stop is requested first."""
    return produce_when_room(partial(producer.produce, topic, value, key), producer.poll, stop)


def _flush(producer: Producer, timeout_s: float, abandon: threading.Event) -> int:
    """Wait for the acknowledgements still due, in short steps so a second signal can cut it short; returns
    how many messages were left unacknowledged."""
    if len(producer):
        log.info("flushing %d messages still in flight", len(producer))
    deadline = time.monotonic() + timeout_s
    remaining = len(producer)
    while remaining and not abandon.is_set():
        left_s = deadline - time.monotonic()
        if left_s <= 0:
            break
        remaining = producer.flush(min(0.2, left_s))
    return remaining


def _log_progress(summary: GenerateSummary, elapsed_s: float) -> None:
    log.info(
        "sent %d (%.0f msg/s), delivered %d, failed %d",
        summary.produced,
        summary.produced / elapsed_s if elapsed_s > 0 else 0.0,
        summary.delivered,
        summary.failed,
    )


# --- `kdp generate` -------------------------------------------------------------------------------------


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be >= 0")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be > 0")
    return value


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text} must be > 0")
    return value


def _share(text: str) -> float:
    value = _non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text} is a share of the events: it must be between 0 and 1")
    return value


def _rate_flag(kind: Irregularity) -> str:
    return f"--{kind.value.replace('_', '-')}-rate"


def add_generate_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Mount `generate` on the `kdp` command line; the handler returns the exit code (0 = all delivered)."""
    parser = subparsers.add_parser(
        "generate",
        help="produce synthetic login events to the source topic",
        description="Produce synthetic login events (JSON, keyed by user id) with optional irregularities. "
        "Runs until --count or --duration is reached, or until stopped: Ctrl-C stops and flushes, a second "
        "Ctrl-C abandons the flush. "
        "Prints a JSON summary on stdout; exits 1 if any message was not delivered.",
    )
    parser.add_argument(
        "--rate", type=_non_negative_float, default=1000.0, help="messages/s (default 1000); 0 = unlimited"
    )
    parser.add_argument("--count", type=_positive_int, help="stop after this many messages")
    parser.add_argument("--duration", type=_positive_float, help="stop after this many seconds")
    parser.add_argument("--seed", type=int, help="random seed (default: a random one, logged)")
    parser.add_argument("--topic", help="target topic (default: KDP_SOURCE_TOPIC, user-login)")
    parser.add_argument("--users", type=_positive_int, default=10_000, help="size of the user pool (default 10000)")
    parser.add_argument(
        "--missing-device-type-rate", type=_share, default=0.05, help="share without device_type (0.05)"
    )
    parser.add_argument(
        "--malformed-rate",
        type=_share,
        default=0.0,
        help=f"share of malformed messages, spread evenly over {', '.join(k.value for k in MALFORMED_KINDS)}",
    )
    for kind in MALFORMED_KINDS:
        parser.add_argument(_rate_flag(kind), type=_share, default=0.0, help=f"share of {kind.value} messages")
    parser.add_argument(
        "--progress-every",
        type=_non_negative_float,
        default=5.0,
        help="seconds between progress lines (default 5); 0 = none",
    )

    def handler(args: argparse.Namespace) -> int:
        try:
            rates = rates_from_args(args)
        except ValueError as error:
            parser.error(str(error))
        return run_generate_command(args, rates)

    parser.set_defaults(handler=handler)
    return parser


def rates_from_args(args: argparse.Namespace) -> IrregularityRates:
    """The irregularity rates the flags ask for; `ValueError` names the flags when they add up to over 1."""
    per_kind = {kind.value: getattr(args, kind.value + "_rate") for kind in MALFORMED_KINDS}
    try:
        return IrregularityRates.with_malformed(
            args.malformed_rate, missing_device_type=args.missing_device_type_rate, **per_kind
        )
    except ValueError as error:
        given = {_rate_flag(Irregularity.MISSING_DEVICE_TYPE): args.missing_device_type_rate}
        given["--malformed-rate"] = args.malformed_rate
        given.update({_rate_flag(kind): per_kind[kind.value] for kind in MALFORMED_KINDS})
        flags = ", ".join(f"{flag} {value:g}" for flag, value in given.items() if value > 0)
        raise ValueError(f"{flags}: {error}") from None


def run_generate_command(args: argparse.Namespace, rates: IrregularityRates) -> int:
    """Run `kdp generate` with the settings from the environment; prints the summary as JSON on stdout."""
    settings = Settings.from_env()
    topic = args.topic or settings.source_topic
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    bounds = [f"{args.count} messages" if args.count else "", f"{args.duration:g} s" if args.duration else ""]
    log.info(
        "generating to %s on %s at %s, seed %d, until %s",
        topic,
        settings.bootstrap,
        f"{args.rate:g} msg/s" if args.rate else "full speed",
        seed,
        " or ".join(bound for bound in bounds if bound) or "stopped",
    )
    factory = EventFactory(seed, rates, users=args.users)
    summary = generate(
        settings.kafka_config(),
        topic,
        factory,
        rate=args.rate,
        count=args.count,
        duration_s=args.duration,
        progress_every_s=args.progress_every,
    )
    print(json.dumps({"topic": topic, "seed": seed, **summary.as_dict()}))
    for error in summary.errors:
        log.error("%s", error)
    log.info(
        "produced %d in %.1f s (%.0f msg/s): delivered %d, failed %d",
        summary.produced,
        summary.elapsed_s,
        summary.rate,
        summary.delivered,
        summary.failed,
    )
    return 0 if summary.ok else 1
