"""Baseline (a): the take-home's original design, `python -m bench.baselines.seed_design --expect N`.

As the original consumer did it: one `poll()` per message, `json.loads`, keep the known fields with
surrounding whitespace stripped and `device_type` defaulting to "unknown", add a processing time,
`json.dumps`, produce the JSON to the output topic, `poll(0)` to serve the producer, and let the
consumer auto-commit (librdkafka's defaults: every 5 s, and on close). Unparseable messages are
skipped, as the original logged and dropped them: no dead-letter topic, no schema, no Avro.

Generous to the seed, so the ratio is not inflated: no per-message log line (the original warned on
every missing field) and no per-message flush. It stops after `--expect` messages, the backlog's size.
The last "commit" is the end of `close()`, which commits the auto-commit offsets.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from typing import Any

from confluent_kafka import Consumer, Producer

from bench.subject import Stopwatch, report
from streaming.settings import Settings

KNOWN_FIELDS = ("user_id", "app_version", "ip", "locale", "device_id", "timestamp", "device_type")


def clean(event: dict[str, Any]) -> dict[str, Any]:
    """The seed's transform: known fields, strings stripped, `device_type` defaulting to 'unknown'."""
    cleaned = {}
    for name in KNOWN_FIELDS:
        value = event.get(name)
        cleaned[name] = value.strip() if isinstance(value, str) else value
    if not cleaned["device_type"]:
        cleaned["device_type"] = "unknown"
    cleaned["processed_at"] = int(time.time())
    return cleaned


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expect", type=int, required=True, help="messages in the backlog: stop after these")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    consumer = Consumer({**settings.kafka_config(), "group.id": settings.group_id, "auto.offset.reset": "earliest"})
    producer = Producer(settings.kafka_config())
    consumer.subscribe([settings.source_topic])
    stopwatch = Stopwatch()
    consumed = produced = skipped = bytes_in = 0
    device_types: Counter[str] = Counter()
    output = settings.output_topic
    while consumed < args.expect:
        message = consumer.poll(1.0)
        if message is None:
            continue
        if message.error():
            continue
        stopwatch.consumed()
        consumed += 1
        value = message.value() or b""
        bytes_in += len(value)
        try:
            event = json.loads(value.decode("utf-8"))
            processed = clean(event)
        except (ValueError, AttributeError):  # not UTF-8, not JSON, or not a JSON object
            skipped += 1
            continue
        device_types[str(processed["device_type"])] += 1
        payload = json.dumps(processed).encode("utf-8")
        while True:
            try:
                producer.produce(output, payload)
                break
            except BufferError:  # the local queue is full: wait for the broker rather than crash
                producer.poll(0.05)
        producer.poll(0)
        produced += 1
    producer.flush()
    consumer.close()
    stopwatch.committed()
    report("seed_design", stopwatch, consumed, bytes_in, processed=produced, dead_lettered=None, skipped=skipped)


if __name__ == "__main__":
    main()
