"""The stack the fault tests break: three brokers and a registry of their own, healed before every test.

Started once per session beside the developer's stack (own home under pytest's temporary folder, free ports,
the shared download cache), since the tests kill, freeze and stop its processes. Every topic is
replicated three times with two in-sync replicas required, so one broker may be down without loss.
`KDP_FAULTS_KEEP_HOME=1` keeps the stack's home (the brokers' and registry's logs) after the session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fault_cluster import FaultCluster

from kdp.devstack.ports import config_on_free_ports
from kdp.devstack.stack import LocalStack

BROKERS = 3


@pytest.fixture(scope="session")
def fault_cluster_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultCluster]:
    local = LocalStack(config_on_free_ports(tmp_path_factory.mktemp("fault-cluster") / "kdp-home", BROKERS))
    cluster = None
    try:
        cluster = FaultCluster(local, local.up(brokers=BROKERS))
        yield cluster
    finally:
        if cluster is not None:
            cluster.thaw_brokers()  # a frozen JVM cannot act on the SIGTERM of `down`
        local.down(purge=os.environ.get("KDP_FAULTS_KEEP_HOME") != "1")


@pytest.fixture
def cluster(fault_cluster_session: FaultCluster) -> FaultCluster:
    """The fault cluster, whole again: whatever an earlier test killed, froze or stopped runs again."""
    fault_cluster_session.heal()
    return fault_cluster_session
