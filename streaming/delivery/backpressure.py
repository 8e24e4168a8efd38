"""Back-pressure: what every producer of the house does when its local queue is full.

`produce()` raises `BufferError` when the producer's queue (bounded by `queue.buffering.max.messages` and
`queue.buffering.max.kbytes`) is full, which happens when the brokers acknowledge slower than we produce,
or not at all during an outage. The answer is to wait for the brokers, serving delivery reports meanwhile,
and try again: never to drop the message, never to grow memory.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

POLL_SECONDS = 0.05
"""How long each wait serves delivery reports before the message is offered again."""


def produce_when_room(
    produce: Callable[[], object], poll: Callable[[float], object], stop: threading.Event | None = None
) -> bool:
    """Call `produce()` (a produce the full queue refused) until the queue takes it, polling in between.

    Returns True once produced; False, with the message not produced, if `stop` is set first. Without a
    `stop` it waits for as long as the brokers take. Any error other than `BufferError` propagates.
    """
    while stop is None or not stop.is_set():
        poll(POLL_SECONDS)
        try:
            produce()
            return True
        except BufferError:
            continue
    return False
