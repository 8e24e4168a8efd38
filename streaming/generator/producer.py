"""The producing loop of `kdp generate`: login events from `streaming.generator.events` into the source topic.

Contract of `generate()`:
- produces events from an `EventFactory` to `topic`, keyed by user id, at `rate` messages per second
  (0 = as fast as possible), until `count` messages, `duration_s` seconds, a stop request (the `stop`
  event) or a fatal producer error, whichever comes first;
- always flushes before returning (for up to `flush_timeout_s`, or until the `abandon` event), and
  counts a message that was not acknowledged by then as failed;
- returns a `GenerateSummary`: produced, delivered, failed, counts by irregularity kind, elapsed time.
  `summary.ok` is false when any message failed; the command then exits non-zero.

`kdp generate` (`streaming.cli.generate`) turns SIGINT/SIGTERM into the two events (`streaming.shutdown`).

Throughput: pacing is a token bucket consulted once per small batch (about 10 ms of messages), never a
sleep per message, so 10k-100k msg/s stay accurate; the producer is idempotent (retries cannot duplicate
or reorder), lingers 5 ms like any Kafka client by default, and sends lz4-compressed batches.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from streaming.delivery.backpressure import produce_when_room
from streaming.generator.events import EventFactory, Irregularity

log = logging.getLogger(__name__)

#: Producer settings for throughput with safe retries; callers' settings (bootstrap, security) win.
PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,  # implies acks=all and bounded in-flight requests: no duplicates on retry
    # The Kafka clients' default (librdkafka, and the Java producer since Kafka 4.0): the generator stands for the
    # application that emits logins, and its linger is part of every event's end-to-end latency (bench/latency.py).
    # At full speed batches fill before it expires anyway.
    "linger.ms": 5,
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
    abandon: threading.Event | None = None,
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
    stop = stop if stop is not None else threading.Event()
    abandon = abandon if abandon is not None else threading.Event()
    summary = GenerateSummary()
    tally = _DeliveryTally(summary, stop)
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
    kinds = _produce_until_bound(producer, topic, factory, summary, stop, rate, count, duration_s, progress_every_s)
    _flush(producer, flush_timeout_s, abandon)
    # Counted from the delivery reports, not from `len(producer)`: that also counts events still queued for the
    # producer's poll (an error report, say), so it could exceed the messages in flight.
    undelivered = summary.produced - summary.delivered - summary.failed
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


def _flush(producer: Producer, timeout_s: float, abandon: threading.Event) -> None:
    """Wait for the acknowledgements still due, in short steps so a second signal can cut it short."""
    if len(producer):
        log.info("flushing %d messages still in flight", len(producer))
    deadline = time.monotonic() + timeout_s
    remaining = len(producer)
    while remaining and not abandon.is_set():
        left_s = deadline - time.monotonic()
        if left_s <= 0:
            break
        remaining = producer.flush(min(0.2, left_s))


def _log_progress(summary: GenerateSummary, elapsed_s: float) -> None:
    log.info(
        "sent %d (%.0f msg/s), delivered %d, failed %d",
        summary.produced,
        summary.produced / elapsed_s if elapsed_s > 0 else 0.0,
        summary.delivered,
        summary.failed,
    )
