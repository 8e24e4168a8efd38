"""The conversion job: convert exactly the offset ranges in its run config.

A run reads its ranges from Kafka with `assign()` (no group membership), runs the same converter
as `kdp stream` (same transform, encoder and delivery code), and commits the converter group's
offsets batch by batch, each commit only after that batch's output is durable (in one Kafka
transaction with the output in exactly-once mode). A run that dies is redone from the group's
committed offset, so in exactly-once mode its output appears once.
"""

import dagster as dg

from orchestration.defs.conversion.offsets import active_members
from orchestration.defs.resources import KafkaResource, SchemaRegistryResource, pipeline_settings
from streaming.metrics import ConverterMetrics
from streaming.offset_ranges import OffsetRange
from streaming.pipeline import open_converter


class ConversionConfig(dg.Config):
    ranges: list[str]
    """Offset ranges as `topic:partition:start-end` (end exclusive)."""


@dg.op(description="Convert the offset ranges of the run config from JSON to Avro, dead letters aside.")
def convert_offset_ranges(
    context: dg.OpExecutionContext,
    config: ConversionConfig,
    kafka: KafkaResource,
    registry: SchemaRegistryResource,
) -> dg.Output[dict]:
    ranges = [OffsetRange.parse(key) for key in config.ranges]
    settings = pipeline_settings(kafka, registry)
    unknown = {r.topic for r in ranges} - {settings.source_topic}
    if unknown:
        raise dg.Failure(f"ranges name {sorted(unknown)}, but the converter reads {settings.source_topic!r}")
    members = active_members(settings)
    if members:
        # A `kdp stream` started after the sensor requested this run owns the group's offsets now.
        raise dg.Failure(
            f"group {settings.group_id!r} has {members} active member(s) (kdp stream?): not converting "
            "beside it; the sensor requests the range again once the group is idle"
        )
    # One transactional id per partition set: a redone run fences the zombie of the one it redoes.
    instance = "dagster-" + "-".join(f"{r.topic}.{r.partition}" for r in sorted(ranges))
    # The counts `kdp stream` exports to Prometheus, gathered the same way: a run is too short to be scraped.
    metrics = ConverterMetrics(process_metrics=False)
    converter = open_converter(settings, instance=instance, poll_timeout=0.5, observer=metrics)
    try:
        remaining = converter.assign_ranges(ranges)
        context.log.info("converting %s (already committed: %d ranges)", remaining, len(ranges) - len(remaining))
        summary = converter.run(max_failed_batches=5)
    finally:
        converter.close()
    counts = metrics.counts()
    by_reason = counts.pop("dead_letters_by_reason")
    result = {
        "consumed": summary.consumed,
        "processed": summary.processed,
        "dead_lettered": summary.dead_lettered,
        "redone_batches": summary.redone_batches,
    }
    context.log_event(
        dg.AssetMaterialization(
            "processed_data",
            description=f"converted {', '.join(config.ranges)}",
            metadata={**{k: dg.MetadataValue.int(v) for k, v in result.items()}, "delivery": settings.delivery},
        )
    )
    return dg.Output(
        result,
        metadata={
            **{k: dg.MetadataValue.int(v) for k, v in counts.items()},
            "dead_letters_by_reason": dg.MetadataValue.json(by_reason),
            "ranges": dg.MetadataValue.json(config.ranges),
            "msg_per_s": dg.MetadataValue.float(
                round(summary.consumed / summary.elapsed, 1) if summary.elapsed else 0.0
            ),
        },
    )


@dg.job(
    description="Convert explicit offset ranges of user-login (requested by the conversion sensor).",
    tags={"kdp/area": "conversion"},
)
def convert_ranges() -> None:
    convert_offset_ranges()


def run_config_for(ranges: list[OffsetRange]) -> dict:
    return {"ops": {"convert_offset_ranges": {"config": {"ranges": [r.key for r in ranges]}}}}
