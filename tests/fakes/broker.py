"""An in-memory Kafka for unit tests of the converter's failure paths: no broker, no network, milliseconds.

In the spirit of arroyo's `backends/local`: a broker object holds topics (lists of records per partition),
consumer groups (members, generation, committed offsets) and transactional ids (epochs). `broker.producer`
and `broker.consumer` build clients with the parts of the `confluent_kafka` API the converter uses, and the
same semantics where the converter depends on them:

- a producer queues what it produces; `poll`/`flush` deliver the queue, reporting failures to the delivery
  callbacks (only failures when `delivery.report.only.error` is set, as the converter sets it);
- a transactional producer writes into its open transaction: `commit_transaction` appends the records and a
  commit marker to each partition it wrote (markers occupy offsets, as on a real broker) and commits the
  consumer offsets it was sent; `abort_transaction` discards them. `init_transactions` bumps the id's epoch:
  an older producer of the same id is fenced (its next transactional call fails with a fatal
  `PRODUCER_FENCED`, and it stays unusable);
- a consumer reads `read_committed`: markers are skipped, and so are records of aborted transactions (never
  written here). A subscribed consumer's assignment changes only inside `consume()`, as librdkafka runs its
  rebalance callbacks there;
- a consumer's asynchronous `commit` is *in flight* until the group coordinator answers it: the fake answers at
  the consumer's next `consume()` (or, holding them, not before the hold is lifted), applying it to the group
  and reporting it to the consumer's `on_commit` callback there, as librdkafka serves that callback in its poll.
  Commits are answered in the order sent, as on the one connection to the coordinator: a synchronous commit is
  answered after the asynchronous ones before it, and `close()` waits for those still in flight.

Fault injection (`broker.faults`): outputs refused for good at delivery or at `produce()`, delivery timeouts,
a transaction that must be aborted at commit, a fenced transactional id, a fatal consumer error, a full
producer queue, asynchronous offset commits that fail or stay in flight. Each fault says what the real broker
or client would report, with the same error codes.

It lives under `tests/` (imported as `fakes.broker`), not in the `streaming` package: only tests use it, and
the data plane ships no test doubles.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from confluent_kafka import OFFSET_INVALID, KafkaError, KafkaException, TopicPartition

Partition = tuple[str, int]
Headers = list[tuple[str, Any]] | None


@dataclass
class Record:
    key: bytes | None
    value: bytes | None
    timestamp: int
    headers: Headers = None
    marker: bool = False


class FakeMessage:
    """A consumed message, or a consumer error delivered as a message (as librdkafka does)."""

    def __init__(
        self, topic: str, partition: int, offset: int, record: Record | None = None, error: KafkaError | None = None
    ) -> None:
        self._where = (topic, partition, offset)
        self._record = record or Record(None, None, -1)
        self._error = error

    def topic(self) -> str:
        return self._where[0]

    def partition(self) -> int:
        return self._where[1]

    def offset(self) -> int:
        return self._where[2]

    def key(self) -> bytes | None:
        return self._record.key

    def value(self) -> bytes | None:
        return self._record.value

    def headers(self) -> Headers:
        return self._record.headers

    def timestamp(self) -> tuple[int, int]:
        return (1, self._record.timestamp)  # TIMESTAMP_CREATE_TIME

    def error(self) -> KafkaError | None:
        return self._error


Refuse = Callable[[str, bytes | None, bytes | None], bool]
"""`refuse(topic, key, value)`: True to refuse that output."""


@dataclass
class Faults:
    """What goes wrong next. Counters count down as the faults happen."""

    refuse_at_delivery: Refuse | None = None
    """The broker refuses these outputs for good: `MSG_SIZE_TOO_LARGE` in their delivery report."""
    refuse_at_produce: Refuse | None = None
    """The client refuses these outputs for good at `produce()`: `KafkaException(MSG_SIZE_TOO_LARGE)`."""
    time_out_deliveries: int = 0
    """The next N deliveries fail with `_MSG_TIMED_OUT` (an outage: nothing about the record)."""
    abort_commits: int = 0
    """The next N `commit_transaction` calls fail with an abortable error (the transaction must be aborted)."""
    break_consumers: int = 0
    """The next N `consume()` calls return a fatal `_FATAL` error; that consumer then stays broken."""
    queue_full: int = 0
    """The next N `produce()` calls raise `BufferError` (the local queue is full: back-pressure)."""
    on_commit: list[Callable[[], None]] = field(default_factory=list)
    """Called (and dropped) at the next successful `commit_transaction` or consumer `commit`: a hook for
    faults that must strike at a precise point, e.g. a rebalance."""
    fail_transaction: Refuse | None = None
    """`produce()` of these outputs finds the transaction failed: an abortable `_STATE` error, as librdkafka
    refuses to enqueue once a transaction is in an abortable state (the transaction must be aborted)."""
    on_produce: Refuse | None = None
    """Called first at each `produce()` (its result ignored): a hook for faults that must strike in the middle
    of a transaction, e.g. a fencing or a rebalance."""
    on_consume: list[Callable[[FakeConsumer], None]] = field(default_factory=list)
    """Called (and dropped) at the start of the next `consume()` of any consumer, with that consumer."""
    fail_async_commits: int = 0
    """The next N asynchronous offset commits to be answered fail (`REQUEST_TIMED_OUT`, retriable): nothing of
    them is committed, and `on_commit` gets the error."""
    hold_async_commits: bool = False
    """While True, asynchronous offset commits stay in flight: `consume()` does not answer them (a synchronous
    commit or `close()` still does, as they wait for the commits sent before)."""


class InMemoryBroker:
    def __init__(self) -> None:
        self.topics: dict[str, list[list[Record]]] = {}
        self.groups: dict[str, Group] = {}
        self.epochs: dict[str, int] = {}
        self.faults = Faults()
        self.producers: list[FakeProducer] = []
        self.consumers: list[FakeConsumer] = []

    # -- topics ---------------------------------------------------------------------------------

    def create_topic(self, name: str, partitions: int = 1) -> None:
        self.topics[name] = [[] for _ in range(partitions)]

    def partition_for(self, topic: str, key: bytes | None) -> int:
        return zlib.crc32(key) % len(self.topics[topic]) if key else 0

    def append(self, topic: str, partition: int, record: Record) -> int:
        log = self.topics[topic][partition]
        log.append(record)
        return len(log) - 1

    def write(self, topic: str, values: Iterable[bytes | None], *, partition: int = 0, timestamp: int = 0) -> None:
        """Append plain (non-transactional) records, as an upstream producer would."""
        for value in values:
            self.append(topic, partition, Record(None, value, timestamp))

    def write_transaction(self, topic: str, values: Iterable[bytes | None], *, partition: int = 0) -> None:
        """Append records written in one committed transaction, followed by its commit marker."""
        self.write(topic, values, partition=partition)
        self.append(topic, partition, Record(None, None, 0, marker=True))

    def read(self, topic: str) -> list[FakeMessage]:
        """Every committed record of `topic`, as a `read_committed` reader sees it, partition by partition."""
        return [
            FakeMessage(topic, p, offset, record)
            for p, log in enumerate(self.topics[topic])
            for offset, record in enumerate(log)
            if not record.marker
        ]

    # -- clients --------------------------------------------------------------------------------

    def producer(self, config: dict[str, Any]) -> FakeProducer:
        producer = FakeProducer(self, config)
        self.producers.append(producer)
        return producer

    def consumer(self, config: dict[str, Any]) -> FakeConsumer:
        consumer = FakeConsumer(self, config)
        self.consumers.append(consumer)
        return consumer

    # -- what the assembly reads of a cluster before its clients start (`streaming.delivery.kafka_clients.Cluster`)

    def check_access(self, settings: Any, needs: Any) -> None:
        """Nothing is refused: this broker has no principals and no ACLs."""

    def smallest_message_limit(self, settings: Any) -> int | None:
        """No topic limit: producer batches take their default size."""
        return None

    def group(self, group_id: str) -> Group:
        return self.groups.setdefault(group_id, Group(self))

    def fence(self, transactional_id: str) -> None:
        """Bump the epoch of `transactional_id`, as another producer starting with it (or the coordinator
        timing out its transaction) does: the current producer is fenced."""
        self.epochs[transactional_id] = self.epochs.get(transactional_id, 0) + 1

    def refuse(self, topic: str, key: bytes | None, value: bytes | None, *, at_produce: bool) -> bool:
        refuse = self.faults.refuse_at_produce if at_produce else self.faults.refuse_at_delivery
        return refuse is not None and refuse(topic, key, value)


class Group:
    """A consumer group: committed offsets, and the members of its subscription with their assignment."""

    def __init__(self, broker: InMemoryBroker) -> None:
        self.broker = broker
        self.committed: dict[Partition, int] = {}
        self.metadata: dict[Partition, str | None] = {}
        """The metadata of each partition's last commit (None when it had none), as the broker keeps it."""
        self.members: list[FakeConsumer] = []
        self.generation = 0

    def commit(self, offsets: Iterable[TopicPartition]) -> None:
        for tp in offsets:
            self.committed[(tp.topic, tp.partition)] = tp.offset
            self.metadata[(tp.topic, tp.partition)] = tp.metadata

    def rebalance(self) -> None:
        """Deal the subscribed topics' partitions round-robin to the members; each applies its new share at
        its next `consume()`, resuming from the group's committed offsets."""
        self.generation += 1
        partitions = sorted(
            (topic, p)
            for topic in sorted({t for m in self.members for t in m.subscription})
            for p in range(len(self.broker.topics[topic]))
        )
        for i, member in enumerate(self.members):
            member.pending_assignment = {where for j, where in enumerate(partitions) if j % len(self.members) == i}


def _error(code: int, reason: str = "", **flags: bool) -> KafkaException:
    return KafkaException(KafkaError(code, reason or None, **flags))


class FakeProducer:
    def __init__(self, broker: InMemoryBroker, config: dict[str, Any]) -> None:
        self.broker = broker
        self.config = config
        self.transactional_id: str | None = config.get("transactional.id")
        self.epoch: int | None = None
        self.queue: list[tuple[str, bytes | None, bytes | None, int, Headers, Callable | None]] = []
        self.transaction: list[tuple[str, int, Record]] | None = None
        self.transaction_offsets: tuple[str, list[TopicPartition]] | None = None
        self.fatal: KafkaError | None = None

    def __len__(self) -> int:
        return len(self.queue)

    def produce(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int = -1,
        callback: Callable | None = None,
        on_delivery: Callable | None = None,
        timestamp: int = 0,
        headers: Headers = None,
    ) -> None:
        """`confluent_kafka.Producer.produce`'s signature (its arguments may be given by position); a partition
        other than -1 (any) is not implemented."""
        assert partition == -1, "the fake broker partitions by key only"
        on_delivery = on_delivery or callback
        faults = self.broker.faults
        if faults.on_produce is not None:
            faults.on_produce(topic, key, value)
        self._raise_if_fatal()
        if faults.queue_full:
            faults.queue_full -= 1
            raise BufferError("Local: Queue full")
        if self.transactional_id is not None and self.transaction is None:
            raise _error(KafkaError._STATE, "produce outside a transaction")
        if self.transaction is not None and faults.fail_transaction and faults.fail_transaction(topic, key, value):
            raise _error(KafkaError._STATE, "Local: Erroneous state: the transaction failed", txn_requires_abort=True)
        if self.broker.refuse(topic, key, value, at_produce=True):
            raise _error(KafkaError.MSG_SIZE_TOO_LARGE, "Broker: Message size too large")
        self.queue.append((topic, value, key, timestamp, headers, on_delivery))

    def poll(self, timeout: float = 0) -> int:
        return self._deliver()

    def flush(self, timeout: float = 0) -> int:
        self._deliver()
        return len(self.queue)

    def _deliver(self) -> int:
        queue, self.queue = self.queue, []
        faults = self.broker.faults
        only_errors = self.config.get("delivery.report.only.error", False)
        for topic, value, key, timestamp, headers, on_delivery in queue:
            report = on_delivery or self.config.get("on_delivery")
            error = None
            if self.broker.refuse(topic, key, value, at_produce=False):
                error = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "Broker: Message size too large")
            elif faults.time_out_deliveries:
                faults.time_out_deliveries -= 1
                error = KafkaError(KafkaError._MSG_TIMED_OUT, "Local: Message timed out")
            elif self.transaction is not None:
                partition = self.broker.partition_for(topic, key)
                self.transaction.append((topic, partition, Record(key, value, timestamp, headers)))
            elif self.transactional_id is None:
                partition = self.broker.partition_for(topic, key)
                self.broker.append(topic, partition, Record(key, value, timestamp, headers))
            else:  # the transaction was aborted while this was queued: purged
                error = KafkaError(KafkaError._PURGE_QUEUE, "Local: Purged in queue")
            if report is not None and (error is not None or not only_errors):
                report(error, FakeMessage(topic, 0, -1, Record(key, value, timestamp, headers)))
        return len(queue)

    # -- transactions ---------------------------------------------------------------------------

    def _raise_if_fatal(self) -> None:
        if self.fatal is None and self.epoch is not None and self.broker.epochs[self.transactional_id] != self.epoch:
            self.fatal = KafkaError(KafkaError.PRODUCER_FENCED, "Broker: Producer fenced", fatal=True)
        if self.fatal is not None:
            raise KafkaException(self.fatal)

    def init_transactions(self, timeout: float = 0) -> None:
        assert self.transactional_id is not None, "not a transactional producer"
        self.broker.fence(self.transactional_id)  # an older producer of the id is fenced
        self.epoch = self.broker.epochs[self.transactional_id]

    def begin_transaction(self) -> None:
        self._raise_if_fatal()
        if self.transaction is not None:
            raise _error(KafkaError._STATE, "a transaction is already open")
        self.transaction = []
        self.transaction_offsets = None

    def send_offsets_to_transaction(self, offsets: list[TopicPartition], metadata: Any, timeout: float = 0) -> None:
        self._raise_if_fatal()
        if self.transaction is None:
            raise _error(KafkaError._STATE, "no open transaction")
        self.transaction_offsets = (metadata.group_id, list(offsets))

    def commit_transaction(self, timeout: float = 0) -> None:
        self._raise_if_fatal()
        if self.transaction is None:
            raise _error(KafkaError._STATE, "no open transaction")
        faults = self.broker.faults
        if faults.abort_commits:
            faults.abort_commits -= 1
            raise _error(KafkaError._TIMED_OUT, "the transaction must be aborted", txn_requires_abort=True)
        self._deliver()
        touched = set()
        for topic, partition, record in self.transaction:
            self.broker.append(topic, partition, record)
            touched.add((topic, partition))
        for topic, partition in sorted(touched):
            self.broker.append(topic, partition, Record(None, None, 0, marker=True))
        if self.transaction_offsets is not None:
            group_id, offsets = self.transaction_offsets
            self.broker.group(group_id).commit(offsets)
        self.transaction = None
        _run_hooks(faults)

    def abort_transaction(self, timeout: float = 0) -> None:
        self._raise_if_fatal()
        self.transaction = None
        self.transaction_offsets = None
        self._deliver()  # what is still queued is purged


@dataclass(frozen=True)
class GroupMetadata:
    group_id: str
    generation: int


class FakeConsumer:
    def __init__(self, broker: InMemoryBroker, config: dict[str, Any]) -> None:
        self.broker = broker
        self.group_id: str = config["group.id"]
        self.group = broker.group(self.group_id)
        self.subscription: list[str] = []
        self.callbacks: dict[str, Callable] = {}
        self.assigned: dict[Partition, int] = {}  # partition -> position
        self.paused: set[Partition] = set()
        self.pending_assignment: set[Partition] | None = None
        self.broken: KafkaError | None = None
        self.closed = False
        self.on_commit: Callable[[KafkaError | None, list[TopicPartition]], None] | None = config.get("on_commit")
        self.commits_in_flight: list[list[TopicPartition]] = []
        self._commit_results: list[tuple[KafkaError | None, list[TopicPartition]]] = []  # answered, not yet served

    def subscribe(self, topics: list[str], **callbacks: Callable) -> None:
        self.subscription = list(topics)
        self.callbacks = callbacks
        self.group.members.append(self)
        self.group.rebalance()

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = {(tp.topic, tp.partition): self._start(tp) for tp in partitions}

    def _start(self, tp: TopicPartition) -> int:
        if tp.offset >= 0:
            return tp.offset
        return self.group.committed.get((tp.topic, tp.partition), 0)  # auto.offset.reset=earliest

    def _apply_rebalance(self) -> None:
        new, self.pending_assignment = self.pending_assignment, None
        if new is None:
            return
        revoked = [TopicPartition(*where) for where in sorted(set(self.assigned) - new)]
        added = sorted(new - set(self.assigned))
        if revoked and "on_revoke" in self.callbacks:
            self.callbacks["on_revoke"](self, revoked)
        for where in set(self.assigned) - new:
            del self.assigned[where]
            self.paused.discard(where)
        for where in added:
            self.assigned[where] = self.group.committed.get(where, 0)
        if added and "on_assign" in self.callbacks:
            self.callbacks["on_assign"](self, [TopicPartition(*where) for where in added])

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[FakeMessage]:
        assert not self.closed, "consume on a closed consumer"
        faults = self.broker.faults
        hooks, faults.on_consume = faults.on_consume, []
        for hook in hooks:
            hook(self)
        if not faults.hold_async_commits:
            self._answer_commits()
        self._serve_commit_results()
        if self.broken is None and faults.break_consumers:
            faults.break_consumers -= 1
            self.broken = KafkaError(KafkaError._FATAL, "Broker: Static consumer fenced by other consumer")
        if self.broken is not None:
            return [FakeMessage("", -1, -1, error=self.broken)]
        self._apply_rebalance()
        messages: list[FakeMessage] = []
        for (topic, partition), position in sorted(self.assigned.items()):
            if (topic, partition) in self.paused:
                continue
            log = self.broker.topics[topic][partition]
            while position < len(log) and len(messages) < num_messages:
                if not log[position].marker:
                    messages.append(FakeMessage(topic, partition, position, log[position]))
                position += 1
            self.assigned[(topic, partition)] = position
        return messages

    def seek(self, tp: TopicPartition) -> None:
        if (tp.topic, tp.partition) not in self.assigned:
            raise _error(KafkaError._STATE, f"Local: Erroneous state: {tp.topic}[{tp.partition}] is not assigned")
        self.assigned[(tp.topic, tp.partition)] = tp.offset

    def commit(self, offsets: list[TopicPartition], asynchronous: bool = True) -> list[TopicPartition] | None:
        assert not self.closed, "commit on a closed consumer"
        offsets = [_copy(tp) for tp in offsets]  # as sent: the caller may reuse its list
        if asynchronous:
            self.commits_in_flight.append(offsets)
            return None
        self._answer_commits()  # answered in order: those sent before this one first
        self.group.commit(offsets)
        _run_hooks(self.broker.faults)
        return offsets

    def _answer_commits(self) -> None:
        """The coordinator answers the asynchronous commits in flight, in order; results wait for the poll."""
        faults = self.broker.faults
        in_flight, self.commits_in_flight = self.commits_in_flight, []
        for offsets in in_flight:
            if faults.fail_async_commits:
                faults.fail_async_commits -= 1
                self._commit_results.append((KafkaError(KafkaError.REQUEST_TIMED_OUT, retriable=True), offsets))
                continue
            self.group.commit(offsets)
            self._commit_results.append((None, offsets))
            _run_hooks(faults)

    def _serve_commit_results(self) -> None:
        results, self._commit_results = self._commit_results, []
        if self.on_commit is not None:
            for error, offsets in results:
                self.on_commit(error, offsets)

    def committed(self, partitions: list[TopicPartition], timeout: float = -1) -> list[TopicPartition]:
        answers = []
        for tp in partitions:
            where = (tp.topic, tp.partition)
            metadata = self.group.metadata.get(where)
            offset = self.group.committed.get(where, OFFSET_INVALID)
            answers.append(TopicPartition(*where, offset, **({"metadata": metadata} if metadata is not None else {})))
        return answers

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> SimpleNamespace:
        """Cluster metadata as librdkafka gives it: a topic asked for and absent carries an error."""
        names = [topic] if topic is not None else list(self.broker.topics)
        topics = {}
        for name in names:
            if name in self.broker.topics:
                partitions = {p: SimpleNamespace(id=p) for p in range(len(self.broker.topics[name]))}
                topics[name] = SimpleNamespace(topic=name, partitions=partitions, error=None)
            else:
                error = KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, "Broker: Unknown topic or partition")
                topics[name] = SimpleNamespace(topic=name, partitions={}, error=error)
        return SimpleNamespace(topics=topics)

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [
            TopicPartition(tp.topic, tp.partition, self.assigned.get((tp.topic, tp.partition), OFFSET_INVALID))
            for tp in partitions
        ]

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(*where) for where in sorted(self.assigned)]

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float = -1, cached: bool = False) -> tuple[int, int]:
        return 0, len(self.broker.topics[tp.topic][tp.partition])

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused.update((tp.topic, tp.partition) for tp in partitions)

    def consumer_group_metadata(self) -> GroupMetadata:
        return GroupMetadata(self.group_id, self.group.generation)

    def close(self) -> None:
        if self.closed:
            return
        self._answer_commits()  # librdkafka waits for the commits in flight and serves their callbacks
        self._serve_commit_results()
        self.closed = True
        if self in self.group.members:
            self.group.members.remove(self)
            self.group.rebalance()


def _copy(tp: TopicPartition) -> TopicPartition:
    return TopicPartition(tp.topic, tp.partition, tp.offset, **({"metadata": tp.metadata} if tp.metadata else {}))


def _run_hooks(faults: Faults) -> None:
    hooks, faults.on_commit = faults.on_commit, []
    for hook in hooks:
        hook()
