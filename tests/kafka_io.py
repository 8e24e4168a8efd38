"""Small helpers the integration and fault tests share: create topics, read a topic back completely."""

from __future__ import annotations

from confluent_kafka import Message
from confluent_kafka.admin import AdminClient, NewTopic

from streaming.settings import Settings
from streaming.topic_reader import (
    DEFAULT_IDLE_TIMEOUT_S,
    Isolation,
    current_ranges,
    read_ranges,
    reader_consumer,
)


def create_topics(bootstrap: str, names: list[str], partitions: int = 3, **configs: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, partitions, 1, config=dict(configs)) for name in names], operation_timeout=30
    )
    for future in futures.values():
        future.result(timeout=60)


def read_all(
    where: str | Settings, topic: str, isolation: Isolation = "read_committed", timeout: float = 60.0
) -> list[Message]:
    """Every message of `topic` up to its current end, in partition then offset order.

    `where` is a bootstrap address (plaintext) or the settings of a client (security included). The read is
    `read_topic` (below): the end is reached by the consumer's position, since the last offsets
    of a transactional topic may be commit markers, never delivered; it fails when no partition's position
    moves for `timeout` seconds.
    """
    settings = Settings(bootstrap=where) if isinstance(where, str) else where
    return read_topic(settings, topic, isolation, idle_timeout_s=timeout, purpose="test-reader")


def read_topic(
    settings: Settings,
    topic: str,
    isolation: Isolation = "read_committed",
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
    purpose: str = "reader",
) -> list[Message]:
    """Every message `topic` holds now, in partition then offset order (for small topics: the tests' checks)."""
    messages: list[Message] = []

    def keep(message: Message) -> str:
        messages.append(message)
        return "read"

    consumer = reader_consumer(settings, purpose, isolation)
    try:
        read_ranges(consumer, current_ranges(consumer, topic), keep, idle_timeout_s)
    finally:
        consumer.close()
    return sorted(messages, key=lambda m: (m.partition(), m.offset()))
