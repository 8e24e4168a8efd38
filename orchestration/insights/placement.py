"""Which hour counts a record, and which part of the log the reader of an hour must read to see it. Pure.

The converter stamps every processed record and every dead letter with its *processing* time (one clock read
per batch: the record's `processed_at`, the dead letter's `kdp.dlq.failed_at`), and the topics may declare
`LogAppendTime`, so the broker's append time (never earlier) replaces it. Time-based retention then runs from
delivery. Event time lives only in the record's `event_time`, so readers find an *event-time* hour by
processing time, using two bounds the pipeline guarantees:

- The transform refuses an event more than `MAX_FUTURE_MS` (55 minutes) after its processing time, so a
  record whose event time is in `[start, end)` was processed at or after `start - MAX_FUTURE_MS`.
- A record is appended to the log at most `LOG_ORDER_MARGIN_MS` after its processing time (the producer
  gives up on a send after librdkafka's `message.timeout.ms`, 300 s by default; an exactly-once
  transaction is aborted after 30 s). Output partitions interleave the batches of several converters, so
  processing times in a partition are in log order only to within that margin.

Placement, per record (event time `e`, processing time `p`, slack `s`):
- on time: `p < end of e's hour + s`: counted in `e`'s hour;
- late (or very old): otherwise: counted as *late* in the hour `p` falls in, its arrival hour.
So each record is counted exactly once, in one hour, whatever its event time (an event from 2001 is counted
as late in the hour the converter processed it, not lost outside the partitions). Dead letters are
counted by their failure hour, with no late class: the failure time is a processing time.

What the reader of `[start, end)` reads, per partition:
- from `offsets_for_times(start - MAX_FUTURE_MS)`: every earlier offset is stamped earlier, so was processed
  before that and can be neither on time in this hour nor late arriving in it;
- up to the first delivered record processed at or after `end + s + LOG_ORDER_MARGIN_MS`: any record after
  it in the log was appended later, so was processed at or after `end + s`: not on time here, and not
  arriving in this hour. (Processed at or after `end + s` alone would do if one converter wrote a
  partition in order; the margin absorbs the interleaving.)
Dead letters: from `offsets_for_times(start)` to the first one failed at or after `end + LOG_ORDER_MARGIN_MS`.

The slack must stay the same between runs, or an hour read with one slack and its neighbour with another
could count a record twice or not at all. Records that break the transform's bound (processed more than
`MAX_FUTURE_MS` before their event time, by a writer other than the converter) may be missed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from streaming.conversion.transform import MAX_FUTURE_MS
from streaming.topic_reader import BEYOND

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DEFAULT_SLACK_MS = 10 * MINUTE_MS
LOG_ORDER_MARGIN_MS = 5 * MINUTE_MS
"""How long after its processing time a record may be appended; see the module docstring."""


class Outcome(StrEnum):
    """What the reader of one window does with one message."""

    COUNTED = "counted"  # on time in this window: added to its insights
    LATE = "late"  # arrived in this window, but its event's window closed earlier: counted as late here
    OUTSIDE = "outside"  # read, but counted by another window
    UNDECODABLE = "undecodable"
    BEYOND = BEYOND  # past what this window reads: the partition's range ends before this message


@dataclass(frozen=True)
class Window:
    """The window `[start_ms, end_ms)`, one of the aligned windows of its length (an hour: one UTC hour)."""

    start_ms: int
    end_ms: int
    slack_ms: int = DEFAULT_SLACK_MS

    def __post_init__(self) -> None:
        length = self.end_ms - self.start_ms
        if length <= 0 or self.start_ms % length:
            raise ValueError(f"[{self.start_ms}, {self.end_ms}) is not one of the aligned windows of its length")
        if self.slack_ms < 0:
            raise ValueError(f"slack_ms must not be negative, not {self.slack_ms}")

    @property
    def length_ms(self) -> int:
        return self.end_ms - self.start_ms

    def start_of(self, timestamp_ms: int) -> int:
        """The start of the window of this length that holds `timestamp_ms`."""
        return timestamp_ms - timestamp_ms % self.length_ms

    @property
    def records_from_ms(self) -> int:
        """Processing time from which records are read: see the module docstring."""
        return self.start_ms - MAX_FUTURE_MS

    @property
    def records_stop_ms(self) -> int:
        """The read of records ends at the first one processed at or after this."""
        return self.end_ms + self.slack_ms + LOG_ORDER_MARGIN_MS

    @property
    def dead_letters_stop_ms(self) -> int:
        """The read of dead letters ends at the first one failed at or after this."""
        return self.end_ms + LOG_ORDER_MARGIN_MS

    def place_record(self, event_ms: int, processed_ms: int) -> Outcome:
        """COUNTED, LATE, OUTSIDE or BEYOND for a record of this event and processing time."""
        if processed_ms >= self.records_stop_ms:
            return Outcome.BEYOND
        event_window = self.start_of(event_ms)
        if processed_ms < event_window + self.length_ms + self.slack_ms:
            return Outcome.COUNTED if event_window == self.start_ms else Outcome.OUTSIDE
        return Outcome.LATE if self.start_of(processed_ms) == self.start_ms else Outcome.OUTSIDE

    def place_dead_letter(self, failed_ms: int) -> Outcome:
        """COUNTED, OUTSIDE or BEYOND for a dead letter that failed at `failed_ms`."""
        if failed_ms >= self.dead_letters_stop_ms:
            return Outcome.BEYOND
        return Outcome.COUNTED if self.start_ms <= failed_ms < self.end_ms else Outcome.OUTSIDE
