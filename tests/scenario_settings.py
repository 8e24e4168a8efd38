"""Pipeline settings that belong to one test alone: its own topics, consumer group and transactional id."""

from __future__ import annotations

import os
import uuid

from streaming.settings import ENV_NAMES, Settings


def scenario_settings(bootstrap: str, registry_url: str, delivery: str, name: str, **overrides: object) -> Settings:
    """Settings whose topics, group and transactional id are `<name>-<random>`, so tests never share state.

    Topics: `<name>-<run>` (source), `<name>-<run>-processed` (output), `<name>-<run>.dlq` (dead letters).
    """
    run = f"{name}-{uuid.uuid4().hex[:8]}"
    return Settings.from_env(
        {},
        bootstrap=bootstrap,
        registry_url=registry_url,
        source_topic=run,
        output_topic=f"{run}-processed",
        dlq_topic=f"{run}.dlq",
        group_id=run,
        transactional_id=run,
        delivery=delivery,
        **overrides,
    )


def process_environment(settings: Settings, **extra: str) -> dict[str, str]:
    """This process's environment with every `KDP_*` setting replaced by `settings` (then `extra`): what a
    `kdp` subprocess needs to run as the converter that `settings` describes."""
    env = {name: value for name, value in os.environ.items() if name not in ENV_NAMES}
    for name, attr in ENV_NAMES.items():
        value = getattr(settings, attr)
        if value is not None:
            env[name] = str(value)
    return {**env, **extra}
