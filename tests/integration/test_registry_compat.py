"""The local registry through confluent-kafka's own clients.

What the pipeline relies on works as with Confluent's registry: register, fetch by id, lookup, the Avro wire
format, BACKWARD compatibility, persistence across restarts.
"""

from __future__ import annotations

import json
import struct

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from kdp.devstack.stack import LocalStack, StackInfo

pytestmark = pytest.mark.integration


def _login_schema(*extra_fields: dict) -> Schema:
    record = {
        "type": "record",
        "name": "Login",
        "namespace": "kdp.test",
        "fields": [{"name": "user_id", "type": "string"}, {"name": "count", "type": "int"}, *extra_fields],
    }
    return Schema(json.dumps(record), "AVRO")


@pytest.fixture
def registry(stack: StackInfo) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": stack.registry_url, "timeout": 30})


@pytest.fixture
def subject(topic_name: str) -> str:
    return f"{topic_name}-value"


def test_registered_schema_is_found_by_id_and_by_lookup(registry: SchemaRegistryClient, subject: str) -> None:
    schema = _login_schema()
    schema_id = registry.register_schema(subject, schema)

    by_id = registry.get_schema(schema_id)
    looked_up = registry.lookup_schema(subject, schema)

    assert json.loads(by_id.schema_str) == json.loads(schema.schema_str)
    assert looked_up.schema_id == schema_id
    assert looked_up.subject == subject
    assert looked_up.version == 1


def test_avro_records_round_trip_in_confluent_wire_format(registry: SchemaRegistryClient, topic_name: str) -> None:
    schema = _login_schema()
    context = SerializationContext(topic_name, MessageField.VALUE)
    record = {"user_id": "u-42", "count": 7}

    payload = AvroSerializer(registry, schema.schema_str)(record, context)
    magic, schema_id = struct.unpack(">bI", payload[:5])

    assert magic == 0
    assert registry.get_schema(schema_id).schema_str
    assert AvroDeserializer(registry)(payload, context) == record


def test_global_compatibility_is_backward(registry: SchemaRegistryClient) -> None:
    assert registry.get_compatibility() == "BACKWARD"


def test_incompatible_change_is_refused_with_409(registry: SchemaRegistryClient, subject: str) -> None:
    registry.register_schema(subject, _login_schema())
    without_default = _login_schema({"name": "country", "type": "string"})

    with pytest.raises(SchemaRegistryError) as refused:
        registry.register_schema(subject, without_default)

    assert refused.value.http_status_code == 409
    assert [registered for registered in registry.get_versions(subject)] == [1]


def test_field_added_with_a_default_is_accepted(registry: SchemaRegistryClient, subject: str) -> None:
    first = registry.register_schema(subject, _login_schema())
    with_default = _login_schema({"name": "country", "type": "string", "default": "unknown"})

    second = registry.register_schema(subject, with_default)

    assert second != first
    assert registry.get_latest_version(subject).version == 2


def test_schemas_survive_a_restart_of_the_stack(isolated_stack: LocalStack) -> None:
    info = isolated_stack.up()
    schema = _login_schema()
    schema_id = SchemaRegistryClient({"url": info.registry_url, "timeout": 30}).register_schema(
        "persisted-value", schema
    )

    isolated_stack.down()
    restarted = isolated_stack.up()

    fresh_client = SchemaRegistryClient({"url": restarted.registry_url, "timeout": 30})
    assert json.loads(fresh_client.get_schema(schema_id).schema_str) == json.loads(schema.schema_str)
    assert fresh_client.lookup_schema("persisted-value", schema).schema_id == schema_id
    assert fresh_client.get_compatibility() == "BACKWARD"
