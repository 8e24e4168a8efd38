"""The one wait on a full producer queue, shared by the converter's deliveries and the generator."""

from __future__ import annotations

import threading

import pytest

from streaming.delivery.backpressure import produce_when_room


class FullFor:
    """A produce that the queue refuses `n` times; counts the polls that serve delivery reports meanwhile."""

    def __init__(self, n: int) -> None:
        self.refusals, self.produced, self.polls = n, 0, 0

    def produce(self) -> None:
        if self.refusals:
            self.refusals -= 1
            raise BufferError("Local: Queue full")
        self.produced += 1

    def poll(self, _timeout: float) -> None:
        self.polls += 1


def test_it_polls_until_the_queue_takes_the_message():
    queue = FullFor(3)
    assert produce_when_room(queue.produce, queue.poll) is True
    assert (queue.produced, queue.polls) == (1, 4)


def test_a_stop_request_ends_the_wait_without_producing():
    queue = FullFor(10**9)
    stop = threading.Event()
    stop.set()
    assert produce_when_room(queue.produce, queue.poll, stop) is False
    assert queue.produced == 0


def test_other_errors_propagate():
    def refuse() -> None:
        raise ValueError("not back-pressure")

    with pytest.raises(ValueError):
        produce_when_room(refuse, lambda _t: None)
