"""Reading one event-time window `[start, end)` of `processed-data` and of the dead-letter topic, by offsets.

How the window is found: the converter gives every processed record the Kafka timestamp of its `event_time`,
and every dead letter its source message's timestamp. Per partition:

- the read starts at `offsets_for_times(start - slack)`: the earliest offset stamped at or after that time;
- it stops at the first *delivered* message stamped at or after `end + slack`, or at the partition's end.

Events arrive a little out of order, so a record of the window may sit in the log after records already past
the window's end: the upper slack (10 minutes by default) is what catches those late ones. A record later
than that is not counted: that is the reader's stated tolerance, not a silent loss, and the scheduled run
starts no earlier than `end + slack`. Within what is read, only records whose decoded `event_time` (dead
letters: message timestamp) is inside the window are counted.

Why the upper bound is not `offsets_for_times(end + slack)` as well: transaction commit markers occupy offsets
and carry the broker's wall-clock time of the commit, not an event time. For any window older than its
commit, `offsets_for_times(end + slack)` answers the first marker after the window's *first* transaction
(seen on Kafka 4.3.1 with the exactly-once converter's kind of producer), so the read would stop almost at
once. For the lower bound the same answer is only conservative (it can start earlier, never later), since
a marker is stamped after the records it commits. Stopping on a delivered message avoids markers entirely,
as they are never delivered. One guard: a message stamped past `end + slack` only stops the read if it was
also *processed* after that time (`processed_at`, or the dead letter's `kdp.dlq.failed_at`), so a single
event from a client whose clock runs ahead does not cut off the rest of the hour.

How reading stops: the consumer is `read_committed` (no aborted or open-transaction records are counted) and
a partition is finished when the consumer's *position* reaches the end offset. Not when the last delivered
offset does, and not after a number of messages: commit markers are never delivered, so the last offset of a
range may never arrive as a message. The partition's end is taken once at the start (for a read_committed
consumer, the last stable offset), so a read never waits for data that is not there yet.

The consumer is assigned partitions directly (`assign`, no group membership, a throwaway group id, no
commits), so reading a window never disturbs the converter's group and can be repeated with the same
result. Records are decoded with fastavro using the writer schema fetched from the registry once per
schema id (Confluent wire format: magic byte 0, 4-byte big-endian schema id, Avro binary), and folded into a
`WindowTally` as they arrive; nothing is kept per record.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer, Message, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fastavro import parse_schema, schemaless_reader
from fastavro.types import Schema

from orchestration.insights.aggregates import MINUTE_MS, WindowTally, epoch_ms
from streaming.kafka_clients import make_consumer
from streaming.offset_ranges import OffsetRange
from streaming.records import DLQ_FAILED_AT, DLQ_REASON
from streaming.settings import Settings

DEFAULT_SLACK_MS = 10 * MINUTE_MS
REQUEST_TIMEOUT_S = 15.0
DEFAULT_IDLE_TIMEOUT_S = 30.0
"""A read fails when no partition's position has moved for this long (a broker gone, a transaction stuck)."""
_BATCH = 1000


class WindowReadError(RuntimeError):
    """A window could not be read completely; the message says which topic/partition and why."""


class UndecodableRecord(ValueError):
    """A `processed-data` value that is not a Confluent wire-format Avro record of a known schema."""


class Outcome(Enum):
    """What became of one message of a range."""

    COUNTED = "counted"  # inside the window, added to the tally
    OUTSIDE = "outside"  # read because of the slack or the log order, but not of the window
    UNDECODABLE = "undecodable"
    BEYOND = "beyond"  # past the read's upper bound: the partition's range ends before this message


@dataclass(frozen=True)
class PartitionScan:
    """What was read from one partition: the offsets read, and how many messages they delivered.

    `offsets` ends where reading stopped (the first message beyond the bound, or the partition's end).
    `scanned <= len(offsets)` always holds for a correct read (commit markers and aborted records take offsets
    but are not delivered); `scanned` counts counted, outside and undecodable messages.
    """

    offsets: OffsetRange
    scanned: int
    counted: int
    undecodable: int

    @property
    def span(self) -> int:
        return len(self.offsets)


@dataclass
class WindowScan:
    """The tally of a window and, per topic partition, what was read to build it."""

    tally: WindowTally
    records: list[PartitionScan]
    dead_letters: list[PartitionScan]

    @property
    def undecodable(self) -> int:
        return sum(scan.undecodable for scan in self.records)

    @property
    def scanned(self) -> int:
        return sum(scan.scanned for scan in self.records)


class WireFormatDecoder:
    """Confluent wire-format Avro -> dict, with each writer schema fetched from the registry once."""

    def __init__(self, registry: SchemaRegistryClient) -> None:
        self._registry = registry
        self._schemas: dict[int, Schema | None] = {}

    def decode(self, value: bytes | None) -> dict[str, Any]:
        if value is None or len(value) < 5 or value[0] != 0:
            raise UndecodableRecord("not in Confluent wire format (magic byte 0 and a schema id)")
        schema_id = int.from_bytes(value[1:5], "big")
        schema = self._schemas[schema_id] if schema_id in self._schemas else self._fetch(schema_id)
        if schema is None:
            raise UndecodableRecord(f"schema id {schema_id} is unknown to the registry")
        try:
            record = schemaless_reader(io.BytesIO(value[5:]), schema, None)
        except Exception as error:  # fastavro raises many kinds on corrupt input (EOFError, ValueError, ...)
            raise UndecodableRecord(f"not an Avro record of schema id {schema_id}: {error!r:.120}") from error
        if not isinstance(record, dict):
            raise UndecodableRecord(f"schema id {schema_id} is not a record schema")
        return record

    def _fetch(self, schema_id: int) -> Schema | None:
        """The parsed writer schema, or None when the registry says the id does not exist (cached either way).

        Any other registry failure (unreachable, 5xx) raises: that is an outage, not bad data.
        """
        try:
            schema_str = self._registry.get_schema(schema_id).schema_str
        except SchemaRegistryError as error:
            if error.http_status_code != 404:
                raise
            schema_str = None
        parsed = parse_schema(json.loads(schema_str)) if schema_str else None
        self._schemas[schema_id] = parsed
        return parsed


def throwaway_consumer(settings: Settings) -> Consumer:
    """A read_committed consumer for `assign()` only: a group id of its own, nothing committed or stored."""
    return make_consumer(
        settings,
        **{
            "group.id": f"kdp-insights-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
        },
    )


def partitions_of(consumer: Consumer, topic: str) -> list[int]:
    metadata = consumer.list_topics(topic, timeout=REQUEST_TIMEOUT_S).topics.get(topic)
    if metadata is None or metadata.error is not None or not metadata.partitions:
        why = metadata.error if metadata is not None and metadata.error is not None else "no partitions"
        raise WindowReadError(f"cannot read topic {topic!r}: {why}")
    return sorted(metadata.partitions)


def window_ranges(consumer: Consumer, topic: str, from_ms: int) -> list[OffsetRange]:
    """Per partition, from the earliest offset stamped at or after `from_ms` to the partition's current end.

    `offsets_for_times` answers -1 when nothing is stamped at or after the time: then the range is empty.
    The end is an upper limit only: `scan` stops earlier, on the first message past the window (see the
    module docstring for why `offsets_for_times` cannot find that offset).
    """
    partitions = partitions_of(consumer, topic)
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=REQUEST_TIMEOUT_S)[1] for p in partitions
    }
    starts = _offsets_at(consumer, topic, partitions, max(0, from_ms))
    return [OffsetRange(topic, p, ends[p] if starts[p] < 0 else min(starts[p], ends[p]), ends[p]) for p in partitions]


def tail_ranges(consumer: Consumer, topic: str, last: int) -> list[OffsetRange]:
    """Per partition, its last `last` offsets (fewer when the partition holds fewer)."""
    ranges = []
    for p in partitions_of(consumer, topic):
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=REQUEST_TIMEOUT_S)
        ranges.append(OffsetRange(topic, p, max(low, high - last), high))
    return ranges


def _offsets_at(consumer: Consumer, topic: str, partitions: Sequence[int], timestamp_ms: int) -> dict[int, int]:
    asked = [TopicPartition(topic, p, timestamp_ms) for p in partitions]
    answers = consumer.offsets_for_times(asked, timeout=REQUEST_TIMEOUT_S)
    for answer in answers:
        if answer.error is not None:
            raise WindowReadError(
                f"offsets_for_times({timestamp_ms}) failed on {topic}/{answer.partition}: {answer.error}"
            )
    return {answer.partition: answer.offset for answer in answers}


def scan(
    consumer: Consumer,
    ranges: Sequence[OffsetRange],
    visit: Callable[[Message], Outcome],
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
) -> list[PartitionScan]:
    """Deliver the messages of `ranges` to `visit`, once each, and say what each partition delivered.

    A partition is done when the consumer's position reaches its range's end (see the module docstring), or
    when `visit` answers BEYOND: the range then ends before that message, which is not counted as scanned.
    Raises WindowReadError when a message carries an error or no position moves for `idle_timeout_s`.
    """
    counts = {(r.topic, r.partition): {outcome: 0 for outcome in Outcome} for r in ranges}
    ends = {(r.topic, r.partition): r.end for r in ranges}
    pending = {(r.topic, r.partition) for r in ranges if r.end > r.start}
    if pending:
        consumer.incremental_assign([TopicPartition(r.topic, r.partition, r.start) for r in ranges if r.end > r.start])
    positions: dict[tuple[str, int], int] = {}
    last_progress = time.monotonic()
    try:
        while pending:
            for message in consumer.consume(_BATCH, timeout=0.5):
                error = message.error()
                if error is not None:
                    raise WindowReadError(f"reading {message.topic()}/{message.partition()} failed: {error}")
                where, offset = (message.topic(), message.partition()), message.offset()
                if where not in pending or offset is None or offset >= ends[where]:
                    continue  # fetched past the range (prefetch), or after a BEYOND of this batch: not ours
                outcome = visit(message)
                if outcome is Outcome.BEYOND:
                    ends[where] = offset
                else:
                    counts[where][outcome] += 1
            finished = []
            for answer in consumer.position([TopicPartition(t, p) for t, p in pending]):
                where = (answer.topic, answer.partition)
                if answer.offset != positions.get(where):
                    positions[where] = answer.offset
                    last_progress = time.monotonic()
                if answer.offset >= ends[where]:
                    finished.append(where)
            if finished:
                consumer.incremental_unassign([TopicPartition(t, p) for t, p in finished])
                pending.difference_update(finished)
            elif time.monotonic() - last_progress > idle_timeout_s:
                stuck = ", ".join(
                    f"{t}/{p} at {positions.get((t, p))} of end {ends[(t, p)]}" for t, p in sorted(pending)
                )
                raise WindowReadError(f"no progress for {idle_timeout_s:.0f} s: {stuck}")
    finally:
        if pending:
            consumer.incremental_unassign([TopicPartition(t, p) for t, p in pending])
    return [
        PartitionScan(
            offsets=OffsetRange(r.topic, r.partition, r.start, ends[(r.topic, r.partition)]),
            scanned=sum(counts[(r.topic, r.partition)].values()),
            counted=counts[(r.topic, r.partition)][Outcome.COUNTED],
            undecodable=counts[(r.topic, r.partition)][Outcome.UNDECODABLE],
        )
        for r in ranges
    ]


def read_window(
    settings: Settings,
    registry: SchemaRegistryClient,
    start_ms: int,
    end_ms: int,
    slack_ms: int = DEFAULT_SLACK_MS,
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
) -> WindowScan:
    """Tally the processed records (by event time) and dead letters (by timestamp) of `[start_ms, end_ms)`.

    Topics are `settings.output_topic` and `settings.dlq_topic`. A record that cannot be decoded is counted
    as undecodable, not raised: the consistency check reports it, and one bad record does not hide an hour.
    """
    tally = WindowTally(start_ms, end_ms)
    decoder = WireFormatDecoder(registry)
    stop_ms = end_ms + slack_ms

    def visit_record(message: Message) -> Outcome:
        try:
            record = decoder.decode(message.value())
            event_ms = epoch_ms(record["event_time"])
            processed_ms = epoch_ms(record.get("processed_at") or event_ms)
        except (UndecodableRecord, KeyError, TypeError, ValueError):
            return Outcome.UNDECODABLE
        if event_ms >= stop_ms and processed_ms >= stop_ms:
            return Outcome.BEYOND
        if not tally.contains(event_ms):
            return Outcome.OUTSIDE
        tally.add_record(record, event_ms)
        return Outcome.COUNTED

    def visit_dead_letter(message: Message) -> Outcome:
        kind, timestamp_ms = message.timestamp()
        failed_at = _header(message, DLQ_FAILED_AT) or ""
        failed_ms = int(failed_at) if failed_at.isdigit() else timestamp_ms
        if kind != TIMESTAMP_NOT_AVAILABLE and timestamp_ms >= stop_ms and failed_ms >= stop_ms:
            return Outcome.BEYOND
        if kind == TIMESTAMP_NOT_AVAILABLE or not tally.contains(timestamp_ms):
            return Outcome.OUTSIDE
        tally.add_dead_letter(_header(message, DLQ_REASON))
        return Outcome.COUNTED

    consumer = throwaway_consumer(settings)
    try:
        records = scan(
            consumer,
            window_ranges(consumer, settings.output_topic, start_ms - slack_ms),
            visit_record,
            idle_timeout_s,
        )
        dead_letters = scan(
            consumer,
            window_ranges(consumer, settings.dlq_topic, start_ms - slack_ms),
            visit_dead_letter,
            idle_timeout_s,
        )
    finally:
        consumer.close()
    return WindowScan(tally=tally, records=records, dead_letters=dead_letters)


def newest_timestamp_ms(settings: Settings, topic: str, tail: int = 100) -> int | None:
    """The newest message timestamp among the last `tail` offsets of each partition; None if there is none.

    For `processed-data` the message timestamp is the event time (the converter's contract), so this is the
    newest event the topic holds, without decoding. Reading a tail rather than asking the broker for the
    partition's maximum timestamp keeps transaction commit markers (stamped at commit time) out of the answer.
    """
    newest: int | None = None

    def visit(message: Message) -> Outcome:
        nonlocal newest
        kind, timestamp_ms = message.timestamp()
        if kind != TIMESTAMP_NOT_AVAILABLE and (newest is None or timestamp_ms > newest):
            newest = timestamp_ms
        return Outcome.COUNTED

    consumer = throwaway_consumer(settings)
    try:
        scan(consumer, tail_ranges(consumer, topic, tail), visit)
    finally:
        consumer.close()
    return newest


def _header(message: Message, name: str) -> str | None:
    """The text of a message's header `name` (the `kdp.dlq.*` headers of `streaming.records`), or None."""
    headers = message.headers() or []
    for key, value in headers.items() if isinstance(headers, dict) else headers:
        if key == name and value is not None:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return None
