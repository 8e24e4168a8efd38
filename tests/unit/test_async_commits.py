"""At-least-once commits offsets asynchronously (`streaming.delivery.at_least_once`): its revoke, close and failure
paths,
against the in-memory broker, whose asynchronous commits stay in flight until it answers them.

The verdict is the strictest at-least-once allows here: no source message is lost, and none is repeated,
since no batch fails; and the group's commits end where the output does.
"""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import KafkaError, TopicPartition
from fakes.rig import NOW_MS, Rig, login
from hypothesis import given
from hypothesis import strategies as st

from streaming.delivery.at_least_once import AtLeastOnce
from streaming.delivery.offset_commits import OutstandingOffsets
from streaming.observe.metrics import ConverterMetrics


def fill(rig: Rig, count: int, *, partition: int = 0) -> None:
    values = [login(partition * 1000 + i) for i in range(count)]
    rig.broker.write(rig.settings.source_topic, values, partition=partition, timestamp=NOW_MS - 5000)


def assert_each_source_once(rig: Rig) -> None:
    outputs = rig.outputs_per_source()
    assert set(outputs) == rig.source_offsets(), "a source message has no output"
    assert [source for source, n in outputs.items() if n > 1] == [], "a source message has two outputs"


def committed(rig: Rig) -> dict[tuple[str, int], int]:
    return rig.broker.group(rig.settings.group_id).committed


def record_group_commits(rig: Rig) -> list[dict[tuple[str, int], int]]:
    """Every commit the group applies, in order."""
    group = rig.broker.group(rig.settings.group_id)
    applied: list[dict[tuple[str, int], int]] = []
    commit = group.commit

    def recording(offsets):
        offsets = list(offsets)
        applied.append({(tp.topic, tp.partition): tp.offset for tp in offsets})
        commit(offsets)

    group.commit = recording  # type: ignore[method-assign]
    return applied


def test_complete_returns_before_the_commit_is_answered_and_the_next_poll_serves_its_result():
    rig = Rig("at-least-once", batch_size=10)
    fill(rig, 20)
    rig.broker.faults.hold_async_commits = True
    converter = rig.converter()
    seen = []
    delivered = rig.observer.batch_delivered

    def at_the_next_poll(_consumer):
        due = [(tp.partition, tp.offset) for tp in converter.delivery.outstanding.due()]  # type: ignore[attr-defined]
        seen.append((rig.observer.count("delivered"), dict(committed(rig)), due))
        rig.broker.faults.hold_async_commits = False  # this poll answers the commits in flight

    def then_look_at_the_next_poll(report):
        delivered(report)
        rig.broker.faults.on_consume.append(at_the_next_poll)

    rig.observer.batch_delivered = then_look_at_the_next_poll  # type: ignore[method-assign]
    converter.subscribe()
    converter.run(until_caught_up=True)
    converter.close()
    assert seen == [
        (1, {}, [(0, 10)]),  # the first batch is complete, its commit in flight
        (2, {("logins", 0): 10}, [(0, 20)]),  # answered and confirmed: only the second batch's is due
    ]
    assert committed(rig) == {("logins", 0): 20}


def test_a_revoke_with_a_commit_in_flight_commits_it_synchronously_before_the_partition_goes():
    """The first batch reads both partitions; its commit is still in flight when a second converter joins, takes
    partition 1 and reads it at once. The first commits synchronously before giving it up, so the second resumes
    after the batch: nothing is converted twice."""
    rig = Rig("at-least-once", partitions=2, batch_size=10)
    fill(rig, 3, partition=0)
    fill(rig, 5, partition=1)
    rig.broker.faults.hold_async_commits = True  # no asynchronous commit is answered in this test
    first, second = rig.converter("a"), rig.converter("b")
    summaries = []

    def join_after_the_first_batch(report):
        if second.source is None:
            assert committed(rig) == {}, "the first batch's commit is in flight"
            second.subscribe()  # the first converter gives partition 1 up at its next poll

    rig.observer.batch_delivered = join_after_the_first_batch  # type: ignore[method-assign]
    first.subscribe()
    assert first.source is not None
    revoke = first.source._before_partitions_go

    def revoke_then_the_second_reads(lost):
        revoke(lost)
        summaries.append(second.run(until_caught_up=True))

    first.source._before_partitions_go = revoke_then_the_second_reads  # type: ignore[method-assign]
    first_summary = first.run(until_caught_up=True)
    first.close()
    second.close()

    assert (first_summary.consumed, summaries[0].consumed) == (8, 0)
    assert_each_source_once(rig)
    assert committed(rig) == {("logins", 0): 3, ("logins", 1): 5}


def test_close_after_a_run_ended_by_an_error_commits_what_is_in_flight():
    """Both batches' commits are in flight when an error ends the run, and both fail when answered (at close, which
    waits for them): the synchronous commit in `close` is what commits the batches."""
    rig = Rig("at-least-once", batch_size=10)
    fill(rig, 30)
    rig.broker.faults.hold_async_commits = True
    rig.broker.faults.fail_async_commits = 2
    delivered = rig.observer.batch_delivered

    def fail_at_the_next_poll(_consumer):
        raise RuntimeError("the run ends here")

    def end_after_two_batches(report):
        delivered(report)
        if rig.observer.count("delivered") == 2:
            rig.broker.faults.on_consume.append(fail_at_the_next_poll)

    rig.observer.batch_delivered = end_after_two_batches  # type: ignore[method-assign]
    converter = rig.converter()
    converter.subscribe()
    with pytest.raises(RuntimeError, match="the run ends here"):
        converter.run(until_caught_up=True)
    assert rig.observer.count("delivered") == 2
    assert committed(rig) == {}, "both batches' commits are in flight"
    converter.close()
    assert committed(rig) == {("logins", 0): 20}
    assert rig.observer.count("commit_failed") == 2


def test_a_stopped_run_returns_with_every_offset_committed():
    """A stop (`kdp stream` on SIGTERM) ends the run between two batches, commits in flight: `run` commits them
    synchronously before it returns, not only `close`."""
    rig = Rig("at-least-once", batch_size=10)
    fill(rig, 30)
    rig.broker.faults.hold_async_commits = True
    stop = threading.Event()
    delivered = rig.observer.batch_delivered

    def stop_after_two_batches(report):
        delivered(report)
        if rig.observer.count("delivered") == 2:
            stop.set()

    rig.observer.batch_delivered = stop_after_two_batches  # type: ignore[method-assign]
    converter = rig.converter()
    converter.subscribe()
    converter.run(stop)
    assert committed(rig) == {("logins", 0): 20}
    converter.close()


def test_a_failed_async_commit_is_counted_and_its_offsets_committed_again_by_the_next_commit():
    rig = Rig("at-least-once", partitions=2, batch_size=10)
    metrics = ConverterMetrics(process_metrics=False)
    rig.observer = metrics  # type: ignore[assignment]
    fill(rig, 10, partition=0)  # the first batch: partition 0 only
    fill(rig, 10, partition=1)  # the second: partition 1 only
    rig.broker.faults.fail_async_commits = 1
    applied = record_group_commits(rig)
    converter = rig.converter()
    converter.subscribe()
    converter.run(until_caught_up=True)
    converter.close()

    assert applied[0] == {("logins", 0): 10, ("logins", 1): 10}, "the second commit carries the failed one's offsets"
    assert metrics.registry.get_sample_value("kdp_offset_commit_failures_total") == 1
    assert committed(rig) == {("logins", 0): 10, ("logins", 1): 10}
    assert_each_source_once(rig)


def test_a_failed_commit_with_no_batch_after_it_is_committed_when_the_run_ends():
    rig = Rig("at-least-once", batch_size=10)
    fill(rig, 10)
    rig.broker.faults.fail_async_commits = 1
    converter = rig.converter()
    converter.subscribe()
    converter.run(until_caught_up=True)
    assert rig.observer.count("commit_failed") == 1
    assert committed(rig) == {("logins", 0): 10}
    converter.close()


def test_lost_partitions_drop_their_outstanding_offsets():
    """Partitions lost to the group (the session expired) may be another's already: this member no longer
    commits their offsets, not even when its run ends; the next owner resumes at the group's last commit."""
    rig = Rig("at-least-once", batch_size=10)
    fill(rig, 10)
    rig.broker.faults.hold_async_commits = True
    applied = record_group_commits(rig)
    converter = rig.converter()

    def lose_partitions(consumer):
        consumer.callbacks["on_lost"](consumer, consumer.assignment())

    rig.observer.batch_delivered = lambda _report: rig.broker.faults.on_consume.append(lose_partitions)  # type: ignore[method-assign]
    converter.subscribe()
    converter.run(until_caught_up=True)
    assert applied == [], "no synchronous commit of the lost partition"


# -- the bookkeeping alone ---------------------------------------------------------------------------------


def tp(partition: int, offset: int) -> TopicPartition:
    return TopicPartition("t", partition, offset)


def test_outstanding_offsets_stay_due_until_a_commit_of_the_latest_is_confirmed():
    offsets = OutstandingOffsets()
    offsets.delivered([tp(0, 10), tp(1, 5)])
    offsets.delivered([tp(0, 20)])
    assert [(t.partition, t.offset) for t in offsets.due()] == [(0, 20), (1, 5)]
    offsets.confirmed([tp(0, 10)])  # an older commit answered: partition 0 is still due at 20
    assert [(t.partition, t.offset) for t in offsets.due()] == [(0, 20), (1, 5)]
    offsets.confirmed([tp(0, 20), tp(1, 5)])
    assert offsets.due() == []
    assert [(t.partition, t.offset) for t in offsets.everything()] == [(0, 20), (1, 5)]
    offsets.committed_synchronously(offsets.everything())
    assert offsets.everything() == [] and not offsets


def test_on_commit_counts_a_failure_and_confirms_nothing_of_it():
    rig = Rig("at-least-once")
    delivery = rig.delivery()
    assert isinstance(delivery, AtLeastOnce)
    delivery.outstanding.delivered([tp(0, 10)])
    delivery.on_commit(KafkaError(KafkaError.REQUEST_TIMED_OUT), [tp(0, 10)])
    assert rig.observer.count("commit_failed") == 1
    assert [(t.partition, t.offset) for t in delivery.outstanding.due()] == [(0, 10)]
    delivery.on_commit(None, [tp(0, 10)])
    assert delivery.outstanding.due() == []


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("deliver"), st.integers(0, 2), st.integers(1, 5)),
            st.tuples(st.just("answer"), st.booleans(), st.just(0)),
        ),
        max_size=40,
    )
)
def test_whatever_fails_the_group_ends_at_the_latest_delivered_offsets_and_never_ahead(steps):
    """Batches are delivered (each followed by an asynchronous commit of what is due) and commits answered, in
    order, some failing; then the final synchronous commit. The group's offset never passes what was delivered
    (no loss), and ends at exactly the latest delivered offset of every partition."""
    offsets = OutstandingOffsets()
    group: dict[int, int] = {}
    delivered: dict[int, int] = {}
    in_flight: list[list[TopicPartition]] = []
    for kind, a, b in steps:
        if kind == "deliver":
            delivered[a] = delivered.get(a, 0) + b
            offsets.delivered([tp(a, delivered[a])])
            in_flight.append([tp(p.partition, p.offset) for p in offsets.due()])
        elif in_flight:
            answered = in_flight.pop(0)
            if a:  # succeeded
                group.update({p.partition: p.offset for p in answered})
                offsets.confirmed(answered)
        assert all(group[p] <= delivered[p] for p in group), "committed ahead of the output"
    for answered in in_flight:  # librdkafka answers what is in flight before the synchronous commit
        group.update({p.partition: p.offset for p in answered})
    final = offsets.everything()
    group.update({p.partition: p.offset for p in final})
    offsets.committed_synchronously(final)
    assert group == delivered
    assert offsets.due() == [] and not offsets
