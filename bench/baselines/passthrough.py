"""Baseline (c): pass-through, the Python ceiling: `python -m bench.baselines.passthrough --expect N`.

The converter's skeleton with nothing inside: the same consumer and producer settings
(`streaming.delivery.kafka_clients`), the same batches (`KDP_BATCH_SIZE`), the same send call (a positional `produce`
per record, stamped with one clock reading per batch, as `streaming.delivery.contract.ProducerDelivery` sends records)
and the same at-least-once completion (`streaming.delivery.at_least_once.AtLeastOnce`: flush, then an asynchronous
commit; a synchronous one at the end), but every message is produced to the output topic with its own bytes
and key, untouched. What is left is the cost of moving messages through confluent-kafka from Python, so
ours/pass-through is the share of that ceiling we keep.
"""

from __future__ import annotations

import argparse
import time

from confluent_kafka import TopicPartition

from bench.subject import Stopwatch, report
from streaming.delivery.at_least_once import AtLeastOnce
from streaming.delivery.kafka_clients import make_consumer, producer_config
from streaming.settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expect", type=int, required=True, help="messages in the backlog: stop after these")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    delivery = AtLeastOnce(producer_config(settings))
    consumer = make_consumer(settings, delivery.consumer_config())
    produce, poll = delivery.producer.produce, delivery.producer.poll
    output = settings.output_topic
    consumer.subscribe([settings.source_topic])
    stopwatch = Stopwatch()
    consumed = bytes_in = 0
    while consumed < args.expect:
        messages = consumer.consume(settings.batch_size, 1.0)
        if not messages:
            continue
        stopwatch.consumed()
        now_ms = int(time.time() * 1000)
        after: dict[tuple[str, int], int] = {}
        delivery.begin()
        for message in messages:
            if message.error() is not None:
                continue
            value = message.value()
            bytes_in += len(value) if value is not None else 0
            while True:
                try:
                    produce(output, value, message.key(), -1, None, None, now_ms)
                    break
                except BufferError:
                    poll(0.05)
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            assert topic is not None and partition is not None and offset is not None  # set on every consumed message
            after[(topic, partition)] = offset + 1
            consumed += 1
        delivery.complete(consumer, [TopicPartition(t, p, o) for (t, p), o in after.items()])
        stopwatch.committed()
    delivery.commit_outstanding(consumer)
    delivery.close()
    consumer.close()
    report("passthrough", stopwatch, consumed, bytes_in, processed=consumed, dead_lettered=0)


if __name__ == "__main__":
    main()
