"""What the converter's loop keeps alive between batches, against the in-memory broker.

A catch-up takes full batches one after another, and CPython keeps part of the memory that the Python objects of
the largest moment took (`docs/faults.md#memory-after-a-catch-up`). So the loop holds one batch's messages at a
time: none from an earlier poll is alive when the next poll consumes, even while an exactly-once transaction
gathers several batches before it commits. Without a garbage collection: a batch held by a reference cycle would
stay until the next full collection, which `gc.freeze` makes rare in `kdp stream`.
"""

from __future__ import annotations

import weakref

import pytest
from fakes.broker import FakeConsumer
from fakes.rig import NOW_MS, Rig, login


@pytest.mark.parametrize("mode", ["at-least-once", "exactly-once"])
def test_no_message_of_an_earlier_poll_is_alive_when_the_next_poll_consumes(mode, monkeypatch):
    rig = Rig(mode, batch_size=10, commit_interval_ms=10_000)  # a transaction gathers batches: 10 per commit
    rig.broker.write(rig.settings.source_topic, [login(i) for i in range(95)], timestamp=NOW_MS - 5000)
    earlier: list[weakref.ref] = []
    current: list[weakref.ref] = []
    alive_at_each_poll: list[int] = []
    consume = FakeConsumer.consume

    def watched(consumer: FakeConsumer, num_messages: int = 1, timeout: float = -1):
        if num_messages == 1:  # a poll starts with consume(1); its second consume() takes the rest of the batch
            earlier.extend(current)
            current.clear()
            alive_at_each_poll.append(sum(1 for ref in earlier if ref() is not None))
        messages = consume(consumer, num_messages, timeout)
        current.extend(weakref.ref(message) for message in messages)
        return messages

    monkeypatch.setattr(FakeConsumer, "consume", watched)
    converter = rig.converter()
    converter.subscribe()
    summary = converter.run(until_caught_up=True)
    converter.close()

    assert summary.consumed == 95 and len(rig.processed()) == 95
    assert len(alive_at_each_poll) >= 10 and set(alive_at_each_poll) == {0}
