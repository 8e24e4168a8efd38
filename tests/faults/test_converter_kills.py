"""`kdp stream` killed with SIGKILL at random points, three times, under live traffic, in both delivery modes.

At-least-once may repeat what a killed process had produced but not yet committed, never lose it;
exactly-once neither loses nor repeats: a restart with the same instance name fences its killed predecessor
and aborts its open transaction, and the output is read with `read_committed`.

Marked `integration`, not `faults`: it kills only the converter, so it runs on the session stack in CI.
"""

from __future__ import annotations

import random
import time

import pytest
from fault_cluster import create_topics
from fault_ledger import account
from fault_pipeline import LivePipeline
from scenario_settings import scenario_settings

pytestmark = pytest.mark.integration

KILLS = 3
RATE = 4000
"""Messages per second of live traffic: enough that every kill interrupts work in progress."""


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
def test_kill_9_three_times_loses_nothing_and_exactly_once_repeats_nothing(stack, tmp_path, delivery):
    settings = scenario_settings(stack.bootstrap, stack.registry_url, delivery, "kill9", batch_size=2000)
    replication = min(3, stack.brokers)
    topics = [settings.source_topic, settings.output_topic, settings.dlq_topic]
    create_topics(stack.bootstrap, topics, partitions=3, replication=replication, min_insync=min(2, replication))
    seed = random.randrange(2**32)
    print(f"seed {seed}")
    pause = random.Random(seed)
    recoveries = []
    with LivePipeline(settings, tmp_path / "converter.log", RATE, seed) as live:
        live.progress.wait_for_commit_beyond(0, timeout=120)
        for _ in range(KILLS):
            live.progress.wait_for_commit_beyond(live.progress.committed(), timeout=120)
            time.sleep(pause.uniform(0.0, 1.5))  # a random point: consuming, producing, committing
            committed_at_kill = live.restart_converter(kill=True)
            recoveries.append(live.progress.wait_for_commit_beyond(committed_at_kill, timeout=180))
        produced = live.finish()

    ledger = account(settings)
    print(ledger.line(f"kill -9 x{KILLS} ({delivery})", max(recoveries), recoveries=[round(r, 1) for r in recoveries],
                      converter_restarts=live.restarts))  # fmt: skip
    ledger.assert_nothing_lost(produced, delivery)
    assert ledger.dead_letters > 0, "the traffic is 5% malformed: dead letters are part of what must survive"
