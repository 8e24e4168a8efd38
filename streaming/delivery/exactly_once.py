"""Exactly-once delivery: Kafka transactions, the consumed offsets committed inside them.

A transaction spans the batches the converter sends between `begin()` and `complete()`: one batch, or several
for as long as `KDP_COMMIT_INTERVAL_MS` (the converter decides; see `streaming.loop.commit_span`).

The source offsets are sent in the transaction (`send_offsets_to_transaction`) with the consumer's
group metadata, so output and offsets commit or abort together and a zombie from an older group
generation is fenced (KIP-447). Readers of the output must use `isolation.level=read_committed`.

A transactional producer can break for good while the process is healthy, and this strategy heals it
in place instead of crashing the converter:

* a *fatal* error (for example `INVALID_TXN_STATE` after the brokers were away longer than the
  transaction timeout) leaves the producer unusable;
* a transactional call can block for good when the group coordinator's broker dies (librdkafka 2.x,
  confluentinc/librdkafka#5456 and #5511), whatever timeout it was given.

Either way the producer is replaced by a new one with the same `transactional.id`. Its
`init_transactions` fences the old one and aborts the old one's open transaction, and the batch fails
with `BatchFailed`, so the converter redoes it from its first offsets: nothing is lost or repeated.
A *fenced* producer is replaced too, once: the coordinator fences a producer whose transaction it timed
out (the brokers were away longer than the transaction timeout), with no other process involved. Fenced
again soon after, the process is a zombie beside another converter with the same transactional id, and
`TransactionalIdTaken` ends it rather than take the id back and forth for ever.

A producer replaced because a call got stuck is still held by that call (its threads, a socket per broker, its
queued outputs): it is released when the call returns. The call of #5511 waits for any broker connection of its
producer to change state, so the producer closes connections idle for `IDLE_CONNECTION_CLOSE_MS`: the replaced
producer's connections go idle at once, the first to close wakes the call, which fails (fenced) and returns.
Each `begin` then releases what returned stuck calls held (see `StuckCalls`).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterable

import tenacity
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from streaming.delivery.contract import (
    BatchFailed,
    DeliveryFailures,
    NewProducer,
    ProducerDelivery,
    retriable_kafka_error,
    wait_for_deliveries,
)
from streaming.delivery.outputs import Origin, Output
from streaming.malloc_arenas import give_back_free_memory
from streaming.observe.observer import NO_OBSERVER, ConverterObserver

log = logging.getLogger(__name__)

TRANSACTION_TIMEOUT_MS = 30_000
"""A crashed process's open transaction holds back read_committed readers until it times out or a
producer with the same id starts again: keep it short."""
CALL_TIMEOUT_SECONDS = 5.0
"""The timeout given to each transactional call; one that times out is retried (while the transaction lives).
Short, because it also sets how soon a call that ignores it is found stuck (below)."""
STUCK_AFTER_SECONDS = CALL_TIMEOUT_SECONDS + 3.0
"""A call that has not returned this long after it started ignored its timeout: the producer is stuck.

The one seen (tests/faults, group coordinator's broker killed): `send_offsets_to_transaction` waits for ever on
a coordinator that left the metadata (confluentinc/librdkafka#5511), once the leaders have moved; it was
detected 20 s later with 10 + 10 s, now 8 s. A call that honours its timeout returns after 5 s plus scheduling,
well inside the 3 s margin even on a loaded machine; a false alarm would cost a producer replacement and a redo
of the batch (its transaction aborted), never a loss or a duplicate."""

IDLE_CONNECTION_CLOSE_MS = 20_000
"""The transactional producer closes a broker connection unused this long (`connections.max.idle.ms`).

What it is for: a call stuck by confluentinc/librdkafka#5511 is woken by any broker connection of its producer
changing state, and nothing else wakes it; measured (tests/faults/test_coordinator_left.py), the stuck call
returned within a second of its producer's first idle connection closing. A converter under load uses every
connection it has (each broker leads output partitions, and each transaction talks to both coordinators), so
only a lull closes them; the first batch after a lull of 20 s reconnects (a TCP, and with SASL_SSL a TLS,
handshake)."""

RETRY_PAUSE_MAX_SECONDS = 1.0
"""The longest pause between two tries of a retriable transactional call (each try already waits up to
`CALL_TIMEOUT_SECONDS`). It was 10 s: when the brokers came back from an outage, an abort_transaction then
slept up to 10 s before asking again (seen in tests/faults, all brokers down 30 s)."""


class ProducerStuck(RuntimeError):
    """A transactional call did not return within `STUCK_AFTER_SECONDS`, despite its timeout; `call` is the
    thread still running it."""

    def __init__(self, reason: str, call: threading.Thread) -> None:
        super().__init__(reason)
        self.call = call


FENCED_AGAIN_WINDOW_SECONDS = 120.0
"""Fenced twice within this time: another live process uses the same transactional id."""


class ProducerBroken(Exception):
    """The producer cannot go on (a fatal error, or stuck): it must be replaced. `stuck_call`: the thread of a
    call that still holds it."""

    def __init__(self, reason: str, *, fenced: bool = False, stuck_call: threading.Thread | None = None) -> None:
        super().__init__(reason)
        self.fenced = fenced
        self.stuck_call = stuck_call


class StuckCalls:
    """The threads of stuck transactional calls, each holding the producer it was replaced in.

    When a call returns, its thread ends, and what it held goes with the next `release_returned`: the references
    left by the exceptions the call went through (theirs and tenacity's) form cycles, so the garbage collector is
    run once, which destroys the producer, and glibc is asked to hand its freed memory back. Without that, the
    cycles would wait for a full collection, which `gc.freeze` (see `open_dedicated_converter`) makes rare.
    """

    def __init__(self) -> None:
        self._calls: list[threading.Thread] = []

    def __len__(self) -> int:
        return len(self._calls)

    def hold(self, call: threading.Thread) -> None:
        self._calls.append(call)

    def release_returned(self) -> int:
        """Release what the returned calls held; how many returned."""
        running = [call for call in self._calls if call.is_alive()]
        returned = len(self._calls) - len(running)
        if returned:
            self._calls = running
            gc.collect()
            give_back_free_memory()
            log.info("%d stuck transactional call(s) returned: their producers are released", returned)
        return returned


class TransactionalIdTaken(RuntimeError):
    """Another live converter keeps fencing this one: two instances share a transactional id."""


class ExactlyOnce(ProducerDelivery):
    """A Kafka transaction from `begin` to `complete`; see the module docstring for how a broken producer is
    replaced."""

    atomic = True

    def __init__(
        self,
        producer_config: dict[str, object],
        transactional_id: str,
        *,
        new_producer: NewProducer = Producer,
        observer: ConverterObserver = NO_OBSERVER,
    ) -> None:
        self._new_producer = new_producer
        self.observer = observer
        self._failures = DeliveryFailures()
        self._config = {
            **producer_config,
            **self._failures.producer_config(),
            "transactional.id": transactional_id,
            "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
            "connections.max.idle.ms": IDLE_CONNECTION_CLOSE_MS,
        }
        self.replaced_producers = 0
        self._last_fenced: float | None = None
        self.stuck_calls = StuckCalls()
        # Retries what Kafka says is retriable: waits of 0.5 s, then 1 s, for as long as Kafka keeps saying so.
        self._retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(retriable_kafka_error),
            wait=tenacity.wait_exponential(multiplier=0.5, max=RETRY_PAUSE_MAX_SECONDS),
            before_sleep=_warn_retrying,
            reraise=True,
        )
        self.producer = self._start_producer()
        self._in_transaction = False
        self._batches = 0  # sent in the open transaction

    def send(self, outputs: Iterable[Output]) -> None:
        self._batches += 1
        super().send(outputs)

    def send_carefully(self, outputs: Iterable[Output], origins: Iterable[Origin]) -> None:
        self._batches += 1
        super().send_carefully(outputs, origins)

    def _start_producer(self) -> Producer:
        """A new producer, its transactions initialised: any earlier producer of the id is fenced."""
        producer = self._new_producer(self._config)
        self._retry(producer.init_transactions, "init_transactions")
        return producer

    def _replace_producer(self, broken: ProducerBroken) -> None:
        why = str(broken)
        if broken.fenced:
            now = time.monotonic()
            if self._last_fenced is not None and now - self._last_fenced < FENCED_AGAIN_WINDOW_SECONDS:
                raise TransactionalIdTaken(
                    f"fenced twice within {FENCED_AGAIN_WINDOW_SECONDS:.0f} s ({why}): another converter uses "
                    f"transactional id {self._config['transactional.id']}; give each a distinct --instance"
                ) from broken
            self._last_fenced = now
        self.replaced_producers += 1
        if broken.stuck_call is not None:
            self.stuck_calls.hold(broken.stuck_call)
        log.error("the transactional producer cannot go on (%s): replacing it, which aborts its transaction", why)
        self._in_transaction = False
        self.observer.producer_replaced(why, broken.fenced)
        # The old producer is dropped, not closed: a stuck call may still hold it (until `StuckCalls` releases
        # it), and closing would wait for that call. Once fenced it can neither commit nor write anything visible.
        self.producer = self._start_producer()

    def _retry(self, call: Callable[[float], object], what: str) -> None:
        """Run a transactional call within a deadline, retrying what Kafka says is retriable.

        Raises `ProducerBroken` for a fatal error or a stuck call, `KafkaException` for the rest.
        """
        self._retrying(_transactional_call, call, what)

    def begin(self) -> None:
        if len(self.stuck_calls):
            self.stuck_calls.release_returned()
        self._failures.clear()
        try:
            self.producer.begin_transaction()
        except KafkaException as error:
            kafka_error = error.args[0]
            if not kafka_error.fatal():
                raise
            broken = ProducerBroken(f"begin_transaction: {kafka_error.str()}", fenced=_fenced(kafka_error))
            self._replace_producer(broken)
            self.producer.begin_transaction()
        self._in_transaction = True
        self._batches = 0

    def complete(self, consumer: Consumer, offsets: list[TopicPartition]) -> None:
        # The first failed delivery dooms the transaction: fail the batch at once rather than in
        # commit_transaction, which would first wait for the outputs queued behind it to time out.
        started = time.perf_counter()
        wait_for_deliveries(self.producer, give_up=lambda: bool(self._failures.errors))
        flushed = time.perf_counter()
        self.observer.batch_stage("flush", flushed - started)
        self._failures.raise_if_any()
        producer = self.producer
        try:
            metadata = consumer.consumer_group_metadata()
            self._retry(
                lambda timeout: producer.send_offsets_to_transaction(offsets, metadata, timeout),
                "send_offsets_to_transaction",
            )
            self._retry(producer.commit_transaction, "commit_transaction")
            self._in_transaction = False
            self.observer.batch_stage("commit", time.perf_counter() - flushed)
            self.observer.transaction_committed(self._batches)
        except ProducerBroken as broken:
            self._replace_producer(broken)  # the new producer's start aborts the transaction
            self.observer.transaction_aborted(str(broken))
            raise BatchFailed(str(broken)) from broken
        except KafkaException as error:
            kafka_error = error.args[0]
            if kafka_error.txn_requires_abort():
                log.warning("transaction aborted (%s): redoing the batch", kafka_error.str())
                self.abandon()
                raise BatchFailed(kafka_error.str()) from error
            raise

    def abandon(self) -> None:
        """Abort the open transaction, if any: none of the batch's output becomes visible."""
        if not self._in_transaction:
            return
        self._in_transaction = False
        try:
            self._retry(self.producer.abort_transaction, "abort_transaction")
            self.observer.transaction_aborted("abandoned")
        except ProducerBroken as broken:
            self._replace_producer(broken)  # the new producer's start aborts the transaction
            self.observer.transaction_aborted(str(broken))

    def close(self) -> None:
        """Abort a transaction still open (the converter commits or aborts its own before `run` returns, so
        this is for a caller that stopped mid-way): nothing of it becomes visible, its batches are read again."""
        self.abandon()


def _transactional_call(call: Callable[[float], object], what: str) -> None:
    """One try of `call`: a fatal error or a stuck call is `ProducerBroken`, any other Kafka error is raised as is."""
    try:
        _call_within_deadline(call, what)
    except ProducerStuck as stuck:
        raise ProducerBroken(str(stuck), stuck_call=stuck.call) from stuck
    except KafkaException as error:
        kafka_error = error.args[0]
        if kafka_error.fatal():
            raise ProducerBroken(f"{what}: {kafka_error.str()}", fenced=_fenced(kafka_error)) from error
        raise


def _warn_retrying(state: tenacity.RetryCallState) -> None:
    """Before a retriable transactional call is tried again: which call (its second argument), why, and when."""
    error = state.outcome.exception() if state.outcome else None
    log.warning("%s: %s; retrying in %.1fs", state.args[1], error, state.upcoming_sleep)


def _fenced(error: KafkaError) -> bool:
    """True when a newer epoch of this transactional id exists: another producer started with the id, or the
    coordinator timed out this producer's transaction."""
    return error.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH)


def _call_within_deadline(call: Callable[[float], object], what: str) -> None:
    """`call(CALL_TIMEOUT_SECONDS)` on a worker thread; `ProducerStuck` if it overruns by far.

    librdkafka releases the GIL while it waits, so the caller can give up on a call that ignores its
    timeout. The worker is a daemon thread: if it never returns, it does not keep the process alive.
    """
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            call(CALL_TIMEOUT_SECONDS)
            outcome.append(None)
        except BaseException as error:  # noqa: BLE001 - handed over to the caller's thread
            outcome.append(error)

    worker = threading.Thread(target=run, name=f"kdp-{what}", daemon=True)
    worker.start()
    worker.join(STUCK_AFTER_SECONDS)
    if not outcome:
        raise ProducerStuck(f"{what} did not return within {STUCK_AFTER_SECONDS:.0f} s", worker)
    if outcome[0] is not None:
        raise outcome[0]
