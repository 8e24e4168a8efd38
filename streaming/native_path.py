"""The fused converter's batch form in native code: the `kdp_native` extension (Rust, `native/src/lib.rs`).

What it is: the pure fast engine's `convert_batch` (`streaming.rules.codegen`), with its fast lane (JSON
decode, the lane's checks, the Avro body and the Confluent wire header) compiled. For each message the kernel
either writes the record itself or hands the message to the pure engine's lane (and, when that declines, to
the reference): it writes only the plainest message (ASCII JSON, only the declared input keys, each once,
strings without escapes) that passes every check of the pure lane, reading the same memo tables and calling
the same IP classifier; whatever it is unsure of it declines. So the native path gives the pure path's
`ConvertedBatch` exactly, message for message and byte for byte, and sends the same messages to the
reference: `tests/unit/test_native_path_properties.py` checks it, and the bodies against fastavro.

Driven by the declaration, within a fixed shape: the kernel implements the seven inputs of the login event by
rule kind (`SLOTS`: a required uuid, an optional uuid, a platform, a code, an ip, a semver, an event time),
under whatever keys the declaration gives them, and writes any field that takes one of their parts or a
processing fact, in the schema's order and Avro types. A declaration outside that shape (another input or
rule kind, say an added `text` input) is refused when the converter is built, with `UnsupportedRulesError`
naming the field and this engine: the converter does not start (`KDP_FAST_PATH=python` runs the pure engine,
which implements every kind). It never quietly steps aside.

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

from streaming.conversion import Convert, ConvertBatch, Converted, ConvertedBatch, Lanes, SourceMessage
from streaming.encoding import WireFormatEncoder, wire_header
from streaming.ip_classes import V4_BY_FIRST_OCTET, classify, classify_ipv4
from streaming.rules.declaration import Field, Rules, UnsupportedRulesError
from streaming.rules.kinds import MAX_FUTURE_MS, MIN_EVENT_TIME_MS
from streaming.rules.reference import MAX_MESSAGE_BYTES, Reference

try:
    import kdp_native
except ImportError:  # not built (no Rust toolchain at install): the pure-Python path
    kdp_native = None

log = logging.getLogger(__name__)

#: The inputs the kernel implements, by (rule kind, required), in the order of its `Event`'s fields; and the
#: name of each one's source in `native/src/lib.rs` (`source_named`).
SLOTS: tuple[tuple[str, bool], ...] = (
    ("uuid", True),
    ("uuid", False),
    ("platform", False),
    ("code", True),
    ("ip", True),
    ("semver", True),
    ("event_time", True),
)
_SLOT_SOURCES = ("uuid", "uuid?", "platform", "code", "ip", "semver", "event_time")
#: The Avro shapes the kernel writes.
_WRITES = ("string", "null|string", "string|null", "int", "long", "enum")
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


def native_slots(rules: Rules) -> list[int]:
    """The kernel's slot of each input, in declaration order; `UnsupportedRulesError` outside its shape."""
    slots: list[int] = []
    for spec in rules.inputs:
        wanted = (spec.kind.name, spec.required)
        free = [n for n, slot in enumerate(SLOTS) if slot == wanted and n not in slots]
        if not free:
            field = next((f for f in rules.fields if f.input is spec), None)
            raise _refuse(rules, field, f"input {spec.name!r} (rule kind {spec.kind.name!r}) is not one it implements")
        slots.append(free[0])
    if len(slots) != len(SLOTS):
        raise _refuse(rules, None, f"it needs exactly the inputs {SLOTS}")
    return slots


def native_layout(rules: Rules) -> list[tuple[str, str, list[str]]]:
    """(source, kind, enum symbols) per field of the schema, in order, as the kernel takes them."""
    slots = native_slots(rules)
    layout = []
    for field in rules.fields:
        if field.input is None:
            source = f"context.{field.context}"
        else:
            base = _SLOT_SOURCES[slots[rules.inputs.index(field.input)]]
            source = f"{base}.{field.part}" if len(field.input.kind.parts) > 1 or base == "event_time" else base
        avro_type, symbols = field.avro_type, []
        if isinstance(avro_type, list):
            kind = "|".join(t if isinstance(t, str) else "?" for t in avro_type)
        elif isinstance(avro_type, dict) and avro_type.get("type") == "enum":
            kind, symbols = "enum", list(avro_type.get("symbols") or [])
        elif isinstance(avro_type, dict):
            kind = str(avro_type.get("type"))
        else:
            kind = str(avro_type)
        if kind not in _WRITES:
            raise _refuse(rules, field, f"Avro type {json.dumps(avro_type)} is not one it writes")
        layout.append((source, kind, symbols))
    by_slot = {slots[n]: spec for n, spec in enumerate(rules.inputs)}
    for role, slot in ((rules.key, 0), (rules.tallies[0], 2), (rules.tallies[1], 3)):
        if role.input is not by_slot[slot]:
            raise _refuse(rules, role, "the key and the tallies must be the required uuid, the platform and the code")
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
    by_slot = {slot: spec for spec, slot in zip(rules.inputs, native_slots(rules), strict=True)}
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

    kernel = kdp_native.Kernel(
        layout,
        [by_slot[slot].name for slot in range(len(SLOTS))],
        wire_header(encoder.schema_id),
        MAX_MESSAGE_BYTES,
        MIN_EVENT_TIME_MS,
        MAX_FUTURE_MS,
        sorted(by_slot[3].params["codes"]),
        by_slot[2].params["default"],
        # The reference's memo tables, read only, as the pure lane reads them (emptied, never replaced).
        reference.memos[by_slot[2].name],
        reference.memos[by_slot[5].name],
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
