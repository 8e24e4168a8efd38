"""The converter's `Convert` and its engines, built from the output schema and its rules declaration.

Three engines give one answer, each driven by the declaration (`schemas/processed-data-value.rules.yaml`,
loaded by `streaming.conversion.rules.declaration`):

- reference (`streaming.conversion.rules.reference`, then `encoder.encode`): the definition; every message the faster
  engines are unsure of, every rejection included, is handed to it whole;
- pure fast (`streaming.conversion.rules.codegen`): Python generated from the declaration and the schema, the usual
  message's checks and Avro body in straight-line code. For the repository's declaration it is the file
  `streaming/conversion/rules/generated_fast_path.py`; for any other schema or declaration the same generator runs in
  memory at start, so a converter always has its fast lane;
- native (`streaming.conversion.native_path`, optional): the Rust kernel, configured from the same declaration, for the
  batch form.

`build_converter(encoder, declaration)` assembles them; `converter_for(encoder)` is that for the repository's
declaration. A declaration an engine cannot run (a rule kind or Avro type it does not implement) is refused
when the converter is built (`UnsupportedRulesError`, naming the field and the engine), never quietly
slowed down; a declaration that is wrong or does not fit the schema raises `RulesError`. Which engine took
each message is counted (`ConvertedBatch.lanes`), and shown in the converter's summary and metrics.

The property tests (`tests/unit/test_fast_path_properties.py`, `test_native_path_properties.py`) check each
engine against the reference, byte for byte, and against fastavro.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streaming.conversion import native_path
from streaming.conversion.avro_codegen import UnsupportedSchemaError
from streaming.conversion.convert import Convert, reference_converter
from streaming.conversion.encoding import WireFormatEncoder, wire_header
from streaming.conversion.rules import codegen
from streaming.conversion.rules.declaration import RULES_PATH, RulesError, UnsupportedRulesError, load_rules
from streaming.conversion.rules.reference import Reference
from streaming.conversion.transform import REFERENCE

__all__ = ["RulesError", "UnsupportedRulesError", "build_converter", "converter_for", "fused_converter"]

log = logging.getLogger(__name__)


def reference_for(schema: Mapping[str, Any], declaration: Mapping[str, Any] | Path | str = RULES_PATH) -> Reference:
    """The reference engine of `declaration` checked against `schema` (the repository's own, shared, when both
    are the repository's: its memo tables are then warm)."""
    if declaration == RULES_PATH and dict(schema) == dict(REFERENCE.rules.schema):
        return REFERENCE
    return Reference(load_rules(schema, declaration))


def fused_converter(
    encoder: WireFormatEncoder, reference: Reference = REFERENCE, memo_policy: str = "by value"
) -> Convert:
    """The pure fast engine's `convert` for `encoder`'s schema and `reference`'s rules (its batch form as
    `convert.convert_batch`, its lane alone as `convert.usual`, its reference as `convert.reference`).

    Raises `UnsupportedRulesError` when the pure engine cannot run the declaration on this schema.
    """
    rules = reference.rules
    if dict(encoder.schema) != dict(rules.schema):
        raise RulesError(f"{rules.source}: checked against another schema than {encoder.name}'s")
    try:
        source = codegen.engine_source(rules, memo_policy)
    except (NotImplementedError, UnsupportedSchemaError) as error:  # a kind or Avro type it does not write
        raise UnsupportedRulesError(f"{rules.source}: the pure fast engine cannot run {error}") from error
    build = _load(source, encoder.name)["build"]
    reference_convert = reference_converter(encoder, reference)
    usual, convert, convert_batch = build(wire_header(encoder.schema_id), reference_convert, reference)
    convert.convert_batch = convert_batch
    convert.usual = usual
    convert.reference = reference_convert
    return convert  # type: ignore[no-any-return]


def _load(source: str, schema_name: str) -> dict[str, Any]:
    """The generated module's names: the checked-in file when it is this very source, else compiled here."""
    if codegen.GENERATED_PATH.exists() and codegen.GENERATED_PATH.read_text() == source:
        return vars(importlib.import_module("streaming.conversion.rules.generated_fast_path"))
    log.info(
        "schema %s: the fast engine is generated at start (it differs from %s)",
        schema_name,
        codegen.GENERATED_PATH.name,
    )
    names: dict[str, Any] = {"__name__": f"generated fast engine for {schema_name}"}
    exec(compile(source, f"<fast engine for {schema_name}>", "exec"), names)  # noqa: S102 - our own generated code
    return names


def build_converter(
    encoder: WireFormatEncoder, declaration: Mapping[str, Any] | Path | str = RULES_PATH, *, native: bool = True
) -> Convert:
    """The converter for `encoder`'s schema (the registered one) and `declaration`, with all its engines.

    `native`: give it the native kernel's batch form when the kernel is installed (False, `KDP_FAST_PATH=python`,
    keeps the pure batch form). Raises `RulesError` for a declaration that is wrong or does not fit the schema,
    `UnsupportedRulesError` for one an engine cannot run; neither is ever turned into a slower path.

    A proposed schema and declaration, not registered, run beside the current ones the same way, with any
    schema id: `build_converter(WireFormatEncoder(0, proposed_avsc_text), proposed_rules_path)`.
    """
    reference = reference_for(encoder.schema, declaration)
    convert = fused_converter(encoder, reference)
    if not native:
        native_path.log_once("converter fast path: pure Python (KDP_FAST_PATH=python)")
    elif not native_path.available():
        native_path.log_once("converter fast path: pure Python (the native kernel kdp_native is not installed)")
    else:
        convert.convert_batch = native_path.native_batch(encoder, reference, convert)  # type: ignore[attr-defined]
        native_path.log_once("converter fast path: native (kdp_native)")
    return convert


def converter_for(encoder: WireFormatEncoder, native: bool = True) -> Convert:
    """`build_converter` for the repository's declaration (`schemas/processed-data-value.rules.yaml`)."""
    return build_converter(encoder, RULES_PATH, native=native)
