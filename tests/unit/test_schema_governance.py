"""The registry's governance and the schema preview's comparison, without a registry or a broker.

- The data plane never writes the registry: no code under `streaming/` calls a registry method that
  registers, deletes or sets a compatibility level (only `orchestration/schema` does).
- A subject's own compatibility level is told apart from the global one on Confluent's API (404 40408 with
  `defaultToGlobal=false`); Apicurio's is tested on the real registry (`tests/integration/test_schema_registry.py`).
- The preview's per-message comparison (`orchestration.schema.preview`) counts changed fields, refusals and
  reader failures as its report says, for schemas derived from the repository's.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from confluent_kafka.schema_registry.error import SchemaRegistryError
from contract_variants import without_field
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestration.schema.contract import load_contract, reference_conversion
from orchestration.schema.preview import _Comparison
from orchestration.schema.registry import effective_level, subject_level
from streaming.generator.events import EventFactory, IrregularityRates

ROOT = Path(__file__).resolve().parents[2]
REGISTRY_WRITES = {"register_schema", "set_compatibility", "set_config", "delete_subject", "delete_version"}
NOW_MS = 1_720_576_830_000
EVENT = (
    b'{"user_id": "0f8fad5b-d9cb-469f-a165-70867728950e", "app_version": "2.4.1", "ip": "10.0.0.7", '
    b'"locale": "RI", "device_id": "7d3f3c52-5a8d-4c47-9a43-33e2e2b0a6a1", "timestamp": 1720576825, '
    b'"device_type": "iOS"}'
)


class Message(NamedTuple):
    """What the preview reads of a consumed message."""

    payload: bytes | None
    offset_: int

    def value(self) -> bytes | None:
        return self.payload

    def topic(self) -> str:
        return "user-login"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self.offset_


def test_the_data_plane_never_writes_the_registry() -> None:
    calls = {
        f"{path.relative_to(ROOT)}:{node.lineno} {node.func.attr}"
        for path in (ROOT / "streaming").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in REGISTRY_WRITES
    }
    assert calls == set()


def compare(tmp_path: Path, without: str, *messages: Message) -> _Comparison:
    comparison = _Comparison(
        load_contract(), load_contract(*without_field(tmp_path, without)), reference_conversion, NOW_MS, oldest_ms=0
    )
    for message in messages:
        comparison.visit(message)  # type: ignore[arg-type]
    return comparison


def test_a_removed_optional_field_changes_every_record_and_both_readers_still_read(tmp_path: Path) -> None:
    report = compare(tmp_path, "device_id", Message(EVENT, 1), Message(EVENT, 2), Message(b"", 3)).report

    assert (report.messages, report.converted_both, report.changed_records) == (3, 2, 2)
    assert dict(report.changed_fields) == {"device_id": 2}
    assert not report.new_refusals and not report.lifted_refusals  # the empty message: refused by both
    assert report.bytes_proposed < report.bytes_current
    assert report.readers_agree


def test_a_removed_field_without_default_breaks_old_readers_and_says_so(tmp_path: Path) -> None:
    report = compare(tmp_path, "app_version_patch", Message(EVENT, 1)).report

    assert (report.old_reader_failures, report.new_reader_failures) == (1, 0)
    assert not report.readers_agree
    assert report.first_resolution_error is not None
    assert report.first_resolution_error.startswith("old reader on a new record")
    assert any("old reader on new records: 0 of 1" in line for line in report.describe())


class ConfluentRest:
    """What `subject_level` asks of a Confluent Schema Registry's REST session: `GET config/{subject}`."""

    base_urls = ["http://schema-registry:8081"]

    def __init__(self, levels: dict[str, str], global_level: str = "BACKWARD") -> None:
        self.levels, self.global_level = levels, global_level

    def get(self, url: str, query: dict[str, str] | None = None) -> dict[str, str]:
        if url == "config":
            return {"compatibilityLevel": self.global_level}
        subject = url.removeprefix("config/")
        if subject not in self.levels:
            assert query == {"defaultToGlobal": "false"}  # else Confluent answers the global level too
            raise SchemaRegistryError(404, 40408, f"Subject '{subject}' does not have subject-level compatibility")
        return {"compatibilityLevel": self.levels[subject]}


class ConfluentClient:
    def __init__(self, rest: ConfluentRest) -> None:
        self._rest_client = rest


def test_on_confluent_a_subject_without_a_level_of_its_own_is_told_apart_from_the_global_level() -> None:
    client: Any = ConfluentClient(ConfluentRest({"set-value": "FULL_TRANSITIVE"}))

    assert subject_level(client, "set-value") == "FULL_TRANSITIVE"
    assert subject_level(client, "unset-value") is None
    assert effective_level(client, "unset-value") == ("BACKWARD", False)
    assert effective_level(client, "set-value") == ("FULL_TRANSITIVE", True)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for variant contracts that outlives one example of a property test."""
    return tmp_path_factory.mktemp("contracts")


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), malformed=st.floats(0, 0.5))
def test_a_contract_beside_itself_changes_nothing_and_a_removed_field_changes_only_that_field(
    folder: Path, seed: int, malformed: float
) -> None:
    events = EventFactory(seed, IrregularityRates.with_malformed(malformed), users=20).batch(60, now=NOW_MS / 1000)
    messages = [Message(event.value, offset) for offset, event in enumerate(events)]
    current = load_contract()
    same = _Comparison(current, current, reference_conversion, NOW_MS, oldest_ms=0)
    for message in messages:
        same.visit(message)  # type: ignore[arg-type]
    removed = compare(folder, "device_id", *messages).report

    assert same.report.changed_records == 0 and not same.report.new_refusals and not same.report.lifted_refusals
    assert same.report.bytes_current == same.report.bytes_proposed and same.report.readers_agree
    assert removed.converted_both == same.report.converted_both
    assert dict(removed.changed_fields) == ({"device_id": removed.converted_both} if removed.converted_both else {})
