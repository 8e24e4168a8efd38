"""The wire-format encoder: header, byte-identity with fastavro on edge cases, refusals, and modes."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import fastavro
import pytest

from streaming.conversion.avro_codegen import generate_writer, writer_source
from streaming.conversion.encoding import RecordEncodingError, UnsupportedSchemaError, WireFormatEncoder, wire_header

SCHEMAS = Path(__file__).parents[2] / "schemas"
LOGIN_SCHEMA = json.loads((SCHEMAS / "processed-data-value.avsc").read_text())
INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1


def login_record(**changes: Any) -> dict[str, Any]:
    record = {
        "user_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "device_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "device_type": "ios",
        "locale": "RI",
        "ip": "108.228.145.239",
        "ip_version": 4,
        "ip_class": "PUBLIC",
        "app_version": "2.3.0",
        "app_version_major": 2,
        "app_version_minor": 3,
        "app_version_patch": 0,
        "event_time": 1_720_576_825_000,
        "processed_at": 1_720_576_830_000,
        "source_topic": "user-login",
        "source_partition": 0,
        "source_offset": 42,
    }
    record.update(changes)
    return record


def fastavro_bytes(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(schema), record)
    return buffer.getvalue()


def test_wire_format_is_magic_byte_schema_id_then_avro_body() -> None:
    encoder = WireFormatEncoder(258, LOGIN_SCHEMA)
    record = login_record()

    encoded = encoder.encode(record)

    assert encoded[:5] == b"\x00\x00\x00\x01\x02" == wire_header(258)
    assert encoded[5:] == fastavro_bytes(LOGIN_SCHEMA, record)
    assert (
        fastavro.schemaless_reader(io.BytesIO(encoded[5:]), encoder.parsed_schema, None)["user_id"] == record["user_id"]
    )


def test_the_login_schema_gets_the_generated_writer_and_fastavro_mode_writes_the_same() -> None:
    generated = WireFormatEncoder(7, json.dumps(LOGIN_SCHEMA))
    reference = WireFormatEncoder(7, LOGIN_SCHEMA, mode="fastavro")

    assert (generated.mode, reference.mode) == ("generated", "fastavro")
    assert generated.encode(login_record()) == reference.encode(login_record())


@pytest.mark.parametrize("schema_id", [-1, 2**31])
def test_schema_ids_outside_32_bits_are_refused(schema_id: int) -> None:
    with pytest.raises(ValueError, match="schema id"):
        wire_header(schema_id)


EDGE_CASES = [
    {},
    {"device_id": None},
    {"user_id": "", "device_type": "", "source_topic": ""},
    {"user_id": "é" * 4096},  # 8192 bytes: the first length past the one-lookup band
    {"user_id": "x" * 8191, "device_type": "y" * 8192, "locale": "z" * 8193},
    {"user_id": "日本語テキスト😀", "device_id": "Ünïcödé", "source_topic": "t\u0000t"},
    {"app_version": "a" * 100_000},
    {"ip_version": INT_MIN, "app_version_major": INT_MAX, "app_version_minor": -1, "app_version_patch": -64},
    {
        "source_partition": 2**27 - 1,
        "app_version_major": 2**27,
        "app_version_minor": 8191,
        "app_version_patch": 8192,
    },
    {"event_time": LONG_MIN, "processed_at": LONG_MAX, "source_offset": 0},
    {"event_time": -1, "processed_at": 2**41 - 1, "source_offset": 2**41},
    {"event_time": 2**13 - 1, "processed_at": 2**27 - 1, "source_offset": 2**27},
    {"event_time": -(2**41), "processed_at": 2**42, "source_offset": 2**62},
    {"ip_class": "UNKNOWN"},
    {"ip_class": "UNSPECIFIED"},
    {"event_time": True},  # bool is an int to both writers
]


@pytest.mark.parametrize("changes", EDGE_CASES)
def test_edge_cases_are_byte_identical_to_fastavro(changes: dict[str, Any]) -> None:
    record = login_record(**changes)
    write = generate_writer(LOGIN_SCHEMA)

    assert write(record) == fastavro_bytes(LOGIN_SCHEMA, record)


@pytest.mark.parametrize(
    ("changes", "cause"),
    [
        ({"ip_class": "NOT_A_SYMBOL"}, "KeyError"),
        ({"ip_version": 2**31}, "out of the range of an Avro int"),
        ({"ip_version": INT_MIN - 1}, "out of the range of an Avro int"),
        ({"source_offset": 2**63}, "out of the range of an Avro long"),
        ({"source_offset": LONG_MIN - 1}, "out of the range of an Avro long"),
        ({"source_offset": 1.5}, "TypeError"),
        ({"source_partition": "3"}, "TypeError"),
        ({"user_id": 42}, "AttributeError"),
        ({"user_id": None}, "AttributeError"),
        ({"device_id": b"bytes"}, "AttributeError"),
        ({"user_id": "\ud800"}, "UnicodeEncodeError"),
    ],
)
def test_a_record_the_schema_cannot_hold_is_refused_naming_the_schema(changes: dict[str, Any], cause: str) -> None:
    encoder = WireFormatEncoder(1, LOGIN_SCHEMA)

    with pytest.raises(RecordEncodingError, match="io.kdp.events.LoginEvent") as refused:
        encoder.encode(login_record(**changes))

    assert cause in str(refused.value)


def test_a_missing_field_is_refused() -> None:
    record = login_record()
    del record["locale"]

    for mode in ("generated", "fastavro"):
        with pytest.raises(RecordEncodingError, match="locale"):
            WireFormatEncoder(1, LOGIN_SCHEMA, mode=mode).encode(record)  # type: ignore[arg-type]


def record_schema(field_type: Any) -> dict[str, Any]:
    return {"type": "record", "name": "R", "namespace": "t", "fields": [{"name": "f", "type": field_type}]}


@pytest.mark.parametrize(
    ("field_type", "mentions"),
    [
        ({"type": "array", "items": "string"}, "'array'"),
        ({"type": "map", "values": "long"}, "'map'"),
        ({"type": "fixed", "name": "F", "size": 4}, "'fixed'"),
        ({"type": "record", "name": "Inner", "fields": []}, "'record'"),
        (["null", "string", "long"], "only a union of null and one other type"),
        (["string", "long"], "only a union of null and one other type"),
        ({"type": "bytes", "logicalType": "decimal", "precision": 4, "scale": 2}, "'decimal'"),
    ],
)
def test_unsupported_types_are_refused_when_the_writer_is_built(field_type: Any, mentions: str) -> None:
    schema = record_schema(field_type)

    with pytest.raises(UnsupportedSchemaError, match=mentions) as refused:
        WireFormatEncoder(1, schema, mode="generated")

    assert "field 'f'" in str(refused.value)


def test_auto_mode_falls_back_to_fastavro_for_unsupported_schemas(caplog: pytest.LogCaptureFixture) -> None:
    schema = record_schema({"type": "array", "items": "string"})

    with caplog.at_level(logging.WARNING, logger="streaming.conversion.encoding"):
        encoder = WireFormatEncoder(9, schema)

    assert encoder.mode == "fastavro"
    assert "fastavro" in caplog.text
    assert encoder.encode({"f": ["a", "b"]}) == wire_header(9) + fastavro_bytes(schema, {"f": ["a", "b"]})


def test_other_supported_types_match_fastavro() -> None:
    schema = {
        "type": "record",
        "name": "All",
        "fields": [
            {"name": "n", "type": "null"},
            {"name": "b", "type": "boolean"},
            {"name": "f", "type": "float"},
            {"name": "d", "type": "double"},
            {"name": "raw", "type": "bytes"},
            {"name": "day", "type": {"type": "int", "logicalType": "date"}},
            {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
            {"name": "e", "type": {"type": "enum", "name": "Colour", "symbols": ["RED", "GREEN"]}},
            {"name": "e2", "type": ["Colour", "null"]},  # a reference by name, null second
            {"name": "maybe", "type": ["null", "double"]},
        ],
    }
    record = {"n": None, "b": False, "f": 1.5, "d": -2.25e300, "raw": b"\x00\xff" * 4097,  # 8194 bytes
              "day": 19_000, "id": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "e": "GREEN", "e2": "RED",
              "maybe": None}  # fmt: skip

    assert generate_writer(schema)(record) == fastavro_bytes(schema, record)


def test_the_generated_source_is_readable_and_derived_from_the_schema() -> None:
    source, constants = writer_source(LOGIN_SCHEMA)

    for field in LOGIN_SCHEMA["fields"]:
        assert f"record[{field['name']!r}]" in source
    assert "io.kdp.events.LoginEvent" in source
    assert constants["ENUM1"] == {s: bytes([2 * i]) for i, s in enumerate(LOGIN_SCHEMA["fields"][6]["type"]["symbols"])}


def test_a_v2_record_written_with_the_compatible_schema_is_read_by_v1_and_v2_readers() -> None:
    v2 = json.loads((SCHEMAS / "evolution" / "compatible-v2.avsc").read_text())
    added = [field for field in v2["fields"] if field["name"] not in {f["name"] for f in LOGIN_SCHEMA["fields"]}]
    record = login_record(**{field["name"]: field["default"] for field in added})

    body = WireFormatEncoder(2, v2).encode(record)[5:]
    as_v1 = fastavro.schemaless_reader(io.BytesIO(body), fastavro.parse_schema(v2), fastavro.parse_schema(LOGIN_SCHEMA))
    v1_body = WireFormatEncoder(1, LOGIN_SCHEMA).encode(login_record())[5:]
    old_as_v2 = fastavro.schemaless_reader(
        io.BytesIO(v1_body), fastavro.parse_schema(LOGIN_SCHEMA), fastavro.parse_schema(v2)
    )

    assert added, "the v2 example must add a field"
    assert as_v1["user_id"] == record["user_id"]
    assert all(old_as_v2[field["name"]] == field["default"] for field in added)
