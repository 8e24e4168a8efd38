"""docs/examples/read_processed_data.py, the Python example of docs/consumers.md, against the real stack.

The converter's real output (exactly-once), plus what a reader must cope with: records sent twice (as
at-least-once does after a failure) and an aborted transaction. The example must print each committed
record once, none of the aborted ones, and commit what it read.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from kafka_io import create_topics, read_all
from registry_io import register_output_schema
from scenario_settings import scenario_settings

from streaming.conversion.encoding import WireFormatEncoder
from streaming.generator.events import EventFactory, IrregularityRates
from streaming.generator.producer import generate
from streaming.loop.pipeline import open_converter

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "read_processed_data.py"
EVENTS = 3000
RESENT = 25
ABORTED = 10


def run_example(settings, group: str) -> tuple[list[dict], str]:
    command = [sys.executable, str(EXAMPLE), "--bootstrap", settings.bootstrap, "--registry", settings.registry_url]
    command += ["--topic", settings.output_topic, "--group", group, "--until-end"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()], done.stderr


def test_the_python_example_reads_each_committed_record_once(stack):
    settings = scenario_settings(stack.bootstrap, stack.registry_url, "exactly-once", "consumers")
    create_topics(settings.bootstrap, [settings.source_topic, settings.output_topic, settings.dlq_topic], 3)
    register_output_schema(settings)
    factory = EventFactory(3, IrregularityRates.with_malformed(0.05), users=300)
    assert generate({"bootstrap.servers": settings.bootstrap}, settings.source_topic, factory, count=EVENTS).ok
    converter = open_converter(settings, instance="consumers")
    converter.subscribe()
    try:
        summary = converter.run(until_caught_up=True)
    finally:
        converter.close()
    outputs = read_all(settings.bootstrap, settings.output_topic)
    assert len(outputs) == summary.processed > 0

    # Sent again, byte for byte: what a reader of at-least-once output sees after a converter's failure.
    producer = Producer({"bootstrap.servers": settings.bootstrap})
    for message in outputs[:RESENT]:
        producer.produce(settings.output_topic, message.value(), message.key())
    assert producer.flush(30) == 0
    # Records of a transaction that aborted: read_committed must never show them.
    deserialize = AvroDeserializer(SchemaRegistryClient(settings.registry_config()))
    context = SerializationContext(settings.output_topic, MessageField.VALUE)
    schema_id = int.from_bytes(outputs[0].value()[1:5], "big")
    schema = SchemaRegistryClient(settings.registry_config()).get_schema(schema_id).schema_str
    encoder = WireFormatEncoder(schema_id, schema)
    zombie = Producer({"bootstrap.servers": settings.bootstrap, "transactional.id": f"zombie-{uuid.uuid4()}"})
    zombie.init_transactions(30)
    zombie.begin_transaction()
    for n, message in enumerate(outputs[:ABORTED]):
        record = deserialize(message.value(), context)
        record["source_offset"] = 10**12 + n
        record["event_time"] = int(record["event_time"].timestamp() * 1000)
        record["processed_at"] = int(record["processed_at"].timestamp() * 1000)
        zombie.produce(settings.output_topic, encoder.encode(record), message.key())
    zombie.flush(30)
    zombie.abort_transaction(30)

    group = f"reader-{uuid.uuid4().hex[:8]}"
    records, report = run_example(settings, group)
    print(f"[consumers] example: {report.strip()}")
    keys = [(r["source_topic"], r["source_partition"], r["source_offset"]) for r in records]
    assert len(keys) == len(set(keys)) == summary.processed
    committed = [deserialize(m.value(), context) for m in outputs]
    assert set(keys) == {(r["source_topic"], r["source_partition"], r["source_offset"]) for r in committed}
    assert all(offset < 10**12 for _topic, _partition, offset in keys), "an aborted record was read"
    assert f"read {summary.processed} records, skipped {RESENT} duplicates" in report
    assert {r["device_type"] for r in records} >= {"android", "ios"}

    # The example committed what it read: the same group starts at the end.
    again, report = run_example(settings, group)
    assert again == [] and "read 0 records" in report
