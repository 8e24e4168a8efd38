"""What the converter remembers between a failed batch and its redo: outputs the broker refused for good.

A careful send names the sources whose outputs were refused for a reason that is the record's own
(`streaming.delivery.contract.REFUSED_FOR_GOOD`); the redo dead-letters those sources instead (`rejected_by_broker`).
If even a dead letter is refused, the converter stops with `UndeliverableMessage` naming the offset: loudly,
never by skipping the message.
"""

from __future__ import annotations

from collections.abc import Mapping

from streaming.delivery.outputs import Origin
from streaming.observe.observer import Partition


class UndeliverableMessage(RuntimeError):
    """Neither the output nor the dead letter of a message could be delivered: stop, don't skip."""


class Refusals:
    """Sources whose outputs were refused for good, with the broker's verdict, until their redo delivers."""

    def __init__(self) -> None:
        self.pending: dict[Origin, str] = {}
        """Source -> the detail of its `rejected_by_broker` dead letter; what the router is handed."""

    def learn(self, refused: Mapping[Origin, str]) -> None:
        """Remember `refused` (source -> the broker's error); `UndeliverableMessage` for a source already
        remembered, since what was refused then was its dead letter."""
        for (topic, partition, offset), error in refused.items():
            if (topic, partition, offset) in self.pending:
                raise UndeliverableMessage(
                    f"{topic}[{partition}] offset {offset}: the broker refused both its output and its "
                    f"dead letter ({error}); fix the topic configuration and restart"
                )
            self.pending[topic, partition, offset] = f"the broker refused the output: {error}"

    def forget(self, next_offsets: Mapping[Partition, int]) -> None:
        """Drop the sources a delivered batch has passed (`next_offsets`: per partition, the offset after it)."""
        if self.pending:
            self.pending = {
                src: why for src, why in self.pending.items() if src[2] >= next_offsets.get((src[0], src[1]), -1)
            }
