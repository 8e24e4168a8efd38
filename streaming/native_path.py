"""The fused converter's batch form in native code: the `kdp_native` extension (Rust, `native/src/lib.rs`).

What it is: `streaming.fast_path`'s `convert_batch`, with its fast lane (JSON decode, the lane's checks, the
Avro body and the Confluent wire header) compiled. For each message the kernel either writes the record
itself or hands the message to the pure-Python fused `convert` (which hands anything unusual on to the
reference): it writes only the plainest message (ASCII JSON, only the seven known keys, each once,
strings without escapes) that passes every check of the pure lane, reading the same memo tables and
calling the same IP classifier; whatever it is unsure of it declines. So the native path gives the
pure path's `ConvertedBatch` exactly, message for message and byte for byte, and sends the same
messages to the reference: `tests/unit/test_native_path_properties.py` checks it, and the bodies
against fastavro.

The record's layout (field order, Avro types, enum symbols) is read here from the registered schema and
given to the kernel at start, so the bytes follow the schema the registry holds; a schema the kernel
cannot write (a type or field it does not know) keeps the pure path, with a warning.

Optional by design: `make install` builds the extension when a Rust toolchain is present (`native/`,
maturin, crates pinned by `native/Cargo.lock`); without it, or with `KDP_FAST_PATH=python`, the converter
uses the pure-Python fused path. Which one it uses is logged once per process.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from streaming import transform as _transform
from streaming.avro_codegen import UnsupportedSchemaError
from streaming.conversion import Convert, ConvertBatch, Converted, ConvertedBatch, SourceMessage
from streaming.encoding import WireFormatEncoder, wire_header
from streaming.ip_classes import V4_BY_FIRST_OCTET, classify, classify_ipv4

try:
    import kdp_native
except ImportError:  # not built (no Rust toolchain at install): the pure-Python path
    kdp_native = None

log = logging.getLogger(__name__)

#: The Avro type each field of the processed record may have for the kernel to write it, by field name.
_KINDS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("user_id", "device_type", "locale", "ip", "app_version", "source_topic"), ("string",)),
    "device_id": ("null|string", "string|null", "string"),
    **dict.fromkeys(
        ("ip_version", "app_version_major", "app_version_minor", "app_version_patch", "source_partition"),
        ("int", "long"),
    ),
    **dict.fromkeys(("event_time", "processed_at", "source_offset"), ("long",)),
    "ip_class": ("enum",),
}
_logged: set[str] = set()


def available() -> bool:
    """Whether the native kernel was built and installed."""
    return kdp_native is not None


def native_layout(schema: Mapping[str, Any]) -> list[tuple[str, str, list[str]]]:
    """(field name, kind, enum symbols) per field of the record `schema`, in order, as the kernel takes them.

    Raises `UnsupportedSchemaError` for a field the transform does not produce or a type the kernel does
    not write for it.
    """
    if schema.get("type") != "record" or not isinstance(schema.get("fields"), list):
        raise UnsupportedSchemaError("the native kernel needs a record schema at the top level")
    layout = []
    for field in schema["fields"]:
        name, avro_type = field.get("name"), field.get("type")
        symbols: list[str] = []
        if isinstance(avro_type, list):
            kind = "|".join(t if isinstance(t, str) else "?" for t in avro_type)
        elif isinstance(avro_type, dict) and avro_type.get("type") == "enum":
            kind, symbols = "enum", list(avro_type.get("symbols") or [])
        elif isinstance(avro_type, dict) and avro_type.get("logicalType") in (None, "timestamp-millis"):
            kind = str(avro_type.get("type"))
        else:
            kind = avro_type if isinstance(avro_type, str) else "?"
        if kind not in _KINDS.get(name, ()):
            raise UnsupportedSchemaError(f"field {name!r} of type {json.dumps(avro_type)}: not written natively")
        layout.append((name, kind, symbols))
    return layout


def native_batch(encoder: WireFormatEncoder, fallback: Convert) -> ConvertBatch:
    """The native `convert_batch` for `encoder`'s schema, handing what it declines to `fallback` (the pure
    fused `convert`). Raises `UnsupportedSchemaError` if the kernel is not installed or cannot write the
    schema."""
    if kdp_native is None:
        raise UnsupportedSchemaError("the native kernel (kdp_native) is not installed")
    kernel = kdp_native.Kernel(
        native_layout(encoder.schema),
        wire_header(encoder.schema_id),
        _transform.MAX_MESSAGE_BYTES,
        _transform.MIN_EVENT_TIME_MS,
        _transform.MAX_FUTURE_MS,
        sorted(_transform.REFERENCE.rules.inputs[3].params["codes"]),
        _transform.REFERENCE.rules.inputs[2].params["default"],
        # The transform's memo tables, read only, as the pure lane reads them (emptied, never replaced).
        _transform.REFERENCE.memos[_transform.REFERENCE.rules.inputs[2].name],
        _transform.REFERENCE.memos[_transform.REFERENCE.rules.inputs[5].name],
        list(V4_BY_FIRST_OCTET),
        classify_ipv4,
        classify,
        fallback,
        Converted,
    )
    columns = kernel.convert_batch
    new_tuple = tuple.__new__

    def convert_batch(messages: Sequence[SourceMessage], now_ms: int, oldest_ms: int) -> ConvertedBatch:
        return new_tuple(ConvertedBatch, columns(messages, now_ms, oldest_ms))  # type: ignore[no-any-return]

    convert_batch.kernel = kernel  # type: ignore[attr-defined]
    return convert_batch


def log_once(message: str, *args: object) -> None:
    """Log which path the converter uses, once per process and message."""
    if message not in _logged:
        _logged.add(message)
        log.info(message, *args)
