"""Where a replay stands on the dead-letter topic, kept in its own consumer group. Pure.

A replay run reads each partition of the dead-letter topic from its selection's committed offset up to the
end it found when it started, never further: what arrives later (its own refusals among them) is for a later
run. That end must survive a crash, so the run writes it into the group's offset commits themselves: every
commit of the run (the first one, made before anything is replayed, and each batch's) carries the metadata
`kdp-replay run=<run id> end=<end offset>` for its partition. Committed offsets and their metadata are
written atomically with the batch's output (in exactly-once, inside the same transaction).

At start (`plan_run`):

- a partition whose commit carries a run's metadata with the committed offset still below that run's end
  belongs to an unfinished run (killed, or stopped by its limit): the new process resumes that run, with
  its id and its ends, from the committed offsets;
- otherwise a new run starts: id `<selection id>-<start time, ms>`, each partition from its committed offset
  (the low watermark for a selection never run, or when retention deleted what it had reached) up to its
  current end. `ReplayRun.start_commits` records those ends before anything is replayed.

A commit without that metadata (a range ended by transaction markers, committed by
`streaming.loop.sources.RangeSource`) is only ever made at a run's end: the partition is finished either way.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import TopicPartition

from streaming.offset_ranges import OffsetRange

_PREFIX = "kdp-replay"


@dataclass(frozen=True)
class PartitionState:
    """What the broker says of one dead-letter partition: its watermarks, and the selection group's commit."""

    partition: int
    low: int
    high: int
    committed: int | None
    """None when the group has committed nothing for the partition."""
    metadata: str | None = None


@dataclass(frozen=True)
class Progress:
    run_id: str
    end: int


@dataclass(frozen=True)
class ReplayRun:
    """One run of a selection: its id (written into the dead letters it refuses again) and its ranges."""

    run_id: str
    ranges: list[OffsetRange]
    resumed: bool

    @property
    def ends(self) -> dict[tuple[str, int], int]:
        return {(r.topic, r.partition): r.end for r in self.ranges}

    def commit(self, topic: str, partition: int, offset: int) -> TopicPartition:
        """The commit of `offset` on `partition`, carrying this run's progress metadata."""
        end = self.ends[(topic, partition)]
        return TopicPartition(topic, partition, offset, metadata=progress_metadata(self.run_id, end))

    def start_commits(self) -> list[TopicPartition]:
        """A new run's first commit: every range's start, with the run's ends (see the module docstring)."""
        return [self.commit(r.topic, r.partition, r.start) for r in self.ranges]


def progress_metadata(run_id: str, end: int) -> str:
    return f"{_PREFIX} run={run_id} end={end}"


def parse_progress(metadata: str | None) -> Progress | None:
    """The run and end written by `progress_metadata`, or None for any other metadata."""
    parts = (metadata or "").split(" ")
    if len(parts) != 3 or parts[0] != _PREFIX or not parts[1].startswith("run=") or not parts[2].startswith("end="):
        return None
    end = parts[2][len("end=") :]
    return Progress(parts[1][len("run=") :], int(end)) if end.isdigit() else None


def plan_run(topic: str, partitions: list[PartitionState], selection_id: str, now_ms: int) -> ReplayRun:
    """The run to do now: the unfinished one of the group's commits, or a new one (see the module)."""
    unfinished = {}
    for state in partitions:
        progress = parse_progress(state.metadata)
        if progress is not None and state.committed is not None and state.committed < progress.end:
            unfinished[state.partition] = (state, progress)
    if unfinished:
        run_id = max(progress.run_id for _state, progress in unfinished.values())  # one run at a time: all equal
        ranges = []
        for partition, (state, progress) in sorted(unfinished.items()):
            if progress.run_id != run_id:
                continue
            start = max(state.committed or 0, state.low)  # what retention deleted cannot be replayed
            ranges.append(OffsetRange(topic, partition, min(start, progress.end), progress.end))
        return ReplayRun(run_id, ranges, resumed=True)
    ranges = []
    for state in sorted(partitions, key=lambda s: s.partition):
        committed = state.committed
        # Below the low watermark: retention deleted it; above the end: the topic was recreated.
        fresh = committed if committed is not None and state.low <= committed <= state.high else state.low
        ranges.append(OffsetRange(topic, state.partition, fresh, state.high))
    return ReplayRun(f"{selection_id}-{now_ms}", ranges, resumed=False)
