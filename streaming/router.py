"""The batch router: consumed messages in, outputs out, with their offsets and tallies. Pure: no I/O.

Every message becomes exactly one `Output`: its processed record on the output topic, or its dead letter (the
source value and key untouched, the reason in headers) on the dead-letter topic. The router converts a whole
batch with the batch form of one injectable `streaming.conversion.Convert` (`conversion.batch_form`: the
fused fast path's generated `convert_batch`, which loops over the messages itself) and works per batch, not
per message, on what it gets back: the records come as columns (`Outputs`: values and keys, produced as
they are), the tallies are counted per batch, offsets come from the runs of each partition, and only the
dead letters (a few percent) are built one by one.

Timestamps (issue 12): every output, processed record or dead letter, carries the batch's processing time
(`now_ms`, one clock reading per batch) as its Kafka timestamp, never the event time nor the source
record's timestamp. Time-based retention judges a segment by its records' timestamps, so an old event time
would let the broker delete a delivered record at once. The event time stays in the Avro record; the dead
letter keeps the source timestamp in its `kdp.dlq.source.timestamp` header.

A source listed in `refused` (its output was refused for good by the broker in an earlier attempt) is not
converted again: it is dead-lettered with `rejected_by_broker`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, overload

from confluent_kafka import TopicPartition

from streaming.conversion import Convert, ConvertBatch, Converted, Lanes, batch_form, one_by_one
from streaming.dead_letter import dead_letter_headers
from streaming.observer import Partition
from streaming.records import Reason, Rejection
from streaming.running_insights import RunningInsights

Origin = tuple[str, int, int]
"""A source message's coordinates: (topic, partition, offset)."""

Headers = list[tuple[str, str | bytes | None]]


class Message(Protocol):
    """What the router reads of a consumed message (`confluent_kafka.Message` has it all)."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def value(self) -> bytes | None: ...
    def key(self) -> bytes | None: ...
    def timestamp(self) -> tuple[int, int]: ...


class Output(NamedTuple):
    """A message to produce."""

    topic: str
    key: bytes | None
    value: bytes | None
    timestamp: int
    """Epoch milliseconds: the batch's processing time, for every output (see the module docstring)."""
    headers: Headers | None


class Outputs(Sequence[Output]):
    """A batch's outputs: its records as two columns (`values`, `keys`: all to `topic`, all stamped
    `timestamp`, no headers) and its dead letters as `Output`s, each with its source message.

    As a sequence it is one `Output` per source message, in the order consumed (built on first use: the
    careful redo and the tests read it so); the fast send produces the columns as they are
    (`streaming.delivery.ProducerDelivery.send`).
    """

    __slots__ = ("topic", "timestamp", "values", "keys", "dead_letters", "_messages", "_in_order")

    def __init__(
        self,
        topic: str,
        timestamp: int,
        values: list[bytes],
        keys: list[bytes],
        dead_letters: list[tuple[Message, Output]],
        messages: Sequence[Message],
    ) -> None:
        self.topic = topic
        self.timestamp = timestamp
        self.values = values
        self.keys = keys
        self.dead_letters = dead_letters
        self._messages = messages
        self._in_order: list[Output] | None = None

    def in_order(self) -> list[Output]:
        """One `Output` per source message, in the order consumed."""
        if self._in_order is None:
            dead = {id(message): output for message, output in self.dead_letters}
            records = zip(self.keys, self.values, strict=True)
            self._in_order = [
                dead.get(id(message)) or Output(self.topic, *next(records), self.timestamp, None)
                for message in self._messages
            ]
        return self._in_order

    def __len__(self) -> int:
        return len(self._messages)

    def __iter__(self) -> Iterator[Output]:
        return iter(self.in_order())

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence of the same outputs in the same order (a list, say)."""
        return isinstance(other, Sequence) and self.in_order() == list(other)

    __hash__ = None  # type: ignore[assignment]  # compared by contents, which may change

    @overload
    def __getitem__(self, index: int) -> Output: ...
    @overload
    def __getitem__(self, index: slice) -> list[Output]: ...
    def __getitem__(self, index: int | slice) -> Output | list[Output]:
        return self.in_order()[index]


class Origins(Sequence[Origin]):
    """The (topic, partition, offset) of each of `messages`, read on first use: only a careful redo needs them."""

    __slots__ = ("_messages", "_origins")

    def __init__(self, messages: Sequence[Message]) -> None:
        self._messages = messages
        self._origins: list[Origin] | None = None

    def _read(self) -> list[Origin]:
        if self._origins is None:
            self._origins = [(m.topic(), m.partition(), m.offset()) for m in self._messages]  # type: ignore[misc]
        return self._origins

    def __len__(self) -> int:
        return len(self._messages)

    def __iter__(self) -> Iterator[Origin]:
        return iter(self._read())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and self._read() == list(other)

    __hash__ = None  # type: ignore[assignment]

    @overload
    def __getitem__(self, index: int) -> Origin: ...
    @overload
    def __getitem__(self, index: slice) -> list[Origin]: ...
    def __getitem__(self, index: int | slice) -> Origin | list[Origin]:
        return self._read()[index]


@dataclass(slots=True)
class RoutedBatch:
    """A batch's outputs (`outputs[i]` is the output of the source message `origins[i]`) and bookkeeping.

    The router gives `Outputs` and `Origins` (built lazily from the batch's columns and messages); any other
    sequences do (the replay's router builds lists)."""

    outputs: Sequence[Output]
    origins: Sequence[Origin]
    first_offsets: dict[Partition, int]
    """Per partition, the batch's first offset: where a failed batch is redone from."""
    next_offsets: dict[Partition, int]
    """Per partition, the offset after the batch's last message: what a delivered batch commits."""
    tallies: RunningInsights
    bytes_in: int
    processed_at_ms: int
    oldest_source_ms: int | None
    newest_source_ms: int | None
    """The extreme Kafka timestamps of the first and last source message of each partition (None if none)."""
    lanes: Lanes
    """How many of the batch's messages each conversion engine decided (native, pure fast, reference)."""

    @property
    def consumed(self) -> int:
        return len(self.outputs)

    def commit_offsets(self) -> list[TopicPartition]:
        return [TopicPartition(topic, partition, offset) for (topic, partition), offset in self.next_offsets.items()]


class BatchRouter:
    """Routes batches for one output topic and one dead-letter topic with one `Convert`."""

    def __init__(self, convert: Convert, output_topic: str, dlq_topic: str) -> None:
        self.convert = convert
        self.convert_batch: ConvertBatch = batch_form(convert)
        self.output_topic = output_topic
        self.dlq_topic = dlq_topic

    def route(
        self, messages: Sequence[Message], now_ms: int, oldest_ms: int, refused: Mapping[Origin, str] | None = None
    ) -> RoutedBatch:
        """The outputs of `messages` (consumed messages without errors), converted at `now_ms`."""
        convert_batch = one_by_one(_refusing(self.convert, refused)) if refused else self.convert_batch
        converted = convert_batch(messages, now_ms, oldest_ms)
        tallies = RunningInsights()
        tallies.add_records(converted.device_types, converted.locales)
        dead_letters: list[tuple[Message, Output]] = []
        for message, rejection in converted.rejected:  # a few percent of a batch: one by one
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            headers = dead_letter_headers(rejection, topic, partition, offset, message.timestamp()[1], now_ms)  # type: ignore[arg-type]
            dead_letters.append((message, Output(self.dlq_topic, message.key(), message.value(), now_ms, headers)))
            tallies.add_rejection(rejection.reason)
        first: dict[Partition, Message] = {}
        last: dict[Partition, Message] = {}
        for message in converted.run_starts:
            first.setdefault((message.topic(), message.partition()), message)  # type: ignore[arg-type]
        for message in converted.run_ends:
            last[(message.topic(), message.partition())] = message  # type: ignore[index]
        stamps = [m.timestamp()[1] for m in (*first.values(), *last.values())]
        stamps = [stamp for stamp in stamps if stamp >= 0]
        return RoutedBatch(
            Outputs(self.output_topic, now_ms, converted.values, converted.keys, dead_letters, messages),
            Origins(messages),
            {where: m.offset() for where, m in first.items()},  # type: ignore[misc]
            {where: m.offset() + 1 for where, m in last.items()},  # type: ignore[operator]
            tallies,
            converted.bytes_in,
            now_ms,
            min(stamps) if stamps else None,
            max(stamps) if stamps else None,
            converted.lanes,
        )


def _refusing(convert: Convert, refused: Mapping[Origin, str]) -> Convert:
    """`convert`, except that a source refused for good by the broker is dead-lettered, not converted again."""

    def convert_unless_refused(
        value: bytes | None, topic: str, partition: int, offset: int, now_ms: int, oldest_ms: int
    ) -> Converted | Rejection:
        origin = (topic, partition, offset)
        if origin in refused:
            return Rejection(Reason.REJECTED_BY_BROKER, refused[origin])
        return convert(value, topic, partition, offset, now_ms, oldest_ms)

    return convert_unless_refused
