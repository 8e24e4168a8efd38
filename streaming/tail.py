"""`kdp tail <topic>`: read a topic through the schema registry and print what it holds.

Avro records in Confluent wire format are decoded with confluent-kafka's own AvroDeserializer
(the schema fetched by the id each record carries), so this is also what any governed reader
sees. Dead letters print their reason headers and the original bytes. Reads read_committed.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from streaming.dead_letter import read_dead_letter_headers
from streaming.settings import Settings


def add_tail_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tail", help="print records of a topic, decoded through the registry")
    parser.add_argument("topic", help="e.g. processed-data, user-login.dlq, user-login")
    parser.add_argument("-n", "--max", type=int, default=10, help="records to print (default 10)")
    parser.add_argument("--from-beginning", action="store_true", help="start at the oldest offsets")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for records")
    parser.set_defaults(handler=run_tail)


def describe(value: bytes | None, headers: Any, decode: Any) -> dict[str, Any]:
    """One message as a printable dict: the decoded record, or a dead letter, or raw text."""
    dead_letter = read_dead_letter_headers(headers)
    if dead_letter:
        return {"dead_letter": dead_letter, "original": None if value is None else value.decode("utf-8", "replace")}
    if value and value[:1] == b"\x00" and len(value) > 5:
        return decode(value)
    return {"raw": None if value is None else value.decode("utf-8", "replace")}


def run_tail(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    deserializer = AvroDeserializer(SchemaRegistryClient(settings.registry_config()))
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": f"kdp-tail-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    metadata = consumer.list_topics(args.topic, timeout=10).topics.get(args.topic)
    if metadata is None or metadata.error is not None:
        print(f"kdp tail: topic {args.topic!r} not found", file=sys.stderr)
        return 1
    partitions = []
    for p in metadata.partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(args.topic, p), timeout=10)
        start = low if args.from_beginning else max(low, high - args.max)
        partitions.append(TopicPartition(args.topic, p, start))
    consumer.assign(partitions)
    context = SerializationContext(args.topic, MessageField.VALUE)
    printed = 0
    try:
        while printed < args.max:
            message = consumer.poll(args.timeout)
            if message is None:
                break
            if message.error():
                continue
            record = describe(message.value(), message.headers(), lambda v: deserializer(v, context))
            where = f"{message.partition()}:{message.offset()}"
            print(where, json.dumps(record, default=str, ensure_ascii=False))
            printed += 1
    finally:
        consumer.close()
    return 0
