"""The registry's governance against the real registry: the control plane registers and checks
(`orchestration.schema.registry`), the data plane only looks up (`streaming.schema_registry`); the encoder's
output read by Confluent's deserializer.

Each test uses its own subject (the test's name plus a random suffix), so reruns never collide.
"""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from kdp.devstack.stack import StackInfo
from orchestration.schema.registry import (
    SchemaIncompatibleError,
    check_compatibility,
    drift,
    effective_level,
    register_value_schema,
    subject_level,
)
from streaming.conversion.encoding import WireFormatEncoder
from streaming.conversion.transform import transform
from streaming.schema_registry import (
    RegisteredValueSchema,
    RegistryUnavailableError,
    SchemaNotRegisteredError,
    load_schema,
    lookup_value_schema,
)
from streaming.topics import value_subject

pytestmark = pytest.mark.integration

SCHEMAS = Path(__file__).parents[2] / "schemas"
V1 = SCHEMAS / "processed-data-value.avsc"
V2_COMPATIBLE = SCHEMAS / "evolution" / "compatible-v2.avsc"
V2_INCOMPATIBLE = SCHEMAS / "evolution" / "incompatible.avsc"
NOW_MS = 1_720_576_830_000
EVENT = (
    b'{"user_id": "0f8fad5b-d9cb-469f-a165-70867728950e", "app_version": "2.4.0-beta", "ip": "2001:DB8::1", '
    b'"locale": "ri", "device_id": null, "timestamp": "1720576825", "device_type": "Android"}'
)


@pytest.fixture
def registry(stack: StackInfo) -> SchemaRegistryClient:
    assert stack.registry_url, "the stack runs without a registry"
    return SchemaRegistryClient({"url": stack.registry_url, "timeout": 30})


@pytest.fixture
def subject(topic_name: str) -> str:
    return value_subject(topic_name)


def register(registry: SchemaRegistryClient, subject: str, path: Path) -> RegisteredValueSchema:
    _, registered = register_value_schema(registry, subject, load_schema(path))
    assert registered is not None
    return registered


def record_schema(*fields: dict[str, Any]) -> str:
    return json.dumps({"type": "record", "name": "Probe", "fields": list(fields)})


def as_read_by_avro_deserializer(record: dict[str, Any]) -> dict[str, Any]:
    """What Confluent's AvroDeserializer returns for `record`: timestamp-millis as aware datetimes."""
    expected = dict(record)
    for name in ("event_time", "processed_at"):
        expected[name] = datetime.fromtimestamp(record[name] / 1000, UTC)
    return expected


def test_registered_schema_encodes_records_that_confluents_deserializer_reads(
    registry: SchemaRegistryClient, subject: str, topic_name: str
) -> None:
    registered = register(registry, subject, V1)
    encoder = WireFormatEncoder(registered.schema_id, registered.schema_str)
    record = transform(EVENT, topic_name, 0, 17, NOW_MS)
    assert isinstance(record, dict), record

    payload = encoder.encode(record)
    decoded = AvroDeserializer(registry)(payload, SerializationContext(topic_name, MessageField.VALUE))

    assert encoder.mode == "generated"
    assert payload[1:5] == registered.schema_id.to_bytes(4, "big")
    assert decoded == as_read_by_avro_deserializer(record)
    assert (decoded["ip"], decoded["ip_class"], decoded["device_type"]) == (
        "2001:db8::1",
        "RESERVED",
        "android",
    )


def test_registering_twice_finds_the_same_version_and_sets_backward_transitive_on_the_subject(
    registry: SchemaRegistryClient, subject: str
) -> None:
    first = register(registry, subject, V1)
    second = register(registry, subject, V1)

    assert (second.schema_id, second.version) == (first.schema_id, first.version) == (first.schema_id, 1)
    assert subject_level(registry, subject) == "BACKWARD_TRANSITIVE"
    assert registry.get_versions(subject) == [1]
    assert drift(registry, subject, load_schema(V1)).matches


def test_an_operators_level_is_kept_and_told_apart_from_the_global_one(
    registry: SchemaRegistryClient, subject: str
) -> None:
    registry.register_schema(subject, Schema(load_schema(V1), "AVRO"))  # a subject with no level of its own
    global_level = registry.get_compatibility()
    assert subject_level(registry, subject) is None
    assert effective_level(registry, subject) == (global_level, False)

    registry.set_compatibility(subject_name=subject, level="FULL_TRANSITIVE")
    register(registry, subject, V2_COMPATIBLE)

    assert subject_level(registry, subject) == "FULL_TRANSITIVE"
    assert effective_level(registry, subject) == ("FULL_TRANSITIVE", True)


def test_the_data_plane_looks_up_and_refuses_a_schema_that_is_not_registered(
    registry: SchemaRegistryClient, subject: str
) -> None:
    with pytest.raises(SchemaNotRegisteredError) as refused:
        lookup_value_schema(registry, subject, load_schema(V1), schema_file="schemas/processed-data-value.avsc")
    assert repr(subject) in str(refused.value) and "kdp schema register --execute" in str(refused.value)
    assert subject not in registry.get_subjects()

    registered = register(registry, subject, V1)
    found = lookup_value_schema(registry, subject, load_schema(V1))
    assert (found.schema_id, found.version) == (registered.schema_id, 1)
    with pytest.raises(SchemaNotRegisteredError):
        lookup_value_schema(registry, subject, load_schema(V2_COMPATIBLE))  # a version nobody registered


def test_the_check_covers_every_version_where_a_non_transitive_level_looks_at_the_latest_only(
    registry: SchemaRegistryClient, subject: str
) -> None:
    a = {"name": "a", "type": "string"}
    b = {"name": "b", "type": "int"}
    c = {"name": "c", "type": ["null", "string"], "default": None}
    registry.set_compatibility(subject_name=subject, level="NONE")
    registry.register_schema(subject, Schema(record_schema(a), "AVRO"))
    registry.register_schema(subject, Schema(record_schema(a, b), "AVRO"))  # b without default: v1 unreadable
    registry.set_compatibility(subject_name=subject, level="BACKWARD")

    report = check_compatibility(registry, subject, record_schema(a, b, c))

    assert [v.version for v in report.verdicts] == [1, 2]
    assert report.incompatible_versions == [1]
    assert not report.compatible
    with pytest.raises(SchemaIncompatibleError, match="version\\(s\\) 1 of subject"):
        register_value_schema(registry, subject, record_schema(a, b, c))
    assert registry.get_versions(subject) == [1, 2]
    assert subject_level(registry, subject) == "BACKWARD"


def test_a_compatible_change_becomes_version_two_and_old_records_stay_readable(
    registry: SchemaRegistryClient, subject: str, topic_name: str
) -> None:
    v1 = register(registry, subject, V1)
    old_payload = WireFormatEncoder(v1.schema_id, v1.schema_str).encode(transform(EVENT, topic_name, 0, 1, NOW_MS))  # type: ignore[arg-type]

    v2 = register(registry, subject, V2_COMPATIBLE)
    v2_reader = AvroDeserializer(registry, schema_str=v2.schema_str)
    old_read_as_v2 = v2_reader(old_payload, SerializationContext(topic_name, MessageField.VALUE))

    assert v2.version == 2
    assert v2.schema_id != v1.schema_id
    assert old_read_as_v2["session_id"] is None  # the new field's default
    assert old_read_as_v2["user_id"] == "0f8fad5b-d9cb-469f-a165-70867728950e"


def test_an_incompatible_change_is_refused_naming_the_subject_and_the_reason(
    registry: SchemaRegistryClient, subject: str
) -> None:
    register(registry, subject, V1)

    with pytest.raises(SchemaIncompatibleError) as refused:
        register(registry, subject, V2_INCOMPATIBLE)

    assert refused.value.report.subject == subject
    assert subject in str(refused.value)
    assert refused.value.report.reasons, "the registry's reasons should be quoted"
    assert "country" in str(refused.value)  # the offending field, in the registry's own words
    assert registry.get_versions(subject) == [1]
    assert drift(registry, subject, load_schema(V1)).matches
    assert not drift(registry, subject, load_schema(V2_COMPATIBLE)).matches


def test_an_unreachable_registry_is_retried_with_back_off_until_the_deadline() -> None:
    with socket.socket() as placeholder:  # a port that was free a moment ago: nothing listens there
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    client = SchemaRegistryClient({"url": f"http://127.0.0.1:{port}", "max.retries": 0})  # only our retries
    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    with pytest.raises(RegistryUnavailableError, match="did not answer"):
        lookup_value_schema(client, "never-value", load_schema(V1), deadline_s=20, sleep=sleep, clock=lambda: now[0])

    assert waits[:4] == [0.5, 1.0, 2.0, 4.0]
    assert sum(waits) == pytest.approx(20)


def test_an_invalid_schema_file_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.avsc"
    broken.write_text(json.dumps({"type": "record", "name": "X", "fields": [{"name": "a", "type": "nope"}]}))

    with pytest.raises(ValueError, match="broken.avsc"):
        load_schema(broken)
