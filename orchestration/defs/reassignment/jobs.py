"""Partition reassignment from Dagster: plan in one job, execute a reviewed plan in another.

`plan_partition_reassignment` reads the live assignment, plans the move onto the target brokers
(fewest replica moves, balanced replicas and leaders, rack-aware: `orchestration.reassignment`)
and writes two files in Kafka's reassignment format: the plan, which `kafka-reassign-partitions
--execute` accepts as it is, and the rollback (the current assignment of the same partitions).
Nothing changes in the cluster.

`execute_partition_reassignment` is separate and explicit: it takes a plan file, refuses it if the
cluster no longer matches, applies it with an optional replication throttle, waits and verifies,
and always removes the throttle.
"""

import json
import time
from pathlib import Path

import dagster as dg

from orchestration.defs.resources import KafkaResource
from orchestration.reassignment import plan_from_proposal, plan_reassignment
from orchestration.reassignment.cluster_state import read_cluster_state
from orchestration.reassignment.executor import PartitionStatus, execute, kafka_python_admin, verify
from orchestration.reassignment.plan_json import parse_reassignment_json


class PlanConfig(dg.Config):
    topics: list[str]
    """Topics whose partitions to place."""
    brokers: list[int] = []
    """Target broker ids; empty means every live broker."""
    replication_factor: int | None = None
    """None keeps each partition's replica count; a number sets it (e.g. 1 -> 3)."""
    output_dir: str | None = None
    """Where to write the plan files; default `<DAGSTER_HOME storage>/reassignment`."""


class ExecuteConfig(dg.Config):
    plan_file: str
    """A reassignment JSON written by `plan_partition_reassignment` (or by hand, reviewed)."""
    throttle_bytes_per_second: int | None = None
    """Replication throttle while replicas are copied; removed when the job ends, whatever happens."""
    timeout_seconds: float = 600.0


def _counts_table(plan_summary: dict) -> str:
    brokers = sorted(set(plan_summary["replicas_before"]) | set(plan_summary["replicas_after"]))
    rows = ["| broker | replicas before | replicas after | leaders before | leaders after |", "|---|---|---|---|---|"]
    for b in brokers:
        rows.append(
            f"| {b} | {plan_summary['replicas_before'].get(b, 0)} | {plan_summary['replicas_after'].get(b, 0)}"
            f" | {plan_summary['leaders_before'].get(b, 0)} | {plan_summary['leaders_after'].get(b, 0)} |"
        )
    return "\n".join(rows)


def _read_state(kafka: KafkaResource, topics: list[str]):  # type: ignore[no-untyped-def]
    """The live assignment; retried briefly, as metadata of a new topic reaches brokers one by one."""
    admin = kafka.admin()
    for attempt in range(5):
        try:
            return read_cluster_state(admin, topics)
        except Exception:
            if attempt == 4:
                raise
            time.sleep(1 + attempt)
    raise AssertionError("unreachable")


@dg.op(description="Plan a minimal-movement, balanced, rack-aware reassignment; write plan and rollback JSON.")
def plan_reassignment_op(context: dg.OpExecutionContext, config: PlanConfig, kafka: KafkaResource) -> str:
    state = _read_state(kafka, config.topics)
    brokers = config.brokers or list(state.brokers)
    unknown = set(brokers) - set(state.brokers)
    if unknown:
        raise dg.Failure(f"target brokers {sorted(unknown)} are not in the cluster (live: {list(state.brokers)})")
    racks = {b: r for b, r in state.racks.items() if b in brokers} if state.racks else None
    plan = plan_reassignment(state.assignment, brokers, racks, config.replication_factor)
    folder = Path(config.output_dir or Path(context.instance.storage_directory()) / "reassignment")
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{time.strftime('%Y%m%dT%H%M%S')}-{context.run_id[:8]}"
    plan_file, rollback_file = folder / f"{stem}-plan.json", folder / f"{stem}-rollback.json"
    plan_file.write_text(plan.to_json())
    rollback_file.write_text(plan.rollback_json())
    summary = plan.summary()
    context.add_output_metadata(
        {
            "plan_file": dg.MetadataValue.path(str(plan_file)),
            "rollback_file": dg.MetadataValue.path(str(rollback_file)),
            "replica_moves": dg.MetadataValue.int(plan.moves),
            "lower_bound_moves": dg.MetadataValue.int(plan.lower_bound),
            "changed_partitions": dg.MetadataValue.int(len(plan.changed)),
            "racks": dg.MetadataValue.json(racks or {}),
            "per_broker": dg.MetadataValue.md(_counts_table(summary)),
            "plan": dg.MetadataValue.json(json.loads(plan.to_json())),
        }
    )
    context.log.info("plan: %d replica moves (lower bound %d), written to %s", plan.moves, plan.lower_bound, plan_file)
    return str(plan_file)


@dg.op(description="Execute a reassignment plan file with an optional throttle; verify; remove the throttle.")
def execute_reassignment_op(context: dg.OpExecutionContext, config: ExecuteConfig, kafka: KafkaResource) -> dict:
    proposed = parse_reassignment_json(Path(config.plan_file).read_text())
    state = _read_state(kafka, sorted({topic for topic, _ in proposed}))
    missing = set(proposed) - set(state.assignment)
    if missing:
        raise dg.Failure(f"the plan names partitions the cluster does not have: {sorted(missing)}")
    plan = plan_from_proposal(state.assignment, proposed, state.brokers)
    admin = kafka_python_admin(kafka.settings())
    try:
        report = execute(
            admin, plan, throttle_bytes_per_second=config.throttle_bytes_per_second, timeout_s=config.timeout_seconds
        )
        statuses = verify(admin, plan)
    finally:
        admin.close()
    incomplete = {f"{t}:{p}": str(s) for (t, p), s in statuses.items() if s is not PartitionStatus.COMPLETE}
    result = {
        "changed_partitions": len(plan.changed),
        "replica_moves": plan.moves,
        "seconds": round(report.seconds, 1),
        "throttled_brokers": sorted(report.throttles.brokers),
        "leader_election_errors": {f"{t}:{p}": e for (t, p), e in report.leader_election_errors.items()},
    }
    context.add_output_metadata(
        {
            "changed_partitions": dg.MetadataValue.int(len(plan.changed)),
            "replica_moves": dg.MetadataValue.int(plan.moves),
            "seconds": dg.MetadataValue.float(report.seconds),
            "per_broker": dg.MetadataValue.md(_counts_table(plan.summary())),
            "verification": dg.MetadataValue.json({f"{t}:{p}": str(s) for (t, p), s in statuses.items()}),
        }
    )
    if incomplete:
        raise dg.Failure(f"reassignment not complete: {incomplete}")
    return result


@dg.job(description="Plan a partition reassignment (writes plan and rollback JSON; changes nothing).")
def plan_partition_reassignment() -> None:
    plan_reassignment_op()


@dg.job(description="Execute a reviewed partition-reassignment plan file, throttled, verified.")
def execute_partition_reassignment() -> None:
    execute_reassignment_op()
