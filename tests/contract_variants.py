"""Proposed contracts for tests: the repository's schema and rules declaration, changed one way, written to
a test's own folder (so the variants always follow the repository's current contract)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from streaming.conversion.rules.declaration import RULES_PATH
from streaming.loop.pipeline import PROCESSED_SCHEMA

NEW_FIELD = "proxy_ip_version"
"""The optional field `with_new_input_key` adds: the IP version of the event's new key `proxy_ip`."""


def _repository() -> tuple[dict[str, Any], dict[str, Any]]:
    return json.loads(PROCESSED_SCHEMA.read_text()), yaml.safe_load(RULES_PATH.read_text())


def _write(folder: Path, name: str, schema: dict[str, Any], rules: dict[str, Any]) -> tuple[Path, Path]:
    schema_file, rules_file = folder / f"{name}.avsc", folder / f"{name}.rules.yaml"
    schema_file.write_text(json.dumps(schema, indent=2))
    rules_file.write_text(yaml.safe_dump(rules, sort_keys=False))
    return schema_file, rules_file


def without_field(folder: Path, field: str) -> tuple[Path, Path]:
    """The contract with output field `field` removed from the schema and the rules."""
    schema, rules = _repository()
    schema["fields"] = [f for f in schema["fields"] if f["name"] != field]
    del rules["fields"][field]
    return _write(folder, f"without-{field}", schema, rules)


def with_new_input_key(folder: Path, *, required: bool = False) -> tuple[Path, Path]:
    """v2: an optional field derived from a new input key (`proxy_ip`, checked by rule kind `ip_address`): an edit
    of the schema and the rules declaration only.

    `required`: the key is required and the field an `int` without a default instead, a contract whose rules
    fit but which no registered version accepts (a reader on it could not read the records before it).
    """
    schema, rules = _repository()
    field: dict[str, Any] = {"name": NEW_FIELD, "type": "int"}
    if not required:
        field = {**field, "type": ["null", "int"], "default": None}
    schema["fields"].append({**field, "doc": "4 or 6: the family of the event's proxy_ip; null when it had none."})
    rules["inputs"]["proxy_ip"] = {"rule": "ip_address", "required": required, "reason": "invalid_ip"}
    rules["fields"][NEW_FIELD] = {"input": "proxy_ip", "part": "version"}
    return _write(folder, "v2-required" if required else "v2", schema, rules)
