"""Fixtures shared by all tests: the real local stack for integration tests, and unique names.

`stack` (session-wide) is how integration tests reach Kafka and the registry. It picks, in order:
1. the stack named by `KDP_BOOTSTRAP` and `KDP_REGISTRY_URL` when both are set (CI services, a cloud cluster);
2. a stack of ours already running under `$KDP_HOME` (the developer's `kdp stack up`): used and left running;
3. otherwise it starts one under `$KDP_HOME` and stops it when the session ends.
While the session runs, `KDP_BOOTSTRAP` and `KDP_REGISTRY_URL` point at that stack, so code that reads its
settings from the environment (and subprocesses such as `kdp stream`) talks to the same stack as the test.

Only tests marked `integration` may use `stack`: unit tests must never start a JVM.
"""

from __future__ import annotations

import os
import re
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient
from hypothesis import settings

from kdp.devstack.ports import config_on_free_ports
from kdp.devstack.stack import LocalStack, StackInfo

STACK_ENVIRONMENT = ("KDP_BOOTSTRAP", "KDP_REGISTRY_URL")
SECURE_START_TIMEOUT = 600.0

# CI runs the same property-test examples every time (a red build must be reproducible); local runs
# keep exploring new ones and remember failures in .hypothesis/.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_runtest_setup(item: pytest.Item) -> None:
    uses_a_stack = {"stack", "secure_stack"} & set(getattr(item, "fixturenames", ()))
    if uses_a_stack and item.get_closest_marker("integration") is None:
        pytest.fail("only tests marked `integration` may use the `stack` fixture (it starts Kafka)")


@pytest.fixture(scope="session")
def stack() -> Iterator[StackInfo]:
    """Bootstrap servers, registry URL and broker count of the stack the integration tests run against."""
    bootstrap, registry_url = (os.environ.get(name) for name in STACK_ENVIRONMENT)
    if bootstrap and registry_url:
        yield StackInfo(bootstrap, registry_url, _broker_count(bootstrap), home=None)
        return
    local = LocalStack()
    info = local.running()
    if info is not None and info.secure:
        pytest.fail(
            f"The stack under {local.config.home} runs with --secure; the integration tests need the plaintext "
            "one (the secure tests start their own). Stop it with `kdp stack down`, or point KDP_HOME elsewhere.",
            pytrace=False,
        )
    ours_to_stop = info is None and not local.status().running
    if info is None:
        info = local.up()
    saved = {name: os.environ.get(name) for name in STACK_ENVIRONMENT}
    os.environ.update(info.environment())
    try:
        yield info
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if ours_to_stop:
            local.down()


@pytest.fixture
def isolated_stack(tmp_path: Path) -> Iterator[LocalStack]:
    """A second stack beside the session's: its own home and free ports, the shared download cache.

    For tests that start, stop or resize a stack. Whatever the test leaves running is stopped afterwards.
    """
    local = LocalStack(config_on_free_ports(tmp_path / "kdp-home"))
    try:
        yield local
    finally:
        local.down(purge=True)


@pytest.fixture(scope="session")
def secure_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackInfo]:
    """A `kdp stack up --secure` of its own (home, free ports), shared by the session's secure tests: its
    pipeline topics and schemas provisioned by the `provisioning` principal, as the provisioning job would."""
    from secure_stack import provision_as_provisioning

    local = LocalStack(config_on_free_ports(tmp_path_factory.mktemp("secure") / "kdp-home"))
    try:
        # Three JVMs one after the other (Kafka, the OIDC server, the registry): minutes on a loaded machine.
        info = local.up(secure=True, timeout=SECURE_START_TIMEOUT)
        provision_as_provisioning(info)
        yield info
    finally:
        local.down(purge=True)


@pytest.fixture
def topic_name(request: pytest.FixtureRequest) -> str:
    """A topic name no other test (or earlier run) uses: the test's name plus a random suffix."""
    slug = re.sub(r"[^a-zA-Z0-9._-]+", "-", request.node.name)[:80].strip("-")
    return f"test-{slug}-{uuid.uuid4().hex[:8]}"


def _broker_count(bootstrap: str) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    return len(admin.list_topics(timeout=30).brokers)


@pytest.fixture(autouse=True)
def sigterm_disposition_kept() -> Iterator[None]:
    """Whatever a test does to this process's SIGTERM disposition is undone after it.

    Dagster's `execute_in_process` (tests run jobs in this process) leaves SIGTERM with
    SIGINT's handler (`dagster._utils.interrupts.setup_interrupt_handlers`, "for k8s"). When the suite runs in
    the background of a non-interactive shell (`make faults &`, nohup), SIGINT is ignored, so SIGTERM becomes
    ignored too, and an ignored signal is inherited across exec: every process a later test starts (a broker,
    a registry, a converter) then ignores SIGTERM, and a graceful stop waits out its timeout and kills it.
    """
    before = signal.getsignal(signal.SIGTERM)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is not before and before is not None:
            signal.signal(signal.SIGTERM, before)
