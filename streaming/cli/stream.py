"""`kdp stream`: run the converter from the command line until stopped, or bounded.

SIGINT/SIGTERM finish the current batch (its output durable, its offsets committed) and stop
(`streaming.shutdown`); the run's summary goes to stdout in one line.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from streaming.settings import DELIVERY_MODES, Settings
from streaming.shutdown import Shutdown

log = logging.getLogger(__name__)


def add_stream_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "stream",
        help="convert user-login JSON into Avro on processed-data (dead letters aside)",
        description="Consume the source topic in the converter's group, convert, produce, commit. "
        "Settings come from KDP_* environment variables; the flags below override them.",
    )
    parser.add_argument("--delivery", choices=DELIVERY_MODES, help="default: $KDP_DELIVERY or at-least-once")
    parser.add_argument("--batch-size", type=int, help="messages per batch (default: $KDP_BATCH_SIZE or 5000)")
    parser.add_argument(
        "--instance",
        help="stable name of this instance: its exactly-once transactional id suffix and static group membership "
        "(a restart takes its partitions back at once)",
    )
    parser.add_argument("--max-messages", type=int, help="stop after this many messages")
    parser.add_argument("--until-caught-up", action="store_true", help="stop when no message is left to read")
    parser.add_argument("--log-every", type=float, default=10.0, help="seconds between progress lines")
    parser.add_argument(
        "--metrics-port", type=int, help="serve Prometheus metrics on this port (default: $KDP_METRICS_PORT)"
    )
    parser.set_defaults(handler=run_stream)


def run_stream(args: argparse.Namespace) -> int:
    from streaming.loop.pipeline import open_dedicated_converter

    if args.max_messages is not None and args.max_messages < 1:
        raise SystemExit("kdp stream: --max-messages must be at least 1")
    settings = Settings.from_env(delivery=args.delivery, batch_size=args.batch_size, metrics_port=args.metrics_port)
    metrics = None
    if settings.metrics_port is not None:  # first: a port in use fails the start before Kafka is touched
        from streaming.observe.metrics import ConverterMetrics

        metrics = ConverterMetrics()
        metrics.serve(settings.metrics_port)
        metrics.describe_run(delivery=settings.delivery, group=settings.group_id, source=settings.source_topic)
    watched: dict[str, object] = {"observer": metrics} if metrics else {}
    statistics = [metrics.on_statistics] if metrics else []
    if settings.statistics_file:
        from streaming.observe.client_statistics import StatisticsFile

        statistics.append(StatisticsFile(Path(settings.statistics_file)).on_statistics)
    if statistics:
        from streaming.observe.client_statistics import statistics_config
        from streaming.observe.metrics import STATISTICS_INTERVAL_MS

        watched["client_config"] = statistics_config(statistics, STATISTICS_INTERVAL_MS)
    converter = open_dedicated_converter(
        settings,
        instance=args.instance,
        static_member=args.instance is not None,
        log_every=args.log_every,
        **watched,  # type: ignore[arg-type]
    )
    log.info(
        "converting %s -> %s (%s), dead letters -> %s",
        settings.source_topic,
        settings.output_topic,
        settings.delivery,
        settings.dlq_topic,
    )
    converter.subscribe()
    shutdown = Shutdown("finishing the current batch, then stopping", "still finishing the current batch")
    with shutdown.on_signals():
        try:
            summary = converter.run(shutdown.stop, max_messages=args.max_messages, until_caught_up=args.until_caught_up)
        finally:
            converter.close()
    print(
        f"consumed {summary.consumed}, processed {summary.processed}, dead letters {summary.dead_lettered}, "
        f"{summary.consumed / summary.elapsed if summary.elapsed else 0:.0f} msg/s over {summary.elapsed:.1f}s; "
        f"by engine {summary.engines()}"
    )
    return 0
