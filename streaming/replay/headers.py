"""The headers of a dead letter that a replay took and the converter refused again. Pure.

Such a dead letter is an ordinary dead letter (`streaming.delivery.dead_letter.dead_letter_headers`: the new reason,
the new failure time, and the *original* source topic/partition/offset/timestamp, since the replay hands the
router the source coordinates), plus three headers saying where it has been:

- `kdp.dlq.replay.count`: how many replays it has been through: the taken dead letter's count plus one;
- `kdp.dlq.replay.previous_reason`: the reason of the dead letter the replay took;
- `kdp.dlq.replay.id`: the replay run that wrote it, so that this run never takes it again.

Past `ReplaySelection.max_replays` a dead letter is no longer taken (`Verdict.EXHAUSTED`): nothing loops.
"""

from __future__ import annotations

from collections.abc import Mapping

from streaming import records
from streaming.delivery.outputs import Headers
from streaming.replay.selection import replay_count


def replayed_dead_letter_headers(new: Headers, taken: Mapping[str, str], run_id: str) -> Headers:
    """`new` (the headers the router gave the dead letter of the replayed bytes), without any replay header
    it may carry, followed by the replay headers of a dead letter that replaced `taken` (its decoded
    `kdp.dlq.*` headers) in run `run_id`."""
    kept = [(name, value) for name, value in new if name not in records.DLQ_REPLAY_HEADERS]
    return [
        *kept,
        (records.DLQ_REPLAY_COUNT, str(replay_count(taken) + 1).encode()),
        (records.DLQ_REPLAY_PREVIOUS_REASON, taken.get(records.DLQ_REASON, "").encode()),
        (records.DLQ_REPLAY_ID, run_id.encode()),
    ]
