"""The fused converter's batch form in native code: the `kdp_native` extension (Rust, `native/src/lib.rs`).

What it is: the pure fast engine's `convert_batch` (`streaming.conversion.rules.codegen`), with its fast lane (JSON
decode, the lane's checks, the Avro body and the Confluent wire header) compiled. For each message the kernel
either writes the record itself or hands the message to the pure engine's lane (and, when that declines, to
the reference): it writes only the plainest message (ASCII JSON, only the declared input keys, each once,
strings without escapes) that passes every check of the pure lane, reading the same memo tables and calling
the same IP classifier; whatever it is unsure of it declines. So the native path gives the pure path's
`ConvertedBatch` exactly, message for message and byte for byte, and sends the same messages to the
reference: `tests/unit/test_native_path_properties.py` checks it, and the bodies against fastavro.

Driven by the declaration: the kernel interprets it. Each input is checked by its rule kind (the kernel
implements every kind of `streaming.conversion.rules.kinds`: `NATIVE_KINDS`), under whatever key the declaration gives
it, and each field of the schema takes one part of one input or a processing fact, written by its Avro type
(`string`, `int`, `long`, an enum, or a union of null and one of those). A declaration or schema outside that
(a rule kind added to the vocabulary but not to the kernel, another Avro type) is refused when the converter is
built, with `UnsupportedRulesError` naming the field and this engine: the converter does not start
(`KDP_FAST_PATH=python` runs the pure engine instead). It never quietly steps aside.

Optional by design: `make install` builds the extension when a Rust toolchain is present (`native/`,
maturin, crates pinned by `native/Cargo.lock`); without it, or with `KDP_FAST_PATH=python`, the converter
uses the pure-Python engine. Which one it uses is logged once per process, and counted per message
(`ConvertedBatch.lanes`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from streaming.conversion.convert import Convert, ConvertBatch, Converted, ConvertedBatch, Lanes, SourceMessage
from streaming.conversion.encoding import WireFormatEncoder, wire_header
from streaming.conversion.ip_classes import V4_BY_FIRST_OCTET, classify, classify_ipv4
from streaming.conversion.rules.declaration import Field, Rules, UnsupportedRulesError
from streaming.conversion.rules.kinds import MAX_FUTURE_MS, MIN_EVENT_TIME_MS
from streaming.conversion.rules.reference import MAX_MESSAGE_BYTES, Reference

try:
    import kdp_native
except ImportError:  # not built (no Rust toolchain at install): the pure-Python path
    kdp_native = None

log = logging.getLogger(__name__)

#: The rule kinds the kernel implements (`native/src/lib.rs`, `rule_named`).
NATIVE_KINDS = frozenset({"uuid", "platform", "code", "ip_address", "semver", "epoch_time", "text"})
#: The Avro types it writes, and how a union with null is told to it.
_BASES = ("string", "int", "long", "enum")
#: The most inputs it takes (`MAX_INPUTS`).
MAX_INPUTS = 32
ENGINE = "the native engine (kdp_native)"
_logged: set[str] = set()


def available() -> bool:
    """Whether the native kernel was built and installed."""
    return kdp_native is not None


def _refuse(rules: Rules, field: Field | None, why: str) -> UnsupportedRulesError:
    where = f"field {field.name!r}" if field is not None else "the declaration"
    return UnsupportedRulesError(
        f"{rules.source}: {ENGINE} cannot run {where}: {why} (KDP_FAST_PATH=python runs the pure engine instead)"
    )


def native_layout(rules: Rules) -> list[tuple[int, str, str, list[str]]]:
    """(input index or -1, part, kind, enum symbols) per field of the schema, in order, as the kernel takes them.

    Raises `UnsupportedRulesError` naming the field for a rule kind or an Avro type the kernel does not implement.
    """
    for field in rules.fields:
        if field.input is not None and field.input.kind.name not in NATIVE_KINDS:
            raise _refuse(rules, field, f"rule kind {field.input.kind.name!r} is not one it implements")
    if len(rules.inputs) > MAX_INPUTS:
        raise _refuse(rules, None, f"it takes at most {MAX_INPUTS} inputs, not {len(rules.inputs)}")
    layout = []
    for field in rules.fields:
        if field.input is None:
            index, part = -1, str(field.context)
        else:
            index = rules.inputs.index(field.input)
            part = "value" if field.part == field.input.kind.default_part else str(field.part)
        avro_type, symbols, null = field.avro_type, [], ""
        if isinstance(avro_type, list) and len(avro_type) == 2 and "null" in avro_type:
            null = "null|" if avro_type[0] == "null" else "|null"
            avro_type = avro_type[1] if avro_type[0] == "null" else avro_type[0]
        if isinstance(avro_type, dict) and avro_type.get("type") == "enum":
            base, symbols = "enum", list(avro_type.get("symbols") or [])
        elif isinstance(avro_type, dict):
            base = str(avro_type.get("type"))
        else:
            base = str(avro_type)
        if base not in _BASES:
            raise _refuse(rules, field, f"Avro type {json.dumps(field.avro_type)} is not one it writes")
        kind = f"null|{base}" if null == "null|" else f"{base}|null" if null else base
        layout.append((index, part, kind, symbols))
    return layout


def native_batch(encoder: WireFormatEncoder, reference: Reference, fused: Convert) -> ConvertBatch:
    """The native `convert_batch` for `encoder`'s schema and `reference`'s rules, handing what it declines to
    the pure engine's lane (`fused.usual`), then to the reference (`fused.reference`).

    Raises `UnsupportedRulesError` if the kernel is not installed or cannot run the declaration.
    """
    if kdp_native is None:
        raise UnsupportedRulesError(f"{ENGINE} is not installed")
    rules = reference.rules
    layout = native_layout(rules)
    usual: Convert = fused.usual  # type: ignore[attr-defined]
    to_reference: Convert = fused.reference  # type: ignore[attr-defined]
    declined = [0, 0]  # messages handed over in this batch: taken by the pure lane, by the reference

    def fallback(
        value: bytes | None, topic: str, partition: int, offset: int, now_ms: int, oldest_ms: int
    ) -> Converted | Any:
        result = usual(value, topic, partition, offset, now_ms, oldest_ms)
        if result is None:
            declined[1] += 1
            return to_reference(value, topic, partition, offset, now_ms, oldest_ms)
        declined[0] += 1
        return result

    inputs = [
        (
            spec.name,
            spec.kind.name,
            spec.required,
            spec.params.get("default"),
            reference.memos.get(spec.name),  # the reference's memo tables, read only, as the pure lane reads them
            sorted(spec.params.get("codes", ())),
        )
        for spec in rules.inputs
    ]
    fields = list(rules.fields)
    kernel = kdp_native.Kernel(
        inputs,
        layout,
        fields.index(rules.key),
        (fields.index(rules.tallies[0]), fields.index(rules.tallies[1])),
        wire_header(encoder.schema_id),
        MAX_MESSAGE_BYTES,
        MIN_EVENT_TIME_MS,
        MAX_FUTURE_MS,
        list(V4_BY_FIRST_OCTET),
        classify_ipv4,
        classify,
        fallback,
        Converted,
    )
    columns = kernel.convert_batch
    new_tuple = tuple.__new__

    def convert_batch(messages: Sequence[SourceMessage], now_ms: int, oldest_ms: int) -> ConvertedBatch:
        declined[0] = declined[1] = 0
        converted = columns(messages, now_ms, oldest_ms)
        fast, slow = declined
        lanes = new_tuple(Lanes, (len(messages) - fast - slow, fast, slow))
        return new_tuple(ConvertedBatch, (*converted, lanes))  # type: ignore[no-any-return]

    convert_batch.kernel = kernel  # type: ignore[attr-defined]
    return convert_batch


def log_once(message: str, *args: object) -> None:
    """Log which path the converter uses, once per process and message."""
    if message not in _logged:
        _logged.add(message)
        log.info(message, *args)
