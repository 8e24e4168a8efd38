"""The pure-Python fast engine, generated from a rules declaration and its Avro schema.

`python -m streaming.conversion.rules.codegen` writes it for the repository's declaration to `generated_fast_path.py`
beside this module (`--check`: exit 1 if that file is not what would be generated); the unit tests check the
file is current. A converter started with another schema or declaration generates the same source in memory
(`engine_source`) and runs that, so it keeps a fast lane; the file is what tools and readers see of it.

What is generated, for each declaration: a module with `build(prefix, reference, engine)`, which returns three
functions over one set of constants (the schema's Avro encoding, `streaming.conversion.avro_codegen.record_parts`, and
the declaration's code lists, memo tables and defaults):

- `usual(value, topic, partition, offset, now_ms, oldest_ms)`: the usual message's `Converted`, or None to
  decline. Usual: ASCII, at most `MAX_MESSAGE_BYTES`, every input of its JSON type, and each value already in
  the form the reference would write (a lower-case UUID, a code already upper case, a platform and a version
  that parse: each distinct one parsed once, by the reference's function, into the reference's memo tables)
  with its event time in the window. Each rule kind is written once
  below (`_KIND_CODE`), in a form that can only pass where the reference accepts the value unchanged.
- `convert`: the `streaming.conversion.convert.Convert` contract; `usual`'s lane inline, then `reference`.
- `convert_batch`: the `ConvertBatch` contract over consumed messages, with the fields that are constant over
  a run of one partition encoded once per run, records appended to the batch's columns, and the count of
  messages per lane (`Lanes`).

A decline is an explicit test, or one of the exceptions listed in `DECLINED` (a JSON value of another type or
nested deeper than the decoder goes, text `inet_pton` refuses, a number an Avro int or long cannot hold):
anything else raised is a bug and propagates. The property tests (`tests/unit/test_fast_path_properties.py`)
check the engine against the reference byte for byte, and against fastavro.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path

from streaming.conversion.avro_codegen import RecordParts, record_parts
from streaming.conversion.rules.declaration import RULES_PATH, SCHEMA_PATH, Field, Input, Rules, repository_rules

#: The rule kinds `_kind_code` writes.
PURE_KINDS = frozenset({"uuid", "platform", "code", "ip_address", "semver", "epoch_time", "text"})
GENERATED_PATH = Path(__file__).with_name("generated_fast_path.py")
COMMAND = "python -m streaming.conversion.rules.codegen"

#: Memo policies (see `_memo_key`): "by value" is what the converter uses; the others exist for the tests.
MEMO_POLICIES = ("by value", "none", "every field alone")
#: The locals constant over a run of one partition in a batch: a memo key made of these only is encoded once
#: per run by `convert_batch`.
RUN_CONSTANT_LOCALS = frozenset({"now_ms", "topic", "partition"})
_CONTEXT_LOCALS = {"processing_time": "now_ms", "topic": "topic", "partition": "partition", "offset": "offset"}
_RUN_KEY = "(now_ms, topic, partition)"


def _raw(spec: Input) -> str:
    return f"x_{spec.name}"


def _value(spec: Input, part: str | None = None) -> str:
    return f"v_{spec.name}" if part is None or len(spec.kind.parts) == 1 else f"v_{spec.name}_{part}"


def _kind_code(index: int, spec: Input) -> tuple[list[str], str, list[str]]:
    """(statements, condition, statements after the condition) checking input `spec` on the usual lane.

    The statements bind the input's value locals; the condition is true only where the reference accepts the
    value unchanged. A required input is known not to be None here (tested up front).
    """
    x, v, optional = _raw(spec), _value(spec), not spec.required
    kind = spec.kind.name
    if kind == "uuid":
        return [f"{v} = {x}"], (f"({x} is None or LOWER_UUID({x}))" if optional else f"LOWER_UUID({x})"), []
    if kind == "platform":
        memo = f"MEMO{index}.get({x}) or remember(MEMO{index}, {x}, parse_platform({x}, DEFAULT{index}))"
        return [f"{v} = DEFAULT{index} if {x} is None else {memo}"], v, []
    if kind == "code":
        return [f"{v} = {x}"], (f"({x} is None or {x} in CODES{index})" if optional else f"{x} in CODES{index}"), []
    if kind == "text":
        return [f"{v} = {x}"], "", []
    if kind == "semver":
        parts = ", ".join(_value(spec, part) for part in ("major", "minor", "patch"))
        text = _value(spec, "text")
        memo = f"MEMO{index}.get({x}) or remember(MEMO{index}, {x}, parse_semver({x}))"
        if optional:
            return (
                [f"{text} = {x}", f"p{index} = NO_VERSION if {x} is None else {memo}"],
                f"p{index}",
                [f"{parts} = p{index}"],
            )
        return [f"{text} = {x}", f"p{index} = {memo}"], f"p{index}", [f"{parts} = p{index}"]
    if kind == "ip_address":
        canonical, version, klass = (_value(spec, part) for part in ("canonical", "version", "class"))
        block = [
            f'if ":" in {x}:  # IPv6; not an address: no class, declined',
            f"    {canonical}, {version}, {klass} = classify_ip({x}) or NOT_AN_ADDRESS",
            "else:  # IPv4 as classify does it; not an address: OSError, declined",
            f"    {canonical}, {version} = {x}, 4",
            f"    packed = inet_pton(AF_INET, {x})",
            f"    {klass} = V4_BY_FIRST_OCTET[packed[0]] or classify_ipv4(packed)",
        ]
        if optional:
            block = [
                f"if {x} is None:",
                f"    {canonical} = {version} = {klass} = None",
                "else:",
                *("    " + line for line in block),
            ]
            return block, f"({x} is None or {klass})", []
        return block, klass, []
    if kind == "epoch_time":
        block = [
            f"if type({x}) is not int:  # digits in a string (ASCII: the whole message is), or none",
            f"    digits = type({x}) is str and {x}.isdigit() and len({x}) <= MAX_TIMESTAMP_DIGITS",
            f"    {x} = int({x}) if digits else -1",
            f"{v} = {x} * 1000",
            f"if not MIN_EVENT_TIME_MS <= {v} <= latest:",
            f"    {v} = {x}  # epoch milliseconds, if that is in the window",
        ]
        window = f"MIN_EVENT_TIME_MS <= {v} <= latest and {v} >= oldest_ms"
        if optional:
            return (
                [f"{v} = None", f"if {x} is not None:", *("    " + line for line in block)],
                (f"({x} is None or {window})"),
                [],
            )
        return block, window, []
    raise NotImplementedError(f"input {spec.name!r}: rule kind {kind!r} is not one it implements")


def _local_of(field: Field) -> str:
    if field.input is None:
        return _CONTEXT_LOCALS[field.context]  # type: ignore[index]
    return _value(field.input, field.part)


def _memo_key(field: Field, policy: str) -> str | None:
    """The expression a field's encoding is memoised under: a value few messages differ in; None: not memoised.

    A key must determine the field's value: the checked value (a platform, a code, an event time), the raw
    text of a version (its parts follow from it), the batch's processing context. Ids and addresses are
    distinct per message and are encoded each time.
    """
    if policy == "none":
        return None
    if policy == "every field alone":
        return _local_of(field)
    if field.input is None:
        return _RUN_KEY if field.context != "offset" else None
    kind = field.input.kind.name
    if kind == "semver":
        return _raw(field.input)
    if kind in ("platform", "code", "epoch_time"):
        return _value(field.input)
    return None


def _runs(encoding: RecordParts, fields: tuple[Field, ...], policy: str) -> list[tuple[str | None, list[int]]]:
    """The schema's fields (by index) in runs of consecutive fields memoised under one key (None: not)."""
    runs: list[tuple[str | None, list[int]]] = []
    for index, field in enumerate(fields):
        key = _memo_key(field, policy)
        if runs and key is not None and runs[-1][0] == key:
            runs[-1][1].append(index)
        else:
            runs.append((key, [index]))
    return runs


def engine_source(rules: Rules, memo_policy: str = "by value") -> str:
    """The Python source of the pure fast engine for `rules` (see the module docstring)."""
    by_field = {field.name: field for field in rules.fields}
    encoding = record_parts(rules.schema, lambda name: _local_of(by_field[name]))
    constants = {name: value for name, value in encoding.constants.items() if name.startswith("ENUM")}

    locals_of = [
        (spec.name, local)
        for spec in rules.inputs
        for local in {_raw(spec), _value(spec), *(_value(spec, part) for part in spec.kind.parts)}
    ]
    if len({local for _, local in locals_of}) != len(locals_of):
        clash = sorted({name for name, local in locals_of if [other for other in locals_of if other[1] == local][1:]})
        raise NotImplementedError(f"inputs {' and '.join(map(repr, clash))} would share a local name; rename one")
    for spec in rules.inputs:
        if spec.kind.name not in PURE_KINDS:
            taking = [field.name for field in rules.fields if field.input is spec] or ["(none)"]
            raise NotImplementedError(
                f"field {taking[0]!r} (input {spec.name!r}): rule kind {spec.kind.name!r} is not one it implements"
            )
    checks: list[tuple[list[str], str, list[str]]] = [_kind_code(i, spec) for i, spec in enumerate(rules.inputs)]
    required = [_raw(spec) for spec in rules.inputs if spec.required]
    reads = [f"{_raw(spec)} = e.{spec.name}" for spec in rules.inputs]
    key_local, tally_locals = _local_of(rules.key), [_local_of(f) for f in rules.tallies]

    memos: list[str] = []
    parts, batch_parts, run_constants = [], [], []
    for key, indexes in _runs(encoding, rules.fields, memo_policy):
        field_parts = [part for index in indexes for part in encoding.field_parts[index]]
        if key is None:
            parts.extend(field_parts)
            batch_parts.extend(field_parts)
            continue
        memos.append(memo := f"ENCODED{len(memos) + 1}")
        fresh = 'b"".join((' + ", ".join(field_parts) + ",))"
        lookup, name = (key, key) if key.isidentifier() else (f"k{len(memos)} := {key}", f"k{len(memos)}")
        parts.append(f"{memo}.get({lookup}) or remember({memo}, {name}, {fresh})")
        if set(re.findall(r"[A-Za-z_]\w*", key)) <= RUN_CONSTANT_LOCALS:  # once per run in a batch
            run_constants.append(f"RUN{len(memos)} = {parts[-1]}")
            batch_parts.append(f"RUN{len(memos)}")
        else:
            batch_parts.append(parts[-1])

    def lane(body_parts: list[str], accept: list[str]) -> list[str]:
        """The usual lane: `accept` runs with `body` the record's bytes; falling out of it is a decline."""
        lines = [
            "if type(value) is bytes and len(value) <= MAX_MESSAGE_BYTES and value.isascii():",
            "    e = decode_event(value)",
            *("    " + read for read in reads),
        ]
        depth = 1
        if required:
            lines.append("    " + f"if {' is not None and '.join(required)} is not None:")
            depth += 1
        for statements, condition, after in checks:
            lines += [" " * 4 * depth + statement for statement in statements]
            if condition:
                lines.append(" " * 4 * depth + f"if {condition}:")
                depth += 1
            lines += [" " * 4 * depth + statement for statement in after]
        pad = " " * 4 * depth
        lines.append(pad + 'body = b"".join((')
        lines.append(pad + "    PREFIX,")
        lines += [f"{pad}    {part}," for part in body_parts]
        lines.append(pad + "))")
        lines += [pad + line for line in accept]
        return lines

    key_and_tallies = f"{key_local}.encode(), {', '.join(tally_locals)}"
    one = lane(parts, [f"return new_tuple(Converted, (body, {key_and_tallies}))"])
    in_batch = lane(
        batch_parts,
        [
            "bytes_in += len(value)",
            "add_value(body)",
            f"add_key({key_local}.encode())",
            f"add_device_type({tally_locals[0]})",
            f"add_locale({tally_locals[1]})",
            "continue",
        ],
    )
    in_batch[0] = in_batch[0].replace("if type(value)", "if run_usual and type(value)")

    def block(lines: list[str], indent: int) -> str:
        return textwrap.indent("\n".join(lines), " " * indent)

    tables = []
    for index, spec in enumerate(rules.inputs):
        if spec.kind.name == "platform":
            tables += [f"DEFAULT{index} = rules.inputs[{index}].params[DEFAULT]", f"MEMO{index} = memos[{index}]"]
        elif spec.kind.name == "semver":
            tables.append(f"MEMO{index} = memos[{index}]")
        elif spec.kind.name == "code":
            tables.append(f"CODES{index} = rules.inputs[{index}].params[CODES]")
    source = _MODULE.format(
        inputs=", ".join(spec.name for spec in rules.inputs),
        constants="\n".join(f"{name} = {value!r}" for name, value in constants.items()) or "# (no enum tables)",
        tables=block(tables, 4),
        encoded=block([f"{memo} = {{}}" for memo in memos], 4) or "    # (no memoised encodings)",
        usual=block(one, 12),
        convert=block(one, 12),
        batch=block(in_batch, 16),
        run_constants=block(run_constants, 20) or " " * 20 + "pass",
    )
    return source


_MODULE = '''\
"""Generated by `{command}` from the record schema and its rules declaration (inputs: {inputs}).

Do not edit: change the declaration (or `streaming/conversion/rules/codegen.py`) and regenerate. See the generator's
docstring for what the three functions do; `build` is called by `streaming.conversion.fast_path.fused_converter`.
"""

# ruff: noqa: E501, SIM102 - generated: a long encoding expression stays on its line, one `if` per check

from socket import AF_INET, inet_pton

from msgspec import DecodeError

from streaming.conversion.avro_codegen import VARINT_LAST as LAST
from streaming.conversion.avro_codegen import VARINT_MORE as MORE
from streaming.conversion.avro_codegen import zigzag_int, zigzag_long
from streaming.conversion.convert import Converted, ConvertedBatch, Lanes
from streaming.conversion.ip_classes import V4_BY_FIRST_OCTET, classify_ipv4
from streaming.conversion.ip_classes import classify as classify_ip
from streaming.conversion.rules.kinds import LOWER_UUID, MAX_FUTURE_MS, MAX_TIMESTAMP_DIGITS, MIN_EVENT_TIME_MS
from streaming.conversion.rules.kinds import platform as parse_platform
from streaming.conversion.rules.kinds import semver as parse_semver
from streaming.conversion.rules.reference import MAX_MESSAGE_BYTES, remember

#: What the usual lane may raise for a message it then declines: a JSON value of another type or nested too
#: deep for the decoder (RecursionError), text that inet_pton refuses, a value an Avro int or long cannot
#: hold. Anything else is a bug, and propagates.
DECLINED = (DecodeError, RecursionError, OSError, ValueError)
NOT_AN_ADDRESS = (None, None, None)
NO_VERSION = (None, None, None)
DEFAULT, CODES = "default", "codes"
new_tuple = tuple.__new__

{constants}


def build(prefix, reference, engine):
    """(usual, convert, convert_batch) writing `prefix` before each record; `reference` decides the rest."""
    rules, memos, decode_event = engine.rules, engine.memos_by_input, engine.decode_event
    PREFIX = prefix
{tables}
{encoded}

    def usual(value, topic, partition, offset, now_ms, oldest_ms):
        latest = now_ms + MAX_FUTURE_MS
        try:
{usual}
        except DECLINED:
            pass
        return None

    def convert(value, topic, partition, offset, now_ms, oldest_ms):
        latest = now_ms + MAX_FUTURE_MS
        try:
{convert}
        except DECLINED:
            pass
        return reference(value, topic, partition, offset, now_ms, oldest_ms)

    def convert_batch(messages, now_ms, oldest_ms):
        values, keys, device_types, locales, rejected, run_starts, run_ends = [], [], [], [], [], [], []
        add_value, add_key = values.append, keys.append
        add_device_type, add_locale = device_types.append, locales.append
        latest = now_ms + MAX_FUTURE_MS
        run_topic = run_partition = previous = None
        run_usual = False
        bytes_in = by_reference = 0
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
                try:  # a run the schema cannot hold (a partition out of range): each message to the reference
{run_constants}
                    run_usual = True
                except DECLINED:
                    run_usual = False
            previous = message
            try:
{batch}
            except DECLINED:
                pass
            if value is not None:
                bytes_in += len(value)
            by_reference += 1
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
        lanes = new_tuple(Lanes, (0, len(messages) - by_reference, by_reference))
        return new_tuple(
            ConvertedBatch, (values, keys, device_types, locales, rejected, run_starts, run_ends, bytes_in, lanes)
        )

    return usual, convert, convert_batch
'''.replace("{command}", COMMAND)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the generated file is not current")
    args = parser.parse_args(argv)
    source = engine_source(repository_rules())
    current = GENERATED_PATH.read_text() if GENERATED_PATH.exists() else None
    if args.check:
        if current != source:
            print(f"{GENERATED_PATH} is out of date with {SCHEMA_PATH.name} and {RULES_PATH.name}: run {COMMAND}")
            return 1
        return 0
    if current != source:
        GENERATED_PATH.write_text(source)
        print(f"wrote {GENERATED_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
