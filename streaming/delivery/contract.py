"""How a batch's output reaches the brokers and its source offsets get committed: the `Delivery` contract.

A delivery owns its producer; the converter loop never touches it. Per commit (a *span* of one batch, or in
exactly-once of several batches sent in one transaction: `streaming.loop.commit_span`) the loop calls:

- `begin()`: start the span (exactly-once opens its transaction; it may replace a broken producer);
- for each batch, `send(outputs)` on the fast path, or `send_carefully(outputs, origins)` on the redo of a
  failed span, with a delivery report per output (see below);
- `complete(consumer, offsets)`: *complete* means the span's output is durable (every output acknowledged)
  and its source offsets (the offsets after each partition's last message) are on their way to the group:
  exactly-once has committed them in the transaction that commits the output; at-least-once has handed them
  to an asynchronous commit, whose failure is counted and re-committed by the next one (so a crash right
  after `complete` may redeliver the span: duplicates, never loss). Raises `BatchFailed` when the span must
  be redone from its first offsets;
- `abandon()` after a failure: give up the span (exactly-once aborts the transaction; at-least-once has
  nothing to undo, since offsets are only committed for spans `complete` accepted). Safe to call more than once.

Where an asynchronous commit could leave offsets behind, the loop makes them final:

- `commit_outstanding(consumer)`: returns when every offset given to `complete` is committed (at-least-once
  commits them synchronously; exactly-once has nothing outstanding). Called before partitions are revoked,
  when `run` ends and before `close`;
- `forget_outstanding()`: the consumer can no longer commit them (partitions lost, consumer replaced): drop them;
  the partitions' next reader resumes at the group's last commit.

`consumer_config()` is what the consumer's settings need for this delivery (at-least-once: its `on_commit`
callback, where asynchronous commit results arrive). `close()` waits for what is still in flight. Two
strategies implement it, `streaming.delivery.at_least_once.AtLeastOnce` and
`streaming.delivery.exactly_once.ExactlyOnce`; both
build their producer with `new_producer(config)`, the real `confluent_kafka.Producer` unless a test hands them
the in-memory broker's. Both time the span's flush and commit (`ConverterObserver.batch_stage`).

Refusals: a record the broker refuses for good (too large for the topic, say) must not block the stream. The
fast path learns only that *something* failed (`delivery.report.only.error`, no per-message callback: it
would cost a microsecond a message), so the batch is redone carefully. A careful send reports each output,
and `BatchFailed.refused` names the sources whose outputs were refused for a reason in `REFUSED_FOR_GOOD`;
the next attempt dead-letters them. Every other failure (a timeout, a purge, an authorization refusal) says
nothing about the record: the batch is redone as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from streaming.delivery.backpressure import produce_when_room
from streaming.delivery.outputs import Origin, Output, Outputs
from streaming.observe.observer import ConverterObserver

log = logging.getLogger(__name__)

FLUSH_STEP_SECONDS = 0.5
FLUSH_WARN_EVERY_SECONDS = 5.0

NewProducer = Callable[[dict[str, Any]], Producer]

REFUSED_FOR_GOOD = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,  # over the topic's max.message.bytes (or the client's message.max.bytes)
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.INVALID_TIMESTAMP,
    }
)
"""Delivery errors that are a verdict on the record itself: sending it again cannot succeed.

The producer's batches stay under the topics' size limit (`streaming.delivery.kafka_clients`), so a batch refused
as too large holds that one record only.
"""


class BatchFailed(Exception):
    """The batch was not committed and must be redone from its first offsets.

    `refused`: sources whose outputs the broker refused for good, with the refusal; the redo dead-letters
    them. Such a redo is progress, not a retry of the same thing (`learned`), so it is neither delayed nor
    counted as a stall.
    """

    def __init__(self, reason: str, *, refused: Mapping[Origin, str] | None = None) -> None:
        super().__init__(reason)
        self.refused: Mapping[Origin, str] = refused or {}

    @property
    def learned(self) -> bool:
        return bool(self.refused)


class Delivery(Protocol):
    def begin(self) -> None: ...

    def send(self, outputs: Iterable[Output]) -> None: ...

    def send_carefully(self, outputs: Iterable[Output], origins: Iterable[Origin]) -> None: ...

    def complete(self, consumer: Consumer, offsets: list[TopicPartition]) -> None: ...

    def abandon(self) -> None: ...

    def commit_outstanding(self, consumer: Consumer) -> None: ...

    def forget_outstanding(self) -> None: ...

    def consumer_config(self) -> dict[str, object]: ...

    def close(self) -> None: ...


def retriable_kafka_error(error: BaseException) -> bool:
    """A `KafkaException` that Kafka says may succeed if the call is tried again (the retry policies' test)."""
    return isinstance(error, KafkaException) and error.args[0].retriable()


def wait_for_deliveries(producer: Producer, give_up: Callable[[], bool] = lambda: False) -> None:
    """Flush, saying so while the brokers do not answer: back-pressure, never a silent drop.

    `give_up` is asked between short waits; True ends the wait with deliveries still pending (for a
    transaction that a failed delivery has already doomed: its abort purges them).
    """
    waited = 0.0
    while (pending := producer.flush(FLUSH_STEP_SECONDS)) > 0 and not give_up():
        waited += FLUSH_STEP_SECONDS
        if waited % FLUSH_WARN_EVERY_SECONDS == 0:
            log.warning("waiting for %d deliveries for %.0fs: are the brokers reachable?", pending, waited)


class DeliveryFailures:
    """The failed deliveries of the current batch, gathered by the producer's delivery callback."""

    def __init__(self) -> None:
        self.errors: list[KafkaError] = []

    def producer_config(self) -> dict[str, object]:
        # Only failures reach Python: a callback per acknowledged message would cost about a
        # microsecond each on the hot path for nothing.
        return {"delivery.report.only.error": True, "on_delivery": self._on_delivery}

    def _on_delivery(self, error: KafkaError | None, _message: object) -> None:
        if error is not None:
            self.errors.append(error)

    def clear(self) -> None:
        self.errors.clear()

    def raise_if_any(self) -> None:
        if self.errors:
            raise BatchFailed(f"{len(self.errors)} deliveries failed, first: {self.errors[0].str()}")


class ProducerDelivery:
    """What both strategies share: the fast and the careful send through `self.producer`.

    `atomic`: one failed output fails the whole batch (a transaction), so a careful send stops waiting at
    the first failure; otherwise each output stands alone and every report is awaited.
    """

    atomic = False
    producer: Producer
    observer: ConverterObserver

    def consumer_config(self) -> dict[str, object]:
        """Nothing by default: offsets committed by `complete` itself need no callback."""
        return {}

    def commit_outstanding(self, consumer: Consumer) -> None:
        """Nothing by default: `complete` returned with the offsets committed."""

    def forget_outstanding(self) -> None:
        """Nothing by default: nothing is outstanding."""

    def send(self, outputs: Iterable[Output]) -> None:
        """Produce `outputs`; their failures surface in `complete` (`BatchFailed`).

        A router's `Outputs` is produced as its columns: the records first, then the dead letters. The order
        between the output topic and the dead-letter topic is not kept (nothing reads across the two); within
        each topic it is the order consumed.
        """
        producer = self.producer
        produce = producer.produce
        try:
            if isinstance(outputs, Outputs):
                self._send_records(outputs.topic, outputs.values, outputs.keys, outputs.timestamp)
                outputs = [output for _message, output in outputs.dead_letters]
            for topic, key, value, timestamp, headers in outputs:
                try:
                    produce(topic, value, key, timestamp=timestamp, headers=headers)
                except BufferError:  # the queue is full: wait for the brokers (back-pressure)
                    produce_when_room(
                        partial(produce, topic, value, key, timestamp=timestamp, headers=headers), producer.poll
                    )
        except KafkaException as error:  # refused before sending, e.g. a failed transaction
            raise BatchFailed(f"produce: {error.args[0].str()}") from error

    def _send_records(self, topic: str, values: list[bytes], keys: list[bytes], timestamp: int) -> None:
        """Produce `values[i]` keyed `keys[i]` to `topic`, all stamped `timestamp`, with the fewest arguments:
        positional, since `produce` takes about 0.3 µs longer to parse keywords. One call per record, not
        `produce_batch`: that costs more per record on the caller's thread, building its list of dicts included
        (measured by `python -m bench.send_path`), and takes no timestamps."""
        producer = self.producer
        produce = producer.produce
        for value, key in zip(values, keys, strict=True):
            try:
                # produce(topic, value, key, partition, callback, on_delivery, timestamp): partition -1 is
                # "by key" (librdkafka's partitioner, the default); no callback: the producer's default.
                produce(topic, value, key, -1, None, None, timestamp)
            except BufferError:  # the queue is full: wait for the brokers (back-pressure)
                produce_when_room(partial(produce, topic, value, key, timestamp=timestamp), producer.poll)

    def send_carefully(self, outputs: Iterable[Output], origins: Iterable[Origin]) -> None:
        """Produce each output with its own delivery report and wait for them; `BatchFailed` (naming the
        outputs refused for good) if any failed.

        A message the client refuses for good before sending (over `message.max.bytes`) counts like one the
        broker refuses; any other refusal at `produce()` ends the batch at once.
        """
        producer = self.producer
        failures: dict[Origin, KafkaError] = {}
        interrupted = False
        for (topic, key, value, timestamp, headers), origin in zip(outputs, origins, strict=True):
            produce = partial(
                producer.produce, topic, value, key, timestamp=timestamp, headers=headers,
                on_delivery=_failure_recorder(failures, origin),
            )  # fmt: skip
            try:
                try:
                    produce()
                except BufferError:
                    produce_when_room(produce, producer.poll)
            except KafkaException as error:
                if error.args[0].code() not in REFUSED_FOR_GOOD:
                    interrupted = True  # a failed transaction, an outage, a fatal producer: not this record's fault
                    break
                failures[origin] = error.args[0]
        # In a transaction the first failure dooms the batch: the outputs still queued would only time out.
        wait_for_deliveries(producer, give_up=lambda: bool(failures) and self.atomic)
        if failures or interrupted:
            refused = {src: e.str() for src, e in failures.items() if e.code() in REFUSED_FOR_GOOD}
            raise BatchFailed(
                f"{len(failures)} outputs failed ({len(refused)} for good); interrupted: {interrupted}", refused=refused
            )


def _failure_recorder(
    failures: dict[Origin, KafkaError], origin: Origin
) -> Callable[[KafkaError | None, object], None]:
    """A per-message delivery callback noting `origin` when its output fails (careful sends only)."""

    def record(error: KafkaError | None, _message: object) -> None:
        if error is not None:
            failures[origin] = error

    return record
