"""The cost of handing records to the producer, per send method: `python -m bench.send_path [--rounds N]`.

What the converter's fast send does (`streaming.delivery.contract.ProducerDelivery._send_records`) is one positional
`Producer.produce(topic, value, key, -1, None, None, timestamp)` per record. confluent-kafka also offers
`Producer.produce_batch(topic, [{"value": ..., "key": ...}, ...])`, one call for many records (it takes no
headers and no timestamps: the records would carry the broker's `LogAppendTime` only). This measures, on the
caller's thread (`time.thread_time`: what the converter's loop pays; librdkafka's own threads are not in it),
the microseconds per record of:

- `produce`: the converter's call, positional, with the batch's timestamp;
- `produce, no timestamp`: the same without it;
- `produce_batch`: one call per batch, building its list of dicts included (the router would build it
  instead of its two columns).

Batches of `--batch` records of the converter's output size go to a fresh 6-partition topic on the cluster of
`KDP_BOOTSTRAP`, with the converter's producer settings; the producer is flushed before each timed call (not
timed), so each starts on an empty queue. The methods take turns within each round, in alternating order.
Prints one line per method: median, min and max over the rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Callable

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from streaming.delivery.kafka_clients import producer_config
from streaming.settings import Settings

RECORD_BYTES = 160
"""About a processed record's size (wire format header + Avro)."""


def measure(rounds: int, batch: int) -> dict[str, list[float]]:
    settings = Settings.from_env()
    topic = f"bench-send-path-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(settings.kafka_config())
    admin.create_topics([NewTopic(topic, 6, 1)])[topic].result()
    config = {**producer_config(settings), "enable.idempotence": True, "acks": "all"}
    producer = Producer({**config, "delivery.report.only.error": True, "on_delivery": lambda _error, _msg: None})
    values = [os.urandom(RECORD_BYTES) for _ in range(batch)]
    keys = [str(uuid.uuid4()).encode() for _ in range(batch)]
    stamp = int(time.time() * 1000)

    def produce() -> None:
        call = producer.produce
        for value, key in zip(values, keys, strict=True):
            call(topic, value, key, -1, None, None, stamp)

    def produce_without_timestamp() -> None:
        call = producer.produce
        for value, key in zip(values, keys, strict=True):
            call(topic, value, key)

    def produce_batch() -> None:
        producer.produce_batch(topic, [{"value": value, "key": key} for value, key in zip(values, keys, strict=True)])

    methods: dict[str, Callable[[], None]] = {
        "produce": produce,
        "produce, no timestamp": produce_without_timestamp,
        "produce_batch": produce_batch,
    }
    costs: dict[str, list[float]] = {name: [] for name in methods}
    try:
        for round_number in range(rounds):
            order = list(methods.items())
            for name, method in order if round_number % 2 else reversed(order):
                producer.flush(30)
                started = time.thread_time()
                method()
                costs[name].append((time.thread_time() - started) / batch * 1e6)
        producer.flush(30)
    finally:
        admin.delete_topics([topic])
    return costs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--batch", type=int, default=5000, help="records per timed call (default 5,000)")
    args = parser.parse_args(argv)
    for name, values in measure(args.rounds, args.batch).items():
        print(
            f"{name:24s} {statistics.median(values):.3f} µs/record (min {min(values):.3f}, max {max(values):.3f}, "
            f"{len(values)} rounds of {args.batch:,})"
        )


if __name__ == "__main__":
    main()
