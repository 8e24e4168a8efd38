"""The replay's router: a batch of dead letters in, the outputs of the selected ones out. Pure: no I/O.

It stands where the converter's `BatchRouter` stands in the converter loop (`streaming.loop.converter.Converter`
takes it as its `router`), so a replay runs the same loop, deliveries and sources as the converter: the same
batches, redos, careful sends, refusals for good, and at-least-once or exactly-once commits.

Per dead letter of a batch, in the order consumed:

1. its verdict (`streaming.replay.selection`): only `SELECTED` ones go on; the others are counted and left
   on the topic. A record without the dead-letter source headers is no dead letter of ours: left too;
2. a selected one is handed to the converter's `BatchRouter` as the *source message it was*
   (`ReplayedMessage`: the original topic, partition, offset and timestamp from its headers, its value and
   key untouched), so the current transform and encoder convert its original bytes, and what comes out
   carries the original source coordinates: a processed record's `source_*` fields, or a new dead letter's
   `kdp.dlq.source.*` headers. Downstream deduplication on the source triple stays valid;
3. a new dead letter also gets the replay headers (`streaming.replay.headers`): count + 1, previous reason,
   the run's id;
4. a run takes each source message once: a selected dead letter whose source triple it has taken already is
   left (`SAME_SOURCE`). The run remembers the triples it took in memory (about 100 bytes each), so after a
   crash the resumed run knows only its own; in exactly-once no converter writes two dead letters of one
   message, so this only matters for at-least-once, which allows a repeat.

Bookkeeping is the dead-letter topic's: `origins` are the dead letters' own coordinates (what a careful send
reports refusals by, and what the redo is handed back as `refused`), and first/next offsets cover every dead
letter of the batch, selected or not, so the commit moves the selection's group past all of them. The commits
carry the run's progress metadata (`streaming.replay.progress`).

The limit: the verdicts count what delivered batches took (`ReplaySummary.taken`), so a redone batch gets
the same verdicts. A batch ends just after the dead letter that reaches the limit: the rest of it is not
committed and is left for the next run.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from confluent_kafka import TopicPartition

from streaming import records
from streaming.delivery.dead_letter import read_dead_letter_headers
from streaming.delivery.outputs import Message, Origin
from streaming.loop.converter import ConverterSummary
from streaming.loop.router import BatchRouter, RoutedBatch
from streaming.observe.observer import Partition
from streaming.replay.headers import replayed_dead_letter_headers
from streaming.replay.progress import ReplayRun
from streaming.replay.selection import ReplaySelection, Verdict

NOT_A_DEAD_LETTER = "not a dead letter"
"""The verdict label of a record without the source headers of a dead letter: left alone."""
SAME_SOURCE = "same source taken"
"""The verdict label of a selected dead letter whose source message this run has already taken through another
dead letter (at-least-once converters can write two dead letters of one message; an earlier replay's refusal
and its original are two more): left alone, so that a run turns each source message into one output."""

_TIMESTAMP_CREATE_TIME = 1


class ReplayedMessage:
    """A dead letter seen as the source message it was: what `BatchRouter` reads of a consumed message."""

    __slots__ = ("_dead_letter", "_offset", "_partition", "_timestamp", "_topic")

    def __init__(self, dead_letter: Message, topic: str, partition: int, offset: int, timestamp_ms: int) -> None:
        self._dead_letter = dead_letter
        self._topic, self._partition, self._offset, self._timestamp = topic, partition, offset, timestamp_ms

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._dead_letter.value()

    def key(self) -> bytes | None:
        return self._dead_letter.key()

    def timestamp(self) -> tuple[int, int]:
        return (_TIMESTAMP_CREATE_TIME, self._timestamp)


def replayed_message(dead_letter: Message, headers: Mapping[str, str]) -> ReplayedMessage | None:
    """`dead_letter` as its source message, or None when its headers do not say where it came from."""
    topic = headers.get(records.DLQ_SOURCE_TOPIC)
    partition = headers.get(records.DLQ_SOURCE_PARTITION, "")
    offset = headers.get(records.DLQ_SOURCE_OFFSET, "")
    timestamp = headers.get(records.DLQ_SOURCE_TIMESTAMP, "")
    if not topic or not partition.isdigit() or not offset.isdigit():
        return None
    stamp = int(timestamp) if timestamp.lstrip("-").isdigit() else -1
    return ReplayedMessage(dead_letter, topic, int(partition), int(offset), stamp)


@dataclass(slots=True)
class ReplayBatch(RoutedBatch):
    """A routed batch of dead letters: `outputs[i]` replays the dead letter at `origins[i]`."""

    run: ReplayRun
    verdicts: Counter[str]
    """Every dead letter of the batch by verdict (`Verdict.value`, or `NOT_A_DEAD_LETTER`)."""
    taken_reasons: Counter[str]
    """The selected dead letters by the reason they had."""
    taken_sources: list[Origin]
    """The source triples of the selected dead letters."""

    @property
    def taken(self) -> int:
        return self.verdicts[Verdict.SELECTED.value]

    def commit_offsets(self) -> list[TopicPartition]:
        return [self.run.commit(topic, partition, offset) for (topic, partition), offset in self.next_offsets.items()]


@dataclass
class ReplaySummary(ConverterSummary):
    """What a replay run did. `consumed` counts the dead letters it took (each became one output); `read`
    counts every dead letter it read. `processed` converted, `dead_lettered` refused again."""

    read: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    taken_reasons: Counter[str] = field(default_factory=Counter)
    taken_sources: set[Origin] = field(default_factory=set)
    limit: int | None = None
    limit_reached: threading.Event = field(default_factory=threading.Event)
    """Set when the run has taken `limit` dead letters: the loop stops before its next batch."""

    @property
    def taken(self) -> int:
        return self.verdicts[Verdict.SELECTED.value]

    def add(self, batch: RoutedBatch) -> None:
        super().add(batch)
        assert isinstance(batch, ReplayBatch)
        self.read += batch.verdicts.total()
        self.verdicts.update(batch.verdicts)
        self.taken_reasons.update(batch.taken_reasons)
        self.taken_sources.update(batch.taken_sources)
        if self.limit is not None and self.taken >= self.limit:
            self.limit_reached.set()


class ReplayRouter:
    """Routes batches of dead letters for one selection and run through the converter's `BatchRouter`."""

    def __init__(self, router: BatchRouter, selection: ReplaySelection, run: ReplayRun, summary: ReplaySummary):
        self.router = router
        self.selection = selection
        self.run = run
        self.summary = summary

    def route(
        self, messages: Sequence[Message], now_ms: int, oldest_ms: int, refused: Mapping[Origin, str] | None = None
    ) -> ReplayBatch:
        selection, run_id, limit = self.selection, self.run.run_id, self.selection.limit
        taken = self.summary.taken
        verdicts: Counter[str] = Counter()
        taken_reasons: Counter[str] = Counter()
        taken_before = self.summary.taken_sources
        taken_sources: list[Origin] = []
        chosen: list[ReplayedMessage] = []
        chosen_headers: list[dict[str, str]] = []
        origins: list[Origin] = []
        source_refused: dict[Origin, str] = {}
        first: dict[Partition, int] = {}
        after: dict[Partition, int] = {}
        for message in messages:
            if limit is not None and taken >= limit:
                break  # the rest of the batch is not committed: the next run starts there
            # The stubs say Optional; a consumed message without an error has all three.
            where: Partition = (message.topic(), message.partition())  # type: ignore[assignment]
            offset: int = message.offset()  # type: ignore[assignment]
            first.setdefault(where, offset)
            after[where] = offset + 1
            headers = read_dead_letter_headers(message.headers())  # type: ignore[attr-defined]
            source = replayed_message(message, headers)
            if source is None:
                verdicts[NOT_A_DEAD_LETTER] += 1
                continue
            verdict = selection.verdict(headers, run_id, taken)
            if verdict is not Verdict.SELECTED:
                verdicts[verdict.value] += 1
                continue
            triple = (source.topic(), source.partition(), source.offset())
            if triple in taken_before or triple in taken_sources:
                verdicts[SAME_SOURCE] += 1
                continue
            verdicts[verdict.value] += 1
            taken_sources.append(triple)
            taken += 1
            taken_reasons[headers.get(records.DLQ_REASON, "")] += 1
            chosen.append(source)
            chosen_headers.append(headers)
            origin = (where[0], where[1], offset)
            origins.append(origin)
            if refused and origin in refused:
                source_refused[triple] = refused[origin]
        routed = self.router.route(chosen, now_ms, oldest_ms, source_refused)
        dlq_topic = self.router.dlq_topic
        outputs = [
            output._replace(headers=replayed_dead_letter_headers(output.headers or [], taken_from, run_id))
            if output.topic == dlq_topic
            else output
            for output, taken_from in zip(routed.outputs, chosen_headers, strict=True)
        ]
        return ReplayBatch(
            outputs,
            origins,
            first,
            after,
            routed.tallies,
            routed.bytes_in,
            now_ms,
            routed.oldest_source_ms,
            routed.newest_source_ms,
            routed.lanes,
            len(outputs),
            run=self.run,
            verdicts=verdicts,
            taken_reasons=taken_reasons,
            taken_sources=taken_sources,
        )
