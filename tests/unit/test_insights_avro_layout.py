"""Reading the insights' fields straight from an Avro body agrees with fastavro's full decode.

Property tests: records of the project's schema and of a schema with every Avro type in it, its fields in
any order, written by fastavro; what `read_fields` answers is what fastavro reads back. Cut or garbled
bodies are undecodable, never read as something else."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestration.insights.aggregates import epoch_ms
from orchestration.insights.avro_layout import (
    FIELDS,
    MAX_DATETIME_MS,
    MIN_DATETIME_MS,
    SKIP,
    UndecodableBody,
    UnsupportedLayout,
    compile_layout,
    read_fields,
)

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "processed-data-value.avsc").read_text())
IP_CLASSES = SCHEMA["fields"][6]["type"]["symbols"]

texts = st.text(max_size=40)
longs = st.integers(-(2**63), 2**63 - 1)
ints = st.integers(-(2**31), 2**31 - 1)
times = st.integers(MIN_DATETIME_MS, MAX_DATETIME_MS)

PROJECT_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "user_id": texts,
    "device_id": st.none() | texts,
    "device_type": texts,
    "locale": texts,
    "ip": texts,
    "ip_version": ints,
    "ip_class": st.sampled_from(IP_CLASSES),
    "app_version": texts,
    "app_version_major": ints,
    "app_version_minor": ints,
    "app_version_patch": ints,
    "event_time": times,
    "processed_at": times,
    "source_topic": texts,
    "source_partition": ints,
    "source_offset": longs,
}
LOGIN = {
    "user_id": "u",
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
    "event_time": 1_795_593_600_000,
    "processed_at": 1_795_593_601_000,
    "source_topic": "user-login",
    "source_partition": 0,
    "source_offset": 7,
}
EXTRA_FIELDS: list[tuple[dict[str, Any], st.SearchStrategy[Any]]] = [
    ({"name": "x_bool", "type": "boolean"}, st.booleans()),
    ({"name": "x_float", "type": "float"}, st.floats(width=32, allow_nan=False)),
    ({"name": "x_double", "type": "double"}, st.floats(allow_nan=False)),
    ({"name": "x_bytes", "type": "bytes"}, st.binary(max_size=20)),
    ({"name": "x_fixed", "type": {"type": "fixed", "name": "F4", "size": 4}}, st.binary(min_size=4, max_size=4)),
    ({"name": "x_array", "type": {"type": "array", "items": "long"}}, st.lists(longs, max_size=5)),
    (
        {"name": "x_map", "type": {"type": "map", "values": ["null", "string"]}},
        st.dictionaries(texts, st.none() | texts, max_size=4),
    ),
    (
        {
            "name": "x_record",
            "type": {
                "type": "record",
                "name": "Inner",
                "fields": [
                    {"name": "a", "type": "int"},
                    {"name": "b", "type": {"type": "enum", "name": "E", "symbols": ["A", "B", "C"]}},
                    {"name": "c", "type": {"type": "array", "items": {"type": "map", "values": "double"}}},
                ],
            },
        },
        st.fixed_dictionaries(
            {
                "a": ints,
                "b": st.sampled_from(["A", "B", "C"]),
                "c": st.lists(st.dictionaries(texts, st.floats(allow_nan=False), max_size=2), max_size=2),
            }
        ),
    ),
    (
        {"name": "x_union", "type": ["null", "long", "string", {"type": "record", "name": "U", "fields": []}]},
        st.none() | longs | texts | st.just({"-type": "io.kdp.events.U"}),
    ),
    ({"name": "x_date", "type": {"type": "int", "logicalType": "date"}}, st.integers(-700_000, 2_900_000)),
    ({"name": "session_id", "type": ["null", "string"], "default": None}, st.none() | texts),
]


def encode(schema: dict[str, Any], record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, fastavro.parse_schema(schema), record)
    return buffer.getvalue()


def fastavro_fields(schema: dict[str, Any], body: bytes) -> list[Any]:
    """The insights' fields as the full decode reads them (times as epoch ms)."""
    record = fastavro.schemaless_reader(io.BytesIO(body), fastavro.parse_schema(schema), None)
    assert isinstance(record, dict)
    return [epoch_ms(record[name]) if name in ("event_time", "processed_at") else record.get(name) for name in FIELDS]


@st.composite
def schemas_and_records(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    """A writer schema: the project's fields and some of every Avro type, in any order; and one record of it."""
    fields = [(f, PROJECT_VALUES[f["name"]]) for f in SCHEMA["fields"]]
    fields += draw(st.lists(st.sampled_from(EXTRA_FIELDS), unique_by=lambda e: e[0]["name"]))
    ordered = draw(st.permutations(fields))
    schema = {"type": "record", "name": "LoginEvent", "namespace": "io.kdp.events", "fields": [f for f, _ in ordered]}
    record = {f["name"]: draw(values) for f, values in ordered}
    return schema, record


@settings(max_examples=300, deadline=None)
@given(schemas_and_records())
def test_the_fields_read_are_those_fastavro_decodes(case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    schema, record = case
    body = encode(schema, record)
    assert read_fields(compile_layout(schema), body) == fastavro_fields(schema, body)


@settings(max_examples=200, deadline=None)
@given(schemas_and_records(), st.data())
def test_a_cut_body_is_undecodable_when_fastavro_refuses_it(
    case: tuple[dict[str, Any], dict[str, Any]], data: Any
) -> None:
    schema, record = case
    body = encode(schema, record)
    cut = body[: data.draw(st.integers(0, max(0, len(body) - 1)))]
    try:
        expected = fastavro_fields(schema, cut)
    except Exception:  # noqa: BLE001 - fastavro raises many kinds on a short body
        expected = None
    try:
        fields = read_fields(compile_layout(schema), cut)
    except UndecodableBody:
        fields = None
    assert fields == expected


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80))
def test_garbage_is_undecodable_exactly_when_fastavro_refuses_it(body: bytes) -> None:
    try:
        expected = fastavro_fields(SCHEMA, body)
    except Exception:  # noqa: BLE001 - fastavro raises many kinds on corrupt input
        expected = None
    try:
        fields = read_fields(compile_layout(SCHEMA), body)
    except UndecodableBody:
        fields = None
    assert fields == expected


def test_the_layout_follows_the_writer_schema_field_by_field() -> None:
    layout = compile_layout(SCHEMA)
    names = [f["name"] for f in SCHEMA["fields"]]
    assert len(layout.fields) == len(names)
    assert [slot for slot, _ in layout.fields if slot != SKIP] == [FIELDS.index(n) for n in names if n in FIELDS]


def test_a_named_type_used_again_by_reference_is_stepped_over() -> None:
    inner = {"type": "record", "name": "Inner", "fields": [{"name": "a", "type": "string"}]}
    schema = {
        "type": "record",
        "name": "R",
        "namespace": "io.kdp.events",
        "fields": [
            {"name": "first", "type": inner},
            {"name": "again", "type": "io.kdp.events.Inner"},
            {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "processed_at", "type": "long"},
            {"name": "user_id", "type": "string"},
        ],
    }
    record = {"first": {"a": "x"}, "again": {"a": "yy"}, "event_time": 5, "processed_at": 6, "user_id": "u"}
    assert read_fields(compile_layout(schema), encode(schema, record)) == ["u", None, None, None, None, 5, 6]


def test_a_timestamp_no_datetime_holds_is_undecodable_as_fastavro_refuses_it() -> None:
    record = {**LOGIN, "event_time": MAX_DATETIME_MS + 1}
    body = encode(SCHEMA, record)
    with pytest.raises(UndecodableBody):
        read_fields(compile_layout(SCHEMA), body)
    with pytest.raises((OverflowError, ValueError)):
        fastavro_fields(SCHEMA, body)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda fields: [f for f in fields if f["name"] != "event_time"], "no field 'event_time'"),
        (lambda fields: [{**f, "type": "int"} if f["name"] == "locale" else f for f in fields], "'locale'"),
        (
            lambda fields: [{**f, "type": "string"} if f["name"] == "processed_at" else f for f in fields],
            "processed_at",
        ),
    ],
)
def test_a_schema_without_a_readable_time_or_text_field_has_no_layout(change: Any, why: str) -> None:
    with pytest.raises(UnsupportedLayout, match=why):
        compile_layout({**SCHEMA, "fields": change(SCHEMA["fields"])})


def test_a_recursive_type_has_no_layout() -> None:
    node = {"type": "record", "name": "Node", "fields": [{"name": "next", "type": ["null", "Node"]}]}
    with pytest.raises(UnsupportedLayout, match="recursive"):
        compile_layout({**SCHEMA, "fields": [{"name": "tree", "type": node}, *SCHEMA["fields"]]})
