"""A partition reassignment under load: replication factor 2 -> 3 of the source and output topics, throttled.

The Dagster jobs as an operator runs them (`plan_partition_reassignment`, then `execute_partition_reassignment`
with a replication throttle), while `kdp stream` converts exactly-once at a fixed offered rate. Nothing may be
lost or duplicated, the throttle must be gone at the end, and every partition must have three in-sync
replicas. Throughput and latency during the move are measured against before it.

The reassignment jobs are being reworked (issue 17): this test uses them as they are on main, through their run
config only, so that it keeps asserting the same outcome when their inside changes.
"""

from __future__ import annotations

import os
import time

import dagster as dg
import pytest
from confluent_kafka import TopicCollection
from confluent_kafka.admin import AdminClient
from fault_cluster import FaultCluster, create_topics
from fault_latency import OutputWatch
from fault_ledger import account
from fault_pipeline import LivePipeline
from scenario_settings import scenario_settings

from orchestration.defs.reassignment.jobs import execute_partition_reassignment, plan_partition_reassignment
from orchestration.defs.resources import KafkaResource
from orchestration.reassignment.executor import Throttles, current_throttles, kafka_python_admin

pytestmark = pytest.mark.faults

RATE = 1000
BEFORE_S = 30.0
THROTTLE = 5_000_000
"""Bytes per second for the replicas being copied: well above what 1000 events/s produce, so the move ends."""


def test_replication_2_to_3_under_load_loses_nothing_and_leaves_no_throttle(cluster: FaultCluster, tmp_path):
    settings = scenario_settings(cluster.info.bootstrap, cluster.info.registry_url or "", "exactly-once", "reassign")
    moved = [settings.source_topic, settings.output_topic]
    create_topics(settings.bootstrap, moved, partitions=3, replication=2, min_insync=2)
    cluster.create_topics([settings.dlq_topic])
    resources = {"kafka": KafkaResource(bootstrap=settings.bootstrap)}
    watch = OutputWatch(settings)
    try:
        with LivePipeline(settings, tmp_path / "converter.log", RATE) as live:
            live.progress.wait_for_commit_beyond(0, timeout=120)
            live.progress.wait_caught_up(timeout=180)  # steady state: the start-up backlog is not "before"
            before_start = time.time()
            time.sleep(BEFORE_S)
            move_start = time.time()
            planned = plan_partition_reassignment.execute_in_process(
                run_config={
                    "ops": {
                        "plan_reassignment_op": {
                            "config": {"topics": moved, "replication_factor": 3, "output_dir": str(tmp_path)}
                        }
                    }
                },
                resources=resources,
                instance=dg.DagsterInstance.ephemeral(),
            )
            plan_file = planned.output_for_node("plan_reassignment_op")
            executed = execute_partition_reassignment.execute_in_process(
                run_config={
                    "ops": {
                        "execute_reassignment_op": {
                            "config": {"plan_file": plan_file, "throttle_bytes_per_second": THROTTLE}
                        }
                    }
                },
                resources=resources,
                instance=dg.DagsterInstance.ephemeral(),
            )
            move_end = time.time()
            produced = live.finish()
    finally:
        watch.stop()

    ledger = account(settings)
    figures = watch.figures({"before": (before_start, move_start), "during": (move_start, move_end)})
    stall = watch.longest_gap(move_start, move_end)
    report = executed.output_for_node("execute_reassignment_op")
    print(ledger.line("reassignment RF 2 -> 3 of source and output, throttled (exactly-once)", stall,
                      move_s=round(move_end - move_start, 1), replica_moves=report["replica_moves"],
                      converter_restarts=live.restarts))  # fmt: skip
    for name, window in figures.items():
        print(f"[fault]   {name}: {window.text()}")
    print(f"[fault]   load average at the end: {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    admin = kafka_python_admin(settings)
    try:
        left = current_throttles(admin, [node.node_id for node in cluster.nodes], moved)
    finally:
        admin.close()
    assert left == Throttles(), f"throttles left behind: {left}"
    assert _replicas_in_sync(settings.bootstrap, moved) == {3}
    assert live.restarts == []
    ledger.assert_nothing_lost(produced, "exactly-once")


def _replicas_in_sync(bootstrap: str, topics: list[str]) -> set[int]:
    """The distinct numbers of in-sync replicas over every partition of `topics`."""
    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept referenced while its futures are pending
    described = admin.describe_topics(TopicCollection(topics))
    return {len(p.isr) for future in described.values() for p in future.result(timeout=60).partitions}
