"""Replaying dead letters: the shell around the pure parts, for `kdp replay` and the Dagster job.

A replay takes the dead letters a `ReplaySelection` selects and sends each one's original bytes through the
current transform and encoder, in the converter's own loop (`streaming.loop.converter.Converter` with a
`streaming.replay.router.ReplayRouter`), with the converter's deliveries and range source:

- what converts goes to the output topic carrying the original source topic, partition and offset;
- what is refused again becomes a new dead letter with the replay headers (count + 1, previous reason, run);
- what is not selected, replayed too often, or written by this run stays where it is: nothing is deleted.

Progress lives in the selection's own consumer group on the dead-letter topic, `kdp-replay-<selection id>`,
with each run's end offsets in the commits' metadata (`streaming.replay.progress`): a run that dies, or that
its limit stopped, is resumed by the next start of the same selection, and never reads past the ends it
found when it started (so never its own output). In exactly-once (`KDP_DELIVERY`), each batch's outputs
and its commit are one transaction, under the transactional id `<KDP_TRANSACTIONAL_ID>-replay-<selection
id>`: a restart fences the process it replaces, and two runs of one selection cannot run at once.

Two functions, both checking everything before changing anything (`ReplayError` says what is wrong):

- `preview_replay`: the dry run. Reads what the next run would read and says what it would take, by
  reason, with samples. Writes nothing, commits nothing, registers nothing;
- `execute_replay`: the replay. Refuses a new run that would select nothing.

Known limit: each selection keeps its own progress. Two *different* selections that both match a dead letter
both take it (a repeat, never a loss: readers of the output deduplicate on the source triple); the same
selection run again never does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition

from streaming import access, records
from streaming.conversion.convert import Convert
from streaming.conversion.fast_path import converter_for
from streaming.conversion.transform import transform
from streaming.delivery.contract import Delivery
from streaming.delivery.dead_letter import read_dead_letter_headers
from streaming.delivery.kafka_clients import make_consumer, make_delivery
from streaming.loop.converter import Converter
from streaming.loop.pipeline import output_encoder
from streaming.loop.router import BatchRouter
from streaming.observe.observer import NO_OBSERVER, ConverterObserver
from streaming.replay.progress import PartitionState, ReplayRun, plan_run
from streaming.replay.router import (
    NOT_A_DEAD_LETTER,
    SAME_SOURCE,
    ReplayRouter,
    ReplaySummary,
    replayed_message,
)
from streaming.replay.selection import ReplayError, ReplaySelection, Verdict
from streaming.settings import Settings
from streaming.topic_reader import REQUEST_TIMEOUT_S, TopicReadError, partitions_of, read_ranges, reader_consumer

log = logging.getLogger(__name__)

SAMPLE_CHARS = 120
"""How much of a sample's original bytes a preview shows."""


@dataclass
class ReplayPreview:
    """What the next run of a selection would read and take (`preview_replay`)."""

    selection_id: str
    run: ReplayRun
    verdicts: Counter[str] = field(default_factory=Counter)
    """Every dead letter in the run's ranges by verdict (`Verdict.value`, or `NOT_A_DEAD_LETTER`)."""
    selected_by_reason: Counter[str] = field(default_factory=Counter)
    transform_accepts: int = 0
    """How many of the selected ones the current transform accepts (the broker may still refuse them)."""
    samples: list[dict[str, str]] = field(default_factory=list)

    @property
    def selected(self) -> int:
        return self.verdicts[Verdict.SELECTED.value]

    @property
    def read(self) -> int:
        return self.verdicts.total()


@dataclass
class ReplayResult:
    """What `execute_replay` did: the preview it checked first, and the run's summary."""

    preview: ReplayPreview
    summary: ReplaySummary

    @property
    def run(self) -> ReplayRun:
        return self.preview.run

    def figures(self) -> dict[str, int]:
        """The run's counts. `selected == processed + dead_lettered_again` always holds."""
        verdicts = self.summary.verdicts
        return {
            "read": self.summary.read,
            "selected": self.summary.taken,
            "processed": self.summary.processed,
            "dead_lettered_again": self.summary.dead_lettered,
            "not_selected": verdicts[Verdict.NOT_SELECTED.value],
            "replayed_too_often": verdicts[Verdict.EXHAUSTED.value],
            "own_output": verdicts[Verdict.OWN_OUTPUT.value],
            "same_source_taken": verdicts[SAME_SOURCE],
            "not_a_dead_letter": verdicts[NOT_A_DEAD_LETTER],
            "redone_batches": self.summary.redone_batches,
        }

    def line(self) -> str:
        f = self.figures()
        resumed = " (resumed)" if self.run.resumed else ""
        return (
            f"replay {self.run.run_id}{resumed}: read {f['read']}, selected {f['selected']}, processed "
            f"{f['processed']}, dead-lettered again {f['dead_lettered_again']}; left: not selected "
            f"{f['not_selected']}, replayed too often {f['replayed_too_often']}, same source taken "
            f"{f['same_source_taken']}"
        )


def replay_group(selection: ReplaySelection, topic: str) -> str:
    """The consumer group that holds a selection's progress on the dead-letter topic `topic`."""
    return f"kdp-replay-{selection.replay_id(topic)}"


def replay_instance(selection: ReplaySelection, topic: str) -> str:
    """The instance name of a selection's replays: transactional id `<KDP_TRANSACTIONAL_ID>-replay-<id>`."""
    return f"replay-{selection.replay_id(topic)}"


def replay_needs(settings: Settings, selection: ReplaySelection, *, execute: bool) -> list[access.Need]:
    """What a run of `selection` needs of the cluster, checked before it reads anything: the dry run reads
    dead letters and the selection's commits; the replay also writes both topics and commits in its group."""
    group = replay_group(selection, settings.dlq_topic)
    if not execute:
        return [
            access.topic(settings.dlq_topic, "READ"),
            access.topic(settings.output_topic, "DESCRIBE"),
            access.group(group, "DESCRIBE"),
        ]
    return [
        access.topic(settings.dlq_topic, "READ", "WRITE"),
        access.topic(settings.output_topic, "WRITE"),
        access.group(group, "READ"),
    ]


def preview_replay(
    settings: Settings, selection: ReplaySelection, *, samples: int = 3, now_ms: int | None = None
) -> ReplayPreview:
    """The dry run: what the next run of `selection` would take. Changes nothing anywhere."""
    now_ms = _now_ms() if now_ms is None else now_ms
    selection.validate(now_ms)
    access.check_access(settings, replay_needs(settings, selection, execute=False))
    consumer = _progress_consumer(settings, selection)
    try:
        _check_topics(consumer, settings)
        run = plan_for(consumer, settings.dlq_topic, selection, now_ms)
    finally:
        consumer.close()
    return _scan(settings, selection, run, samples, now_ms)


def execute_replay(
    settings: Settings,
    selection: ReplaySelection,
    *,
    stop: threading.Event | None = None,
    now_ms: int | None = None,
    observer: ConverterObserver = NO_OBSERVER,
    poll_timeout: float = 1.0,
    log_every: float = 10.0,
    max_failed_batches: int | None = None,
) -> ReplayResult:
    """Replay what `selection` selects (resuming its unfinished run, if any) until done, its limit is
    reached, or `stop` is set. `ReplayError` before anything changes when there is nothing to do."""
    now_ms = _now_ms() if now_ms is None else now_ms
    stop = stop or threading.Event()
    selection.validate(now_ms)
    access.check_access(settings, replay_needs(settings, selection, execute=True))
    topic = settings.dlq_topic
    group = {"group.id": replay_group(selection, topic)}
    consumer = make_consumer(settings, group)
    try:
        _check_topics(consumer, settings)
        # First the delivery: in exactly-once its start fences a crashed run and aborts its open transaction, so
        # the commits read next are stable.
        instance = replay_instance(selection, topic)
        transactional_id = f"{settings.transactional_id}-{instance}"
        with access.denials_named(settings, access.TRANSACTIONAL_ID, transactional_id, "WRITE"):
            delivery = make_delivery(settings, instance, observer=observer)
        run = plan_for(consumer, settings.dlq_topic, selection, now_ms)
        preview = _scan(settings, selection, run, 0, now_ms)
        if not run.resumed and preview.selected == 0:
            raise ReplayError(f"nothing to replay: {_describe_empty(preview)}; nothing was changed")
        encoder = output_encoder(settings)
        if not run.resumed:
            consumer.commit(offsets=run.start_commits(), asynchronous=False)
    except BaseException:
        consumer.close()
        raise
    log.info(
        "replay %s%s of %s: %d dead letters to take in %s",
        run.run_id,
        " (resumed)" if run.resumed else "",
        topic,
        preview.selected,
        ", ".join(f"{r.partition}:{r.start}-{r.end}" for r in run.ranges),
    )
    converter = replay_converter(
        settings,
        selection,
        run,
        consumer,
        delivery,
        converter_for(encoder, native=settings.native_fast_path),
        stop,
        new_consumer=lambda: make_consumer(settings, group),
        observer=observer,
        poll_timeout=poll_timeout,
        log_every=log_every,
    )
    try:
        converter.assign_ranges(run.ranges)
        converter.run(stop, max_failed_batches=max_failed_batches)
    finally:
        converter.close()
    assert isinstance(converter.summary, ReplaySummary)
    return ReplayResult(preview, converter.summary)


def replay_converter(
    settings: Settings,
    selection: ReplaySelection,
    run: ReplayRun,
    consumer: Consumer,
    delivery: Delivery,
    convert: Convert,
    stop: threading.Event,
    **options: Any,
) -> Converter:
    """The converter loop wired for a replay run: its router reads dead letters (`ReplayRouter`), its summary
    counts verdicts and sets `stop` when the selection's limit is reached. `options` go to `Converter`."""
    # The router's limit and same-source checks read the summary, which counts a batch when its transaction
    # commits: a transaction per batch (KDP_COMMIT_INTERVAL_MS=0) keeps them exact in exactly-once.
    settings = replace(settings, commit_interval_ms=0)
    summary = ReplaySummary(limit=selection.limit, limit_reached=stop)
    router = ReplayRouter(BatchRouter(convert, settings.output_topic, settings.dlq_topic), selection, run, summary)
    return Converter(settings, consumer, delivery, convert, router=router, summary=summary, **options)


# -- the parts ---------------------------------------------------------------------------------------------


def _now_ms() -> int:
    return int(time.time() * 1000)


def _progress_consumer(settings: Settings, selection: ReplaySelection) -> Consumer:
    """A consumer of the selection's group that only reads its commits (it never joins nor commits)."""
    return Consumer(
        {
            **settings.kafka_config(),
            "group.id": replay_group(selection, settings.dlq_topic),
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )


def _check_topics(consumer: Consumer, settings: Settings) -> None:
    for topic, role in ((settings.dlq_topic, "dead-letter topic"), (settings.output_topic, "output topic")):
        try:
            partitions_of(consumer, topic)
        except TopicReadError as error:
            raise ReplayError(
                f"the {role} {topic!r} does not exist or cannot be read ({error}); check KDP_DLQ_TOPIC and "
                "KDP_OUTPUT_TOPIC"
            ) from None


def plan_for(consumer: Consumer, topic: str, selection: ReplaySelection, now_ms: int) -> ReplayRun:
    """The run to do now on the dead-letter topic `topic`, from its watermarks and the commits of `consumer`'s
    group (the selection's, `replay_group`)."""
    partitions = partitions_of(consumer, topic)
    committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=REQUEST_TIMEOUT_S)
    states = []
    for tp in committed:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=REQUEST_TIMEOUT_S)
        states.append(PartitionState(tp.partition, low, high, tp.offset if tp.offset >= 0 else None, tp.metadata))
    return plan_run(topic, states, selection.replay_id(topic), now_ms)


def _scan(settings: Settings, selection: ReplaySelection, run: ReplayRun, samples: int, now_ms: int) -> ReplayPreview:
    """Read the run's ranges (read_committed, no group, no commit) and give each dead letter its verdict."""
    preview = ReplayPreview(selection.replay_id(settings.dlq_topic), run)
    oldest_ms = settings.oldest_event_ms(now_ms)
    sources: set[tuple[str, int, int]] = set()

    def visit(message: Message) -> str:
        headers = read_dead_letter_headers(message.headers())
        source = replayed_message(message, headers)
        if source is None:
            return NOT_A_DEAD_LETTER
        verdict = selection.verdict(headers, run.run_id, preview.selected)
        if verdict is Verdict.SELECTED:
            triple = (source.topic(), source.partition(), source.offset())
            if triple in sources:
                return SAME_SOURCE
            sources.add(triple)
            preview.verdicts[verdict.value] += 1  # the limit counts as it goes
            preview.selected_by_reason[headers.get(records.DLQ_REASON, "")] += 1
            result = transform(
                source.value(), source.topic(), source.partition(), source.offset(), now_ms, oldest_ms=oldest_ms
            )
            preview.transform_accepts += isinstance(result, dict)
            if len(preview.samples) < samples:
                preview.samples.append(_sample(message, headers))
            return "counted"
        return verdict.value

    consumer = reader_consumer(settings, "replay-preview")
    try:
        for read in read_ranges(consumer, run.ranges, visit):
            for answer, count in read.answers.items():
                if answer != "counted":
                    preview.verdicts[answer] += count
    finally:
        consumer.close()
    return preview


def _sample(message: Message, headers: dict[str, str]) -> dict[str, str]:
    value = message.value()
    if value is None or not value.strip():
        original = "(no value)" if value is None else f"(empty: {len(value)} bytes)"
    else:
        original = value[:SAMPLE_CHARS].decode("utf-8", "backslashreplace")
    failed_at = headers.get(records.DLQ_FAILED_AT, "")
    when = (
        datetime.fromtimestamp(int(failed_at) / 1000, UTC).isoformat(timespec="seconds") if failed_at.isdigit() else "?"
    )
    return {
        "dead_letter": f"{message.topic()}/{message.partition()}@{message.offset()}",
        "reason": headers.get(records.DLQ_REASON, ""),
        "detail": headers.get(records.DLQ_DETAIL, ""),
        "source": "/".join(
            headers.get(h, "?")
            for h in (records.DLQ_SOURCE_TOPIC, records.DLQ_SOURCE_PARTITION, records.DLQ_SOURCE_OFFSET)
        ),
        "failed_at": when,
        "replays": headers.get(records.DLQ_REPLAY_COUNT, "0"),
        "original": original,
    }


def _describe_empty(preview: ReplayPreview) -> str:
    if not preview.read:
        return "no dead letter since this selection's last run (the dead-letter topic holds nothing new)"
    left = ", ".join(f"{count} {verdict}" for verdict, count in preview.verdicts.most_common())
    return f"the selection matches none of the {preview.read} dead letters read ({left})"
