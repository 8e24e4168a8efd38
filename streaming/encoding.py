"""Processed records -> Confluent wire format: magic byte 0, the schema id (4 bytes, big-endian), Avro body.

`WireFormatEncoder(schema_id, schema)` is built once at start from the schema the registry holds under
that id (`streaming.schema_registry.ensure_value_schema` returns both), so what is written always matches
what readers will look up. Its `encode(record) -> bytes` is on the hot path: it *is* the writer generated
for the schema by `streaming.avro_codegen`, with the 5-byte header folded in, so a call costs nothing more.

Modes:
- "generated": the generated writer; raises `UnsupportedSchemaError` at construction if the schema uses
  a type it does not implement.
- "fastavro": `fastavro.schemaless_writer`, for any schema; about three times slower.
- "auto" (default): "generated" when the schema allows it, otherwise "fastavro", with a warning logged.

Either way a record the schema cannot hold raises `RecordEncodingError` (a `ValueError`) naming the
schema, with the cause chained. The transform's output always fits, so this means a bug or a mismatch
between the transform and the registered schema.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal

import fastavro

from streaming.avro_codegen import (
    ENCODING_FAILURES,
    RecordEncodingError,
    UnsupportedSchemaError,
    generate_writer,
    record_does_not_fit,
)

log = logging.getLogger(__name__)

MAGIC_BYTE = 0
Mode = Literal["auto", "generated", "fastavro"]

__all__ = ["RecordEncodingError", "UnsupportedSchemaError", "WireFormatEncoder", "wire_header"]


def wire_header(schema_id: int) -> bytes:
    """The 5-byte Confluent wire-format header of `schema_id`."""
    if not 0 <= schema_id < 1 << 31:
        raise ValueError(f"schema id {schema_id} is not a non-negative 32-bit integer")
    return bytes([MAGIC_BYTE]) + schema_id.to_bytes(4, "big")


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
