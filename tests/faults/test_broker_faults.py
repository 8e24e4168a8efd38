"""Brokers failing under a running converter, on a three-broker cluster (replication 3, two in-sync replicas).

* One broker, the converter group's coordinator, killed with SIGKILL and restarted on its data a little
  later: the two others carry on (leaders move, acks=all still reaches two replicas), nothing is lost.
* Every broker frozen with SIGSTOP for longer than the exactly-once transaction timeout, then resumed: the
  converter neither crashes nor loses anything, and carries on where it stopped.
* Every broker killed (a power cut) and started again on its data 30 s later: the same.
"""

from __future__ import annotations

import time

import pytest
from fault_cluster import FaultCluster
from fault_ledger import account
from fault_pipeline import LivePipeline
from scenario_settings import scenario_settings

from streaming.settings import Settings

pytestmark = pytest.mark.faults

RATE = 3000
BROKER_DOWN_S = 15.0
FROZEN_S = 35.0
"""Longer than the exactly-once producer's `transaction.timeout.ms` (30 s): the open transaction expires."""
ALL_DOWN_S = 30.0


def _settings(cluster: FaultCluster, delivery: str, name: str) -> Settings:
    settings = scenario_settings(cluster.info.bootstrap, cluster.info.registry_url or "", delivery, name)
    cluster.create_topics([settings.source_topic, settings.output_topic, settings.dlq_topic])
    return settings


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
def test_one_broker_killed_and_restarted_loses_nothing(cluster, tmp_path, delivery):
    settings = _settings(cluster, delivery, "broker-kill")
    with LivePipeline(settings, tmp_path / "converter.log", RATE) as live:
        live.progress.wait_for_commit_beyond(0, timeout=120)
        victim = cluster.group_coordinator(settings.group_id)
        committed_at_kill = live.progress.committed()
        cluster.kill_broker(victim)
        recovery = live.progress.wait_for_commit_beyond(committed_at_kill, timeout=180)
        time.sleep(max(0.0, BROKER_DOWN_S - recovery))
        restart = cluster.heal()
        produced = live.finish()

    ledger = account(settings)
    print(ledger.line(f"broker {victim} (group coordinator) killed ({delivery})", recovery,
                      broker_restart_s=round(restart, 1), converter_restarts=live.restarts))  # fmt: skip
    ledger.assert_nothing_lost(produced, delivery)


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
def test_all_brokers_frozen_then_resumed_the_converter_carries_on(cluster, tmp_path, delivery):
    settings = _settings(cluster, delivery, "freeze")
    with LivePipeline(settings, tmp_path / "converter.log", RATE) as live:
        live.progress.wait_for_commit_beyond(0, timeout=120)
        committed_before = live.progress.committed()
        cluster.freeze_brokers()
        try:
            time.sleep(FROZEN_S)
        finally:
            cluster.thaw_brokers()
        recovery = live.progress.wait_for_commit_beyond(committed_before, timeout=240)
        produced = live.finish()

    ledger = account(settings)
    print(ledger.line(f"all brokers frozen {FROZEN_S:.0f} s ({delivery})", recovery, converter_restarts=live.restarts))
    assert live.restarts == [], "the converter exited while the brokers were frozen"
    ledger.assert_nothing_lost(produced, delivery)


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
def test_all_brokers_down_30_s_then_restarted_the_converter_carries_on(cluster, tmp_path, delivery):
    settings = _settings(cluster, delivery, "all-down")
    with LivePipeline(settings, tmp_path / "converter.log", RATE) as live:
        live.progress.wait_for_commit_beyond(0, timeout=120)
        committed_before = live.progress.committed()
        for node in cluster.nodes:
            cluster.kill_broker(node.node_id)
        time.sleep(ALL_DOWN_S)
        restart = cluster.heal()
        recovery = live.progress.wait_for_commit_beyond(committed_before, timeout=240)
        produced = live.finish()

    ledger = account(settings)
    print(ledger.line(f"all brokers down {ALL_DOWN_S:.0f} s, then restarted ({delivery})", recovery,
                      broker_restart_s=round(restart, 1), converter_restarts=live.restarts))  # fmt: skip
    assert live.restarts == [], "the converter exited while the brokers were down"
    ledger.assert_nothing_lost(produced, delivery)
