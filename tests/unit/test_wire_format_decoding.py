"""The wire-format contract read back: `WireFormatDecoder` decodes what `WireFormatEncoder` writes (both modes),
looks each writer schema up once, and refuses everything else with `UndecodableRecord` (a stub registry
stands in for the real one)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry.error import SchemaRegistryError
from hypothesis import given, settings
from hypothesis import strategies as st

from streaming.conversion.encoding import UndecodableRecord, WireFormatDecoder, WireFormatEncoder, read_wire_header

SCHEMA_TEXT = (Path(__file__).resolve().parents[2] / "schemas" / "processed-data-value.avsc").read_text()
TIMESTAMP_FIELDS = ("event_time", "processed_at")
IP_CLASSES = next(f["type"]["symbols"] for f in json.loads(SCHEMA_TEXT)["fields"] if f["name"] == "ip_class")


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


RECORD: dict[str, Any] = {
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


def as_read(record: dict[str, Any]) -> dict[str, Any]:
    """What a reader gets back for `record`: timestamp-millis fields as UTC datetimes."""
    return {
        name: datetime.fromtimestamp(value / 1000, tz=UTC) if name in TIMESTAMP_FIELDS else value
        for name, value in record.items()
    }


@pytest.mark.parametrize("mode", ["generated", "fastavro"])
def test_decodes_what_the_encoder_writes_and_fetches_each_schema_once(mode: str) -> None:
    registry = StubRegistry()
    decoder = WireFormatDecoder(registry)
    encoded = WireFormatEncoder(7, SCHEMA_TEXT, mode=mode).encode(RECORD)  # type: ignore[arg-type]
    assert read_wire_header(encoded)[0] == 7
    assert decoder.decode(encoded) == as_read(RECORD)
    decoder.decode(encoded)
    assert registry.lookups == 1


ENCODER = WireFormatEncoder(7, SCHEMA_TEXT)
DECODER = WireFormatDecoder(StubRegistry())


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "user_id": st.uuids().map(str),
            "device_id": st.none() | st.uuids().map(str),
            "device_type": st.text(max_size=32),
            "locale": st.text(max_size=4),
            "ip": st.text(max_size=45),
            "ip_class": st.sampled_from(IP_CLASSES),
            "event_time": st.integers(946_684_800_000, 4_102_444_800_000),
            "processed_at": st.integers(946_684_800_000, 4_102_444_800_000),
            "source_offset": st.integers(0, 2**63 - 1),
        }
    )
)
def test_every_record_round_trips(changes: dict[str, Any]) -> None:
    record = {**RECORD, **changes}
    assert DECODER.decode(ENCODER.encode(record)) == as_read(record)


@pytest.mark.parametrize(
    "value",
    [
        None,
        b"",
        b"\x01\x00\x00\x00\x07abc",
        b"\x00\x00\x00\x00\x07",
        ENCODER.encode(RECORD)[:20],
        WireFormatEncoder(8, SCHEMA_TEXT).encode(RECORD),
    ],
    ids=["tombstone", "empty", "wrong-magic", "no-body", "truncated", "unknown-id"],
)
def test_anything_else_is_undecodable(value: bytes | None) -> None:
    with pytest.raises(UndecodableRecord):
        WireFormatDecoder(StubRegistry()).decode(value)


def test_registry_outages_are_raised_not_counted_as_bad_data() -> None:
    class DownRegistry:
        def get_schema(self, schema_id: int) -> StubSchema:
            raise SchemaRegistryError(503, 50301, "unavailable")

    with pytest.raises(SchemaRegistryError):
        WireFormatDecoder(DownRegistry()).decode(ENCODER.encode(RECORD))
