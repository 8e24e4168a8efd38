"""Partition reassignment from Dagster: plan in one job, execute a reviewed plan in another.

`plan_partition_reassignment` reads the live assignment and its load (partition sizes from the
brokers' log directories; bytes-in per partition from a file or sampled from end offsets, when asked),
plans the move onto the target brokers (`orchestration.reassignment.planner`: rack-aware, disk within
the tolerance, balanced replicas, fewest bytes copied, leaders by bytes-in) and writes two files in
Kafka's reassignment format: the plan, which `kafka-reassign-partitions --execute` accepts as it is,
and the rollback. Its metadata: bytes per broker before and after (a table and a chart), bytes to
copy, the lower bound, and the estimated copy time under the chosen throttle. Nothing changes in the
cluster.

`execute_partition_reassignment` is separate and explicit: it carries out the plan a planning run recorded
as its output (the latest successful one, or the run named by `plan_run_id`), or a plan file (a rollback, or
a plan edited by hand), in batches, largest gain first (`batches`), each under the replication throttle,
waited for and verified before the next; the throttle is always removed. It can be stopped (terminate the
run, or `max_batches`) and resumed by running it again with the same plan: partitions already at their
planned replicas drop out, and a batch still copying from a stopped run is waited for first.
"""

import json
import time
from pathlib import Path

import dagster as dg
import tenacity

from orchestration.defs.reassignment.plan_report import broker_table, bytes_chart_markdown
from orchestration.defs.resources import KafkaResource
from orchestration.reassignment import plan_from_proposal, plan_reassignment
from orchestration.reassignment.batches import batches, copy_seconds
from orchestration.reassignment.cluster_load import (
    disk_limits_under,
    read_bytes_in_file,
    read_log_dirs,
    sample_bytes_in,
)
from orchestration.reassignment.cluster_state import ClusterState, read_cluster_state
from orchestration.reassignment.executor import PartitionStatus, execute, kafka_python_admin, verify
from orchestration.reassignment.plan_json import parse_reassignment_json
from orchestration.reassignment.planner import Plan

GB = 10**9
PLAN_JOB = "plan_partition_reassignment"


class PlanConfig(dg.Config):
    topics: list[str]
    """Topics whose partitions to place."""
    brokers: list[int] = []
    """Target broker ids; empty means every live broker. A live broker left out is drained; a new one gets its share."""
    replication_factor: int | None = None
    """None keeps each partition's replica count; a number sets it (e.g. 1 -> 3)."""
    tolerance: float = 0.10
    """Disk band around the mean bytes per broker (0.10: every broker within +-10%)."""
    weigh_by_size: bool = True
    """Weigh partitions by their size on disk (DescribeLogDirs); False plans by replica counts alone."""
    disk_cap_fraction: float | None = None
    """Keep every target broker's log directories under this fraction of their total size (e.g. 0.8)."""
    bytes_in_file: str | None = None
    """JSON {"topic:partition": bytes per second}: leaders are balanced by it."""
    sample_bytes_in_seconds: float = 0.0
    """Instead of a file: sample end offsets this many seconds apart to estimate bytes-in (0 = count leaders)."""
    throttle_bytes_per_second: int = 50_000_000
    """The replication throttle the copy-time estimate assumes (use the same when executing)."""
    output_dir: str | None = None
    """Where to write the plan files; default `<DAGSTER_HOME storage>/reassignment`."""


class ExecuteConfig(dg.Config):
    plan_run_id: str | None = None
    """The `plan_partition_reassignment` run whose plan to carry out; default: the latest successful one."""
    plan_file: str | None = None
    """Instead of a run's plan: a reassignment JSON file (the rollback of a plan, or a plan edited by hand)."""
    throttle_bytes_per_second: int | None = None
    """Replication throttle while replicas are copied; removed after each batch, whatever happens."""
    batch_bytes: int = 10 * GB
    """Bytes copied per batch at most (a bigger partition goes alone)."""
    max_batches: int | None = None
    """Stop after this many batches (run again with the same file to resume); None runs them all."""
    timeout_seconds: float = 600.0
    """Per batch."""


def _read_state(kafka: KafkaResource, topics: list[str]) -> ClusterState:
    """The live assignment; retried briefly, as metadata of a new topic reaches brokers one by one."""
    admin = kafka.admin()
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(5), wait=tenacity.wait_incrementing(start=1, increment=1), reraise=True
    )
    return retrying(read_cluster_state, admin, topics)


def _sizes(kafka: KafkaResource, topics: list[str]):  # type: ignore[no-untyped-def]
    admin = kafka_python_admin(kafka.settings())
    try:
        return read_log_dirs(admin, topics)
    finally:
        admin.close()


def _plan_metadata(plan: Plan, throttle: int) -> dict[str, dg.MetadataValue]:
    low, high = plan.disk_band()
    return {
        "bytes_to_copy": dg.MetadataValue.int(plan.bytes_copied),
        "lower_bound_bytes": dg.MetadataValue.int(plan.lower_bound),
        "bound_gap_bytes": dg.MetadataValue.int(plan.bytes_copied - plan.lower_bound),
        "replica_moves": dg.MetadataValue.int(plan.moves),
        "changed_partitions": dg.MetadataValue.int(len(plan.changed)),
        "estimated_copy_seconds": dg.MetadataValue.float(round(copy_seconds(plan, throttle), 1)),
        "throttle_bytes_per_second": dg.MetadataValue.int(throttle),
        "disk_band_bytes": dg.MetadataValue.json({"low": int(low), "high": int(high), "tolerance": plan.tolerance}),
        "per_broker": broker_table(plan),
        "bytes_per_broker_chart": dg.MetadataValue.md(bytes_chart_markdown(plan)),
    }


@dg.op(description="Plan a rack-aware reassignment balancing disk, replicas and leaders with the fewest bytes copied.")
def plan_reassignment_op(context: dg.OpExecutionContext, config: PlanConfig, kafka: KafkaResource) -> str:
    state = _read_state(kafka, config.topics)
    brokers = config.brokers or list(state.brokers)
    unknown = set(brokers) - set(state.brokers)
    if unknown:
        raise dg.Failure(f"target brokers {sorted(unknown)} are not in the cluster (live: {list(state.brokers)})")
    racks = {b: r for b, r in state.racks.items() if b in brokers} if state.racks else None
    log_dirs = _sizes(kafka, config.topics) if config.weigh_by_size or config.disk_cap_fraction else None
    sizes = log_dirs.sizes if log_dirs and config.weigh_by_size else None
    limits = (
        disk_limits_under(log_dirs.disk_total, config.disk_cap_fraction, brokers)
        if log_dirs and config.disk_cap_fraction
        else None
    )
    bytes_in = None
    if config.bytes_in_file:
        bytes_in = read_bytes_in_file(Path(config.bytes_in_file))
    elif config.sample_bytes_in_seconds > 0:
        bytes_in = sample_bytes_in(
            dict(kafka.settings().kafka_config()), log_dirs.sizes if log_dirs else {}, config.sample_bytes_in_seconds
        )
    plan = plan_reassignment(
        state.assignment,
        brokers,
        racks,
        config.replication_factor,
        sizes=sizes,
        bytes_in=bytes_in,
        tolerance=config.tolerance,
        disk_limits=limits,
    )
    folder = Path(config.output_dir or Path(context.instance.storage_directory()) / "reassignment")
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{time.strftime('%Y%m%dT%H%M%S')}-{context.run_id[:8]}"
    plan_file, rollback_file = folder / f"{stem}-plan.json", folder / f"{stem}-rollback.json"
    plan_file.write_text(plan.to_json())
    rollback_file.write_text(plan.rollback_json())
    context.add_output_metadata(
        {
            "plan_file": dg.MetadataValue.path(str(plan_file)),
            "rollback_file": dg.MetadataValue.path(str(rollback_file)),
            "racks": dg.MetadataValue.json({str(b): r for b, r in (racks or {}).items()}),
            **_plan_metadata(plan, config.throttle_bytes_per_second),
            "plan": dg.MetadataValue.json(json.loads(plan.to_json())),
        }
    )
    context.log.info(
        "plan: %d bytes to copy in %d replica moves (lower bound %d bytes), written to %s",
        plan.bytes_copied,
        plan.moves,
        plan.lower_bound,
        plan_file,
    )
    return str(plan_file)


def _plan_text(context: dg.OpExecutionContext, config: ExecuteConfig) -> str:
    """The reassignment JSON to carry out: the plan file, else the plan a planning run recorded as output."""
    if config.plan_file and config.plan_run_id:
        raise dg.Failure("give plan_run_id or plan_file, not both")
    if config.plan_file:
        return Path(config.plan_file).read_text()
    run_id = config.plan_run_id
    if run_id is None:
        latest = context.instance.get_runs(
            filters=dg.RunsFilter(job_name=PLAN_JOB, statuses=[dg.DagsterRunStatus.SUCCESS]), limit=1
        )
        if not latest:
            raise dg.Failure(f"no successful {PLAN_JOB} run to carry out: plan first, or give plan_file")
        run_id = latest[0].run_id
    outputs = context.instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_OUTPUT).records
    for record in outputs:
        event = record.event_log_entry.dagster_event
        plan = event.step_output_data.metadata.get("plan") if event and event.step_output_data else None
        if plan is not None:
            context.log.info("carrying out the plan of run %s", run_id)
            return json.dumps(plan.value)
    raise dg.Failure(f"run {run_id} recorded no reassignment plan (is it a {PLAN_JOB} run?)")


def _finish_ongoing(kafka_admin, partitions: list[tuple[str, int]], deadline: float) -> None:  # type: ignore[no-untyped-def]
    """Wait for reassignments of `partitions` still copying (a batch of a stopped run) to end."""
    from kafka import TopicPartition

    # A poll of an operation under way, not a retry of a failed call: each pass reads what is still copying.
    while kafka_admin.list_partition_reassignments([TopicPartition(*tp) for tp in partitions]):
        if time.monotonic() > deadline:
            raise dg.Failure("a previous run's batch is still copying; wait for it or cancel it, then resume")
        time.sleep(1)


@dg.op(
    description="Execute a planning run's reassignment plan (or a plan file) in batches, largest gain first, "
    "throttled, verified; resumable."
)
def execute_reassignment_op(context: dg.OpExecutionContext, config: ExecuteConfig, kafka: KafkaResource) -> dict:
    proposed = parse_reassignment_json(_plan_text(context, config))
    topics = sorted({topic for topic, _ in proposed})
    admin = kafka_python_admin(kafka.settings())
    try:
        _finish_ongoing(admin, sorted(proposed), time.monotonic() + config.timeout_seconds)
        state = _read_state(kafka, topics)
        missing = set(proposed) - set(state.assignment)
        if missing:
            raise dg.Failure(f"the plan names partitions the cluster does not have: {sorted(missing)}")
        sizes = read_log_dirs(admin, topics).sizes
        plan = plan_from_proposal(state.assignment, proposed, state.brokers, sizes=sizes)
        todo = batches(plan, config.batch_bytes) if plan.changed else []
        done: list[dict] = []
        started = time.monotonic()
        for number, batch in enumerate(todo[: config.max_batches], start=1):
            part = plan_from_proposal(state.assignment, {tp: proposed[tp] for tp in batch}, state.brokers, sizes=sizes)
            report = execute(
                admin,
                part,
                throttle_bytes_per_second=config.throttle_bytes_per_second,
                timeout_s=config.timeout_seconds,
            )
            statuses = verify(admin, part)
            if set(statuses.values()) - {PartitionStatus.COMPLETE}:
                raise dg.Failure(f"batch {number} not complete: {statuses}")
            done.append(
                {
                    "batch": number,
                    "partitions": len(batch),
                    "bytes": part.bytes_copied,
                    "seconds": round(report.seconds, 1),
                }
            )
            context.log.info(
                "batch %d/%d: %d partitions, %d bytes, verified", number, len(todo), len(batch), part.bytes_copied
            )
        statuses = verify(admin, plan)
    finally:
        admin.close()
    remaining = sorted(f"{t}:{p}" for (t, p), s in statuses.items() if s is not PartitionStatus.COMPLETE)
    after = plan_from_proposal(state.assignment, {**state.assignment, **proposed}, state.brokers, sizes=sizes)
    result = {
        "changed_partitions": len(plan.changed),
        "replica_moves": plan.moves,
        "bytes_copied": sum(b["bytes"] for b in done),
        "batches_done": len(done),
        "batches_total": len(todo),
        "remaining_partitions": len(remaining),
        "seconds": round(time.monotonic() - started, 1) if todo else 0.0,
    }
    context.add_output_metadata(
        {
            **{key: dg.MetadataValue.int(value) for key, value in result.items() if isinstance(value, int)},
            "batches": dg.MetadataValue.json(done),
            "per_broker_when_complete": broker_table(after),
            "remaining": dg.MetadataValue.json(remaining[:200]),
        }
    )
    if remaining and config.max_batches is None:
        raise dg.Failure(f"reassignment not complete: {remaining[:20]}")
    return result


@dg.job(
    name=PLAN_JOB,
    description="Plan a partition reassignment (its output: the plan; also written as plan and rollback JSON; "
    "changes nothing).",
)
def plan_partition_reassignment() -> None:
    plan_reassignment_op()


@dg.job(
    description="Execute a reviewed partition-reassignment plan (the latest planning run's, or a chosen run's or "
    "file) in verified, throttled batches; resumable."
)
def execute_partition_reassignment() -> None:
    execute_reassignment_op()
