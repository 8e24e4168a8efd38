"""Reading one event-time window `[start, end)` of `processed-data` and of the dead-letter topic, by offsets.

Records and dead letters carry their processing time as their Kafka timestamp (retention runs from
delivery), not their event time, so the window is found by processing time. Which records the window
counts and which part of each partition it reads are decided in `placement` (its docstring has the
reasoning); in short, per partition of `processed-data`:

- the read starts at `offsets_for_times(start - 55 min)`: an event of the window was processed at most
  55 minutes before it happened (the transform refuses events further in the future);
- it stops at the first *delivered* record processed at or after `end + slack + margin`, or at the
  partition's end;
- a record whose event time is in the window and that was processed before `end + slack` is counted in the
  window; a record processed in the window whose own window had closed by then (late, or very old) is
  counted as *late* here; every other record read is left to the window that counts it.

Dead letters are counted by their failure hour (`kdp.dlq.failed_at`, also their Kafka timestamp): read from
`offsets_for_times(start)` to the first one failed at or after `end + margin`.

Why the upper bound is a delivered message and not `offsets_for_times(end + ...)`: transaction commit markers
occupy offsets and carry the time of the commit, and `offsets_for_times` answers markers too, so a marker
after the window's first transaction could end the read almost at once. Markers are never delivered, so
stopping on a delivered message avoids them. For the lower bound the same answer is only conservative (it
can start earlier, never later), since a marker is stamped after the records it commits.

Reading uses `streaming.topic_reader` (a read_committed consumer of its own, `assign()` only, ended by
position, not by a count). Records are handed over a batch at a time to a `record_tally` visitor (the native
kernel when it is built), which reads only the fields the insights use from each Avro body, by the layout
of its writer schema (`avro_layout`, fetched from the registry once per schema id), and folds each record
into the window's `WindowTally`; nothing is kept per record. Dead letters are few: they are visited one by
one, their headers read with `streaming.delivery.dead_letter`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message

from orchestration.insights.aggregates import NONE_LABEL, WindowTally
from orchestration.insights.avro_layout import LayoutCache
from orchestration.insights.placement import DEFAULT_SLACK_MS, Outcome, Window
from orchestration.insights.record_tally import record_visitor
from streaming.conversion.encoding import SchemaLookup
from streaming.delivery.dead_letter import failed_at_ms, read_dead_letter_headers
from streaming.offset_ranges import OffsetRange
from streaming.records import DLQ_REASON
from streaming.settings import Settings
from streaming.topic_reader import (
    DEFAULT_IDLE_TIMEOUT_S,
    RangeRead,
    current_ranges,
    read_range_batches,
    read_ranges,
    reader_consumer,
)

PURPOSE = "insights"
"""Reader group ids are `kdp-insights-<uuid>` (the secure stack grants Dagster that prefix)."""


@dataclass(frozen=True)
class PartitionScan:
    """What was read from one partition: the offsets read, and how many messages they delivered.

    `offsets` ends where reading stopped (the first message beyond the bound, or the partition's end).
    `scanned <= len(offsets)` always holds for a correct read (commit markers and aborted records take offsets
    but are not delivered); `scanned` counts counted, late, outside and undecodable messages.
    """

    offsets: OffsetRange
    scanned: int
    counted: int
    undecodable: int
    late: int = 0

    @property
    def span(self) -> int:
        return len(self.offsets)

    @classmethod
    def of(cls, read: RangeRead) -> PartitionScan:
        answers = read.answers
        return cls(
            read.offsets, read.delivered, answers[Outcome.COUNTED], answers[Outcome.UNDECODABLE], answers[Outcome.LATE]
        )

    @classmethod
    def of_batches(cls, offsets: OffsetRange, answers: Mapping[int, Counter[str]]) -> PartitionScan:
        return cls.of(RangeRead(offsets, answers.get(offsets.partition, Counter())))


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


def read_window(
    settings: Settings,
    registry: SchemaLookup,
    start_ms: int,
    end_ms: int,
    slack_ms: int = DEFAULT_SLACK_MS,
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
    native: bool | None = None,
) -> WindowScan:
    """Tally the window's processed records (on time by event time, late by arrival) and dead letters (by
    failure time). `[start_ms, end_ms)` must be one of the aligned windows of its length (an UTC hour).

    Topics are `settings.output_topic` and `settings.dlq_topic`. A record that cannot be decoded is counted
    as undecodable, not raised: the consistency check reports it, and one bad record does not hide an hour.
    Raises `streaming.topic_reader.TopicReadError` when a partition cannot be read to its end. `native`:
    the native kernel (True), the Python visitor (False), or the native one when it is built (None).
    """
    window = Window(start_ms, end_ms, slack_ms)
    visitor = record_visitor(window, LayoutCache(registry), native=native)
    dead_letter_counts: Counter[str] = Counter()

    def visit_dead_letter(message: Message) -> Outcome:
        headers = read_dead_letter_headers(message.headers())
        failed_ms = failed_at_ms(headers)
        if failed_ms is None:  # not written by the converter: its timestamp is all there is
            kind, failed_ms = message.timestamp()
            if kind == TIMESTAMP_NOT_AVAILABLE:
                return Outcome.OUTSIDE
        outcome = window.place_dead_letter(failed_ms)
        if outcome is Outcome.COUNTED:
            dead_letter_counts[headers.get(DLQ_REASON) or NONE_LABEL] += 1
        return outcome

    consumer = reader_consumer(settings, PURPOSE)
    try:
        records = read_range_batches(
            consumer,
            current_ranges(consumer, settings.output_topic, from_time_ms=window.records_from_ms),
            visitor.visit_batch,
            idle_timeout_s,
        )
        dead_letters = read_ranges(
            consumer,
            current_ranges(consumer, settings.dlq_topic, from_time_ms=start_ms),
            visit_dead_letter,
            idle_timeout_s,
        )
    finally:
        consumer.close()
    tally, answers = visitor.finish()
    tally.dead_letters.update(dead_letter_counts)
    return WindowScan(
        tally=tally,
        records=[PartitionScan.of_batches(offsets, answers) for offsets in records],
        dead_letters=[PartitionScan.of(read) for read in dead_letters],
    )


def newest_timestamp_ms(settings: Settings, topic: str, tail: int = 100) -> int | None:
    """The newest message timestamp among the last `tail` offsets of each partition; None if there is none.

    For `processed-data` the message timestamp is when the record was processed (or appended, on a
    `LogAppendTime` topic), so this says when the converter last delivered, without decoding. Reading a tail
    rather than asking the broker for the partition's maximum timestamp keeps transaction commit markers
    (stamped at commit time) out of the answer.
    """
    newest: int | None = None

    def visit(message: Message) -> str:
        nonlocal newest
        kind, timestamp_ms = message.timestamp()
        if kind != TIMESTAMP_NOT_AVAILABLE and (newest is None or timestamp_ms > newest):
            newest = timestamp_ms
        return "read"

    consumer = reader_consumer(settings, PURPOSE)
    try:
        read_ranges(consumer, current_ranges(consumer, topic, last=tail), visit)
    finally:
        consumer.close()
    return newest
