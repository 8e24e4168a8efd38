"""Read `processed-data` as a downstream consumer: Avro through the schema registry, committed data only, each
source message once. The Python example of docs/consumers.md, run by tests/integration/test_consumer_example.py.

    pip install 'confluent-kafka[avro,schemaregistry]'
    python docs/examples/read_processed_data.py --bootstrap localhost:9092 \\
        --registry http://localhost:8081/apis/ccompat/v7 --group my-reader --until-end

Prints each record as one JSON line on stdout, and what it read on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_INVALID, Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

SourceKey = tuple[str, int, int]


def source_key(record: dict[str, Any]) -> SourceKey:
    """What identifies a record: the source message it was converted from. A redelivered record has the same."""
    return record["source_topic"], record["source_partition"], record["source_offset"]


def make_consumer(bootstrap: str, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            # Only records of committed transactions: the exactly-once converter's aborted output stays unseen.
            # (librdkafka's default too; Java's is read_uncommitted, so say it everywhere.)
            "isolation.level": "read_committed",
            # Commit what was handled, after handling it: a crash re-reads, never skips.
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            # The converter writes lz4-compressed batches; librdkafka decompresses them, nothing to set.
        }
    )


def read(
    consumer: Consumer,
    registry_url: str,
    topic: str,
    handle: Callable[[dict[str, Any]], None],
    *,
    until_end: bool = False,
) -> tuple[int, int]:
    """Hand each record of `topic` to `handle` once (by its source key); returns (handled, duplicates skipped).

    The deserializer reads the schema id in each record's first bytes and fetches that schema from the registry
    (once per id): records written with an older or newer version of the schema decode alike.
    """
    deserialize = AvroDeserializer(SchemaRegistryClient({"url": registry_url}))
    seen: set[SourceKey] = set()  # in a real sink: a unique key (or an upsert) on the three source fields
    handled = duplicates = 0
    consumer.subscribe([topic])
    try:
        while True:
            messages = consumer.consume(500, timeout=1.0)
            for message in messages:
                if message.error() is not None:
                    raise SystemExit(f"read_processed_data: {message.error()}")
                record = deserialize(message.value(), SerializationContext(message.topic(), MessageField.VALUE))
                key = source_key(record)
                if key in seen:
                    duplicates += 1  # at-least-once: the converter sent it again after a failure
                    continue
                seen.add(key)
                handle(record)
                handled += 1
            if messages:
                consumer.commit(asynchronous=False)
            elif until_end and at_end(consumer):
                return handled, duplicates
    finally:
        consumer.close()


def at_end(consumer: Consumer) -> bool:
    """True when every assigned partition is read to its end. The position decides, not the last message:
    on a transactional topic the last offsets are commit markers, which are never delivered."""
    assignment = consumer.assignment()
    if not assignment:
        return False
    for tp in consumer.position(assignment):
        low, high = consumer.get_watermark_offsets(tp, timeout=10)
        position = tp.offset
        if position == OFFSET_INVALID:  # nothing consumed yet: the group's commit, or the start
            committed = consumer.committed([TopicPartition(tp.topic, tp.partition)], timeout=10)[0].offset
            position = committed if committed >= 0 else low
        if position < high:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="localhost:9092")
    parser.add_argument("--registry", default="http://localhost:8081/apis/ccompat/v7", help="Confluent-API base URL")
    parser.add_argument("--topic", default="processed-data")
    parser.add_argument("--group", required=True, help="this reader's consumer group")
    parser.add_argument("--until-end", action="store_true", help="stop at the end of the topic")
    args = parser.parse_args(argv)

    def print_record(record: dict[str, Any]) -> None:
        print(json.dumps(record, default=str, sort_keys=True))  # event_time, processed_at: datetimes (UTC)

    consumer = make_consumer(args.bootstrap, args.group)
    handled, duplicates = read(consumer, args.registry, args.topic, print_record, until_end=args.until_end)
    print(f"read {handled} records, skipped {duplicates} duplicates", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
