"""A Dagster conversion run (`convert_ranges`) killed with SIGKILL half-way through its range, then redone.

The run commits the converter group's offsets batch by batch inside its transactions (exactly-once), so
the redo resumes at the last committed batch, and its transactional id (one per partition set) fences
the killed run and aborts its open transaction: every message of the range is converted exactly once.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fault_ledger import GroupProgress, account
from fault_pipeline import environment
from registry_io import register_output_schema
from scenario_settings import scenario_settings

from streaming.generator.events import EventFactory, IrregularityRates
from streaming.generator.producer import generate
from streaming.offset_ranges import OffsetRange

pytestmark = pytest.mark.faults

MESSAGES = 100_000
RUN_SCRIPT = Path(__file__).with_name("fault_dagster_run.py")


def _start_run(range_key: str, env: dict[str, str], log_file: Path) -> subprocess.Popen:
    with log_file.open("ab") as log:
        return subprocess.Popen(
            [sys.executable, str(RUN_SCRIPT), range_key], env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log
        )


def test_dagster_run_killed_mid_range_and_redone_converts_each_message_exactly_once(cluster, tmp_path):
    settings = scenario_settings(
        cluster.info.bootstrap, cluster.info.registry_url or "", "exactly-once", "dagster", batch_size=1000
    )
    cluster.create_topics([settings.source_topic, settings.output_topic, settings.dlq_topic], partitions=1)
    register_output_schema(settings)
    factory = EventFactory(11, IrregularityRates.with_malformed(0.05))
    assert generate(settings.kafka_config(), settings.source_topic, factory, count=MESSAGES).ok
    whole_range = OffsetRange(settings.source_topic, 0, 0, MESSAGES)
    env = environment(settings)
    log_file = tmp_path / "runs.log"
    kill_after = random.Random().randint(MESSAGES // 10, MESSAGES // 2)
    progress = GroupProgress(settings)
    try:
        killed = _start_run(whole_range.key, env, log_file)
        while progress.committed() < kill_after:
            assert killed.poll() is None, f"the run ended before the kill:\n{log_file.read_text()[-3000:]}"
            time.sleep(0.05)
        killed.kill()
        killed.wait(timeout=30)
        committed_at_kill = progress.committed()
        assert 0 < committed_at_kill < MESSAGES, "killed too late to prove anything"

        redo = _start_run(whole_range.key, env, log_file)
        recovery = progress.wait_for_commit_beyond(committed_at_kill, timeout=180)
        assert redo.wait(timeout=600) == 0, log_file.read_text()[-3000:]
        assert progress.committed() == MESSAGES
    finally:
        progress.close()

    ledger = account(settings)
    print(ledger.line("Dagster convert_ranges run killed mid-range, redone (exactly-once)", recovery,
                      killed_at_offset=committed_at_kill))  # fmt: skip
    assert ledger.messages_in == MESSAGES
    assert ledger.lost == 0 and ledger.duplicates == 0
