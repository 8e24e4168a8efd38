"""What became of every source message, read back from Kafka: the figures each fault test prints and asserts.

A source message is identified by its (partition, offset). A processed record carries them in its
`source_partition`/`source_offset` fields, a dead letter in its `kdp.dlq.source.partition/offset` headers,
so the ledger needs nothing from the converter: it reads the three topics after the fact, the output with
`read_committed` as every reader of an exactly-once pipeline must. Every record's schema id is looked up in
the registry, which is what a real reader does to decode it.

`GroupProgress` watches the converter group's committed offsets from outside the group (no join, so no
rebalance): progress and catch-up are observed the same way in both delivery modes and for any process.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from kafka_io import read_all

from streaming.conversion.encoding import WireFormatDecoder, read_wire_header
from streaming.delivery.dead_letter import read_dead_letter_headers
from streaming.generator.producer import GenerateSummary
from streaming.settings import Settings

Position = tuple[int, int]


@dataclass(frozen=True)
class Ledger:
    """Accounting of one scenario. `processed + dead_letters + lost == messages_in` always holds."""

    messages_in: int
    processed: int
    """Source messages with at least one processed record."""
    dead_letters: int
    """Source messages with dead letters only."""
    duplicates: int
    """Outputs beyond the first for a source message (records and dead letters together)."""
    lost: int
    """Source messages with no output at all."""
    schema_ids: frozenset[int]

    def line(self, scenario: str, recovery_s: float | None, **extra: object) -> str:
        figures = {
            "messages in": self.messages_in,
            "processed": self.processed,
            "dead letters": self.dead_letters,
            "duplicates": self.duplicates,
            "lost": self.lost,
            "recovery s": "n/a" if recovery_s is None else round(recovery_s, 1),
            **extra,
        }
        return f"[fault] {scenario}: " + ", ".join(f"{name} {value}" for name, value in figures.items())

    def assert_nothing_lost(self, produced: GenerateSummary, delivery: str) -> None:
        """The bar of every fault test: all the traffic was delivered and is accounted for, none of it is lost,
        and exactly-once repeated none of it."""
        assert produced.ok and self.messages_in == produced.delivered
        assert self.lost == 0
        if delivery == "exactly-once":
            assert self.duplicates == 0


def account(settings: Settings) -> Ledger:
    """The ledger of `settings.source_topic` against its output and dead-letter topics, as they are now."""
    source = {(m[0], m[1]) for m in read_topic(settings.bootstrap, settings.source_topic)}
    outputs: Counter[Position] = Counter()
    with_record: set[Position] = set()
    schema_ids: set[int] = set()
    decoder = WireFormatDecoder(SchemaRegistryClient(settings.registry_config()))
    for _partition, _offset, value, _headers in read_topic(settings.bootstrap, settings.output_topic):
        record = decoder.decode(value)  # raises on anything that is not a record of a registered schema
        schema_ids.add(read_wire_header(value)[0])
        assert record["source_topic"] == settings.source_topic, record
        where = (record["source_partition"], record["source_offset"])
        outputs[where] += 1
        with_record.add(where)
    for _partition, _offset, _value, headers in read_topic(settings.bootstrap, settings.dlq_topic):
        found = read_dead_letter_headers(headers)
        outputs[(int(found["kdp.dlq.source.partition"]), int(found["kdp.dlq.source.offset"]))] += 1
    assert set(outputs) <= source, (
        f"outputs of messages that are not in the source: {sorted(set(outputs) - source)[:5]}"
    )
    return Ledger(
        messages_in=len(source),
        processed=len(with_record),
        dead_letters=len(set(outputs) - with_record),
        duplicates=sum(outputs.values()) - len(outputs),
        lost=len(source - set(outputs)),
        schema_ids=frozenset(schema_ids),
    )


def read_topic(bootstrap: str, topic: str) -> list[tuple[int, int, bytes, list]]:
    """(partition, offset, value, headers) of every committed message of `topic` up to its current end."""
    return [(m.partition(), m.offset(), m.value(), m.headers() or []) for m in read_all(bootstrap, topic, timeout=120)]


class GroupProgress:
    """The converter group's committed offsets on the source topic, and the topic's end, read from outside."""

    def __init__(self, settings: Settings) -> None:
        self.topic = settings.source_topic
        self.consumer = Consumer(
            {
                **settings.kafka_config(),
                "group.id": settings.group_id,
                "enable.auto.commit": False,
                # Offsets committed; not those pending in an open transaction (asking for "stable"
                # offsets would block until a killed converter's transaction is aborted).
                "isolation.level": "read_uncommitted",
            }
        )
        self.partitions = [TopicPartition(self.topic, p) for p in _partitions_once_known(self.consumer, self.topic)]
        self.last_answer = "not asked yet"
        """What the last `committed()` heard from the coordinator, for the message of a timeout."""

    def committed(self) -> int:
        """Committed offsets summed over partitions (a partition never committed counts 0); -1 when unknown."""
        try:
            found = self.consumer.committed(self.partitions, timeout=5)
        except KafkaException as error:  # the brokers are down or the coordinator moves: not knowing is an answer
            self.last_answer = f"error {error.args[0].str()}"
            return -1
        self.last_answer = ", ".join(
            f"[{tp.partition}] {tp.offset}" + (f" ({tp.error.str()})" if tp.error else "") for tp in found
        )
        if any(tp.error for tp in found):  # a partition's answer is an error, not an offset
            return -1
        return sum(max(tp.offset, 0) for tp in found)

    def end(self, timeout: float = 60.0) -> int:
        """The topic's end offsets summed; retried while leadership moves (a broker just died or came back)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return sum(self.consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in self.partitions)
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def wait_for_commit_beyond(self, committed: int, timeout: float) -> float:
        """Seconds until the group commits past `committed`; raises TimeoutError after `timeout`."""
        began = time.monotonic()
        while self.committed() <= committed:
            if time.monotonic() - began > timeout:
                raise TimeoutError(
                    f"{self.topic}: no commit beyond {committed} within {timeout:.0f} s (last: {self.last_answer})"
                )
            time.sleep(0.1)
        return time.monotonic() - began

    def wait_caught_up(self, timeout: float) -> float:
        """Seconds until the group's commits reach the topic's end (the end read once, now)."""
        began = time.monotonic()
        end = self.end()
        while self.committed() < end:
            if time.monotonic() - began > timeout:
                raise TimeoutError(f"{self.topic}: committed {self.committed()} of {end} within {timeout:.0f} s")
            time.sleep(0.2)
        return time.monotonic() - began

    def close(self) -> None:
        self.consumer.close()


def _partitions_once_known(consumer: Consumer, topic: str, timeout: float = 60.0) -> list[int]:
    """The partitions of `topic`, asked until a broker knows it.

    A topic just created is known to the controller at once but to each broker only when that broker has
    applied the new metadata. A broker that has not answers "unknown topic" with no partitions, and
    `list_topics` does not raise for it: a watcher built on that empty answer would read the committed
    offsets of no partition at all, sum 0 for ever, and see no commit however many the converter makes.
    """
    deadline = time.monotonic() + timeout
    while True:
        metadata = consumer.list_topics(topic, timeout=30).topics[topic]
        if metadata.error is None and metadata.partitions:
            return sorted(metadata.partitions)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{topic}: no broker knows its partitions after {timeout:.0f} s ({metadata.error})")
        time.sleep(0.2)
