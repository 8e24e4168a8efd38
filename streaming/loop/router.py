"""The batch router: consumed messages in, outputs out, with their offsets and tallies. Pure: no I/O.

Every message becomes exactly one `Output`: its processed record on the output topic, or its dead letter (the
source value and key untouched, the reason in headers) on the dead-letter topic. The router converts a whole
batch with the batch form of one injectable `streaming.conversion.convert.Convert` (`conversion.batch_form`: the
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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from confluent_kafka import TopicPartition

from streaming.conversion.convert import Convert, ConvertBatch, Converted, Lanes, batch_form, one_by_one
from streaming.delivery.dead_letter import dead_letter_headers
from streaming.delivery.outputs import Message, Origin, Origins, Output, Outputs
from streaming.observe.observer import Partition
from streaming.observe.running_insights import RunningInsights
from streaming.records import Reason, Rejection


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
    consumed: int
    """How many source messages the batch holds: one output each (`len(outputs)` until `sent` drops them)."""

    def sent(self) -> RoutedBatch:
        """This batch once its outputs are with the producer: its bookkeeping alone, without the outputs and
        origins, which hold every message of the batch. A commit span keeps batches until it commits: an
        exactly-once transaction holds up to `MAX_BATCHES_PER_TRANSACTION` of them while catching up a backlog,
        and the Python objects of that many batches at once raise the process's memory for the rest of its life
        (CPython returns an arena of small objects only once every object in it is freed)."""
        return replace(self, outputs=(), origins=())

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
            len(messages),
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
