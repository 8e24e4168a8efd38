"""The shared backlog: a fresh topic pre-filled with generator events before any subject starts.

Every throughput subject reads this same backlog from its beginning in its own consumer group, so they
all see the same bytes in the same partitions. It is written with the project's own generator
(`streaming.generator.producer.generate`, full speed, idempotent producer), from a fixed seed: about 5 % of the
events are malformed (spread over the generator's malformed kinds) and, as in the original generator,
about 5 % more lack `device_type`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from bench.kafka_admin import create_topics, message_count
from streaming.generator.events import EventFactory, IrregularityRates
from streaming.generator.producer import generate
from streaming.settings import Settings


@dataclass
class Backlog:
    topic: str
    partitions: int
    count: int
    seed: int
    malformed_rate: float
    by_kind: dict[str, int]
    fill_seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fill_msg_per_s": round(self.count / self.fill_seconds, 1)}


def fill_backlog(
    settings: Settings, topic: str, count: int, *, partitions: int = 6, seed: int = 7, malformed_rate: float = 0.05
) -> Backlog:
    """Create `topic` with `partitions` and write `count` events to it; RuntimeError if any is lost."""
    create_topics(settings, [topic], partitions)
    factory = EventFactory(seed, IrregularityRates.with_malformed(malformed_rate))
    started = time.monotonic()
    summary = generate(settings.kafka_config(), topic, factory, count=count, progress_every_s=0)
    seconds = time.monotonic() - started
    stored = message_count(settings, topic)
    if not summary.ok or stored != count:
        raise RuntimeError(
            f"backlog {topic}: {summary.delivered} of {count} delivered, {stored} stored: {summary.errors}"
        )
    return Backlog(topic, partitions, count, seed, malformed_rate, summary.by_kind, seconds)
