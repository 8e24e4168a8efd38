"""The control plane's part of a test's set-up: the output schema registered under the test's own subject.

Converters only look their schema up; provisioning registers it. A test that creates its own topics with
`kafka_io.create_topics` rather than running `provision_topics` registers the schema with this, as
provisioning would (the same code: `orchestration.schema.registry.register_value_schema`).
"""

from __future__ import annotations

from pathlib import Path

from confluent_kafka.schema_registry import SchemaRegistryClient

from orchestration.schema.registry import register_value_schema
from streaming.loop.pipeline import PROCESSED_SCHEMA
from streaming.schema_registry import RegisteredValueSchema, load_schema
from streaming.settings import Settings
from streaming.topics import value_subject


def register_output_schema(settings: Settings, schema_path: Path = PROCESSED_SCHEMA) -> RegisteredValueSchema:
    """Register the schema at `schema_path` under `settings`' output subject, as provisioning does."""
    client = SchemaRegistryClient(settings.registry_config())
    _, registered = register_value_schema(client, value_subject(settings.output_topic), load_schema(schema_path))
    assert registered is not None
    return registered
