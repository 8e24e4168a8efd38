"""Decoding Confluent wire-format Avro with writer schemas looked up by id (a stub registry stands in)."""

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka.schema_registry.error import SchemaRegistryError
from fastavro import parse_schema, schemaless_writer

from orchestration.insights.window_reader import UndecodableRecord, WireFormatDecoder

SCHEMA_TEXT = (Path(__file__).resolve().parents[2] / "schemas" / "processed-data-value.avsc").read_text()


@dataclass
class StubSchema:
    schema_str: str


class StubRegistry:
    """Knows schema id 7 only; counts lookups so the test can see the cache at work."""

    def __init__(self) -> None:
        self.lookups = 0

    def get_schema(self, schema_id: int) -> StubSchema:
        self.lookups += 1
        if schema_id != 7:
            raise SchemaRegistryError(404, 40403, "Schema not found")
        return StubSchema(SCHEMA_TEXT)


def wire(record: Mapping[str, object], schema_id: int = 7) -> bytes:
    buffer = io.BytesIO()
    schemaless_writer(buffer, parse_schema(json.loads(SCHEMA_TEXT)), record)
    return b"\x00" + schema_id.to_bytes(4, "big") + buffer.getvalue()


RECORD = {
    "user_id": "5f0c1f4e-7c54-4a2e-9a0e-2b1f3c4d5e6f",
    "device_id": None,
    "device_type": "ios",
    "locale": "NY",
    "ip": "8.8.8.8",
    "ip_version": 4,
    "ip_class": "PUBLIC",
    "app_version": "2.3.0",
    "app_version_major": 2,
    "app_version_minor": 3,
    "app_version_patch": 0,
    "event_time": 1_795_593_600_123,
    "processed_at": 1_795_593_601_000,
    "source_topic": "user-login",
    "source_partition": 0,
    "source_offset": 42,
}


def test_decodes_a_record_and_fetches_each_schema_once() -> None:
    registry = StubRegistry()
    decoder = WireFormatDecoder(registry)  # type: ignore[arg-type]
    first = decoder.decode(wire(RECORD))
    decoder.decode(wire(RECORD))
    assert first["user_id"] == RECORD["user_id"] and first["device_id"] is None
    assert registry.lookups == 1


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"\x01\x00\x00\x00\x07abc",
        b"\x00\x00\x00\x00\x07",
        wire(RECORD)[:20],
        wire(RECORD, schema_id=8),
    ],
    ids=["tombstone", "empty", "wrong-magic", "no-body", "truncated", "unknown-id"],
)
def test_anything_else_is_undecodable(value: bytes | None) -> None:
    with pytest.raises(UndecodableRecord):
        WireFormatDecoder(StubRegistry()).decode(value)  # type: ignore[arg-type]


def test_registry_outages_are_raised_not_counted_as_bad_data() -> None:
    class DownRegistry:
        def get_schema(self, schema_id: int) -> StubSchema:
            raise SchemaRegistryError(503, 50301, "unavailable")

    with pytest.raises(SchemaRegistryError):
        WireFormatDecoder(DownRegistry()).decode(wire(RECORD))  # type: ignore[arg-type]
