"""The rules declaration (`schemas/<subject>.rules.yaml`) loaded and checked against its Avro schema.

`load_rules(schema, declaration)` returns `Rules`, or raises `RulesError` with one line naming what is wrong:
an unknown top-level key, input key option, rule kind, part, context or reason; a parameter missing or of the
wrong type; a field of the schema the declaration does not make, or one it makes that the schema lacks; an
Avro type the rule cannot produce (say a nullable input into a non-null field, or an enum missing a class).
Every engine is built from a `Rules`, so what passes here is what each engine is asked to implement.

Why YAML: the declaration is written by people, next to the schema, and wants comments (why a code list is
what it is); the repository already keeps its declarations (`topics.yaml`) in YAML. JSON is YAML, so a
generated declaration can be JSON.
"""

from __future__ import annotations

import json
import keyword
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from streaming.conversion.ip_classes import IP_CLASSES
from streaming.conversion.rules.kinds import CONTEXT, INT, IP_CLASS, KINDS, LONG, MILLIS, TEXT, RuleKind
from streaming.package_files import package_file
from streaming.records import Reason
from streaming.settings import SettingsError

SCHEMA_PATH = package_file("schemas/processed-data-value.avsc")
RULES_PATH = package_file("schemas/processed-data-value.rules.yaml")
SCHEMAS = SCHEMA_PATH.parent

_TOP_LEVEL = ("inputs", "fields", "key", "tallies")
_TALLIES = ("device_types", "locales")  # the columns of `streaming.observe.running_insights.RunningInsights`


class RulesError(SettingsError):
    """The declaration is wrong, or does not fit its schema; the message names the key or field. A
    configuration error like a bad setting: `kdp` prints it in one line and exits 2."""


class UnsupportedRulesError(RulesError):
    """An engine does not implement a rule kind or Avro type the declaration uses; the message names the
    field and the engine. Raised when a converter is built, never later."""


@dataclass(frozen=True)
class Input:
    """A key of the JSON event that is read: checked by `kind`, refused as `reason` when it fails."""

    name: str
    kind: RuleKind
    required: bool
    reason: Reason | None
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def nullable(self) -> bool:
        """Whether its parts may be null (absent or null in the event and nothing to put instead)."""
        return not self.required and not self.kind.has_default


@dataclass(frozen=True)
class Field:
    """An output field: `part` of input `input`, or the processing fact `context`; `avro_type` as in the schema."""

    name: str
    avro_type: Any
    input: Input | None
    part: str | None
    context: str | None

    @property
    def value_type(self) -> str:
        if self.input is not None:
            assert self.part is not None
            return self.input.kind.parts[self.part]
        assert self.context is not None
        return CONTEXT[self.context]

    @property
    def nullable(self) -> bool:
        return self.input is not None and self.input.nullable


@dataclass(frozen=True)
class Rules:
    """A checked declaration: `inputs` in checking order, `fields` in the schema's order."""

    schema: Mapping[str, Any]
    inputs: tuple[Input, ...]
    fields: tuple[Field, ...]
    key: Field
    tallies: tuple[Field, Field]
    source: str

    @property
    def event_time(self) -> Input | None:
        """The input checked against the acceptance window (rule kind `epoch_time`), if any."""
        return next((i for i in self.inputs if i.kind.name == "epoch_time"), None)


def _fail(where: str, message: str) -> RulesError:
    return RulesError(f"{where}: {message}")


def _mapping(value: Any, where: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(where, f"{what} must be a mapping, not {json.dumps(value)[:60]}")
    return value


def _load(source: Mapping[str, Any] | Path | str, what: str) -> tuple[Mapping[str, Any], str]:
    if isinstance(source, Mapping):
        return source, f"the {what} given"
    path = Path(source)
    try:
        text = path.read_text()
    except OSError as error:
        raise RulesError(f"{path}: cannot read the {what}: {error.strerror}") from None
    try:
        parsed = json.loads(text) if path.suffix in (".avsc", ".json") else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        raise RulesError(
            f"{path}: not valid {path.suffix[1:].upper() or 'YAML'}: {str(error).splitlines()[0]}"
        ) from None
    return _mapping(parsed, str(path), f"the {what}"), str(path)


def _input(name: Any, spec: Any, where: str) -> Input:
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise _fail(where, f"input key {name!r} must be a Python identifier (letters, digits, _)")
    where = f"{where}: input {name!r}"
    spec = dict(_mapping(spec, where, "an input"))
    kind_name = spec.pop("rule", None)
    if kind_name not in KINDS:
        raise _fail(where, f"unknown rule kind {kind_name!r} (known: {', '.join(KINDS)})")
    kind = KINDS[kind_name]
    required = spec.pop("required", False)
    if not isinstance(required, bool):
        raise _fail(where, f"required must be true or false, not {required!r}")
    reason_name = spec.pop("reason", None)
    reason = None
    if kind.message is None:
        if reason_name is not None:
            raise _fail(where, f"rule kind {kind.name!r} refuses no value: it takes no reason")
    else:
        try:
            reason = Reason(reason_name)
        except ValueError:
            raise _fail(
                where, f"reason {reason_name!r} is not a dead-letter reason (streaming/records.py Reason)"
            ) from None
    params: dict[str, Any] = {}
    for param, expected in kind.params.items():
        value = spec.pop(param, None)
        if not isinstance(value, expected) or not value:
            raise _fail(where, f"rule kind {kind.name!r} needs {param}: a non-empty {expected.__name__}")
        params[param] = value
    if spec:
        raise _fail(where, f"unknown option {next(iter(spec))!r} for rule kind {kind.name!r}")
    if kind.name == "code":
        codes = params["codes"]
        if not all(isinstance(c, str) and c.isascii() and c == c.upper() for c in codes):
            raise _fail(where, "codes must be upper-case ASCII strings")
        params["codes"] = frozenset(codes)
    return Input(name, kind, required, reason, params)


def _avro_fits(avro_type: Any, value_type: str, nullable: bool) -> bool:
    """Whether a field of `avro_type` can hold every value of `value_type` (and null when `nullable`)."""
    if isinstance(avro_type, list):
        others = [branch for branch in avro_type if branch != "null"]
        return len(avro_type) == 2 and len(others) == 1 and _avro_fits(others[0], value_type, False)
    if nullable:
        return False
    if isinstance(avro_type, Mapping):
        kind, logical = avro_type.get("type"), avro_type.get("logicalType")
        if kind == "enum":
            return value_type == IP_CLASS and set(IP_CLASSES) <= set(avro_type.get("symbols") or ())
        if value_type == MILLIS and kind == "long" and logical in ("timestamp-millis", "local-timestamp-millis"):
            return True
        return logical is None and _avro_fits(kind, value_type, False)
    return avro_type in {TEXT: ("string",), INT: ("int", "long"), LONG: ("long",), MILLIS: ("long",)}.get(
        value_type, ()
    )


def _field(spec: Any, avro_field: Mapping[str, Any], inputs: Mapping[str, Input], where: str) -> Field:
    name = avro_field["name"]
    where = f"{where}: field {name!r}"
    spec = dict(_mapping(spec, where, "a field"))
    input_name, part, context = spec.pop("input", None), spec.pop("part", None), spec.pop("context", None)
    if spec:
        raise _fail(where, f"unknown option {next(iter(spec))!r} (a field has input and part, or context)")
    made: Field
    if (input_name is None) == (context is None):
        raise _fail(where, "give either input (with an optional part) or context")
    if context is not None:
        if part is not None or context not in CONTEXT:
            raise _fail(where, f"unknown context {context!r} (known: {', '.join(CONTEXT)})")
        made = Field(name, avro_field.get("type"), None, None, context)
    else:
        if input_name not in inputs:
            raise _fail(where, f"input {input_name!r} is not declared under inputs")
        source = inputs[input_name]
        part = source.kind.default_part if part is None else part
        if part not in source.kind.parts:
            raise _fail(
                where, f"rule kind {source.kind.name!r} has no part {part!r} (parts: {', '.join(source.kind.parts)})"
            )
        made = Field(name, avro_field.get("type"), source, part, None)
    if not _avro_fits(made.avro_type, made.value_type, made.nullable):
        produced = f"{'null or ' if made.nullable else ''}{made.value_type}"
        if made.value_type == IP_CLASS:
            produced += f" (an enum with the symbols {', '.join(IP_CLASSES)})"
        raise _fail(where, f"Avro type {json.dumps(made.avro_type)} cannot hold what the rule produces: {produced}")
    return made


def load_rules(schema: Mapping[str, Any] | Path | str, declaration: Mapping[str, Any] | Path | str) -> Rules:
    """The declaration checked against the Avro record `schema` (each a path or already parsed)."""
    parsed_schema, _ = _load(schema, "schema")
    parsed, where = _load(declaration, "rules declaration")
    unknown = [key for key in parsed if key not in _TOP_LEVEL]
    if unknown:
        raise _fail(where, f"unknown key {unknown[0]!r} (known: {', '.join(_TOP_LEVEL)})")
    inputs = {name: _input(name, spec, where) for name, spec in _mapping(parsed.get("inputs"), where, "inputs").items()}
    if sum(i.kind.name == "epoch_time" for i in inputs.values()) > 1:
        raise _fail(where, "at most one input may have rule kind 'epoch_time' (the acceptance window's)")
    avro_fields = parsed_schema.get("fields")
    if parsed_schema.get("type") != "record" or not isinstance(avro_fields, list):
        raise _fail(where, "the schema must be an Avro record with a list of fields")
    declared = dict(_mapping(parsed.get("fields"), where, "fields"))
    fields = []
    for avro_field in avro_fields:
        if avro_field.get("name") not in declared:
            raise _fail(where, f"field {avro_field.get('name')!r} of the schema is not declared under fields")
        fields.append(_field(declared.pop(avro_field["name"]), avro_field, inputs, where))
    if declared:
        raise _fail(where, f"field {next(iter(declared))!r} is declared but not in the schema")
    by_name = {f.name: f for f in fields}

    def text_field(name: Any, role: str) -> Field:
        found = by_name.get(name) if isinstance(name, str) else None
        if found is None or found.value_type != TEXT or found.nullable:
            raise _fail(where, f"{role} must name a field of text that is never null, not {name!r}")
        return found

    tallies = _mapping(parsed.get("tallies"), where, "tallies")
    if sorted(tallies) != sorted(_TALLIES):
        raise _fail(where, f"tallies must map exactly {' and '.join(_TALLIES)} to fields")
    return Rules(
        parsed_schema,
        tuple(inputs.values()),
        tuple(fields),
        text_field(parsed.get("key"), "key"),
        (
            text_field(tallies["device_types"], "tallies.device_types"),
            text_field(tallies["locales"], "tallies.locales"),
        ),
        where,
    )


@cache
def repository_rules() -> Rules:
    """The repository's declaration for the processed-data schema (`schemas/`), loaded once."""
    return load_rules(SCHEMA_PATH, RULES_PATH)
