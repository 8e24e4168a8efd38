"""Peer (e): the job in Quix Streams 3.x, `<quixstreams venv>/bin/python -m bench.peers.quix_streams --expect N`.

Written as Quix's docs show it: an `Application` (at-least-once, its default), the source topic read as
bytes (a message that is not JSON must reach the dead-letter topic, not stop the app in the deserializer),
one `apply()` that validates, then two branches off it ("Multiple Topic Output" in Quix's branching docs):
- records: `to_topic` on a topic whose value serializer is Quix's `AvroSerializer` with a
  `SchemaRegistryClientConfig` (Confluent wire format, schema registered), keyed by `user_id` as ours;
- rejections: `set_headers` (our `kdp.dlq.*` headers) and `to_topic` on the dead-letter topic, original bytes.

Validation is the project's pure `streaming.conversion.transform.transform` (see `bench.peers`). It runs in its own
venv (`bench/peers/quixstreams-requirements.txt`) and imports from the repository only pure modules that
need nothing beyond msgspec. The run stops after `--expect` messages (`on_message_processed` calls
`Application.stop()`); the app then commits its last checkpoint, and that is the end of the measured span.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from quixstreams import Application, message_context
from quixstreams.kafka.configuration import ConnectionConfig
from quixstreams.models import SchemaRegistryClientConfig, SchemaRegistrySerializationConfig
from quixstreams.models.serializers.avro import AvroSerializer

from bench.subject import Stopwatch, report
from streaming.conversion.transform import transform
from streaming.delivery.dead_letter import dead_letter_headers
from streaming.settings import Settings

SCHEMA = Path(__file__).resolve().parents[2] / "schemas" / "processed-data-value.avsc"


class Tally:
    """Messages, payload bytes, records and dead letters seen, and the stop after `expect` messages."""

    def __init__(self, expect: int, stopwatch: Stopwatch) -> None:
        self.expect, self.stopwatch = expect, stopwatch
        self.consumed = self.bytes_in = self.processed = self.dead_lettered = 0
        self.app: Application | None = None

    def message_processed(self, topic: str, partition: int, offset: int) -> None:
        self.consumed += 1
        if self.consumed >= self.expect and self.app is not None:
            self.app.stop()


def build(settings: Settings, tally: Tally, state_dir: str) -> Application:
    """The application and its dataframe, ready to `run()`."""
    app = Application(
        broker_address=ConnectionConfig.from_librdkafka_dict(settings.kafka_config(), ignore_extras=True),
        consumer_group=settings.group_id,
        auto_offset_reset="earliest",
        processing_guarantee="at-least-once",
        state_dir=state_dir,
        on_message_processed=tally.message_processed,
    )
    tally.app = app
    credentials = f"{settings.registry_user}:{settings.registry_password}" if settings.registry_user else None
    registry = SchemaRegistryClientConfig(url=settings.registry_url, basic_auth_user_info=credentials)
    source = app.topic(settings.source_topic, key_deserializer="bytes", value_deserializer="bytes")
    output = app.topic(
        settings.output_topic,
        key_serializer="bytes",
        value_serializer=AvroSerializer(
            json.loads(SCHEMA.read_text()),
            schema_registry_client_config=registry,
            schema_registry_serialization_config=SchemaRegistrySerializationConfig(auto_register_schemas=True),
        ),
    )
    dlq = app.topic(settings.dlq_topic, key_serializer="bytes", value_serializer="bytes")

    def check(raw: bytes | None) -> dict[str, Any]:
        if tally.stopwatch.first_consume_at is None:
            tally.stopwatch.consumed()
        context = message_context()
        now_ms = time.time_ns() // 1_000_000
        tally.bytes_in += len(raw) if raw is not None else 0
        result = transform(raw, context.topic, context.partition, context.offset, now_ms)
        if type(result) is dict:
            tally.processed += 1
            return {"record": result}
        tally.dead_lettered += 1
        return {
            "rejection": result,
            "raw": raw,
            "failed_at": now_ms,
            "topic": context.topic,
            "partition": context.partition,
            "offset": context.offset,
        }

    checked = app.dataframe(source).apply(check)

    records = checked.filter(lambda verdict: "record" in verdict).apply(lambda verdict: verdict["record"])
    records.to_topic(output, key=lambda record: record["user_id"].encode())

    rejections = checked.filter(lambda verdict: "rejection" in verdict)
    rejections = rejections.set_headers(
        lambda verdict, key, timestamp, headers: dead_letter_headers(
            verdict["rejection"],
            verdict["topic"],
            verdict["partition"],
            verdict["offset"],
            timestamp,
            verdict["failed_at"],
        )
    )
    rejections.apply(lambda verdict: verdict["raw"]).to_topic(dlq)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expect", type=int, required=True, help="messages in the backlog: stop after these")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    stopwatch = Stopwatch()
    tally = Tally(args.expect, stopwatch)
    with tempfile.TemporaryDirectory(prefix="kdp-bench-quix-state-") as state_dir:
        build(settings, tally, state_dir).run()
        stopwatch.committed()
    report(
        "quixstreams",
        stopwatch,
        tally.consumed,
        tally.bytes_in,
        processed=tally.processed,
        dead_lettered=tally.dead_lettered,
        versions={name: metadata.version(name) for name in ("quixstreams", "confluent-kafka", "fastavro")},
    )


if __name__ == "__main__":
    main()
