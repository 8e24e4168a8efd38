"""The conversion area's two assets: the source topic Dagster observes, and the output topic it writes.

- `user_login` is an external asset (an `AssetSpec`): the generator writes it, Dagster only observes it.
  The conversion sensor records its end offsets, the converter group's lag and the incoming rate as
  observations (Dagster's "observing streaming processes" pattern).
- `processed_data` is materialized by the `convert_ranges` runs the sensor requests: each run converts
  exactly the offset ranges of its config and returns a `MaterializeResult` with what it did. A long-running
  `kdp stream` writes the same topic outside Dagster; its work is not reported here (it has no runs), and the
  sensor yields to it (see `sensors`).

A run reads its ranges with `assign()` (no group membership), runs the same converter as `kdp stream` (same
transform, encoder and delivery code), and commits the converter group's offsets batch by batch, each commit
only after that batch's output is durable (in one Kafka transaction with the output in exactly-once mode).
A run that dies is redone from the group's committed offset, so in exactly-once mode its output appears once.

No `from __future__ import annotations`: Dagster reads the config and resource annotations at import time.
"""

import dagster as dg

from orchestration.conversion.offsets import active_members
from orchestration.defs.refusals import refusals_fail_the_run
from orchestration.defs.resources import KafkaResource, SchemaRegistryResource, pipeline_settings, push_metadata
from streaming.conversion.encoding import WireFormatEncoder
from streaming.loop.pipeline import PROCESSED_SCHEMA, open_converter, registered_output_schema
from streaming.observe.metrics import ConverterMetrics
from streaming.observe.metrics_push import MetricsPusher
from streaming.offset_ranges import OffsetRange
from streaming.schema_registry import SchemaNotRegisteredError, load_schema

STREAMS = "streams"

user_login = dg.AssetSpec(
    "user_login",
    description="Raw JSON login events on the Kafka topic `user-login` (KDP_SOURCE_TOPIC), written by "
    "the generator. Observed by the conversion sensor: end offsets, converter lag, throughput.",
    group_name=STREAMS,
    kinds={"kafka"},
)


class ConversionConfig(dg.Config):
    ranges: list[str]
    """Offset ranges as `topic:partition:start-end` (end exclusive), e.g. `user-login:0:0-5000`."""


@dg.asset(
    deps=[user_login],
    group_name=STREAMS,
    kinds={"kafka"},
    description="Avro login records (Confluent wire format) on the Kafka topic `processed-data` "
    "(KDP_OUTPUT_TOPIC), Kafka timestamp = processing time (the event time is the record's `event_time`); "
    "rejected messages go to the dead-letter topic. "
    "Materialized by `convert_ranges` runs, each converting the offset ranges of its config.",
)
def processed_data(
    context: dg.AssetExecutionContext,
    config: ConversionConfig,
    kafka: KafkaResource,
    registry: SchemaRegistryResource,
) -> dg.MaterializeResult:
    ranges = [OffsetRange.parse(key) for key in config.ranges]
    settings = pipeline_settings(kafka, registry)
    unknown = {r.topic for r in ranges} - {settings.source_topic}
    if unknown:
        raise dg.Failure(f"ranges name {sorted(unknown)}, but the converter reads {settings.source_topic!r}")
    with refusals_fail_the_run(settings):
        members = active_members(settings)
    if members:
        # A `kdp stream` started after the sensor requested this run owns the group's offsets now.
        raise dg.Failure(
            f"group {settings.group_id!r} has {members} active member(s) (kdp stream?): not converting "
            "beside it; the sensor requests the range again once the group is idle"
        )
    # One transactional id per partition set: a redone run fences the zombie of the one it redoes.
    instance = "dagster-" + "-".join(f"{r.topic}.{r.partition}" for r in sorted(ranges))
    # The counts `kdp stream` exports to Prometheus, gathered the same way: a run is too short to be scraped, so
    # they are pushed to the Pushgateway (KDP_PUSHGATEWAY_URL, if set) with mode="sensor".
    metrics = ConverterMetrics(process_metrics=False)
    pusher = MetricsPusher(metrics.registry, settings.pushgateway_url, mode="sensor", instance=instance)
    with refusals_fail_the_run(settings):
        try:  # looked up, never registered: the control plane registers (provision_topics, kdp schema register)
            schema = registered_output_schema(settings)
        except SchemaNotRegisteredError as error:
            raise dg.Failure(description=str(error)) from None
        encoder = WireFormatEncoder(schema.schema_id, load_schema(PROCESSED_SCHEMA))
        converter = open_converter(settings, instance=instance, encoder=encoder, poll_timeout=0.5, observer=metrics)
    try:
        with pusher:
            remaining = converter.assign_ranges(ranges)
            context.log.info("converting %s (already committed: %d ranges)", remaining, len(ranges) - len(remaining))
            summary = converter.run(max_failed_batches=5)
    finally:
        converter.close()
    counts = {
        "consumed": summary.consumed,
        "processed": summary.processed,
        "dead_lettered": summary.dead_lettered,
        "redone_batches": summary.redone_batches,
    }
    exported = metrics.counts()
    exported.pop("dead_letters_by_reason")
    return dg.MaterializeResult(
        metadata={
            **{name: dg.MetadataValue.int(value) for name, value in counts.items()},
            **{name: dg.MetadataValue.int(value) for name, value in exported.items() if name not in counts},
            "dead_letters_by_reason": dg.MetadataValue.json(dict(summary.insights.reasons)),
            "ranges": dg.MetadataValue.json(config.ranges),
            "delivery": dg.MetadataValue.text(settings.delivery),
            **push_metadata(pusher, context.log),
            "schema_subject": dg.MetadataValue.text(schema.subject),
            "schema_id": dg.MetadataValue.int(schema.schema_id),
            "schema_version": dg.MetadataValue.int(schema.version),
            "msg_per_s": dg.MetadataValue.float(
                round(summary.consumed / summary.elapsed, 1) if summary.elapsed else 0.0
            ),
        },
    )
