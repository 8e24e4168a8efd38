"""The conversion sensor: turn the converter group's lag into bounded micro-batch runs.

Each tick (bounded Kafka calls only, see `offsets.py`):

1. yields to a running `kdp stream`: if the converter group has active members, the stream owns
   the group's offsets and the sensor requests nothing (two writers of one group's offsets would
   fight);
2. reads end offsets and the group's commits, and requests one `convert_ranges` run per idle
   partition with pending messages, at most `MAX_RANGE` offsets each, keyed
   `topic:partition:start-end` (a range that failed before gets an `#attempt-N` suffix, since a
   run key is deduplicated forever);
3. reports lag, end offsets and throughput as an observation of the `user_login` asset.

Offsets are committed by the runs, after their output is durable, never by the sensor.
"""

import json
import time

import dagster as dg

from orchestration.conversion.offsets import TopicMissing, active_members, read_offsets
from orchestration.conversion.pending import pending_ranges, total_lag
from orchestration.defs.conversion.jobs import convert_ranges, run_config_for
from orchestration.defs.resources import KafkaResource

MAX_RANGE = 200_000
IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
PARTITION_TAG = "kdp/partition"
RANGE_TAG = "kdp/range"


def _partitions_in_flight(instance: dg.DagsterInstance, topic: str) -> set[int]:
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=convert_ranges.name, statuses=IN_FLIGHT))
    busy = set()
    for run in runs:
        tag = run.tags.get(PARTITION_TAG, "")
        run_topic, _, partition = tag.rpartition(":")
        if run_topic == topic and partition.isdigit():
            busy.add(int(partition))
    return busy


def _run_key(instance: dg.DagsterInstance, range_key: str) -> str:
    """The range's key, suffixed by the attempt when earlier runs of the same range ended."""
    earlier = instance.get_runs_count(filters=dg.RunsFilter(tags={RANGE_TAG: range_key}))
    return range_key if earlier == 0 else f"{range_key}#attempt-{earlier + 1}"


@dg.sensor(
    job=convert_ranges,
    minimum_interval_seconds=15,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests conversion runs over the pending offset ranges of user-login; observes its lag.",
)
def conversion_sensor(context: dg.SensorEvaluationContext, kafka: KafkaResource) -> dg.SensorResult | dg.SkipReason:
    settings = kafka.settings()
    topic = settings.source_topic
    try:
        offsets = read_offsets(settings, topic)
    except TopicMissing as missing:
        return dg.SkipReason(str(missing))
    members = active_members(settings)
    lag = total_lag(offsets.high, offsets.low, offsets.committed)
    now = time.time()
    previous = json.loads(context.cursor) if context.cursor else None
    end_total = sum(offsets.high.values())
    metadata: dict[str, dg.RawMetadataValue] = {
        "lag": dg.MetadataValue.int(lag),
        "end_offsets": dg.MetadataValue.json({str(p): o for p, o in offsets.high.items()}),
        "group_members": dg.MetadataValue.int(members),
    }
    if previous and now > previous["at"]:
        metadata["incoming_msg_per_s"] = dg.MetadataValue.float(
            round((end_total - previous["end_total"]) / (now - previous["at"]), 1)
        )
    observation = dg.AssetObservation(asset_key="user_login", metadata=metadata)
    cursor = json.dumps({"at": now, "end_total": end_total})
    if members:
        return dg.SensorResult(
            skip_reason=f"group {settings.group_id!r} has {members} active member(s) (kdp stream?): yielding to it",
            asset_events=[observation],
            cursor=cursor,
        )
    busy = _partitions_in_flight(context.instance, topic)
    ranges = pending_ranges(topic, offsets.high, offsets.low, offsets.committed, busy, MAX_RANGE)
    requests = [
        dg.RunRequest(
            run_key=_run_key(context.instance, r.key),
            run_config=run_config_for([r]),
            tags={PARTITION_TAG: f"{r.topic}:{r.partition}", RANGE_TAG: r.key},
        )
        for r in ranges
    ]
    return dg.SensorResult(run_requests=requests, asset_events=[observation], cursor=cursor)
