"""`kdp replay`: replay dead letters through the current transform, after a fix. A dry run unless `--execute`.

The dry run prints what the next run of the selection would take, by reason, with a few samples, and
changes nothing. `--execute` replays them (`streaming.replay.run`) and prints the run's figures in one line; with
`KDP_PUSHGATEWAY_URL` set it pushes the converter's counters there (`streaming.observe.metrics_push`, mode `replay`);
SIGINT/SIGTERM finish the current batch and stop, and the next `kdp replay --execute` with the same
selection resumes there. Mistakes (an unknown reason, a window in the future, a selection that matches
nothing, a topic that does not exist) exit with code 2 and a message, having changed nothing.
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING

from streaming.records import Reason
from streaming.replay.selection import DEFAULT_MAX_REPLAYS, ReplayError, ReplaySelection
from streaming.settings import DELIVERY_MODES, Settings

if TYPE_CHECKING:
    from streaming.replay.run import ReplayPreview

log = logging.getLogger(__name__)

EPILOG = """\
times: an ISO 8601 time (2026-12-01T03:00:00Z; UTC when no zone is given), epoch milliseconds,
or a duration before now (30m, 2h, 7d).

examples:
  kdp replay                                          what a replay of every dead letter would take
  kdp replay --reason rejected_by_broker --execute    replay the outputs the broker refused, after the fix
  kdp replay --reason invalid_locale --failed-since 2h --limit 100 --execute

Each selection keeps its progress in its own consumer group (kdp-replay-<id>) on the dead-letter topic: run
the same command again to resume a run that was stopped, or to take what failed since. What is refused
again becomes a new dead letter (kdp.dlq.replay.count + 1); after --max-replays it is left alone.
"""


def add_replay_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="replay dead letters through the current transform (dry run unless --execute)",
        description="Send selected dead letters' original bytes through the current transform and encoder:\n"
        "what converts goes to the output topic with its original source topic/partition/offset, what is\n"
        "refused again becomes a new dead letter. Without --execute: a dry run that changes nothing.\n"
        "Settings come from KDP_* environment variables (the dead-letter topic is KDP_DLQ_TOPIC).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    select = parser.add_argument_group("selection (every criterion left out matches all)")
    select.add_argument(
        "--reason",
        action="append",
        default=[],
        metavar="REASON",
        help=f"a reason code; repeat for several ({', '.join(r.value for r in Reason)})",
    )
    select.add_argument(
        "--source-partition", action="append", type=int, default=[], metavar="N", help="a source partition; repeat"
    )
    select.add_argument("--source-offsets", metavar="START-END", help="source offsets START (included) to END")
    select.add_argument("--failed-since", metavar="TIME", help="dead letters that failed at or after TIME")
    select.add_argument("--failed-until", metavar="TIME", help="dead letters that failed before TIME")
    select.add_argument("--limit", type=int, help="take at most this many in this run (the next run goes on)")
    select.add_argument(
        "--max-replays",
        type=int,
        default=DEFAULT_MAX_REPLAYS,
        help=f"leave dead letters replayed this often already (default {DEFAULT_MAX_REPLAYS})",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="only say what would be replayed (the default)")
    mode.add_argument("--execute", action="store_true", help="replay them")
    parser.add_argument("--samples", type=int, default=3, help="dead letters shown by the dry run (default 3)")
    parser.add_argument("--delivery", choices=DELIVERY_MODES, help="default: $KDP_DELIVERY or at-least-once")
    parser.add_argument("--batch-size", type=int, help="dead letters per batch (default: $KDP_BATCH_SIZE or 5000)")
    parser.add_argument("--log-every", type=float, default=10.0, help="seconds between progress lines")
    parser.set_defaults(handler=run_replay)


def selection_from_args(args: argparse.Namespace, now_ms: int) -> ReplaySelection:
    from streaming.replay.request import selection_from_text

    return selection_from_text(
        now_ms=now_ms,
        reasons=args.reason,
        source_partitions=args.source_partition,
        source_offsets=args.source_offsets,
        failed_since=args.failed_since,
        failed_until=args.failed_until,
        limit=args.limit,
        max_replays=args.max_replays,
    )


def run_replay(args: argparse.Namespace) -> int:
    import time

    from streaming.replay import run as replay

    settings = Settings.from_env(delivery=args.delivery, batch_size=args.batch_size)
    now_ms = int(time.time() * 1000)
    try:
        selection = selection_from_args(args, now_ms)
        if not args.execute:
            print_preview(replay.preview_replay(settings, selection, samples=args.samples, now_ms=now_ms), settings)
            return 0
        from streaming.observe.metrics import ConverterMetrics
        from streaming.observe.metrics_push import MetricsPusher
        from streaming.shutdown import Shutdown

        shutdown = Shutdown("finishing the current batch, then stopping", "still finishing the current batch")
        metrics = ConverterMetrics(process_metrics=False)
        instance = replay.replay_instance(selection, settings.dlq_topic)
        pusher = MetricsPusher(metrics.registry, settings.pushgateway_url, mode="replay", instance=instance)
        with shutdown.on_signals(), pusher:
            result = replay.execute_replay(
                settings, selection, stop=shutdown.stop, now_ms=now_ms, observer=metrics, log_every=args.log_every
            )
    except ReplayError as error:
        print(f"kdp replay: {error}")
        return 2
    print(result.line())
    if result.summary.limit_reached.is_set():
        print("stopped before the end: run the same command again to go on")
    return 0


def print_preview(preview: ReplayPreview, settings: Settings) -> None:
    run = preview.run
    spans = ", ".join(f"{r.partition}:{r.start}-{r.end}" for r in run.ranges) or "nothing"
    kind = f"resumes unfinished run {run.run_id}" if run.resumed else "starts a new run"
    print(f"dry run, nothing changed. The next replay of this selection {kind} on {settings.dlq_topic}: {spans}")
    print(f"  dead letters read: {preview.read}; it would take {preview.selected}")
    for reason, count in preview.selected_by_reason.most_common():
        print(f"    {reason:<24} {count}")
    left = {verdict: count for verdict, count in preview.verdicts.items() if verdict != "selected"}
    if left:
        print("  it would leave: " + ", ".join(f"{count} {verdict}" for verdict, count in sorted(left.items())))
    if preview.selected:
        print(
            f"  the current transform accepts {preview.transform_accepts} of the {preview.selected} "
            "(the rest would become dead letters again; the broker may still refuse some)"
        )
    if preview.samples:
        print("  samples:")
    for sample in preview.samples:
        print(
            f"    {sample['dead_letter']}  {sample['reason']}  source {sample['source']}  failed {sample['failed_at']}"
            f"  replays {sample['replays']}"
        )
        print(f"      {sample['detail']}")
        print(f"      {sample['original']}")
    if preview.selected:
        print("run the same command with --execute to replay them")
