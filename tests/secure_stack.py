"""The secure stack of the integration tests: one per session, its pipeline topics provisioned by `provisioning`.

`as_principal(info, name)` puts a principal's `KDP_*` variables in the environment, as `source
$KDP_HOME/credentials/<name>.env` would before a command or a Dagster run, and restores the environment after.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kdp.devstack import security
from kdp.devstack.stack import StackInfo
from streaming.settings import Settings

QUIET: dict[str, Any] = {"log_level": 0, "error_cb": lambda _error: None}
"""Refusals are what these tests provoke: keep librdkafka from printing each one on stderr."""


def principal_variables(info: StackInfo, principal: str) -> dict[str, str]:
    assert info.home is not None
    return {**info.environment(), **security.principal_environment(info.home, principal)}


def settings_of(info: StackInfo, principal: str, **overrides: object) -> Settings:
    """The pipeline's settings for `principal`, as after `source $KDP_HOME/credentials/<principal>.env`."""
    return Settings.from_env(principal_variables(info, principal), **overrides)


@contextmanager
def as_principal(info: StackInfo, principal: str, **variables: str) -> Iterator[dict[str, str]]:
    """The environment of `principal` (and `variables`) for the block; the previous one afterwards."""
    chosen = {**principal_variables(info, principal), **variables}
    saved = {name: os.environ.get(name) for name in chosen}
    os.environ.update(chosen)
    try:
        yield chosen
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def provision_as_provisioning(info: StackInfo) -> None:
    """Run the provisioning job as `provisioning`, as a deployment would: the pipeline's topics and schemas."""
    import dagster as dg

    from orchestration.defs.provisioning.jobs import provision_topics
    from orchestration.defs.resources import KafkaResource, SchemaRegistryResource, environment_bound

    with as_principal(info, "provisioning"):
        result = provision_topics.execute_in_process(
            resources={
                "kafka": environment_bound(KafkaResource),
                "registry": environment_bound(SchemaRegistryResource),
            },
            instance=dg.DagsterInstance.ephemeral(),
            raise_on_error=False,
        )
    failures = [event.message for event in result.all_events if event.is_failure]
    assert result.success, failures
