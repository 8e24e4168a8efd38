"""Schema registration against the real registry; the encoder's output read by Confluent's deserializer.

Each test uses its own subject (the test's name plus a random suffix), so reruns never collide.
"""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from localstack.stack import StackInfo
from streaming.encoding import WireFormatEncoder
from streaming.schema_registry import (
    RegistryUnavailableError,
    SchemaIncompatibleError,
    ensure_value_schema,
    load_schema,
)
from streaming.topics import value_subject
from streaming.transform import transform

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
    return SchemaRegistryClient({"url": stack.registry_url})


@pytest.fixture
def subject(topic_name: str) -> str:
    return value_subject(topic_name)


def as_read_by_avro_deserializer(record: dict[str, Any]) -> dict[str, Any]:
    """What Confluent's AvroDeserializer returns for `record`: timestamp-millis as aware datetimes."""
    expected = dict(record)
    for name in ("event_time", "processed_at"):
        expected[name] = datetime.fromtimestamp(record[name] / 1000, UTC)
    return expected


def test_registered_schema_encodes_records_that_confluents_deserializer_reads(
    registry: SchemaRegistryClient, subject: str, topic_name: str
) -> None:
    registered = ensure_value_schema(registry, subject, load_schema(V1))
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


def test_ensuring_twice_finds_the_same_version_and_sets_the_subjects_compatibility(
    registry: SchemaRegistryClient, subject: str
) -> None:
    first = ensure_value_schema(registry, subject, load_schema(V1))
    second = ensure_value_schema(registry, subject, load_schema(V1))

    assert (second.schema_id, second.version) == (first.schema_id, first.version) == (first.schema_id, 1)
    assert registry.get_compatibility(subject_name=subject) == "BACKWARD"
    assert registry.get_versions(subject) == [1]


def test_a_compatible_change_becomes_version_two_and_old_records_stay_readable(
    registry: SchemaRegistryClient, subject: str, topic_name: str
) -> None:
    v1 = ensure_value_schema(registry, subject, load_schema(V1))
    old_payload = WireFormatEncoder(v1.schema_id, v1.schema_str).encode(transform(EVENT, topic_name, 0, 1, NOW_MS))  # type: ignore[arg-type]

    v2 = ensure_value_schema(registry, subject, load_schema(V2_COMPATIBLE))
    v2_reader = AvroDeserializer(registry, schema_str=v2.schema_str)
    old_read_as_v2 = v2_reader(old_payload, SerializationContext(topic_name, MessageField.VALUE))

    assert v2.version == 2
    assert v2.schema_id != v1.schema_id
    assert old_read_as_v2["session_id"] is None  # the new field's default
    assert old_read_as_v2["user_id"] == "0f8fad5b-d9cb-469f-a165-70867728950e"


def test_an_incompatible_change_is_refused_naming_the_subject_and_the_reason(
    registry: SchemaRegistryClient, subject: str
) -> None:
    ensure_value_schema(registry, subject, load_schema(V1))

    with pytest.raises(SchemaIncompatibleError) as refused:
        ensure_value_schema(registry, subject, load_schema(V2_INCOMPATIBLE))

    assert refused.value.subject == subject
    assert subject in str(refused.value)
    assert refused.value.messages, "the registry's reasons should be quoted"
    assert "country" in str(refused.value)  # the offending field, in the registry's own words
    assert registry.get_versions(subject) == [1]


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
        ensure_value_schema(client, "never-value", load_schema(V1), deadline_s=20, sleep=sleep, clock=lambda: now[0])

    assert waits[:4] == [0.5, 1.0, 2.0, 4.0]
    assert sum(waits) == pytest.approx(20)


def test_an_invalid_schema_file_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "broken.avsc"
    broken.write_text(json.dumps({"type": "record", "name": "X", "fields": [{"name": "a", "type": "nope"}]}))

    with pytest.raises(ValueError, match="broken.avsc"):
        load_schema(broken)
