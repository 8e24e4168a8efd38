"""A converter wired to the in-memory broker exactly as `streaming.loop.pipeline.open_converter` wires it to Kafka.

Same settings, router, reference conversion (the real transform and a real wire-format encoder for the real
schema, with schema id 1: no registry needed), same delivery strategies and sources; only the clients are the
in-memory broker's, and the pause between failed batches is skipped.
"""

from __future__ import annotations

import io
import json
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import fastavro

from fakes.broker import FakeMessage, InMemoryBroker
from streaming.conversion.encoding import WireFormatEncoder
from streaming.delivery.contract import Delivery
from streaming.delivery.dead_letter import read_dead_letter_headers
from streaming.delivery.kafka_clients import make_delivery
from streaming.loop.converter import Converter
from streaming.loop.pipeline import PROCESSED_SCHEMA, open_converter
from streaming.observe.observer import BatchReport, ConverterObserver
from streaming.records import DLQ_SOURCE_OFFSET, DLQ_SOURCE_PARTITION
from streaming.settings import Settings

NOW_MS = 1_764_500_000_000
"""The converter's clock in these tests (2025-11-30)."""
SCHEMA_ID = 1


def settings(delivery: str, **overrides: Any) -> Settings:
    return Settings.from_env(
        {},
        bootstrap="in-memory:9092",
        registry_url="http://in-memory",
        source_topic="logins",
        output_topic="processed",
        dlq_topic="logins.dlq",
        group_id="converter",
        transactional_id="converter",
        delivery=delivery,
        **overrides,
    )


def login(n: int, *, valid: bool = True) -> bytes:
    """A login event whose user id is `user_id(n)`; an invalid one has an unknown locale (a dead letter)."""
    return json.dumps(
        {
            "user_id": user_id(n),
            "app_version": "2.3.0",
            "device_type": "android",
            "ip": "199.172.111.135",
            "locale": "RI" if valid else "XX",
            "device_id": str(uuid.UUID(int=n + 1)),
            "timestamp": NOW_MS // 1000 - 60,
        }
    ).encode()


def user_id(n: int) -> str:
    return str(uuid.UUID(int=n))


@dataclass
class Recorder(ConverterObserver):
    """An observer that writes down every event."""

    events: list[tuple[str, Any]] = field(default_factory=list)
    reports: list[BatchReport] = field(default_factory=list)

    def batch_delivered(self, report: BatchReport) -> None:
        self.reports.append(report)
        self.events.append(("delivered", report.consumed))

    def batch_redone(self, reason: str, first_offsets: Any, learned: bool) -> None:
        self.events.append(("redone", learned))

    def producer_replaced(self, reason: str, fenced: bool) -> None:
        self.events.append(("producer_replaced", fenced))

    def consumer_replaced(self, reason: str) -> None:
        self.events.append(("consumer_replaced", reason))

    def transaction_committed(self, batches: int) -> None:
        self.events.append(("committed", batches))

    def transaction_aborted(self, reason: str) -> None:
        self.events.append(("aborted", reason))

    def offset_commit_failed(self, reason: str) -> None:
        self.events.append(("commit_failed", reason))

    def count(self, kind: str) -> int:
        return sum(1 for event in self.events if event[0] == kind)


class Rig:
    """An in-memory broker with the converter's three topics, and converters wired to it."""

    def __init__(
        self, delivery: str, *, partitions: int = 1, batch_size: int = 10, commit_interval_ms: int = 0
    ) -> None:
        """`commit_interval_ms` 0 (the default here): one transaction per batch; see `Rig.converter`'s timer."""
        self.broker = InMemoryBroker()
        self.settings = settings(delivery, batch_size=batch_size, commit_interval_ms=commit_interval_ms)
        for topic in (self.settings.source_topic, self.settings.output_topic, self.settings.dlq_topic):
            self.broker.create_topic(topic, partitions if topic == self.settings.source_topic else 1)
        self.encoder = WireFormatEncoder(SCHEMA_ID, PROCESSED_SCHEMA.read_text())
        self.observer = Recorder()

    def delivery(self, instance: str = "a") -> Delivery:
        return make_delivery(self.settings, instance, observer=self.observer, cluster=self.broker)

    def converter(self, instance: str = "a", *, timer: Callable[[], float] = lambda: 0.0) -> Converter:
        """A converter assembled as `kdp stream` assembles it, on the in-memory broker; its `timer` stands still
        unless given, so that a transaction with a non-zero interval commits when the source has nothing more,
        or once it holds its most batches."""
        return open_converter(
            self.settings,
            instance=instance,
            encoder=self.encoder,
            observer=self.observer,
            cluster=self.broker,
            clock=lambda: NOW_MS / 1000,
            poll_timeout=0,
            pause=lambda _seconds: None,
            timer=timer,
        )

    # -- what reached the topics ----------------------------------------------------------------

    def processed(self) -> list[FakeMessage]:
        return self.broker.read(self.settings.output_topic)

    def dead_letters(self) -> list[FakeMessage]:
        return self.broker.read(self.settings.dlq_topic)

    def outputs_per_source(self) -> Counter[tuple[int, int]]:
        """How many outputs (processed records and dead letters) each source (partition, offset) has."""
        sources: Counter[tuple[int, int]] = Counter()
        for message in self.processed():
            record = decode(message.value())
            sources[record["source_partition"], record["source_offset"]] += 1
        for message in self.dead_letters():
            headers = read_dead_letter_headers(message.headers())
            sources[int(headers[DLQ_SOURCE_PARTITION]), int(headers[DLQ_SOURCE_OFFSET])] += 1
        return sources

    def source_offsets(self) -> set[tuple[int, int]]:
        return {(m.partition(), m.offset()) for m in self.broker.read(self.settings.source_topic)}


def decode(value: bytes | None) -> dict[str, Any]:
    assert value is not None and value[0] == 0 and int.from_bytes(value[1:5], "big") == SCHEMA_ID
    schema = fastavro.parse_schema(json.loads(PROCESSED_SCHEMA.read_text()))
    return fastavro.schemaless_reader(io.BytesIO(value[5:]), schema, None)  # type: ignore[return-value]
