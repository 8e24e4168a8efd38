"""A contract: an output schema and the conversion rules that fill it, read from files and checked.

`load_contract(schema_file, rules_file)` reads both and checks them as a converter starting with them would:
the declaration against the schema (`streaming.conversion.rules.declaration.load_rules`), then every engine built
(`streaming.conversion.fast_path.build_converter`), so a rule kind an engine does not implement is refused here, not
when the converters restart. Any failure is a `ContractError`, one line naming the file and the field.

`reference_conversion(contract)` is the conversion the contract defines, as the reference engine runs it:
what `preview` runs on each side. The preview takes the conversion as a parameter (`BuildConversion`), so
the engines a converter runs can be compared the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streaming.conversion.convert import Convert, reference_converter
from streaming.conversion.encoding import WireFormatEncoder
from streaming.conversion.fast_path import build_converter, reference_for
from streaming.conversion.rules.declaration import RULES_PATH, RulesError
from streaming.loop.pipeline import PROCESSED_SCHEMA
from streaming.schema_registry import load_schema

PREVIEW_SCHEMA_ID = 0
"""The schema id a preview's encoders write: nothing it encodes leaves the process, and readers strip it."""


class ContractError(ValueError):
    """A schema or rules file that cannot be read or does not fit; the message names the file."""


@dataclass(frozen=True)
class Contract:
    """An output schema (its file and text) and the rules declaration that fills it."""

    schema_file: Path
    schema_str: str
    rules_file: Path = RULES_PATH

    @property
    def schema(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.schema_str)
        return parsed

    def encoder(self) -> WireFormatEncoder:
        return WireFormatEncoder(PREVIEW_SCHEMA_ID, self.schema_str)


BuildConversion = Callable[[Contract], Convert]
"""The conversion a contract defines: per message, wire-format bytes under `PREVIEW_SCHEMA_ID` or a refusal."""


def load_contract(
    schema_file: str | Path = PROCESSED_SCHEMA, rules_file: str | Path | None = None, *, native: bool = True
) -> Contract:
    """The contract of `schema_file` and `rules_file` (default: the repository's declaration), checked as a
    converter starting with them would check them (`native`: with the native kernel, when installed, as
    `KDP_FAST_PATH=native` converters run); `ContractError` names the file at fault."""
    try:
        schema_str = load_schema(schema_file)
    except ValueError as error:
        raise ContractError(str(error)) from None
    contract = Contract(Path(schema_file), schema_str, Path(rules_file) if rules_file else RULES_PATH)
    if contract.schema.get("type") != "record":
        raise ContractError(f"{schema_file} is not an Avro record schema")
    if not contract.rules_file.is_file():
        raise ContractError(f"cannot read rules file {contract.rules_file}: no such file")
    try:
        build_converter(contract.encoder(), contract.rules_file, native=native)
    except RulesError as error:  # UnsupportedRulesError too: an engine that would refuse to start
        raise ContractError(f"{contract.rules_file} with {schema_file}: {error}") from None
    return contract


def reference_conversion(contract: Contract) -> Convert:
    """The reference engine's conversion of `contract`: its rules, its schema's encoder."""
    return reference_converter(contract.encoder(), reference_for(contract.schema, contract.rules_file))
