"""Pipeline settings that belong to one test alone: its own topics, consumer group and transactional id."""

from __future__ import annotations

import uuid

from streaming.settings import Settings


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
