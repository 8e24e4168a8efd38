"""Peer (f): the job in Sentry's Arroyo 2.x, `python -m bench.peers.sentry_arroyo --expect N`.

Written as Arroyo's docs show it: a `StreamProcessor` over a `KafkaConsumer`, a `ProcessingStrategyFactory`
whose chain is `RunTask(validate) -> RunTask(encode) -> Produce -> CommitOffsets`, commit policy
`ONCE_PER_SECOND` (offsets are committed only once `Produce` has seen their delivery), and a `DlqPolicy`:
`validate` raises `InvalidMessage` for a message it refuses, and the processor produces the original
message to the dead-letter topic and flushes it before committing past it.

- validate: the project's pure `streaming.conversion.transform.transform` (see `bench.peers`);
- encode: confluent-kafka's `AvroSerializer` (Confluent wire format, schema registered under the output
  topic's subject), the usual encoder of a confluent-kafka user; Arroyo itself has no Avro codec;
- dead letters: Arroyo's `KafkaDlqProducer` writes the original payload with `original_partition` and
  `original_offset` headers; `ReasonedDlqProducer` adds our `kdp.dlq.*` headers from the reason that
  Arroyo passes along (the subclassing is the extension point `DlqProducer` is documented as).

Arroyo's pins fit ours, so it runs in the project's venv. The run stops after `--expect` messages
(`signal_shutdown()`); the processor then joins the chain, which commits what was delivered: the end of
the measured span.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from arroyo.backends.abstract import ProducerFuture
from arroyo.backends.kafka import KafkaConsumer, KafkaPayload, KafkaProducer
from arroyo.backends.kafka.configuration import build_kafka_configuration, build_kafka_consumer_configuration
from arroyo.commit import ONCE_PER_SECOND
from arroyo.dlq import DlqPolicy, InvalidMessage, KafkaDlqProducer
from arroyo.processing import StreamProcessor
from arroyo.processing.strategies import CommitOffsets, ProcessingStrategy, ProcessingStrategyFactory, Produce, RunTask
from arroyo.types import BrokerValue, Commit, Message, Partition, Topic
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from bench.subject import Stopwatch, report
from streaming.conversion.transform import transform
from streaming.delivery.dead_letter import dead_letter_headers
from streaming.loop.pipeline import PROCESSED_SCHEMA
from streaming.records import Rejection
from streaming.settings import Settings

REASON_SEPARATOR = ": "


class ReasonedDlqProducer(KafkaDlqProducer):
    """Arroyo's Kafka dead-letter producer, plus our `kdp.dlq.*` headers built from the reason it is given
    (`"<reason code>: <detail>"`, as `validate` raises it)."""

    def __init__(self, producer: KafkaProducer, topic: Topic) -> None:
        super().__init__(producer, topic)

    def produce(
        self, value: BrokerValue[KafkaPayload], reason: str | None = None
    ) -> ProducerFuture[BrokerValue[KafkaPayload]]:
        code, _, detail = (reason or "").partition(REASON_SEPARATOR)
        source_ms = int(value.timestamp.timestamp() * 1000)
        headers = dead_letter_headers(
            Rejection(code, detail), value.partition.topic.name, value.partition.index, value.offset, source_ms,
            time.time_ns() // 1_000_000,
        )  # fmt: skip
        value.payload.headers.extend((name, data) for name, data in headers if isinstance(data, bytes))
        return super().produce(value, reason)


class Tally:
    """Messages, payload bytes, records and dead letters seen, and the shutdown after `expect` messages."""

    def __init__(self, expect: int, stopwatch: Stopwatch) -> None:
        self.expect, self.stopwatch = expect, stopwatch
        self.consumed = self.bytes_in = self.processed = self.dead_lettered = 0
        self.processor: StreamProcessor[KafkaPayload] | None = None

    def seen(self, raw: bytes | None) -> None:
        if self.consumed == 0:
            self.stopwatch.consumed()
        self.consumed += 1
        self.bytes_in += len(raw) if raw is not None else 0
        if self.consumed >= self.expect and self.processor is not None:
            self.processor.signal_shutdown()


class ConvertFactory(ProcessingStrategyFactory[KafkaPayload]):
    """validate -> encode -> produce -> commit, built anew at every assignment (Arroyo's lifecycle)."""

    def __init__(self, settings: Settings, producer: KafkaProducer, tally: Tally) -> None:
        self.settings, self.producer, self.tally = settings, producer, tally
        serializer = AvroSerializer(
            SchemaRegistryClient(settings.registry_config()),
            PROCESSED_SCHEMA.read_text(),
            conf={"auto.register.schemas": True},
        )
        context = SerializationContext(settings.output_topic, MessageField.VALUE)
        self.serialize = lambda record: serializer(record, context)

    def validate(self, message: Message[KafkaPayload]) -> dict[str, Any]:
        broker = message.value
        assert isinstance(broker, BrokerValue)
        raw = message.payload.value
        self.tally.seen(raw)
        now_ms = time.time_ns() // 1_000_000
        result = transform(raw, broker.partition.topic.name, broker.partition.index, broker.offset, now_ms)
        if isinstance(result, Rejection):
            self.tally.dead_lettered += 1
            reason = f"{result.reason}{REASON_SEPARATOR}{result.detail}"
            raise InvalidMessage(broker.partition, broker.offset, reason=reason, log_exception=False)
        self.tally.processed += 1
        return result

    def encode(self, message: Message[dict[str, Any]]) -> KafkaPayload:
        record = message.payload
        return KafkaPayload(record["user_id"].encode(), self.serialize(record), [])

    def create_with_partitions(
        self, commit: Commit, partitions: Mapping[Partition, int]
    ) -> ProcessingStrategy[KafkaPayload]:
        produce = Produce(self.producer, Topic(self.settings.output_topic), CommitOffsets(commit))
        return RunTask(self.validate, RunTask(self.encode, produce))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expect", type=int, required=True, help="messages in the backlog: stop after these")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    settings = Settings.from_env()
    stopwatch = Stopwatch()
    tally = Tally(args.expect, stopwatch)
    connection = settings.kafka_config()
    producer = KafkaProducer(build_kafka_configuration(connection))
    dlq_producer = KafkaProducer(build_kafka_configuration(connection))
    consumer = KafkaConsumer(
        build_kafka_consumer_configuration(connection, group_id=settings.group_id, auto_offset_reset="earliest")
    )
    processor = StreamProcessor(
        consumer,
        Topic(settings.source_topic),
        ConvertFactory(settings, producer, tally),
        commit_policy=ONCE_PER_SECOND,
        dlq_policy=DlqPolicy(ReasonedDlqProducer(dlq_producer, Topic(settings.dlq_topic))),
    )
    tally.processor = processor
    processor.run()
    stopwatch.committed()
    producer.close().result()
    dlq_producer.close().result()
    report(
        "arroyo",
        stopwatch,
        tally.consumed,
        tally.bytes_in,
        processed=tally.processed,
        dead_lettered=tally.dead_lettered,
        versions={name: metadata.version(name) for name in ("sentry-arroyo", "confluent-kafka", "fastavro")},
    )


if __name__ == "__main__":
    main()
