"""What a batch hands to delivery: its outputs (records as columns, dead letters one by one) and their origins.

The router (`streaming.loop.router`) builds these; the deliveries (`streaming.delivery.contract`) produce them. They
live
below both so that delivery never imports the loop that drives it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple, Protocol, overload

Origin = tuple[str, int, int]
"""A source message's coordinates: (topic, partition, offset)."""

Headers = list[tuple[str, str | bytes | None]]


class Message(Protocol):
    """What the router reads of a consumed message (`confluent_kafka.Message` has it all)."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def value(self) -> bytes | None: ...
    def key(self) -> bytes | None: ...
    def timestamp(self) -> tuple[int, int]: ...


class Output(NamedTuple):
    """A message to produce."""

    topic: str
    key: bytes | None
    value: bytes | None
    timestamp: int
    """Epoch milliseconds: the batch's processing time, for every output (see the module docstring)."""
    headers: Headers | None


class Outputs(Sequence[Output]):
    """A batch's outputs: its records as two columns (`values`, `keys`: all to `topic`, all stamped
    `timestamp`, no headers) and its dead letters as `Output`s, each with its source message.

    As a sequence it is one `Output` per source message, in the order consumed (built on first use: the
    careful redo and the tests read it so); the fast send produces the columns as they are
    (`streaming.delivery.contract.ProducerDelivery.send`).
    """

    __slots__ = ("topic", "timestamp", "values", "keys", "dead_letters", "_messages", "_in_order")

    def __init__(
        self,
        topic: str,
        timestamp: int,
        values: list[bytes],
        keys: list[bytes],
        dead_letters: list[tuple[Message, Output]],
        messages: Sequence[Message],
    ) -> None:
        self.topic = topic
        self.timestamp = timestamp
        self.values = values
        self.keys = keys
        self.dead_letters = dead_letters
        self._messages = messages
        self._in_order: list[Output] | None = None

    def in_order(self) -> list[Output]:
        """One `Output` per source message, in the order consumed."""
        if self._in_order is None:
            dead = {id(message): output for message, output in self.dead_letters}
            records = zip(self.keys, self.values, strict=True)
            self._in_order = [
                dead.get(id(message)) or Output(self.topic, *next(records), self.timestamp, None)
                for message in self._messages
            ]
        return self._in_order

    def __len__(self) -> int:
        return len(self._messages)

    def __iter__(self) -> Iterator[Output]:
        return iter(self.in_order())

    def __eq__(self, other: object) -> bool:
        """Equal to any sequence of the same outputs in the same order (a list, say)."""
        return isinstance(other, Sequence) and self.in_order() == list(other)

    __hash__ = None  # type: ignore[assignment]  # compared by contents, which may change

    @overload
    def __getitem__(self, index: int) -> Output: ...
    @overload
    def __getitem__(self, index: slice) -> list[Output]: ...
    def __getitem__(self, index: int | slice) -> Output | list[Output]:
        return self.in_order()[index]


class Origins(Sequence[Origin]):
    """The (topic, partition, offset) of each of `messages`, read on first use: only a careful redo needs them."""

    __slots__ = ("_messages", "_origins")

    def __init__(self, messages: Sequence[Message]) -> None:
        self._messages = messages
        self._origins: list[Origin] | None = None

    def _read(self) -> list[Origin]:
        if self._origins is None:
            self._origins = [(m.topic(), m.partition(), m.offset()) for m in self._messages]  # type: ignore[misc]
        return self._origins

    def __len__(self) -> int:
        return len(self._messages)

    def __iter__(self) -> Iterator[Origin]:
        return iter(self._read())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and self._read() == list(other)

    __hash__ = None  # type: ignore[assignment]

    @overload
    def __getitem__(self, index: int) -> Origin: ...
    @overload
    def __getitem__(self, index: slice) -> list[Origin]: ...
    def __getitem__(self, index: int | slice) -> Origin | list[Origin]:
        return self._read()[index]
