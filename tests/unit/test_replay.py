"""Replaying dead letters in the converter loop, against the in-memory broker, in both delivery modes.

The story of each test starts as in production: the converter writes dead letters (an output topic that
refuses every record, or events it cannot convert); then a replay runs with the same parts `kdp replay
--execute` wires (`streaming.replay.run.plan_for`, the run's start commits, `replay_converter`), with the in-memory
broker's clients. The verdict: each selected dead letter comes out once (a processed record carrying the
original source triple, or a new dead letter with the replay headers); in exactly-once none twice, even
across a crash; what is not selected stays and is not touched.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from fakes.rig import NOW_MS, Rig, decode, login

from streaming import records
from streaming.conversion.convert import reference_converter
from streaming.delivery.dead_letter import read_dead_letter_headers
from streaming.delivery.kafka_clients import consumer_config
from streaming.loop.converter import Converter
from streaming.records import Reason
from streaming.replay.progress import ReplayRun
from streaming.replay.router import ReplaySummary
from streaming.replay.run import plan_for, replay_converter, replay_group
from streaming.replay.selection import ReplaySelection

MODES = ["at-least-once", "exactly-once"]
REFUSED = frozenset({Reason.REJECTED_BY_BROKER.value})


class Killed(BaseException):
    """Stands for `kill -9`: nothing after it runs, nothing is closed."""


def dead_letters_of_a_refusing_output_topic(mode: str, valid: int = 20, invalid: int = 5) -> Rig:
    """A rig whose converter ran while the output topic refused every record: `valid` dead letters
    `rejected_by_broker` and `invalid` ones `invalid_locale` (interleaved); the output topic then fixed."""
    rig = Rig(mode, batch_size=10)
    values = [login(i) for i in range(valid)]
    for k in range(invalid):
        values.insert(min(len(values), 5 * k + 4), login(1000 + k, valid=False))
    rig.broker.write(rig.settings.source_topic, values, timestamp=NOW_MS - 5000)
    rig.broker.faults.refuse_at_delivery = lambda topic, _key, _value: topic == rig.settings.output_topic
    converter = rig.converter("converter")
    converter.subscribe()
    converter.run(until_caught_up=True)
    converter.close()
    rig.broker.faults.refuse_at_delivery = None  # the fix: the output topic accepts records again
    assert rig.processed() == []
    return rig


REPLAY_CLOCK_MS = NOW_MS + 1000
"""The replay's processing time (every output's timestamp); each start of a replay on a rig begins 1 ms later
than the one before (a run's id is its selection's and its start time)."""


def replay(
    rig: Rig, selection: ReplaySelection, *, kill_at_batch: int | None = None
) -> tuple[ReplayRun, ReplaySummary]:
    """One start of `kdp replay --execute` on the rig: plan, first commits, the loop; `kill_at_batch`: die after
    that batch's output is sent and before it is committed."""
    settings = rig.settings
    starts = rig.__dict__.setdefault("replay_starts", [])
    starts.append(None)
    now_ms = NOW_MS + len(starts)
    group = {"group.id": replay_group(selection, settings.dlq_topic)}
    consumer = rig.broker.consumer({**consumer_config(settings), **group})
    delivery = rig.delivery(f"replay-{selection.replay_id(settings.dlq_topic)}")
    run = plan_for(consumer, settings.dlq_topic, selection, now_ms)
    if not run.resumed:
        consumer.commit(offsets=run.start_commits())
    if kill_at_batch is not None:
        complete, calls = delivery.complete, [0]

        def complete_or_die(*args: Any) -> None:
            calls[0] += 1
            if calls[0] == kill_at_batch:
                delivery.producer.flush()  # what was sent is out; the commit never happens
                raise Killed
            complete(*args)

        delivery.complete = complete_or_die  # type: ignore[method-assign]
    stop = threading.Event()
    converter: Converter = replay_converter(
        settings,
        selection,
        run,
        consumer,
        delivery,
        reference_converter(rig.encoder),
        stop,
        clock=lambda: REPLAY_CLOCK_MS / 1000,
        poll_timeout=0,
        new_consumer=lambda: rig.broker.consumer({**consumer_config(settings), **group}),
        pause=lambda _seconds: None,
    )
    converter.assign_ranges(run.ranges)
    try:
        converter.run(stop)
    except Killed:
        return run, converter.summary  # type: ignore[return-value]
    converter.close()
    return run, converter.summary  # type: ignore[return-value]


def processed_sources(rig: Rig) -> Counter[tuple[str, int, int]]:
    records_ = [decode(m.value()) for m in rig.processed()]
    return Counter((r["source_topic"], r["source_partition"], r["source_offset"]) for r in records_)


def dead_letter_sources(rig: Rig, reason: str | None = None) -> list[tuple[tuple[str, int, int], dict[str, str]]]:
    found = []
    for message in rig.dead_letters():
        headers = read_dead_letter_headers(message.headers())
        if reason is None or headers[records.DLQ_REASON] == reason:
            source = (
                headers[records.DLQ_SOURCE_TOPIC],
                int(headers[records.DLQ_SOURCE_PARTITION]),
                int(headers[records.DLQ_SOURCE_OFFSET]),
            )
            found.append((source, headers))
    return found


@pytest.mark.parametrize("mode", MODES)
def test_fix_then_replay_converts_each_refused_output_once_with_its_source_triple(mode):
    rig = dead_letters_of_a_refusing_output_topic(mode)
    refused = {source for source, _ in dead_letter_sources(rig, Reason.REJECTED_BY_BROKER.value)}
    assert len(refused) == 20
    dead_letters_before = len(rig.dead_letters())

    run, summary = replay(rig, ReplaySelection(reasons=REFUSED))

    assert not run.resumed
    assert processed_sources(rig) == Counter({source: 1 for source in refused})
    # (at-least-once repeats the invalid ones' dead letters: their batches were redone for the refused outputs)
    assert (summary.read, summary.taken, summary.processed, summary.dead_lettered) == (dead_letters_before, 20, 20, 0)
    assert summary.verdicts["not selected"] == dead_letters_before - 20
    assert len(rig.dead_letters()) == dead_letters_before, "nothing dead-lettered again, nothing deleted"
    assert {m.timestamp()[1] for m in rig.processed()} == {REPLAY_CLOCK_MS}, "stamped with the replay's time"
    # The same selection again: nothing new since, so nothing to take, and nothing is taken twice.
    again, summary = replay(rig, ReplaySelection(reasons=REFUSED))
    assert not again.resumed and again.run_id != run.run_id
    assert (summary.read, summary.taken) == (0, 0)
    assert processed_sources(rig) == Counter({source: 1 for source in refused})


@pytest.mark.parametrize("mode", MODES)
def test_refused_again_becomes_a_new_dead_letter_counting_its_replays_until_max_replays(mode):
    rig = dead_letters_of_a_refusing_output_topic(mode, valid=0, invalid=5)
    selection = ReplaySelection(reasons=frozenset({Reason.INVALID_LOCALE.value}), max_replays=2)
    originals = {source for source, _ in dead_letter_sources(rig)}

    first, summary = replay(rig, selection)
    assert (summary.taken, summary.processed, summary.dead_lettered) == (5, 0, 5)
    written = [(s, h) for s, h in dead_letter_sources(rig) if h.get(records.DLQ_REPLAY_ID) == first.run_id]
    assert {s for s, _ in written} == originals, "the new dead letters keep the original source triple"
    for _source, headers in written:
        assert headers[records.DLQ_REPLAY_COUNT] == "1"
        assert headers[records.DLQ_REPLAY_PREVIOUS_REASON] == Reason.INVALID_LOCALE.value
        assert headers[records.DLQ_REASON] == Reason.INVALID_LOCALE.value
        assert headers[records.DLQ_FAILED_AT] == str(REPLAY_CLOCK_MS)

    second, summary = replay(rig, selection)  # takes what the first run refused (count 1), not the originals
    assert (summary.read, summary.taken, summary.dead_lettered) == (5, 5, 5)
    counts = Counter(h.get(records.DLQ_REPLAY_COUNT, "0") for _s, h in dead_letter_sources(rig))
    assert counts == Counter({"0": 5, "1": 5, "2": 5})

    third, summary = replay(rig, selection)  # replayed twice already: left alone, nothing loops
    assert (summary.read, summary.taken, summary.verdicts["replayed too often"]) == (5, 0, 5)
    assert len(rig.dead_letters()) == 15 and rig.processed() == []


@pytest.mark.parametrize("mode", MODES)
def test_an_output_refused_again_during_the_replay_is_dead_lettered_once_more(mode):
    rig = dead_letters_of_a_refusing_output_topic(mode, valid=10, invalid=0)
    rig.broker.faults.refuse_at_delivery = lambda topic, _key, _value: topic == rig.settings.output_topic  # not fixed
    run, summary = replay(rig, ReplaySelection(reasons=REFUSED))
    assert (summary.taken, summary.processed, summary.dead_lettered) == (10, 0, 10)
    again = [h for _s, h in dead_letter_sources(rig) if h.get(records.DLQ_REPLAY_ID) == run.run_id]
    assert {h[records.DLQ_REPLAY_PREVIOUS_REASON] for h in again} == {Reason.REJECTED_BY_BROKER.value}
    if mode == "exactly-once":  # the failed attempts were aborted: one new dead letter each
        assert len(again) == 10
    else:
        assert len({h[records.DLQ_SOURCE_OFFSET] for h in again}) == 10


@pytest.mark.parametrize("mode", MODES)
def test_a_replay_killed_mid_way_resumes_its_run_and_loses_nothing(mode):
    rig = dead_letters_of_a_refusing_output_topic(mode, valid=40, invalid=10)
    refused = {source for source, _ in dead_letter_sources(rig, Reason.REJECTED_BY_BROKER.value)}
    selection = ReplaySelection(reasons=REFUSED)

    killed, summary = replay(rig, selection, kill_at_batch=3)
    assert summary.taken > 0 and len(processed_sources(rig)) < 40, "killed too late to prove anything"
    rig.broker.write(rig.settings.dlq_topic, [b"arrived after the run started"])  # not the run's to read
    resumed, _summary = replay(rig, selection)

    assert resumed.resumed and resumed.run_id == killed.run_id
    assert resumed.ranges[0].end == killed.ranges[0].end, "the resumed run keeps the ends it started with"
    sources = processed_sources(rig)
    assert set(sources) == refused, "nothing lost"
    if mode == "exactly-once":
        assert set(sources.values()) == {1}, "nothing twice"
    else:
        assert max(sources.values()) <= 2, "at most the killed batch again"


@pytest.mark.parametrize("mode", MODES)
def test_the_limit_stops_a_run_and_the_next_run_goes_on_from_there(mode):
    rig = dead_letters_of_a_refusing_output_topic(mode)
    first, summary = replay(rig, ReplaySelection(reasons=REFUSED, limit=7))
    assert summary.taken == 7 and summary.limit_reached.is_set()
    assert sum(processed_sources(rig).values()) == 7
    rest, summary = replay(rig, ReplaySelection(reasons=REFUSED))
    assert rest.resumed and rest.run_id == first.run_id
    assert summary.taken == 13
    assert set(processed_sources(rig).values()) == {1} and len(processed_sources(rig)) == 20


@pytest.mark.parametrize("mode", MODES)
def test_records_that_are_no_dead_letters_and_the_runs_own_output_are_left_alone(mode):
    rig = dead_letters_of_a_refusing_output_topic(mode, valid=3, invalid=0)
    rig.broker.write(rig.settings.dlq_topic, [b"a stray record without headers"])
    run, summary = replay(rig, ReplaySelection())
    assert (summary.read, summary.taken, summary.verdicts["not a dead letter"]) == (4, 3, 1)
    assert len(processed_sources(rig)) == 3


@pytest.mark.parametrize("mode", MODES)
def test_a_run_turns_each_source_message_into_one_output_whatever_its_dead_letters(mode):
    """Two dead letters of one message (an at-least-once converter's redo wrote both; or an original and a
    refusal of an earlier replay): the run takes the first and leaves the other."""
    rig = dead_letters_of_a_refusing_output_topic(mode, valid=6, invalid=0)
    log = rig.broker.topics[rig.settings.dlq_topic][0]
    log.extend([record for record in list(log) if not record.marker][:3])  # the first three, written again
    run, summary = replay(rig, ReplaySelection(reasons=REFUSED))
    assert (summary.taken, summary.verdicts["same source taken"]) == (6, 3)
    assert set(processed_sources(rig).values()) == {1} and len(processed_sources(rig)) == 6
