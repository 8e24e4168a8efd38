"""Exactly-once transactions that span several batches (`KDP_COMMIT_INTERVAL_MS`), against the in-memory broker.

The verdict is the fault tests' one: every source message has exactly one output (a processed record or a dead
letter), and the group's committed offsets end at the source's ends. The scenarios strike *inside* an open
transaction: an abort in its 2nd or 3rd batch, at its commit, a fenced producer, a broken consumer, a rebalance,
a stop, a range that ends, and a property test over random failure points.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from fakes.rig import Rig, login, user_id
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from streaming.offset_ranges import OffsetRange
from streaming.settings import DEFAULT_COMMIT_INTERVAL_MS, Settings, SettingsError

LONG = 10_000  # ms: with the rig's still timer, a transaction ends when the source is dry or at its size bound


def fill(rig: Rig, count: int, *, partition: int = 0) -> None:
    values = [login(partition * 1000 + i, valid=i % 7 != 3) for i in range(count)]
    rig.broker.write(rig.settings.source_topic, values, partition=partition)


def key(n: int) -> bytes:
    return user_id(n).encode()


def once(produced_key: bytes, action: Any = None) -> Any:
    """A fault predicate for `produce()` that holds the first time `produced_key` is produced, then never again,
    and runs `action()` then."""
    struck: list[bool] = []

    def strike(_topic: str, key_: bytes | None, _value: bytes | None) -> bool:
        if struck or key_ != produced_key:
            return False
        struck.append(True)
        if action is not None:
            action()
        return True

    return strike


def record_redos(rig: Rig) -> list[dict]:
    redos: list[dict] = []
    rig.observer.batch_redone = lambda _reason, first, _learned: redos.append(dict(first))  # type: ignore[method-assign]
    return redos


def committed(rig: Rig) -> dict[tuple[str, int], int]:
    return rig.broker.group(rig.settings.group_id).committed


def transactions(rig: Rig) -> list[int]:
    """The number of batches of each committed transaction, in order."""
    return [n for kind, n in rig.observer.events if kind == "committed"]


def assert_each_source_once(rig: Rig) -> None:
    outputs = rig.outputs_per_source()
    assert set(outputs) == rig.source_offsets(), "a source message has no output"
    assert [source for source, n in outputs.items() if n > 1] == [], "a source message has two outputs"


def run(rig: Rig, **options: Any):
    converter = rig.converter(**{k: options.pop(k) for k in ("timer",) if k in options})
    converter.subscribe()
    try:
        return converter.run(until_caught_up=True, **options)
    finally:
        converter.close()


# -- the setting -------------------------------------------------------------------------------------------


def test_the_setting_has_a_documented_default_and_is_validated_naming_it():
    assert Settings.from_env({}).commit_interval_ms == DEFAULT_COMMIT_INTERVAL_MS
    assert Settings.from_env({"KDP_COMMIT_INTERVAL_MS": "0"}).commit_interval_ms == 0
    for bad in ("-1", "10001", "fast", "1.5"):
        with pytest.raises(SettingsError, match="KDP_COMMIT_INTERVAL_MS"):
            Settings.from_env({"KDP_COMMIT_INTERVAL_MS": bad})


# -- spanning batches ----------------------------------------------------------------------------------------


def test_a_transaction_holds_batches_until_its_size_bound_then_commits_all_their_offsets():
    rig = Rig("exactly-once", batch_size=10, commit_interval_ms=LONG)
    fill(rig, 250)
    summary = run(rig)
    assert_each_source_once(rig)
    assert transactions(rig) == [10, 10, 5]  # 10 batches' worth at most, the rest when the source is dry
    assert committed(rig) == {("logins", 0): 250}
    assert (summary.consumed, summary.batches, summary.redone_batches) == (250, 25, 0)


def test_a_transaction_commits_when_its_interval_has_elapsed():
    rig = Rig("exactly-once", batch_size=10, commit_interval_ms=500)
    fill(rig, 30)
    clock = [0.0]
    # The clock jumps 1 s while the second batch is sent: the transaction is due after that batch.
    rig.broker.faults.on_produce = once(key(15), lambda: clock.__setitem__(0, 1.0))
    run(rig, timer=lambda: clock[0])
    assert_each_source_once(rig)
    assert transactions(rig) == [2, 1]


def test_at_least_once_commits_every_batch_whatever_the_interval():
    rig = Rig("at-least-once", batch_size=10, commit_interval_ms=LONG)
    fill(rig, 30)
    commits: list[dict] = []
    rig.observer.batch_delivered = lambda report: commits.append(dict(report.next_offsets))  # type: ignore[method-assign]
    run(rig)
    assert_each_source_once(rig)
    assert commits == [{("logins", 0): 10}, {("logins", 0): 20}, {("logins", 0): 30}]


# -- failures inside an open transaction ---------------------------------------------------------------------


@pytest.mark.parametrize("failing", [14, 25], ids=["in-2nd-batch", "in-3rd-batch"])
def test_an_abort_inside_a_transaction_redoes_it_from_its_first_batch(failing):
    rig = Rig("exactly-once", batch_size=10, commit_interval_ms=LONG)
    fill(rig, 30)
    redos = record_redos(rig)
    rig.broker.faults.fail_transaction = once(key(failing))
    summary = run(rig)
    assert redos == [{("logins", 0): 0}], "rewound to the first batch of the transaction"
    assert_each_source_once(rig)  # none of the aborted batches' outputs is visible, none is lost
    assert committed(rig) == {("logins", 0): 30}
    assert rig.observer.count("aborted") == 1
    assert summary.consumed == 30 and summary.redone_batches == 1


def test_an_abort_at_the_commit_of_a_multi_batch_transaction_redoes_all_its_batches():
    rig = Rig("exactly-once", partitions=2, batch_size=10, commit_interval_ms=LONG)
    fill(rig, 15, partition=0)
    fill(rig, 15, partition=1)
    redos = record_redos(rig)
    rig.broker.faults.abort_commits = 1
    summary = run(rig)
    assert redos == [{("logins", 0): 0, ("logins", 1): 0}]
    assert_each_source_once(rig)
    assert committed(rig) == {("logins", 0): 15, ("logins", 1): 15}
    assert transactions(rig) == [3] and summary.batches == 3


def test_a_producer_fenced_inside_a_transaction_is_replaced_and_the_transaction_redone():
    rig = Rig("exactly-once", batch_size=10, commit_interval_ms=LONG)
    fill(rig, 30)
    redos = record_redos(rig)
    rig.broker.faults.on_produce = once(key(22), lambda: rig.broker.fence("converter-a"))
    summary = run(rig)
    assert ("producer_replaced", True) in rig.observer.events and rig.observer.count("producer_replaced") == 1
    assert redos == [{("logins", 0): 0}]
    assert_each_source_once(rig)
    assert summary.consumed == 30


def test_a_consumer_broken_inside_a_transaction_aborts_it_and_resumes_at_the_commit():
    rig = Rig("exactly-once", partitions=2, batch_size=10, commit_interval_ms=LONG)
    fill(rig, 25, partition=0)
    fill(rig, 25, partition=1)
    faults = rig.broker.faults
    faults.on_produce = once(key(12), lambda: setattr(faults, "break_consumers", 1))
    summary = run(rig)
    assert rig.observer.count("consumer_replaced") == 1 and rig.observer.count("aborted") == 1
    assert_each_source_once(rig)
    assert summary.consumed == 50


# -- rebalances ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("commit_fails", [False, True], ids=["committed-before-revoke", "aborted-and-rewound"])
def test_a_rebalance_finishes_the_open_transaction_before_the_partitions_go(commit_fails):
    """Converter a holds a transaction over both partitions when b joins; at a's next poll partition 1 is
    revoked. a commits its transaction first (or, if that commit fails, aborts and rewinds, partition 1 going
    back to the group's commit for b)."""
    rig = Rig("exactly-once", partitions=2, batch_size=15, commit_interval_ms=LONG)
    fill(rig, 10, partition=0)
    fill(rig, 10, partition=1)
    second = rig.converter("b")
    faults = rig.broker.faults

    def join() -> None:
        second.subscribe()  # the group rebalances: a loses partition 1 at its next consume()
        if commit_fails:
            faults.abort_commits = 1

    faults.on_produce = once(key(1007), join)  # in a's second batch
    first = rig.converter("a")
    first.subscribe()
    first_summary = first.run(until_caught_up=True)
    # Committed: both partitions' two batches; or, after the abort, a's redo of partition 0 alone.
    assert transactions(rig) == ([1] if commit_fails else [2])
    assert committed(rig) == ({("logins", 0): 10} if commit_fails else {("logins", 0): 10, ("logins", 1): 10})
    second_summary = second.run(until_caught_up=True)
    first.close()
    second.close()
    assert_each_source_once(rig)
    assert committed(rig) == {("logins", 0): 10, ("logins", 1): 10}
    assert first_summary.consumed + second_summary.consumed == 20
    assert second_summary.consumed == (10 if commit_fails else 0)


def test_a_message_in_hand_from_a_partition_revoked_during_the_poll_is_left_to_its_new_owner():
    """The poll's first `consume()` hands over a message of partition 1; the rebalance runs in its second
    `consume()` and revokes partition 1, after the open transaction committed up to that message. That message
    is dropped: the new owner reads it from the commit."""
    rig = Rig("exactly-once", partitions=2, batch_size=5, commit_interval_ms=LONG)
    fill(rig, 5, partition=0)
    fill(rig, 5, partition=1)
    second = rig.converter("b")
    faults = rig.broker.faults
    first = rig.converter("a")

    def at_second_consume_of_next_poll(consumer) -> None:
        if consumer is first.consumer:  # the poll's first consume(): its second one sees the rebalance
            faults.on_consume.append(lambda _c: second.subscribe())
        else:
            faults.on_consume.append(at_second_consume_of_next_poll)

    # Armed while a's first batch (partition 0) is sent: the next poll's first consume() returns partition 1's
    # first message, and the rebalance strikes in its second consume().
    faults.on_produce = once(key(4), lambda: faults.on_consume.append(at_second_consume_of_next_poll))
    first.subscribe()
    first_summary = first.run(until_caught_up=True)
    second_summary = second.run(until_caught_up=True)
    first.close()
    second.close()
    assert_each_source_once(rig)
    assert committed(rig) == {("logins", 0): 5, ("logins", 1): 5}
    assert (first_summary.consumed, second_summary.consumed) == (5, 5)


# -- stopping, and ranges ------------------------------------------------------------------------------------


def test_a_stop_inside_a_transaction_commits_it_and_the_next_run_goes_on_from_there():
    rig = Rig("exactly-once", batch_size=10, commit_interval_ms=LONG)
    fill(rig, 30)
    stop = threading.Event()
    rig.broker.faults.on_produce = once(key(15), stop.set)
    converter = rig.converter()
    converter.subscribe()
    summary = converter.run(stop)
    converter.close()
    assert (summary.consumed, committed(rig)) == (20, {("logins", 0): 20})
    assert transactions(rig) == [2]
    run(rig)
    assert_each_source_once(rig)


def test_an_error_inside_a_transaction_aborts_it_and_nothing_of_it_is_visible():
    rig = Rig("exactly-once", batch_size=10, commit_interval_ms=LONG)
    fill(rig, 30)

    def crash(_topic, produced_key, _value) -> bool:
        if produced_key == key(15):
            raise RuntimeError("a bug in the middle of a transaction")
        return False

    rig.broker.faults.on_produce = crash
    with pytest.raises(RuntimeError, match="a bug"):
        run(rig)
    assert rig.processed() == [] and rig.dead_letters() == [] and committed(rig) == {}
    assert rig.observer.count("aborted") == 1
    rig.broker.faults.on_produce = None
    run(rig)
    assert_each_source_once(rig)


@pytest.mark.parametrize("budget", [None, 17])
def test_a_range_ending_inside_a_transaction_ends_exactly_at_its_end(budget):
    rig = Rig("exactly-once", batch_size=4, commit_interval_ms=LONG)
    source = rig.settings.source_topic
    fill(rig, 30)
    converter = rig.converter()
    assert converter.assign_ranges([OffsetRange(source, 0, 0, 18)]) == [OffsetRange(source, 0, 0, 18)]
    summary = converter.run(max_messages=budget)
    converter.close()
    expected = 17 if budget else 18
    assert summary.consumed == expected and committed(rig) == {(source, 0): expected}
    assert set(rig.outputs_per_source()) == {(0, offset) for offset in range(expected)}
    rest = rig.converter()
    rest.assign_ranges([OffsetRange(source, 0, 0, 30)])  # resumes at the commit
    assert rest.run().consumed == 30 - expected
    rest.close()
    assert_each_source_once(rig)


def test_ranges_ending_in_commit_markers_end_inside_a_transaction():
    rig = Rig("exactly-once", batch_size=4, commit_interval_ms=LONG)
    source = rig.settings.source_topic
    rig.broker.write_transaction(source, [login(i) for i in range(5)])  # offsets 0-4, marker at 5
    rig.broker.write_transaction(source, [login(i) for i in range(5, 10)])  # offsets 6-10, marker at 11
    converter = rig.converter()
    converter.assign_ranges([OffsetRange(source, 0, 0, 12)])
    assert converter.run().consumed == 10
    converter.close()
    assert committed(rig) == {(source, 0): 12}
    assert_each_source_once(rig)


# -- random failure points -----------------------------------------------------------------------------------

FAULTS = ("fail_transaction", "abort_commit", "fence", "time_out", "break_consumer", "refuse")


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    counts=st.lists(st.integers(0, 40), min_size=1, max_size=3),
    batch_size=st.integers(1, 12),
    interval=st.sampled_from([0, LONG]),
    faults=st.lists(st.tuples(st.sampled_from(FAULTS), st.integers(0, 119)), max_size=3),
)
def test_any_failure_at_any_point_leaves_each_message_converted_exactly_once(counts, batch_size, interval, faults):
    rig = Rig("exactly-once", partitions=len(counts), batch_size=batch_size, commit_interval_ms=interval)
    for partition, count in enumerate(counts):
        fill(rig, count, partition=partition)
    armed = rig.broker.faults
    strikes = {key(p * 1000 + i): kind for kind, n in faults for p, i in [divmod(n, 40)] if p < len(counts)}

    def strike(topic: str, produced_key: bytes | None, _value: object) -> bool:
        kind = strikes.pop(produced_key, None) if topic == rig.settings.output_topic else None
        if kind == "abort_commit":
            armed.abort_commits += 1
        elif kind == "fence":
            rig.broker.fence("converter-a")
        elif kind == "time_out":
            armed.time_out_deliveries += 1
        elif kind == "break_consumer":
            armed.break_consumers += 1
        elif kind == "fail_transaction":
            failing.add(produced_key)
        elif kind == "refuse":
            refused.add(produced_key)
        return False

    failing: set[bytes | None] = set()
    refused: set[bytes | None] = set()
    armed.on_produce = strike
    armed.fail_transaction = lambda _t, k, _v: k in failing and not failing.discard(k)
    armed.refuse_at_delivery = lambda t, k, _v: t == rig.settings.output_topic and k in refused
    converter = rig.converter()
    converter.subscribe()
    try:
        converter.run(until_caught_up=True)
    except Exception as error:  # noqa: BLE001 - only a second fencing may end the run: two ids fenced in a row
        assert type(error).__name__ == "TransactionalIdTaken", error
        converter.close()
        rig.broker.faults = type(armed)()
        converter = rig.converter()
        converter.subscribe()
        converter.run(until_caught_up=True)
    converter.close()
    assert_each_source_once(rig)
    assert committed(rig) == {("logins", p): count for p, count in enumerate(counts) if count}
