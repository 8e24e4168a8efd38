"""The converter's per-record function (`streaming.conversion.Convert`): the transform and the encoder fused.

Two implementations give one answer:

- `streaming.conversion.reference_converter(encoder)`: `streaming.transform.transform`, then
  `encoder.encode`; a record the schema cannot hold becomes `Rejection(Reason.ENCODING_FAILED)`. It is
  the definition.
- `fused_converter(encoder)`: one function generated at start from the encoder's (registered) schema. It
  decodes the JSON, checks the fields and writes the Avro body in straight-line code, with no processed
  `dict` in between and no call per field, for the usual message only: ASCII, every field of its JSON
  type, a lower-case user/device UUID, a state code already upper case, a device type and an app version
  already seen (the transform's memo tables), a timestamp given as an integer or a string of digits, an
  event time inside the acceptance window. Anything else, every rejection included, is handed whole to
  the reference, so the dead-letter path stays off the fast path and can never disagree with it. The
  fast lane only ever returns what the reference would: the property tests in
  `tests/unit/test_fast_path_properties.py` check it, byte for byte, and check the bodies against fastavro.

The same checks and encoding are generated twice: as `convert` (one message, the `Convert` contract) and
as `convert_batch` (the batch form, `streaming.conversion.ConvertBatch`, attached to `convert` as its
`convert_batch` attribute), which the router calls once per batch: one loop over the consumed messages,
each accessor called once, the fields constant over a run of one partition (`processed_at`,
`source_topic`, `source_partition`) encoded once per run, each record appended to the batch's columns
rather than returned in a tuple. What one message costs in it, stage by stage: `python -m bench.hot_path`.

`converter_for(encoder)` is what the converter uses: the fused function when the schema allows it,
otherwise (a schema field the transform does not produce, or a type the generated writer does not
implement) the reference, with a warning. Its batch form is the native kernel's when that is installed
(`streaming.native_path`: the same fast lane compiled, declining to this module's `convert` whatever it
is unsure of), unless `KDP_FAST_PATH=python` asks for the pure path.

Why generated: the Avro part is `streaming.avro_codegen.record_parts` over the schema the registry holds,
so a schema change changes the code, never silently the bytes. Only the checks (the transform's rules)
are written here, in `_TEMPLATE`. `bench/hot_path.py` measures both, step by step.
"""

from __future__ import annotations

import logging
import re
import socket
import textwrap
from typing import Any

from streaming import native_path
from streaming import transform as _transform
from streaming.avro_codegen import HELPERS, RecordParts, UnsupportedSchemaError, record_parts
from streaming.conversion import Convert, Converted, ConvertedBatch, reference_converter
from streaming.encoding import WireFormatEncoder, wire_header
from streaming.ip_classes import V4_BY_FIRST_OCTET, classify, classify_ipv4

log = logging.getLogger(__name__)

#: A user id and a device id, both already lower case, in one match (cheaper than two).
_TWO_LOWER_UUIDS = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}" * 2).fullmatch

#: The local variable holding each field of the processed record in `_TEMPLATE` (the transform's record
#: has exactly these fields; a schema field not listed here cannot be fused).
FIELD_LOCALS: dict[str, str] = {
    "user_id": "user_id",
    "device_id": "device_id",
    "device_type": "device_type",
    "locale": "locale",
    "ip": "ip",
    "ip_version": "ip_version",
    "ip_class": "ip_class",
    "app_version": "app_version",
    "app_version_major": "major",
    "app_version_minor": "minor",
    "app_version_patch": "patch",
    "event_time": "event_time",
    "processed_at": "now_ms",
    "source_topic": "topic",
    "source_partition": "partition",
    "source_offset": "offset",
}

#: Locals whose values few messages differ in, by the key that determines them. Consecutive schema fields
#: whose locals share a key are written once per distinct key and memoised as bytes: a batch's
#: `processed_at`/`source_topic`/`source_partition`, an app version with its three numbers, a device
#: type, a state, an event time (events carry whole epoch seconds: a stream's messages share a few thousand
#: a second; a stream of distinct milliseconds would pay a miss, about 0.2 µs, on each). (A key must determine
#: every local it is given for: that is what makes the memo exact.)
MEMO_KEYS: dict[str, str] = {
    "device_type": "device_type",
    "locale": "locale",
    "app_version": "app_version",
    "major": "app_version",
    "minor": "app_version",
    "patch": "app_version",
    "event_time": "event_time",
    "now_ms": "(now_ms, topic, partition)",
    "topic": "(now_ms, topic, partition)",
    "partition": "(now_ms, topic, partition)",
}

# The usual message, checked as `transform` checks it: each test below is one the transform makes on its
# own fast path, in a form that can only pass when the transform would accept the value unchanged. Where it
# passes, `{accept}` runs with `body` the record's wire-format bytes; every other message falls through
# to the reference. `{parts}` is replaced by the generated encoding.
_USUAL = """\
if type(value) is bytes and len(value) <= MAX_MESSAGE_BYTES and value.isascii():
    e = decode_event(value)
    user_id = e.user_id
    device_id = e.device_id
    locale = e.locale
    timestamp = e.timestamp
    if type(timestamp) is not int:  # digits in a string (ASCII: the whole message is), or none
        digits = type(timestamp) is str and timestamp.isdigit() and len(timestamp) <= MAX_TIMESTAMP_DIGITS
        timestamp = int(timestamp) if digits else -1
    if (
        (LOWER_UUID(user_id) if device_id is None else len(user_id) == 36 and TWO_IDS(user_id + device_id))
        and locale in US_LOCALES
    ):
        device_type = e.device_type
        device_type = UNKNOWN_DEVICE_TYPE if device_type is None else DEVICE_TYPES.get(device_type)
        app_version = e.app_version
        version = APP_VERSIONS.get(app_version)
        ip = e.ip
        if ":" in ip:  # IPv6; not an address: None, which cannot be unpacked, and the reference decides
            ip, ip_version, ip_class = classify_ip(ip)
        else:  # IPv4 as `classify` does it; not an address: OSError, and the reference decides
            ip_version = 4
            packed = inet_pton(AF_INET, ip)
            ip_class = V4_BY_FIRST_OCTET[packed[0]] or classify_ipv4(packed)
        event_time = timestamp * 1000
        if not MIN_EVENT_TIME_MS <= event_time <= latest:
            event_time = timestamp  # epoch milliseconds, if that is in the window
        if device_type and version and MIN_EVENT_TIME_MS <= event_time <= latest and event_time >= oldest_ms:
            major, minor, patch = version
            body = b"".join((
                PREFIX,
{parts}
            ))
            {accept}
"""

# One message: the `streaming.conversion.Convert` contract.
_CONVERT = """\
def convert(value, topic, partition, offset, now_ms, oldest_ms):
    # generated from record {schema_name} by streaming/fast_path.py; the caller passes ints and a str
    try:
        latest = now_ms + MAX_FUTURE_MS
{usual}
    except Exception:
        pass  # anything unusual, including a value the schema cannot hold: the reference decides
    return reference(value, topic, partition, offset, now_ms, oldest_ms)
"""

# A whole batch: the `streaming.conversion.ConvertBatch` contract. The message's accessors are called once
# each, the fields that are constant over a run of messages of one partition are encoded once per run, and
# a record is appended to the batch's columns instead of returned in a tuple per message.
_CONVERT_BATCH = """\
def convert_batch(messages, now_ms, oldest_ms):
    # generated from record {schema_name} by streaming/fast_path.py
    values, keys, device_types, locales, rejected, run_starts, run_ends = [], [], [], [], [], [], []
    add_value, add_key, add_device_type, add_locale = values.append, keys.append, device_types.append, locales.append
    latest = now_ms + MAX_FUTURE_MS
    run_topic = run_partition = previous = None
    bytes_in = 0
    for message in messages:
        value = message.value()
        topic = message.topic()
        partition = message.partition()
        offset = message.offset()
        if partition != run_partition or topic != run_topic:  # a new run of one partition
            if previous is not None:
                run_ends.append(previous)
            run_starts.append(message)
            run_topic, run_partition = topic, partition
{run_constants}
        previous = message
        try:
{usual}
        except Exception:
            pass  # anything unusual, including a value the schema cannot hold: the reference decides
        if value is not None:
            bytes_in += len(value)
        result = reference(value, topic, partition, offset, now_ms, oldest_ms)
        if type(result) is Converted:
            add_value(result[0])
            add_key(result[1])
            add_device_type(result[2])
            add_locale(result[3])
        else:
            rejected.append((message, result))
    if previous is not None:
        run_ends.append(previous)
    return new_tuple(ConvertedBatch, (values, keys, device_types, locales, rejected, run_starts, run_ends, bytes_in))
"""

_ACCEPT_ONE = "return new_tuple(Converted, (body, user_id.encode(), device_type, locale))"
_ACCEPT_IN_BATCH = "\n".join(
    (
        "bytes_in += len(value)",
        "add_value(body)",
        "add_key(user_id.encode())",
        "add_device_type(device_type)",
        "add_locale(locale)",
        "continue",
    )
).replace("\n", "\n" + " " * 12)

#: The locals that are constant over a run of one partition in a batch: a memo key made of these only is
#: encoded once per run by `convert_batch`.
RUN_CONSTANT_LOCALS = frozenset({"now_ms", "topic", "partition"})


def fused_source(encoder: WireFormatEncoder) -> tuple[str, dict[str, Any]]:
    """The source of the fused `convert` for `encoder`'s schema, and the names it uses.

    Raises `UnsupportedSchemaError` if the schema has a field the transform does not produce or a type the
    generated writer does not implement.
    """

    def local_of(field_name: str) -> str:
        if field_name not in FIELD_LOCALS:
            raise UnsupportedSchemaError(f"field {field_name!r} is not one the transform produces")
        return FIELD_LOCALS[field_name]

    encoding = record_parts(encoder.schema, local_of, wire_header(encoder.schema_id))
    memos: dict[str, Any] = {}
    parts, batch_parts, run_constants = [], [], []
    for key, fields in _runs_by_memo_key(encoding):
        field_parts = [part for index in fields for part in encoding.field_parts[index]]
        if key is None:
            parts.extend(field_parts)
            batch_parts.extend(field_parts)
            continue
        memo = f"MEMO{len(memos) + 1}"
        memos[memo] = {}
        fresh = 'b"".join((' + ", ".join(field_parts) + ",))"
        lookup, name = (key, key) if key.isidentifier() else (f"(k{len(memos)} := {key})", f"k{len(memos)}")
        parts.append(f"{memo}.get({lookup}) or remember({memo}, {name}, {fresh})")
        if set(re.findall(r"[A-Za-z_]\w*", key)) <= RUN_CONSTANT_LOCALS:  # once per run in a batch
            run_constants += [  # a run the schema cannot hold (a partition out of range): RUNn None, which
                "try:",  # cannot be joined, so each of its messages goes to the reference
                f"    RUN{len(memos)} = {parts[-1]}",
                "except Exception:",
                f"    RUN{len(memos)} = None",
            ]
            batch_parts.append(f"RUN{len(memos)}")
        else:
            batch_parts.append(parts[-1])

    def usual(parts: list[str], accept: str, indent: int) -> str:
        block = _USUAL.replace("{parts}", "\n".join(f"{' ' * 16}{part}," for part in parts))
        return textwrap.indent(block.replace("{accept}", accept), " " * indent)

    schema_name = repr(encoding.full_name)
    source = (
        _CONVERT.replace("{usual}", usual(parts, _ACCEPT_ONE, 8))
        + "\n\n"
        + _CONVERT_BATCH.replace("{usual}", usual(batch_parts, _ACCEPT_IN_BATCH, 12)).replace(
            "{run_constants}", "\n".join(f"{' ' * 12}{line}" for line in run_constants) or " " * 12 + "pass"
        )
    )
    source = source.replace("{schema_name}", schema_name)
    names: dict[str, Any] = {
        **HELPERS,
        **encoding.constants,
        **memos,
        "remember": _transform._remember,
        "TWO_IDS": _TWO_LOWER_UUIDS,
        "MAX_MESSAGE_BYTES": _transform.MAX_MESSAGE_BYTES,
        "MIN_EVENT_TIME_MS": _transform.MIN_EVENT_TIME_MS,
        "MAX_FUTURE_MS": _transform.MAX_FUTURE_MS,
        "US_LOCALES": _transform.US_LOCALES,
        "UNKNOWN_DEVICE_TYPE": _transform.UNKNOWN_DEVICE_TYPE,
        "decode_event": _transform._decode_event,
        "LOWER_UUID": _transform._LOWER_UUID,
        # The transform's memo tables, read only: the first sight of a value goes the reference way,
        # which fills them. A table is emptied when full, never replaced, so these stay the same objects.
        "DEVICE_TYPES": _transform._device_types,
        "APP_VERSIONS": _transform._app_versions,
        "classify_ip": classify,
        "classify_ipv4": classify_ipv4,
        "inet_pton": socket.inet_pton,
        "AF_INET": socket.AF_INET,
        "V4_BY_FIRST_OCTET": V4_BY_FIRST_OCTET,
        "Converted": Converted,
        "ConvertedBatch": ConvertedBatch,
        "new_tuple": tuple.__new__,
        "reference": reference_converter(encoder),
        "MAX_TIMESTAMP_DIGITS": _transform._MAX_TIMESTAMP_DIGITS,
    }
    return source, names


def _runs_by_memo_key(encoding: RecordParts) -> list[tuple[str | None, list[int]]]:
    """The schema's fields (by index) in runs of consecutive fields memoised under one key (None: not)."""
    runs: list[tuple[str | None, list[int]]] = []
    for index, field_name in enumerate(encoding.fields):
        key = MEMO_KEYS.get(FIELD_LOCALS[field_name])
        if runs and key is not None and runs[-1][0] == key:
            runs[-1][1].append(index)
        else:
            runs.append((key, [index]))
    return runs


def fused_converter(encoder: WireFormatEncoder) -> Convert:
    """The generated `convert` for `encoder`'s schema; `UnsupportedSchemaError` if it cannot be fused."""
    if encoder.mode != "generated":
        raise UnsupportedSchemaError(f"{encoder!r}: the generated writer does not implement this schema")
    source, names = fused_source(encoder)
    exec(compile(source, "<generated converter>", "exec"), names)  # noqa: S102 - our own generated code
    convert: Convert = names["convert"]
    convert.__doc__ = "Generated by streaming/fast_path.py; see its docstring.\n\n" + source
    convert.convert_batch = names["convert_batch"]  # type: ignore[attr-defined]  # see conversion.batch_form
    return convert


def converter_for(encoder: WireFormatEncoder, native: bool = True) -> Convert:
    """The fused converter for `encoder`'s schema when it can be built, otherwise the reference.

    `native`: give it the native batch form (`streaming.native_path`) when the kernel is installed and can
    write the schema; False (`KDP_FAST_PATH=python`) keeps the pure-Python `convert_batch`. Which path is
    used is logged once.
    """
    try:
        convert = fused_converter(encoder)
    except UnsupportedSchemaError as error:
        log.warning("schema %s: converting by the reference path, slower (bench/hot_path.py): %s", encoder.name, error)
        return reference_converter(encoder)
    if not native:
        native_path.log_once("converter fast path: pure Python (KDP_FAST_PATH=python)")
        return convert
    try:
        convert.convert_batch = native_path.native_batch(encoder, convert)  # type: ignore[attr-defined]
    except UnsupportedSchemaError as error:
        native_path.log_once("converter fast path: pure Python, not native: %s", error)
        return convert
    native_path.log_once("converter fast path: native (kdp_native)")
    return convert
