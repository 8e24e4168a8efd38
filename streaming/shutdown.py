"""How a long-running command stops on SIGINT or SIGTERM: the one way every `kdp` command handles signals.

A signal never interrupts work in the middle: it sets an event that the work checks at its safe points.

- The first signal sets `stop`: finish what is in hand (the current batch, the flush) and return normally.
- A second signal sets `abandon`: stop waiting for what is still outstanding (e.g. a flush) and return.

The work itself only takes the two events (`threading.Event`), so a test, a benchmark or a Dagster run can
drive it without signals; only a command line installs the handlers, with `Shutdown.on_signals()`.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class Shutdown:
    """The stop and abandon requests of one command. `stopping` and `abandoning` say, for the log, what the
    command does on the first and on the second signal."""

    stopping: str = "stopping"
    abandoning: str = "stopping at once"
    stop: threading.Event = field(default_factory=threading.Event)
    abandon: threading.Event = field(default_factory=threading.Event)

    def on_signal(self, signum: int, _frame: object = None) -> None:
        name = signal.Signals(signum).name
        if not self.stop.is_set():
            log.info("%s received: %s (send it again for: %s)", name, self.stopping, self.abandoning)
            self.stop.set()
        else:
            log.info("%s received again: %s", name, self.abandoning)
            self.abandon.set()

    @contextmanager
    def on_signals(self) -> Iterator[Shutdown]:
        """While inside, SIGINT and SIGTERM call `on_signal`; the previous handlers return on the way out.
        Outside the main thread (where Python allows no handler) it installs nothing."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
        for sig in SIGNALS:
            signal.signal(sig, self.on_signal)
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
