"""The schema registry stopped under a running pipeline, then started again.

The converter asks the registry once, at start, for its schema id: a converter already running carries on
through the outage, and one started during it waits (retrying) and begins converting when the registry is
back, within its look-up deadline. Every record written carries a schema id the registry serves.
"""

from __future__ import annotations

import time

import pytest
from fault_ledger import account
from fault_pipeline import LivePipeline
from scenario_settings import scenario_settings

pytestmark = pytest.mark.faults

RATE = 3000
REGISTRY_DOWN_S = 10.0
"""Plus the registry's restart (about 10 s): well inside the converter's 60 s look-up deadline."""


def test_registry_outage_neither_stops_a_running_converter_nor_a_starting_one(cluster, tmp_path):
    settings = scenario_settings(cluster.info.bootstrap, cluster.info.registry_url or "", "exactly-once", "registry")
    cluster.create_topics([settings.source_topic, settings.output_topic, settings.dlq_topic])
    with LivePipeline(settings, tmp_path / "converter.log", RATE) as live:
        live.progress.wait_for_commit_beyond(0, timeout=120)
        cluster.stop_registry()
        live.progress.wait_for_commit_beyond(live.progress.committed(), timeout=60)  # carries on

        committed_at_restart = live.restart_converter(kill=False)  # a new converter, started without a registry
        time.sleep(REGISTRY_DOWN_S)
        assert live.converter.alive, f"it gave up instead of waiting:\n{live.converter.log()[-3000:]}"
        assert live.progress.committed() == committed_at_restart, "it converted without a schema id"
        registry_restart = cluster.heal()
        recovery = live.progress.wait_for_commit_beyond(committed_at_restart, timeout=120)
        produced = live.finish()
        restarts = live.restarts

    ledger = account(settings)
    print(ledger.line("registry down under a running and a starting converter", recovery,
                      registry_restart_s=round(registry_restart, 1), schema_ids=sorted(ledger.schema_ids)))  # fmt: skip
    assert restarts == [], "the converter started during the outage exited instead of waiting"
    assert produced.ok and ledger.messages_in == produced.delivered
    assert ledger.lost == 0 and ledger.duplicates == 0
    assert len(ledger.schema_ids) == 1, "one schema, one id, before and after the outage"
