"""Which dead letters a replay takes: the selection, its validation, and the verdict on one dead letter. Pure.

A replay reads the dead-letter topic from its start up to the end offsets it found when it started, and gives
each dead letter one of four verdicts:

- `SELECTED`: it matches every criterion given (reasons, source partitions, source offsets, failure-time
  window) and the limit is not reached yet: its original bytes go through the current transform again;
- `NOT_SELECTED`: it does not match, or the limit is reached: left alone (it stays on the topic);
- `EXHAUSTED`: it matches but was already replayed `max_replays` times: left alone, counted, so that a
  message that can never convert stops coming back;
- `OWN_OUTPUT`: it was written by this very replay run (refused again): never taken twice by the same run. (A
  run never reads past the ends it started with, even when resumed after a crash: `streaming.replay.progress`;
  this verdict is the guard that holds whatever the offsets say.)

Nothing is ever deleted: a dead letter not taken stays for the topic's retention, and one taken comes out
either as a processed record or as a new dead letter (see `streaming.replay.headers`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from streaming import records
from streaming.records import Reason

#: How often a dead letter may be replayed before replays leave it alone.
DEFAULT_MAX_REPLAYS = 3


class ReplayError(ValueError):
    """A replay was asked for something that cannot be done; the message says what and how to fix it."""


class Verdict(Enum):
    SELECTED = "selected"
    NOT_SELECTED = "not selected"
    EXHAUSTED = "replayed too often"
    OWN_OUTPUT = "written by this replay"


@dataclass(frozen=True)
class ReplaySelection:
    """The criteria of one replay; every criterion left as None matches every dead letter.

    `source_offsets` is a half-open range `[start, end)` of source offsets; `failed_since_ms` and
    `failed_until_ms` bound `kdp.dlq.failed_at` the same way (epoch milliseconds).
    """

    reasons: frozenset[str] | None = None
    source_partitions: frozenset[int] | None = None
    source_offsets: tuple[int, int] | None = None
    failed_since_ms: int | None = None
    failed_until_ms: int | None = None
    limit: int | None = None
    max_replays: int = DEFAULT_MAX_REPLAYS

    def validate(self, now_ms: int) -> None:
        """Raise `ReplayError` for a selection that is malformed or can only be empty."""
        known = {reason.value for reason in Reason}
        if self.reasons is not None:
            if not self.reasons:
                raise ReplayError("no reason given: name at least one, or leave the reasons out to take all")
            unknown = sorted(self.reasons - known)
            if unknown:
                raise ReplayError(f"unknown reason(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if self.source_partitions is not None and any(p < 0 for p in self.source_partitions):
            raise ReplayError("source partitions are numbers from 0")
        if self.source_offsets is not None:
            start, end = self.source_offsets
            if not 0 <= start < end:
                raise ReplayError(f"source offsets [{start}, {end}) select nothing: give 0 <= start < end")
        if self.failed_since_ms is not None and self.failed_since_ms > now_ms:
            raise ReplayError("the failure-time window starts in the future: no dead letter can be in it yet")
        if (
            self.failed_since_ms is not None
            and self.failed_until_ms is not None
            and self.failed_since_ms >= self.failed_until_ms
        ):
            raise ReplayError("the failure-time window is empty: 'since' must be before 'until'")
        if self.limit is not None and self.limit < 1:
            raise ReplayError(f"limit {self.limit} selects nothing: give at least 1, or no limit")
        if self.max_replays < 1:
            raise ReplayError(f"max replays {self.max_replays}: give at least 1")

    def replay_id(self, topic: str) -> str:
        """A stable name for this selection on `topic`: the same selection resumes the same progress.

        The limit is not part of it: it caps one run, not which dead letters match, so a run with `limit=100`
        and a later one without a limit share their progress (the second goes on after the first's 100).
        """
        text = repr(
            (
                topic,
                sorted(self.reasons or ()),
                sorted(self.source_partitions or ()),
                self.source_offsets,
                self.failed_since_ms,
                self.failed_until_ms,
                self.max_replays,
            )
        )
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def verdict(self, headers: Mapping[str, str], replay_id: str, taken: int) -> Verdict:
        """The verdict on one dead letter, given its decoded `kdp.dlq.*` headers, the id of the replay run
        asking (`kdp.dlq.replay.id` of what it writes) and how many this run has `taken` so far."""
        if headers.get(records.DLQ_REPLAY_ID) == replay_id:
            return Verdict.OWN_OUTPUT
        if not self._matches(headers):
            return Verdict.NOT_SELECTED
        if replay_count(headers) >= self.max_replays:
            return Verdict.EXHAUSTED
        if self.limit is not None and taken >= self.limit:
            return Verdict.NOT_SELECTED
        return Verdict.SELECTED

    def _matches(self, headers: Mapping[str, str]) -> bool:
        if self.reasons is not None and headers.get(records.DLQ_REASON) not in self.reasons:
            return False
        if self.source_partitions is not None and _int(headers, records.DLQ_SOURCE_PARTITION) not in (
            self.source_partitions
        ):
            return False
        if self.source_offsets is not None:
            offset = _int(headers, records.DLQ_SOURCE_OFFSET)
            if offset is None or not self.source_offsets[0] <= offset < self.source_offsets[1]:
                return False
        if self.failed_since_ms is not None or self.failed_until_ms is not None:
            failed_at = _int(headers, records.DLQ_FAILED_AT)
            if failed_at is None:
                return False
            if self.failed_since_ms is not None and failed_at < self.failed_since_ms:
                return False
            if self.failed_until_ms is not None and failed_at >= self.failed_until_ms:
                return False
        return True


def replay_count(headers: Mapping[str, str]) -> int:
    """How often the dead letter with these headers has been replayed already (0 for a first failure)."""
    return _int(headers, records.DLQ_REPLAY_COUNT) or 0


def _int(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name, "")
    return int(value) if value.isdigit() else None
