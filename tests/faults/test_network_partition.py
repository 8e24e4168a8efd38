"""A real network partition between the converter and the cluster, longer than the transaction and session timeouts.

The converter runs in a network namespace of its own (`network_namespace.py`), joined to the host by a veth pair;
the stack listens on the host's end of the pair (`KDP_STACK_HOST`). Cutting the link loses every packet between
the converter and the broker and registry, without a reset, while the broker keeps serving the traffic producer
and the group's coordinator keeps its clock: the converter's open transaction times out and its group session
expires on the broker side, as with a dead switch. When the link comes back the converter must carry on without
losing anything, and without repeating anything in exactly-once mode.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from fault_cluster import create_topics
from fault_ledger import account
from fault_pipeline import LivePipeline
from network_namespace import NetworkNamespace, network_namespace
from scenario_settings import scenario_settings

from kdp.devstack.ports import config_on_free_ports
from kdp.devstack.stack import LocalStack, StackInfo

pytestmark = pytest.mark.faults

RATE = 3000
PARTITION_S = 50.0
"""Longer than the producer's transaction timeout (30 s) and the consumer's session timeout (45 s)."""


@pytest.fixture(scope="module")
def namespace() -> Iterator[NetworkNamespace]:
    with network_namespace(on_unavailable=pytest.skip) as created:
        yield created


@pytest.fixture(scope="module")
def partitionable_stack(namespace: NetworkNamespace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackInfo]:
    """One broker and the registry, listening on the host's end of the namespace's link."""
    home = tmp_path_factory.mktemp("partition") / "kdp-home"
    local = LocalStack(config_on_free_ports(home, 1, {**os.environ, "KDP_STACK_HOST": namespace.host_address}))
    try:
        yield local.up(brokers=1)
    finally:
        namespace.heal()
        local.down(purge=True)


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
def test_a_network_partition_longer_than_every_timeout_loses_nothing(
    namespace, partitionable_stack, tmp_path, delivery
):
    stack: StackInfo = partitionable_stack
    settings = scenario_settings(stack.bootstrap, stack.registry_url or "", delivery, "partition")
    create_topics(stack.bootstrap, [settings.source_topic, settings.output_topic, settings.dlq_topic], 3, 1, 1)
    with LivePipeline(settings, tmp_path / "converter.log", RATE, prefix=namespace.exec_prefix) as live:
        live.progress.wait_for_commit_beyond(0, timeout=120)
        committed_before = live.progress.committed()
        namespace.cut()
        try:
            time.sleep(PARTITION_S)
            committed_during = live.progress.committed()
        finally:
            namespace.heal()
        recovery = live.progress.wait_for_commit_beyond(committed_during, timeout=240)
        produced = live.finish()

    ledger = account(settings)
    print(ledger.line(f"converter cut off {PARTITION_S:.0f} s by a network partition ({delivery})", recovery,
                      converter_restarts=live.restarts))  # fmt: skip
    assert committed_during - committed_before <= RATE * 2, "the converter kept committing through the partition"
    ledger.assert_nothing_lost(produced, delivery)
