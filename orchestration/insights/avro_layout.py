"""Where the insights' fields are in a processed record's Avro body, from its writer schema. Pure.

The insights read seven fields of a processed record (`FIELDS`); decoding the whole record into a dict to
get them cost most of an hour's CPU. An Avro body is the writer schema's fields in order, with no field
names or offsets, so reaching a field means stepping over the ones before it, which their types say how to
do. `compile_layout(schema)` turns a writer schema into a `RecordLayout`, once per schema id: per top-level
field, the slot it fills (or `SKIP`) and a *type program*, a flat list of ints that both `read_fields` below
and the native kernel (`native/src/insights.rs`) interpret:

    NULL | BOOLEAN | LONG (int, long, and every logical type on them but timestamp-millis) | FLOAT | DOUBLE
    | STRING | BYTES | FIXED size | ENUM symbols | UNION branches, each branch's program
    | RECORD fields, each field's program | ARRAY item-program | MAP value-program | TIMESTAMP_MILLIS

Field positions are never assumed: a schema version that adds, drops or reorders fields gets its own layout.

What counts as undecodable is what the full decode (`streaming.conversion.encoding.WireFormatDecoder`) refused: a value
that is not wire format, a schema id the registry does not know, a body that ends early, a string that is
not UTF-8, an enum or union index out of range, a `timestamp-millis` that is no datetime (outside years
1-9999), and a record without `event_time` or `processed_at`. So every field is stepped over, also those
after the last one the insights use; bytes after the record are ignored, as fastavro ignores them. Not
checked: the ranges of logical types
other than `timestamp-millis` (a `date` in year 10000), and an array or map announcing more items than its
body has bytes is undecodable (fastavro would try to build it). A writer schema in which a needed field has
a type the insights do not read (not a string or null-or-string for the text fields, not a long for the
times) has no layout: its records are counted undecodable, so the consistency check says so.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka.schema_registry.error import SchemaRegistryError

from streaming.conversion.encoding import SchemaLookup

NULL, BOOLEAN, LONG, FLOAT, DOUBLE, STRING, BYTES, FIXED, ENUM, UNION, RECORD, ARRAY, MAP, TIMESTAMP_MILLIS = range(14)

FIELDS = ("user_id", "device_id", "device_type", "locale", "app_version", "event_time", "processed_at")
"""The fields the insights read, in slot order: `read_fields` answers their values in this order."""
USER_ID, DEVICE_ID, DEVICE_TYPE, LOCALE, APP_VERSION, EVENT_TIME, PROCESSED_AT = range(len(FIELDS))
TEXT_SLOTS = range(USER_ID, APP_VERSION + 1)
TIME_SLOTS = (EVENT_TIME, PROCESSED_AT)
SKIP = -1
_U64 = (1 << 64) - 1

MIN_DATETIME_MS = -62_135_596_800_000
"""0001-01-01T00:00:00Z: the earliest `timestamp-millis` a Python datetime holds."""
MAX_DATETIME_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: the latest."""

_PRIMITIVES = {
    "null": [NULL],
    "boolean": [BOOLEAN],
    "int": [LONG],
    "long": [LONG],
    "float": [FLOAT],
    "double": [DOUBLE],
    "string": [STRING],
    "bytes": [BYTES],
}


class UnsupportedLayout(ValueError):
    """A writer schema the insights cannot read their fields from (the message says which field and why)."""


class UndecodableBody(ValueError):
    """An Avro body that does not hold a record of its layout's schema."""


@dataclass(frozen=True)
class RecordLayout:
    """Per top-level field of a writer schema, up to the last one the insights read: (slot or SKIP, program)."""

    fields: tuple[tuple[int, tuple[int, ...]], ...]


def compile_layout(schema: Mapping[str, Any] | str) -> RecordLayout:
    """The layout of a record writer schema (parsed JSON or its text); `UnsupportedLayout` if it has none."""
    parsed = json.loads(schema) if isinstance(schema, str) else schema
    if not isinstance(parsed, Mapping) or parsed.get("type") != "record":
        raise UnsupportedLayout("the writer schema is not a record")
    named: dict[str, list[int]] = {}
    namespace = parsed.get("namespace", "")
    _register(named, parsed, namespace)
    fields = parsed.get("fields", [])
    wanted = {name: slot for slot, name in enumerate(FIELDS)}
    for name in ("event_time", "processed_at"):
        if not any(f.get("name") == name for f in fields):
            raise UnsupportedLayout(f"the writer schema has no field {name!r}")
    steps = []
    for f in fields:
        program = _program(f["type"], named, namespace)
        slot = wanted.get(f["name"], SKIP)
        if slot != SKIP:
            _check_readable(f["name"], slot, program)
        steps.append((slot, tuple(program)))
    return RecordLayout(tuple(steps))


def _full_name(name: str, namespace: str) -> str:
    return name if "." in name or not namespace else f"{namespace}.{name}"


def _register(named: dict[str, list[int]], schema: Mapping[str, Any], namespace: str) -> str:
    """Reserve a named type's name before its body is compiled, so a recursive type is caught, not looped on."""
    name = _full_name(schema["name"], schema.get("namespace", namespace))
    named[name] = []
    return name


def _program(schema: Any, named: dict[str, list[int]], namespace: str) -> list[int]:
    if isinstance(schema, str):
        if schema in _PRIMITIVES:
            return list(_PRIMITIVES[schema])
        program = named.get(_full_name(schema, namespace), named.get(schema))
        if not program:
            raise UnsupportedLayout(f"type {schema!r} is unknown or recursive")
        return list(program)
    if isinstance(schema, list):
        program = [UNION, len(schema)]
        for branch in schema:
            program += _program(branch, named, namespace)
        return program
    kind = schema.get("type")
    if kind == "long" and schema.get("logicalType") == "timestamp-millis":
        return [TIMESTAMP_MILLIS]
    if kind == "array":
        return [ARRAY, *_program(schema["items"], named, namespace)]
    if kind == "map":
        return [MAP, *_program(schema["values"], named, namespace)]
    if kind not in ("record", "enum", "fixed"):
        return _program(kind, named, namespace)  # a primitive with attributes, or a nested type
    inner_namespace = schema["name"].rpartition(".")[0] or schema.get("namespace", namespace)
    name = _register(named, schema, namespace)
    if kind == "enum":
        program = [ENUM, len(schema["symbols"])]
    elif kind == "fixed":
        program = [FIXED, int(schema["size"])]
    elif kind == "record":
        program = [RECORD, len(schema["fields"])]
        for f in schema["fields"]:
            program += _program(f["type"], named, inner_namespace)
    else:
        raise UnsupportedLayout(f"unknown Avro type {kind!r}")
    named[name] = program
    return list(program)


def _check_readable(name: str, slot: int, program: list[int]) -> None:
    if slot in TIME_SLOTS:
        if program not in ([LONG], [TIMESTAMP_MILLIS]):
            raise UnsupportedLayout(f"field {name!r} is not a long or a timestamp-millis")
    elif program != [STRING] and not (
        program[0] == UNION and len(program) == 2 + program[1] and set(program[2:]) <= {NULL, STRING}
    ):
        raise UnsupportedLayout(f"field {name!r} is not a string or a union of null and string")


def _varint(body: bytes, at: int) -> tuple[int, int]:
    """A zigzag-encoded long at `at`, and where the next value starts. Bits beyond 64 in a tenth byte are
    dropped, as fastavro's reader (and the native kernel) drop them."""
    shift = result = 0
    while True:
        if at >= len(body) or shift > 63:
            raise UndecodableBody("a long runs past the body or beyond 10 bytes")
        byte = body[at]
        at += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            result &= _U64
            return (result >> 1) ^ -(result & 1), at
        shift += 7


def _check_datetime(epoch_ms: int) -> None:
    if not MIN_DATETIME_MS <= epoch_ms <= MAX_DATETIME_MS:
        raise UndecodableBody("a timestamp-millis is outside the years a datetime holds")


def _string(body: bytes, at: int) -> tuple[str, int]:
    size, at = _varint(body, at)
    end = at + size
    if size < 0 or end > len(body):
        raise UndecodableBody("a string runs past the body")
    try:
        return body[at:end].decode(), end
    except UnicodeDecodeError as error:
        raise UndecodableBody("a string is not UTF-8") from error


def _skip(body: bytes, at: int, program: Sequence[int], pc: int) -> tuple[int, int]:
    """Step over one value of the type at `program[pc]`: (where the next value starts, the next program index)."""
    op = program[pc]
    if op == NULL:
        return at, pc + 1
    if op == LONG:
        return _varint(body, at)[1], pc + 1
    if op == TIMESTAMP_MILLIS:
        value, at = _varint(body, at)
        _check_datetime(value)
        return at, pc + 1
    if op == STRING:
        return _string(body, at)[1], pc + 1
    if op in (BOOLEAN, FLOAT, DOUBLE, BYTES, FIXED):
        if op == BYTES:
            size, at = _varint(body, at)
        else:
            size = {BOOLEAN: 1, FLOAT: 4, DOUBLE: 8}.get(op, program[pc + 1] if op == FIXED else 0)
        if size < 0 or at + size > len(body):
            raise UndecodableBody("a value runs past the body")
        return at + size, pc + (2 if op == FIXED else 1)
    if op == ENUM:
        index, at = _varint(body, at)
        if not 0 <= index < program[pc + 1]:
            raise UndecodableBody("an enum index is out of range")
        return at, pc + 2
    if op == UNION:
        index, at = _varint(body, at)
        if not 0 <= index < program[pc + 1]:
            raise UndecodableBody("a union index is out of range")
        branch = pc + 2
        for _ in range(index):
            branch = _program_end(program, branch)
        at, _ = _skip(body, at, program, branch)
        return at, _program_end(program, pc)
    if op == RECORD:
        inner = pc + 2
        for _ in range(program[pc + 1]):
            at, inner = _skip(body, at, program, inner)
        return at, inner
    if op in (ARRAY, MAP):
        while True:
            count, at = _varint(body, at)
            if count == 0:
                return at, _program_end(program, pc)
            if count < 0:  # a block that also gives its size in bytes
                count = -count
                _, at = _varint(body, at)
            if count > len(body):
                raise UndecodableBody("an array or map announces more items than the body has bytes")
            for _ in range(count):
                if op == MAP:
                    at = _string(body, at)[1]
                at, _ = _skip(body, at, program, pc + 1)
    raise UndecodableBody(f"unknown type program op {op}")


def _program_end(program: Sequence[int], pc: int) -> int:
    """The index just after the type program that starts at `pc`."""
    op = program[pc]
    if op in (FIXED, ENUM):
        return pc + 2
    if op in (UNION, RECORD):
        end = pc + 2
        for _ in range(program[pc + 1]):
            end = _program_end(program, end)
        return end
    if op in (ARRAY, MAP):
        return _program_end(program, pc + 1)
    return pc + 1


def read_fields(layout: RecordLayout, body: bytes) -> list[Any]:
    """The values of `FIELDS` in an Avro body of the layout's schema (None for a field the schema lacks or a
    null); `UndecodableBody` when the body does not hold such a record (see the module docstring)."""
    values: list[Any] = [None] * len(FIELDS)
    at = 0
    for slot, program in layout.fields:
        if slot == SKIP:
            at, _ = _skip(body, at, program, 0)
        elif program[0] == STRING:
            values[slot], at = _string(body, at)
        elif program[0] == UNION:
            index, at = _varint(body, at)
            if not 0 <= index < program[1]:
                raise UndecodableBody("a union index is out of range")
            if program[2 + index] == STRING:
                values[slot], at = _string(body, at)
        else:
            values[slot], at = _varint(body, at)
            if program[0] == TIMESTAMP_MILLIS:
                _check_datetime(values[slot])
    return values


class LayoutCache:
    """Layouts by writer schema id, each fetched from the registry and compiled once.

    `layout_of(id)` is None when the registry does not know the id (404) or the schema has no layout (see
    `UnsupportedLayout`): the records of that id are undecodable. Any other registry failure raises: that
    is an outage, not bad data (as in `streaming.conversion.encoding.WireFormatDecoder`).
    """

    def __init__(self, registry: SchemaLookup) -> None:
        self._registry = registry
        self._layouts: dict[int, RecordLayout | None] = {}
        self.unsupported: dict[int, str] = {}
        """Schema id -> why its records are undecodable (for the run's log)."""

    def layout_of(self, schema_id: int) -> RecordLayout | None:
        if schema_id not in self._layouts:
            self._layouts[schema_id] = self._compile(schema_id)
        return self._layouts[schema_id]

    def _compile(self, schema_id: int) -> RecordLayout | None:
        try:
            schema_str = self._registry.get_schema(schema_id).schema_str
        except SchemaRegistryError as error:
            if error.http_status_code != 404:
                raise
            self.unsupported[schema_id] = "unknown to the registry"
            return None
        try:
            return compile_layout(schema_str)
        except (UnsupportedLayout, ValueError, KeyError, TypeError) as error:
            self.unsupported[schema_id] = str(error)
            return None
