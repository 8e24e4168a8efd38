"""Our converter as a measured subject: `python -m bench.converter_subject [--instance NAME] [...]`.

It builds the converter exactly as `kdp stream` does (`streaming.loop.pipeline.open_dedicated_converter`,
settings from the `KDP_*` environment, delivery mode from `KDP_DELIVERY`), subscribes, runs until caught up (or
until `--max-messages`), closes, and prints its `bench.subject` report. The only addition is `BatchClock`, a
pass-through wrapper of each consumer (handed to the assembly as its `cluster`) that reads the clock once per
batch: it adds one Python call per batch of thousands of messages, nothing per message.

Its batches' stages (poll, convert, produce, flush, commit: `streaming.observe.observer`) are timed into the converter's
own metrics, as `kdp stream` times them, and reported summed over the run (`stage_seconds`): where a throughput
run's time went, e.g. how much of an exactly-once run waited for its transactions' commits.

`--profile FILE` runs the loop under cProfile from its first batch on and writes the stats to FILE (see
`bench.profile`).
The stock-serializer baseline reuses `run_converter` with another encoder, so the two differ only there.
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from bench.stages import stage_totals
from bench.subject import Stopwatch, report
from streaming.delivery.kafka_clients import KafkaCluster
from streaming.loop.pipeline import open_dedicated_converter
from streaming.observe.metrics import ConverterMetrics
from streaming.settings import Settings


class BatchClock:
    """Wraps the converter's consumer and marks the first batch consumed and the end of every batch.

    The converter polls a batch only once the previous one is produced, durable and its offsets committed
    (at-least-once: handed to an asynchronous commit) or rewound, so entering `consume()` after a non-empty
    batch is the end of that batch's commit. Every other attribute is the real consumer's.
    """

    def __init__(self, consumer: Any, stopwatch: Stopwatch, on_first_batch: Callable[[], object] | None = None) -> None:
        self._consumer = consumer
        self._stopwatch = stopwatch
        self._on_first_batch = on_first_batch
        self._batch_open = False

    def consume(self, *args: Any, **kwargs: Any) -> list[Any]:
        self.batch_done()
        messages = self._consumer.consume(*args, **kwargs)
        if messages:
            if self._on_first_batch is not None and self._stopwatch.first_consume_at is None:
                self._on_first_batch()
            self._stopwatch.consumed()
            self._batch_open = True
        return messages

    def batch_done(self) -> None:
        """Close the open batch, if any (also called when the loop returns right after a batch)."""
        if self._batch_open:
            self._stopwatch.committed()
            self._batch_open = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._consumer, name)


class ClockedKafka(KafkaCluster):
    """The Kafka cluster, with each consumer the converter opens wrapped in a `BatchClock`."""

    def __init__(self, stopwatch: Stopwatch, on_first_batch: Callable[[], object] | None) -> None:
        self.stopwatch = stopwatch
        self.on_first_batch = on_first_batch
        self.clocks: list[BatchClock] = []

    def consumer(self, config: dict[str, Any]) -> BatchClock:  # type: ignore[override]
        self.clocks.append(BatchClock(super().consumer(config), self.stopwatch, self.on_first_batch))
        return self.clocks[-1]


def run_converter(subject: str, args: argparse.Namespace, **open_options: Any) -> None:
    """Open, subscribe, run (profiled when asked), close, report; `open_options` go to `open_converter`."""
    settings = Settings.from_env()
    stopwatch = Stopwatch()
    metrics = ConverterMetrics(process_metrics=False)
    profiler = cProfile.Profile() if args.profile else None
    # The profile starts with the first batch: joining the group and the first fetch are no hot path.
    cluster = ClockedKafka(stopwatch, on_first_batch=profiler.enable if profiler else None)
    converter = open_dedicated_converter(
        settings, instance=args.instance, log_every=args.log_every, observer=metrics, cluster=cluster, **open_options
    )
    converter.subscribe()
    try:
        summary = converter.run(max_messages=args.max_messages, until_caught_up=True)
        cluster.clocks[-1].batch_done()
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
    finally:
        converter.close()
    report(
        subject,
        stopwatch,
        summary.consumed,
        summary.bytes_in,
        processed=summary.processed,
        dead_lettered=summary.dead_lettered,
        delivery=settings.delivery,
        batch_size=settings.batch_size,
        batches=summary.batches,
        redone_batches=summary.redone_batches,
        profiled=bool(profiler),
        stage_seconds=stage_totals(metrics),
    )


def parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--instance", default=f"bench-{os.getpid()}", help="exactly-once transactional id suffix")
    parser.add_argument("--max-messages", type=int, help="stop after this many messages (default: caught up)")
    parser.add_argument("--profile", help="write cProfile stats of the loop to this file")
    parser.add_argument("--log-every", type=float, default=10.0)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    run_converter("converter", args)


if __name__ == "__main__":
    main()
