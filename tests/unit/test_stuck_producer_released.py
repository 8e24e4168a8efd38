"""A producer replaced because a transactional call got stuck (confluentinc/librdkafka#5511) is held by that
call until it returns, and released then: destroyed, not left for a full garbage collection to find."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from streaming.delivery import exactly_once
from streaming.delivery.contract import BatchFailed
from streaming.delivery.exactly_once import IDLE_CONNECTION_CLOSE_MS, ExactlyOnce


class StuckOnce:
    """A transactional producer whose first instance's `send_offsets_to_transaction` waits until `wake` is set,
    then fails as a fenced producer's does; later instances answer at once."""

    wake = threading.Event()
    instances: list[weakref.ref[StuckOnce]] = []

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.first = not StuckOnce.instances
        StuckOnce.instances.append(weakref.ref(self))

    def init_transactions(self, timeout: float) -> None: ...

    def begin_transaction(self) -> None: ...

    def flush(self, timeout: float) -> int:
        return 0

    def send_offsets_to_transaction(self, offsets: Any, metadata: Any, timeout: float) -> None:
        if self.first:
            StuckOnce.wake.wait()
            raise KafkaException(KafkaError(KafkaError._FENCED, "fenced by a newer instance", fatal=True))

    def commit_transaction(self, timeout: float) -> None: ...

    def abort_transaction(self, timeout: float) -> None: ...


class GroupMember:
    def consumer_group_metadata(self) -> object:
        return object()


@pytest.fixture
def stuck_once(monkeypatch):
    monkeypatch.setattr(exactly_once, "STUCK_AFTER_SECONDS", 0.2)
    StuckOnce.wake = threading.Event()
    StuckOnce.instances = []
    yield StuckOnce
    StuckOnce.wake.set()


def test_the_producer_a_stuck_call_held_is_destroyed_once_the_call_returns(stuck_once):
    delivery = ExactlyOnce({}, "kdp-converter-a", new_producer=stuck_once)
    delivery.begin()
    with pytest.raises(BatchFailed, match="send_offsets_to_transaction did not return"):
        delivery.complete(GroupMember(), [])  # type: ignore[arg-type]
    first, successor = stuck_once.instances
    assert delivery.replaced_producers == 1 and delivery.producer is successor()
    assert len(delivery.stuck_calls) == 1

    delivery.begin()  # the call has not returned: the producer it holds stays
    gc.collect()
    assert first() is not None and len(delivery.stuck_calls) == 1

    stuck_once.wake.set()
    deadline = time.monotonic() + 5
    while delivery.stuck_calls.release_returned() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert first() is None, "the replaced producer outlived the call that held it"
    assert len(delivery.stuck_calls) == 0
    delivery.complete(GroupMember(), [])  # type: ignore[arg-type]  # the successor goes on


def test_the_transactional_producer_closes_idle_connections_which_is_what_wakes_a_stuck_call(stuck_once):
    delivery = ExactlyOnce({}, "kdp-converter-a", new_producer=stuck_once)
    (producer,) = stuck_once.instances
    assert producer() is delivery.producer
    assert delivery.producer.config["connections.max.idle.ms"] == IDLE_CONNECTION_CLOSE_MS
