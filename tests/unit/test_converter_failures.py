"""Every redo, careful, fencing and replacement path of the converter, against the in-memory broker.

Both delivery modes run each scenario where it applies. The verdict is the same as the fault tests': every
source message has an output (a processed record or a dead letter); in exactly-once none has two. At-least-once
may repeat the outputs of a batch that failed, never those of other batches. The real-stack fault tests
(`tests/faults`, `make faults`) show that the real broker agrees with this one.
"""

from __future__ import annotations

import pytest
from fakes.rig import NOW_MS, Rig, login, user_id

from streaming.delivery.dead_letter import read_dead_letter_headers
from streaming.delivery.exactly_once import TransactionalIdTaken
from streaming.loop.converter import ConversionStalled, UndeliverableMessage
from streaming.offset_ranges import OffsetRange
from streaming.records import DLQ_REASON, DLQ_SOURCE_TIMESTAMP, Reason

MODES = ["at-least-once", "exactly-once"]


def fill(rig: Rig, count: int, *, partition: int = 0, invalid_every: int = 0) -> None:
    values = [login(partition * 1000 + i, valid=not invalid_every or i % invalid_every) for i in range(count)]
    rig.broker.write(rig.settings.source_topic, values, partition=partition, timestamp=NOW_MS - 5000)


def run(rig: Rig, instance: str = "a", **options: object):
    converter = rig.converter(instance)
    converter.subscribe()
    summary = converter.run(until_caught_up=True, **options)  # type: ignore[arg-type]
    converter.close()
    return summary


def assert_each_source_once(rig: Rig) -> None:
    outputs = rig.outputs_per_source()
    assert set(outputs) == rig.source_offsets(), "a source message has no output"
    assert [source for source, n in outputs.items() if n > 1] == [], "a source message has two outputs"


def assert_nothing_lost_and_only_batch_repeated(rig: Rig, mode: str, at_most: int) -> None:
    """Every source has an output; in exactly-once exactly one, in at-least-once at most `at_most` repeated."""
    outputs = rig.outputs_per_source()
    assert set(outputs) == rig.source_offsets(), "a source message has no output"
    repeated = [source for source, n in outputs.items() if n > 1]
    if mode == "exactly-once":
        assert repeated == []
    else:
        assert len(repeated) <= at_most


def committed(rig: Rig) -> dict[tuple[str, int], int]:
    return rig.broker.group(rig.settings.group_id).committed


@pytest.mark.parametrize("mode", MODES)
def test_every_message_becomes_one_output_stamped_with_the_processing_time(mode):
    rig = Rig(mode, partitions=2)
    fill(rig, 23, partition=0, invalid_every=5)
    fill(rig, 17, partition=1, invalid_every=5)
    summary = run(rig)
    assert_each_source_once(rig)
    assert (summary.consumed, summary.processed, summary.dead_lettered) == (40, 31, 9)
    assert committed(rig) == {("logins", 0): 23, ("logins", 1): 17}
    assert {m.timestamp()[1] for m in rig.processed() + rig.dead_letters()} == {NOW_MS}
    assert {read_dead_letter_headers(m.headers())[DLQ_SOURCE_TIMESTAMP] for m in rig.dead_letters()} == {
        str(NOW_MS - 5000)
    }
    assert sum(r.consumed for r in rig.observer.reports) == 40
    assert {(r.oldest_source_ms, r.newest_source_ms) for r in rig.observer.reports} == {(NOW_MS - 5000,) * 2}


@pytest.mark.parametrize("at_produce", [False, True], ids=["refused-by-broker", "refused-by-client"])
@pytest.mark.parametrize("mode", MODES)
def test_a_record_refused_for_good_alone_is_dead_lettered(mode, at_produce):
    rig = Rig(mode, batch_size=10)
    fill(rig, 30)
    refused_key = user_id(14).encode()  # in the second batch
    refuse = lambda topic, key, _value: topic == rig.settings.output_topic and key == refused_key  # noqa: E731
    if at_produce:
        rig.broker.faults.refuse_at_produce = refuse
    else:
        rig.broker.faults.refuse_at_delivery = refuse

    summary = run(rig)

    [dead_letter] = rig.dead_letters()
    assert dead_letter.value() == login(14)
    assert read_dead_letter_headers(dead_letter.headers())[DLQ_REASON] == Reason.REJECTED_BY_BROKER
    assert (summary.processed, summary.dead_lettered) == (29, 1)
    # At-least-once may repeat the refused record's batch companions (sent by the failed attempts), no others.
    assert_nothing_lost_and_only_batch_repeated(rig, mode, at_most=9)
    assert all(source[1] in range(10, 20) for source, n in rig.outputs_per_source().items() if n > 1)
    assert [learned for kind, learned in rig.observer.events if kind == "redone"] == [False, True]


@pytest.mark.parametrize("mode", MODES)
def test_a_record_whose_dead_letter_is_refused_too_stops_the_converter_naming_it(mode):
    rig = Rig(mode)
    fill(rig, 5)
    rig.broker.faults.refuse_at_delivery = lambda _topic, key, value: key == user_id(3).encode() or value == login(3)
    with pytest.raises(UndeliverableMessage, match=r"logins\[0\] offset 3\b"):
        run(rig)


@pytest.mark.parametrize(
    ("mode", "fault"),
    [
        ("at-least-once", "time_out_deliveries"),  # the first batch's first delivery times out
        ("exactly-once", "time_out_deliveries"),  # ... which dooms the transaction: aborted, the rest purged
        ("exactly-once", "abort_commits"),  # the first transaction must be aborted at its commit
    ],
)
def test_a_batch_that_fails_mid_way_is_redone_without_a_duplicate_in_exactly_once(mode, fault):
    rig = Rig(mode, batch_size=10)
    fill(rig, 30)
    setattr(rig.broker.faults, fault, 1)
    summary = run(rig)
    assert_nothing_lost_and_only_batch_repeated(rig, mode, at_most=9)
    assert summary.redone_batches == 1 and summary.consumed == 30
    assert rig.observer.count("redone") == 1
    if mode == "exactly-once":
        assert rig.observer.count("aborted") == 1


def test_a_fenced_producer_is_replaced_once_and_nothing_repeats():
    rig = Rig("exactly-once", batch_size=10)
    fill(rig, 30)
    rig.broker.faults.on_commit.append(lambda: rig.broker.fence("converter-a"))  # after the first batch
    summary = run(rig)
    assert_each_source_once(rig)
    assert summary.consumed == 30
    assert rig.observer.count("producer_replaced") == 1
    assert ("producer_replaced", True) in rig.observer.events


def test_a_producer_fenced_again_soon_after_stops_with_transactional_id_taken():
    rig = Rig("exactly-once", batch_size=10)
    fill(rig, 30)
    fence = lambda: rig.broker.fence("converter-a")  # noqa: E731
    rig.broker.faults.on_commit.append(lambda: (fence(), rig.broker.faults.on_commit.append(fence)))
    with pytest.raises(TransactionalIdTaken, match="converter-a"):
        run(rig)
    assert_nothing_repeated = [s for s, n in rig.outputs_per_source().items() if n > 1]
    assert assert_nothing_repeated == []
    assert rig.observer.count("producer_replaced") == 1


@pytest.mark.parametrize("mode", MODES)
def test_a_consumer_broken_by_a_fatal_error_is_replaced_and_resumes_at_the_commit(mode):
    rig = Rig(mode, partitions=2, batch_size=10)
    fill(rig, 25, partition=0)
    fill(rig, 25, partition=1)
    rig.broker.faults.on_commit.append(lambda: setattr(rig.broker.faults, "break_consumers", 1))
    summary = run(rig)
    assert_each_source_once(rig)
    assert summary.consumed == 50
    assert rig.observer.count("consumer_replaced") == 1
    assert sum(1 for c in rig.broker.consumers if c.closed) >= 1


@pytest.mark.parametrize("mode", MODES)
def test_a_rebalance_during_a_redo_leaves_nothing_behind(mode):
    """The first batch spans both partitions and fails; before its redo a second converter joins and takes
    partition 1. The first redoes partition 0 only and ends; the second resumes partition 1 at the commit."""
    rig = Rig(mode, partitions=2, batch_size=15)
    fill(rig, 10, partition=0)
    fill(rig, 10, partition=1)
    if mode == "exactly-once":
        rig.broker.faults.abort_commits = 1
    else:
        rig.broker.faults.time_out_deliveries = 1
    second = rig.converter("b")
    joined = []

    def join_on_redo(reason, first_offsets, learned):
        if not joined:
            second.subscribe()  # the group rebalances: the first converter loses partition 1 at its next poll
            joined.append(dict(first_offsets))

    rig.observer.batch_redone = join_on_redo  # type: ignore[method-assign]
    first = rig.converter("a")
    first.subscribe()
    first_summary = first.run(until_caught_up=True)
    assert joined == [{("logins", 0): 0, ("logins", 1): 0}]
    second_summary = second.run(until_caught_up=True)
    first.close()
    second.close()

    assert_nothing_lost_and_only_batch_repeated(rig, mode, at_most=14)
    assert first_summary.consumed + second_summary.consumed == 20
    assert committed(rig) == {("logins", 0): 10, ("logins", 1): 10}


@pytest.mark.parametrize("mode", MODES)
def test_ranges_ending_in_commit_markers_are_read_to_their_end_and_committed(mode):
    rig = Rig(mode, batch_size=4)
    source = rig.settings.source_topic
    rig.broker.write_transaction(source, [login(i) for i in range(5)])  # offsets 0-4, marker at 5
    rig.broker.write_transaction(source, [login(i) for i in range(5, 10)])  # offsets 6-10, marker at 11
    for start, end in ((0, 6), (6, 12)):
        converter = rig.converter()
        assert converter.assign_ranges([OffsetRange(source, 0, start, end)]) == [OffsetRange(source, 0, start, end)]
        summary = converter.run()
        converter.close()
        assert summary.consumed == 5
        assert committed(rig) == {(source, 0): end}
    assert_each_source_once(rig)
    again = rig.converter()
    assert again.assign_ranges([OffsetRange(source, 0, 0, 12)]) == []  # all committed: nothing left


@pytest.mark.parametrize("mode", MODES)
def test_a_full_producer_queue_is_waited_out(mode):
    rig = Rig(mode, batch_size=10)
    fill(rig, 20)
    rig.broker.faults.queue_full = 3
    summary = run(rig)
    assert_each_source_once(rig)
    assert summary.redone_batches == 0


@pytest.mark.parametrize("mode", MODES)
def test_a_bounded_run_gives_up_on_an_outage_with_conversion_stalled(mode):
    rig = Rig(mode)
    fill(rig, 5)
    rig.broker.faults.time_out_deliveries = 1000
    with pytest.raises(ConversionStalled):
        run(rig, max_failed_batches=3)
    assert committed(rig) == {}
