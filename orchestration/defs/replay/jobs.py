"""The `replay_dead_letters` job: replay selected dead letters through the current transform (`kdp replay`'s
twin, the same `streaming.replay.run` code), launchable from the UI with typed config.

Config (op `replay_dead_letters_op`): the selection, as `kdp replay`'s flags say it (`streaming.replay.request`):
reasons, source partitions, source offsets `START-END`, a failure-time window (ISO 8601, epoch milliseconds, or
a duration before now such as `2h`), a limit per run, the maximum number of replays; and `dry_run`. Like the
CLI, a launch only counts unless told otherwise: `dry_run: false` replays.

The op's output metadata carries the figures (read, selected, processed, dead-lettered again, left alone by
verdict), the selected dead letters by reason, the run id and whether it resumed an unfinished run. A run that
fails or is terminated is resumed by the next launch with the same selection (the progress is the selection's
consumer group on the dead-letter topic). A mistake (an unknown reason, a window in the future, a selection
that matches nothing, a missing topic) fails the run with the message, having changed nothing.

No `from __future__ import annotations`: Dagster reads the config annotations at import time.
"""

import dagster as dg

from orchestration.defs.refusals import refusals_fail_the_run
from orchestration.defs.resources import KafkaResource, SchemaRegistryResource, pipeline_settings, push_metadata
from streaming.replay.selection import DEFAULT_MAX_REPLAYS, ReplayError
from streaming.settings import Settings

AREA_TAGS = {"kdp/area": "replay"}


class ReplayConfig(dg.Config):
    reasons: list[str] = []
    """Reason codes to replay (e.g. `rejected_by_broker`); empty: every reason."""
    source_partitions: list[int] = []
    """Source partitions; empty: all."""
    source_offsets: str | None = None
    """Source offsets `START-END` (END excluded)."""
    failed_since: str | None = None
    """Dead letters that failed at or after this time: ISO 8601, epoch ms, or a duration before now (`2h`)."""
    failed_until: str | None = None
    """Dead letters that failed before this time (same forms)."""
    limit: int | None = None
    """Take at most this many in this run; the next launch with the same selection goes on."""
    max_replays: int = DEFAULT_MAX_REPLAYS
    """Leave dead letters already replayed this often."""
    dry_run: bool = True
    """Only count what would be replayed and change nothing, unless set to false (as `kdp replay` without
    `--execute`): a launch from the Launchpad with the defaults never replays by accident."""


@dg.op(
    description="Replay selected dead letters through the current transform: converted ones to processed-data "
    "with their original source coordinates, refused ones to the dead-letter topic again (replay count + 1)."
)
def replay_dead_letters_op(
    context: dg.OpExecutionContext, config: ReplayConfig, kafka: KafkaResource, registry: SchemaRegistryResource
) -> dict:
    import time

    settings = pipeline_settings(kafka, registry)
    now_ms = int(time.time() * 1000)
    with refusals_fail_the_run(settings):
        return _replay(context, config, settings, now_ms)


def _replay(context: dg.OpExecutionContext, config: ReplayConfig, settings: Settings, now_ms: int) -> dict:
    from streaming.observe.metrics import ConverterMetrics
    from streaming.observe.metrics_push import MetricsPusher
    from streaming.replay.request import selection_from_text
    from streaming.replay.run import execute_replay, preview_replay, replay_instance

    try:
        selection = selection_from_text(
            now_ms=now_ms,
            reasons=config.reasons,
            source_partitions=config.source_partitions,
            source_offsets=config.source_offsets,
            failed_since=config.failed_since,
            failed_until=config.failed_until,
            limit=config.limit,
            max_replays=config.max_replays,
        )
        if config.dry_run:
            preview = preview_replay(settings, selection, samples=5, now_ms=now_ms)
            figures = {"read": preview.read, "would_take": preview.selected}
            context.add_output_metadata(
                {
                    **{name: dg.MetadataValue.int(value) for name, value in figures.items()},
                    "would_take_by_reason": dg.MetadataValue.json(dict(preview.selected_by_reason)),
                    "left_by_verdict": dg.MetadataValue.json(
                        {v: n for v, n in preview.verdicts.items() if v != "selected"}
                    ),
                    "transform_accepts": dg.MetadataValue.int(preview.transform_accepts),
                    "samples": dg.MetadataValue.json(preview.samples),
                    "run_id": dg.MetadataValue.text(preview.run.run_id),
                    "dry_run": dg.MetadataValue.bool(True),
                }
            )
            context.log.info("dry run: would take %d of %d dead letters read", preview.selected, preview.read)
            return figures
        # The counts `kdp stream` exports, pushed to the Pushgateway (KDP_PUSHGATEWAY_URL, if set) with mode="replay".
        metrics = ConverterMetrics(process_metrics=False)
        instance = replay_instance(selection, settings.dlq_topic)
        pusher = MetricsPusher(metrics.registry, settings.pushgateway_url, mode="replay", instance=instance)
        with pusher:
            result = execute_replay(
                settings, selection, now_ms=now_ms, observer=metrics, poll_timeout=0.5, max_failed_batches=5
            )
    except ReplayError as error:
        raise dg.Failure(description=f"nothing was replayed: {error}") from error
    figures = result.figures()
    context.add_output_metadata(
        {
            **{name: dg.MetadataValue.int(value) for name, value in figures.items()},
            "selected_by_reason": dg.MetadataValue.json(dict(result.summary.taken_reasons)),
            "run_id": dg.MetadataValue.text(result.run.run_id),
            "resumed": dg.MetadataValue.bool(result.run.resumed),
            "finished": dg.MetadataValue.bool(not result.summary.limit_reached.is_set()),
            "dead_letter_ranges": dg.MetadataValue.json([r.key for r in result.run.ranges]),
            "delivery": dg.MetadataValue.text(settings.delivery),
            **push_metadata(pusher, context.log),
            "seconds": dg.MetadataValue.float(round(result.summary.elapsed, 2)),
        }
    )
    context.log.info(result.line())
    return figures


@dg.job(
    description="Replay dead letters after a fix (reasons, source partitions/offsets, failure-time window, limit); "
    "resumable; a dry run (counts only) unless `dry_run: false`.",
    tags=AREA_TAGS,
)
def replay_dead_letters() -> None:
    replay_dead_letters_op()
