"""The Confluent wire format, both ways: magic byte 0, the schema id (4 bytes, big-endian), the Avro body.

This module is the one place that knows the format. The converter writes with `WireFormatEncoder`;
`kdp tail`, the insights reader and the tests read with `WireFormatDecoder`.

Writing: `WireFormatEncoder(schema_id, schema)` is built once at start from the schema the registry holds
under that id (`streaming.schema_registry.lookup_value_schema` returns both), so what is written always
matches what readers will look up. Its `encode(record) -> bytes` is on the hot path: it *is* the writer
generated for the schema by `streaming.conversion.avro_codegen`, with the 5-byte header folded in, so a call costs
nothing more.

Encoder modes:
- "generated": the generated writer; raises `UnsupportedSchemaError` at construction if the schema uses
  a type it does not implement.
- "fastavro": `fastavro.schemaless_writer`, for any schema; about three times slower.
- "auto" (default): "generated" when the schema allows it, otherwise "fastavro", with a warning logged.

Either way a record the schema cannot hold raises `RecordEncodingError` (a `ValueError`) naming the
schema, with the cause chained. The transform's output always fits, so this means a bug or a mismatch
between the transform and the registered schema.

Reading: `WireFormatDecoder(registry).decode(value) -> dict` reads the header, fetches the *writer* schema
of that id from the registry once (cached, like confluent-kafka's AvroDeserializer, which reads the same
bytes to the same values), and decodes the body with fastavro: `timestamp-millis` fields come back as
UTC datetimes. Anything that is not such a record raises `UndecodableRecord` (a `ValueError`, saying why);
a registry that cannot answer raises its own error: that is an outage, not bad data.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol

import fastavro
from confluent_kafka.schema_registry.error import SchemaRegistryError

from streaming.conversion.avro_codegen import (
    ENCODING_FAILURES,
    RecordEncodingError,
    UnsupportedSchemaError,
    generate_writer,
    record_does_not_fit,
)

log = logging.getLogger(__name__)

MAGIC_BYTE = 0
Mode = Literal["auto", "generated", "fastavro"]

HEADER_BYTES = 5

__all__ = [
    "RecordEncodingError",
    "UndecodableRecord",
    "UnsupportedSchemaError",
    "WireFormatDecoder",
    "WireFormatEncoder",
    "read_wire_header",
    "wire_header",
]


def wire_header(schema_id: int) -> bytes:
    """The 5-byte Confluent wire-format header of `schema_id`."""
    if not 0 <= schema_id < 1 << 31:
        raise ValueError(f"schema id {schema_id} is not a non-negative 32-bit integer")
    return bytes([MAGIC_BYTE]) + schema_id.to_bytes(4, "big")


class UndecodableRecord(ValueError):
    """A value that is not a Confluent wire-format Avro record of a schema the registry knows."""


def read_wire_header(value: bytes | None) -> tuple[int, bytes]:
    """The schema id and the Avro body of a wire-format value; `UndecodableRecord` if it has no header."""
    if value is None or len(value) < HEADER_BYTES or value[0] != MAGIC_BYTE:
        raise UndecodableRecord("not in Confluent wire format (magic byte 0 and a schema id)")
    return int.from_bytes(value[1:HEADER_BYTES], "big"), value[HEADER_BYTES:]


class WireFormatEncoder:
    """Encodes processed records for one registered schema; see the module docstring."""

    encode: Callable[[Mapping[str, Any]], bytes]
    """The wire-format bytes of a record; `RecordEncodingError` if the schema cannot hold it."""

    def __init__(self, schema_id: int, schema: Mapping[str, Any] | str, *, mode: Mode = "auto") -> None:
        if mode not in ("auto", "generated", "fastavro"):
            raise ValueError(f"mode must be 'auto', 'generated' or 'fastavro', not {mode!r}")
        self.schema_id = schema_id
        self.schema: dict[str, Any] = json.loads(schema) if isinstance(schema, str) else dict(schema)
        # Validates the schema whatever the mode, and is what the fastavro mode writes with.
        self.parsed_schema: dict[str, Any] = fastavro.parse_schema(self.schema)  # type: ignore[assignment]
        self.name: str = self.parsed_schema.get("name", "?")
        header = wire_header(schema_id)
        self.mode: Mode = "fastavro"
        if mode != "fastavro":
            try:
                self.encode = generate_writer(self.schema, prefix=header)
                self.mode = "generated"
            except UnsupportedSchemaError as error:
                if mode == "generated":
                    raise
                log.warning(
                    "schema %s (id %d): encoding with fastavro, about 3x slower: %s",
                    self.name,
                    schema_id,
                    error,
                )
        if self.mode == "fastavro":
            self.encode = _fastavro_writer(self.parsed_schema, header, self.name)

    def __repr__(self) -> str:
        return f"WireFormatEncoder(schema_id={self.schema_id}, schema={self.name!r}, mode={self.mode!r})"


def _fastavro_writer(parsed_schema: dict[str, Any], header: bytes, name: str) -> Callable[[Mapping[str, Any]], bytes]:
    def write_with_fastavro(record: Mapping[str, Any]) -> bytes:
        buffer = io.BytesIO()
        buffer.write(header)
        try:
            fastavro.schemaless_writer(buffer, parsed_schema, record)
        except ENCODING_FAILURES as error:
            raise record_does_not_fit(name, error) from error
        return buffer.getvalue()

    return write_with_fastavro


class SchemaLookup(Protocol):
    """What the decoder needs of a registry client (`confluent_kafka`'s `SchemaRegistryClient` has it)."""

    def get_schema(self, schema_id: int) -> Any: ...


class WireFormatDecoder:
    """Wire-format Avro -> dict, each writer schema fetched from the registry once; see the module docstring."""

    def __init__(self, registry: SchemaLookup) -> None:
        self._registry = registry
        self._schemas: dict[int, Any] = {}

    def decode(self, value: bytes | None) -> dict[str, Any]:
        schema_id, body = read_wire_header(value)
        schema = self._schemas[schema_id] if schema_id in self._schemas else self._fetch(schema_id)
        if schema is None:
            raise UndecodableRecord(f"schema id {schema_id} is unknown to the registry")
        try:
            record = fastavro.schemaless_reader(io.BytesIO(body), schema, None)
        except Exception as error:  # fastavro raises many kinds on corrupt input (EOFError, ValueError, ...)
            raise UndecodableRecord(f"not an Avro record of schema id {schema_id}: {error!r:.120}") from error
        if not isinstance(record, dict):
            raise UndecodableRecord(f"schema id {schema_id} is not a record schema")
        return record

    def _fetch(self, schema_id: int) -> Any:
        """The parsed writer schema, or None when the registry says the id does not exist (cached either way).

        Any other registry failure (unreachable, 5xx) raises: that is an outage, not bad data.
        """
        try:
            schema_str = self._registry.get_schema(schema_id).schema_str
        except SchemaRegistryError as error:
            if error.http_status_code != 404:
                raise
            schema_str = None
        parsed = fastavro.parse_schema(json.loads(schema_str)) if schema_str else None
        self._schemas[schema_id] = parsed
        return parsed
