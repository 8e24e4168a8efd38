"""What the converter reports at its batch boundaries, for whoever watches it (metrics, tests).

The converter loop and the delivery strategies call a `ConverterObserver` once per event below, never per
message, so an observer costs nothing on the hot path. Calls come from the converter's own thread, in the
order the events happen; an observer must return quickly and must not raise (what it raises propagates and
stops the converter, as any bug would).

Events:
- `batch_delivered(report)`: a batch's output is durable and its offsets committed (in exactly-once: the
  transaction that held it has committed; reported for each of its batches, after `transaction_committed`);
- `batch_redone(reason, first_offsets, learned)`: a batch failed and was rewound to `first_offsets`;
  `learned` is True when the attempt found outputs refused for good (the redo dead-letters them);
- `producer_replaced(reason, fenced)`: exactly-once replaced a broken (or fenced) producer;
- `consumer_replaced(reason)`: a consumer broken by a fatal error was replaced;
- `transaction_committed(batches)` / `transaction_aborted(reason)`: exactly-once only; `batches` is how many
  batches the transaction held (`KDP_COMMIT_INTERVAL_MS`);
- `batch_stage(stage, seconds)`: how long one stage of a batch took, one of `BATCH_STAGES`: `poll` (the wait
  for the batch's first message, then taking what is fetched), `convert` (routing), `produce` (handing the
  outputs to the producer), `flush` (waiting for their acknowledgements) and `commit` (the offset commit:
  at-least-once hands it over asynchronously, exactly-once commits its transaction). `flush` and `commit` are
  per span: once per transaction in exactly-once. Reported for every attempt, a failed one included;
- `offset_commit_failed(reason)`: at-least-once: an offset commit failed (its offsets are committed again by
  the next commit, see `streaming.delivery.at_least_once`).

Subclass `ConverterObserver` and override what you need: every method defaults to doing nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from streaming.conversion.convert import Lanes
from streaming.observe.running_insights import RunningInsights

Partition = tuple[str, int]
"""A source partition: (topic, partition)."""

BATCH_STAGES = ("poll", "convert", "produce", "flush", "commit")
"""The stages of a batch, in order (see `ConverterObserver.batch_stage`)."""


@dataclass(frozen=True, slots=True)
class BatchReport:
    """One delivered batch. `consumed == tallies.processed + tallies.dead_lettered`."""

    consumed: int
    bytes_in: int
    tallies: RunningInsights
    """Processed and dead-lettered counts of this batch, by device type, locale and reason."""
    processed_at_ms: int
    """The batch's one clock reading: the Kafka timestamp of every output it wrote."""
    oldest_source_ms: int | None
    """The smallest Kafka timestamp among the first and last source message of each partition in the batch
    (None when the source has none): `processed_at_ms - oldest_source_ms` is the batch's worst lag, exact for
    sources whose timestamps grow within a partition (LogAppendTime, or producers stamping at send time)."""
    newest_source_ms: int | None
    """The largest such timestamp: `processed_at_ms - newest_source_ms` is the batch's best lag."""
    seconds: float
    """From the batch's consume to its completion (conversion, delivery and commit)."""
    next_offsets: Mapping[Partition, int]
    """Per source partition, the offset after the batch's last message: what was committed."""
    careful: bool
    """True for a redo with one delivery report per message (slower), False for the fast path."""
    lanes: Lanes = Lanes(0, 0, 0)
    """How many of the batch's messages each conversion engine decided (native, pure fast, reference)."""


class ConverterObserver(Protocol):
    """Hooks at the converter's batch boundaries; see the module docstring. Every default does nothing."""

    def batch_delivered(self, report: BatchReport) -> None:
        return None

    def batch_redone(self, reason: str, first_offsets: Mapping[Partition, int], learned: bool) -> None:
        return None

    def producer_replaced(self, reason: str, fenced: bool) -> None:
        return None

    def consumer_replaced(self, reason: str) -> None:
        return None

    def transaction_committed(self, batches: int) -> None:
        return None

    def transaction_aborted(self, reason: str) -> None:
        return None

    def batch_stage(self, stage: str, seconds: float) -> None:
        return None

    def offset_commit_failed(self, reason: str) -> None:
        return None


class NoObserver(ConverterObserver):
    """Watches nothing: the default, so the converter never tests for a missing observer."""


NO_OBSERVER: ConverterObserver = NoObserver()
