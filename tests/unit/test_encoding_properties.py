"""The generated writer is byte-identical to fastavro (the reference), for the login schema and for random
schemas made of every construct the generator supports, with values biased towards the varint bands."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import fastavro
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streaming.conversion.avro_codegen import generate_writer

LOGIN_SCHEMA = json.loads((Path(__file__).parents[2] / "schemas" / "processed-data-value.avsc").read_text())
PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

INT_RANGE = (-(2**31), 2**31 - 1)
LONG_RANGE = (-(2**63), 2**63 - 1)
#: Where the writer changes how many table lookups it makes, and the ends of each range.
BAND_EDGES = [0, 1, 2**13 - 1, 2**13, 2**14, 2**27 - 1, 2**27, 2**28, 2**41 - 1, 2**41, 2**42, 2**62]


def integers(low: int, high: int) -> st.SearchStrategy[int]:
    edges = sorted({value for edge in BAND_EDGES for value in (edge, -edge, edge - 1) if low <= value <= high})
    return st.integers(low, high) | st.sampled_from([low, high, *edges])


def fastavro_bytes(parsed: Any, record: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, parsed, record)
    return buffer.getvalue()


def value_strategy(avro_type: Any) -> st.SearchStrategy[Any]:
    """Values of an Avro type made of the supported constructs."""
    if isinstance(avro_type, list):
        return st.one_of(*(value_strategy(branch) for branch in avro_type))
    if isinstance(avro_type, dict):
        if avro_type["type"] == "enum":
            return st.sampled_from(avro_type["symbols"])
        avro_type = avro_type["type"]  # a logical type: values in the underlying type
    return {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": integers(*INT_RANGE),
        "long": integers(*LONG_RANGE),
        "float": st.floats(width=32, allow_nan=False),
        "double": st.floats(allow_nan=False),
        "bytes": st.binary(max_size=40),
        "string": st.text(max_size=40) | st.integers(4095, 4097).map(lambda n: "é" * n),  # 8190-8194 bytes
    }[avro_type]


@st.composite
def field_types(draw: st.DrawFn, index: int) -> Any:
    """One field's type: a primitive, an enum, a logical type, or a union of null and one of those."""
    base = draw(
        st.sampled_from(["null", "boolean", "int", "long", "float", "double", "bytes", "string"])
        | st.just(
            {
                "type": "enum",
                "name": f"E{index}",
                "symbols": [f"S{i}" for i in range(draw(st.integers(1, 70)))],
            }
        )
        | st.sampled_from(
            [
                {"type": "long", "logicalType": "timestamp-millis"},
                {"type": "long", "logicalType": "timestamp-micros"},
                {"type": "int", "logicalType": "date"},
                {"type": "string", "logicalType": "uuid"},
            ]
        )
    )
    if base != "null" and draw(st.booleans()):
        return ["null", base] if draw(st.booleans()) else [base, "null"]
    return base


@st.composite
def schemas_and_records(draw: st.DrawFn) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    count = draw(st.integers(1, 12))
    fields = [{"name": f"f{i}", "type": draw(field_types(i))} for i in range(count)]
    schema = {"type": "record", "name": "Random", "namespace": "test", "fields": fields}
    record = st.fixed_dictionaries({field["name"]: value_strategy(field["type"]) for field in fields})
    return schema, draw(st.lists(record, min_size=1, max_size=5))


@PROPERTY
@given(schemas_and_records())
def test_generated_writer_matches_fastavro_for_random_schemas(
    case: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    schema, records = case
    write, parsed = generate_writer(schema, prefix=b"\x00\x00\x00\x00\x2a"), fastavro.parse_schema(schema)

    for record in records:
        encoded = write(record)
        assert encoded == b"\x00\x00\x00\x00\x2a" + fastavro_bytes(parsed, record)


login_records = st.fixed_dictionaries(
    {field["name"]: value_strategy(field["type"]) for field in LOGIN_SCHEMA["fields"]}
)
LOGIN_WRITER = generate_writer(LOGIN_SCHEMA)
LOGIN_PARSED = fastavro.parse_schema(LOGIN_SCHEMA)
#: For reading back: the same schema without logical types, so that any long reads back as an int.
LOGIN_PLAIN = fastavro.parse_schema(
    json.loads(json.dumps(LOGIN_SCHEMA).replace('"logicalType": "timestamp-millis"', '"doc": "plain"'))
)


@settings(max_examples=1000, deadline=None)
@given(login_records)
def test_generated_writer_matches_fastavro_for_login_records(record: dict[str, Any]) -> None:
    encoded = LOGIN_WRITER(record)

    assert encoded == fastavro_bytes(LOGIN_PARSED, record)
    assert fastavro.schemaless_reader(io.BytesIO(encoded), LOGIN_PLAIN, None) == record
