"""`kdp tail <topic>`: read a topic through the schema registry and print what it holds.

Avro records are decoded with the wire-format contract (`streaming.conversion.encoding.WireFormatDecoder`: the writer
schema fetched by the id each record carries), so this is what any governed reader sees. Dead letters print
their `kdp.dlq.*` headers (`streaming.delivery.dead_letter`) and the original bytes; anything else prints as text.
Reads read_committed, up to each partition's end as it is when the command starts (`streaming.topic_reader`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from confluent_kafka import Message
from confluent_kafka.schema_registry import SchemaRegistryClient

from streaming import access
from streaming.conversion.encoding import UndecodableRecord, WireFormatDecoder
from streaming.delivery.dead_letter import read_dead_letter_headers
from streaming.settings import Settings
from streaming.topic_reader import BEYOND, TopicReadError, current_ranges, read_ranges, reader_consumer


def add_tail_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tail", help="print records of a topic, decoded through the registry")
    parser.add_argument("topic", help="e.g. processed-data, user-login.dlq, user-login")
    parser.add_argument("-n", "--max", type=int, default=10, help="records to print (default 10)")
    parser.add_argument("--from-beginning", action="store_true", help="start at the oldest offsets")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait when the broker sends nothing")
    parser.set_defaults(handler=run_tail)


def describe(value: bytes | None, headers: Any, decode: Callable[[bytes | None], dict[str, Any]]) -> dict[str, Any]:
    """One message as a printable dict: the decoded record, or a dead letter, or raw text."""
    dead_letter = read_dead_letter_headers(headers)
    if dead_letter:
        return {"dead_letter": dead_letter, "original": None if value is None else value.decode("utf-8", "replace")}
    if value and value[:1] == b"\x00" and len(value) > 5:
        try:
            return decode(value)
        except UndecodableRecord as error:
            return {"undecodable": str(error), "raw": value.decode("utf-8", "replace")}
    return {"raw": None if value is None else value.decode("utf-8", "replace")}


def run_tail(args: argparse.Namespace) -> int:
    settings = Settings.from_env()
    decoder = WireFormatDecoder(SchemaRegistryClient(settings.registry_config()))
    printed = 0

    def show(message: Message) -> str:
        nonlocal printed
        if printed >= args.max:
            return BEYOND
        record = describe(message.value(), message.headers(), decoder.decode)
        print(f"{message.partition()}:{message.offset()}", json.dumps(record, default=str, ensure_ascii=False))
        printed += 1
        return "printed"

    access.check_access(settings, [access.topic(args.topic, "READ")])
    consumer = reader_consumer(settings, "tail")
    try:
        ranges = current_ranges(consumer, args.topic, last=None if args.from_beginning else args.max)
        read_ranges(consumer, ranges, show, idle_timeout_s=args.timeout)
    except TopicReadError as error:
        print(f"kdp tail: {error}", file=sys.stderr)
        return 1
    finally:
        consumer.close()
    return 0
