"""A contract: an output schema and the conversion rules that fill it, read from files and checked.

`load_contract(schema_file, rules_file)` reads both and raises `ContractError` with one line naming the file
when either cannot be read or does not fit. `reference_conversion(contract)` is the conversion it defines,
as the reference engine runs it: what `preview` runs for each side. The preview takes the conversion as a
parameter (`BuildConversion`), so the engines a converter runs can be compared the same way.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streaming.conversion import Convert, reference_converter
from streaming.encoding import WireFormatEncoder
from streaming.pipeline import PROCESSED_SCHEMA
from streaming.schema_registry import load_schema

PREVIEW_SCHEMA_ID = 0
"""The schema id a preview's encoders write: nothing it encodes leaves the process, and readers strip it."""


class ContractError(ValueError):
    """A schema or rules file that cannot be read or does not fit; the message names the file."""


@dataclass(frozen=True)
class Contract:
    """An output schema (its file and text) and the rules file that fills it (None: the current rules)."""

    schema_file: Path
    schema_str: str
    rules_file: Path | None = None

    @property
    def schema(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.schema_str)
        return parsed

    @property
    def field_names(self) -> list[str]:
        return [f["name"] for f in self.schema.get("fields", ())]


BuildConversion = Callable[[Contract], Convert]
"""The conversion a contract defines: per message, wire-format bytes under `PREVIEW_SCHEMA_ID` or a refusal."""


def load_contract(schema_file: str | Path = PROCESSED_SCHEMA, rules_file: str | Path | None = None) -> Contract:
    """The contract of `schema_file` (an Avro record schema) and `rules_file`; `ContractError` names the file."""
    try:
        schema_str = load_schema(schema_file)
    except ValueError as error:
        raise ContractError(str(error)) from None
    contract = Contract(Path(schema_file), schema_str, Path(rules_file) if rules_file else None)
    if contract.schema.get("type") != "record":
        raise ContractError(f"{schema_file} is not an Avro record schema")
    if contract.rules_file is not None and not contract.rules_file.is_file():
        raise ContractError(f"cannot read rules file {contract.rules_file}: no such file")
    return contract


def reference_conversion(contract: Contract) -> Convert:
    """The reference engine's conversion into `contract`'s schema, with the repository's conversion rules."""
    return reference_converter(WireFormatEncoder(PREVIEW_SCHEMA_ID, contract.schema_str))
