"""The rules declaration: checked against its schema at load, the one source of every engine.

- A declaration error fails at load, naming what is wrong.
- The generated pure engine on disk is what the generator writes today (regenerating changes nothing).
- No output field is named as a string literal in `streaming/` or `native/` (the declaration names them).
- An optional field copied or derived from a new input key by an existing rule kind is an edit of the schema
  and the declaration only: all three engines then write it, byte for byte alike, the fast lanes included.
- On the production batch path (the router over the converter `kdp stream` builds), the generator's usual
  traffic is decided by the fast lanes, every message of it.
"""

from __future__ import annotations

import copy
import io
import json
import re
from pathlib import Path
from typing import Any

import fastavro
import pytest
import yaml
from confluent_kafka import Message

from streaming.conversion import fast_path, native_path
from streaming.conversion.convert import Converted, reference_converter
from streaming.conversion.encoding import WireFormatEncoder
from streaming.conversion.rules import codegen
from streaming.conversion.rules.declaration import RULES_PATH, SCHEMA_PATH, RulesError, load_rules
from streaming.conversion.transform import MIN_EVENT_TIME_MS
from streaming.generator.events import EventFactory, IrregularityRates
from streaming.loop.router import BatchRouter

ROOT = Path(__file__).parents[2]
SCHEMA = json.loads(SCHEMA_PATH.read_text())
DECLARATION = yaml.safe_load(RULES_PATH.read_text())
NOW_MS = 1_720_576_830_000


def declaration_with(change: Any) -> dict[str, Any]:
    declared = copy.deepcopy(DECLARATION)
    change(declared)
    return declared


def schema_with(change: Any) -> dict[str, Any]:
    schema = copy.deepcopy(SCHEMA)
    change(schema["fields"])
    return schema


# -- a declaration error fails at load, naming it ------------------------------------------------------------


@pytest.mark.parametrize(
    ("declaration", "schema", "error"),
    [
        (
            declaration_with(lambda d: d["inputs"]["ip"].update(rule="ipv4")),
            SCHEMA,
            r"input 'ip': unknown rule kind 'ipv4' \(known: uuid, platform, code, ip_address, semver, epoch_time, ",
        ),
        (
            declaration_with(lambda d: d["fields"]["locale"].update(input="state")),
            SCHEMA,
            "field 'locale': input 'state' is not declared under inputs",
        ),
        (
            declaration_with(lambda d: d["fields"]["ip_class"].update(part="country")),
            SCHEMA,
            "field 'ip_class': rule kind 'ip_address' has no part 'country' \\(parts: canonical, version, class\\)",
        ),
        (
            declaration_with(lambda d: d["fields"]["source_offset"].update(context="timestamp")),
            SCHEMA,
            "field 'source_offset': unknown context 'timestamp'",
        ),
        (
            declaration_with(lambda d: d["inputs"]["user_id"].update(reason="bad_user")),
            SCHEMA,
            "input 'user_id': reason 'bad_user' is not a dead-letter reason",
        ),
        (
            declaration_with(lambda d: d["inputs"]["locale"].pop("codes")),
            SCHEMA,
            "input 'locale': rule kind 'code' needs codes",
        ),
        (
            declaration_with(lambda d: d["inputs"]["ip"].update(case="lower")),
            SCHEMA,
            "input 'ip': unknown option 'case' for rule kind 'ip_address'",
        ),
        (
            declaration_with(lambda d: d["fields"].pop("ip_version")),
            SCHEMA,
            "field 'ip_version' of the schema is not declared under fields",
        ),
        (
            declaration_with(lambda d: d["fields"].update(country={"input": "locale"})),
            SCHEMA,
            "field 'country' is declared but not in the schema",
        ),
        (
            DECLARATION,
            schema_with(lambda fields: fields[2].update(type="int")),  # device_type
            "field 'device_type': Avro type \"int\" cannot hold what the rule produces: text",
        ),
        (
            DECLARATION,
            schema_with(lambda fields: fields[6]["type"].update(symbols=["UNKNOWN", "PUBLIC"])),  # ip_class
            "field 'ip_class': Avro type .* cannot hold what the rule produces: address_class \\(an enum with",
        ),
        (
            declaration_with(lambda d: d.update(key="ip_version")),
            SCHEMA,
            "key must name a field of text that is never null, not 'ip_version'",
        ),
        (
            declaration_with(lambda d: d.update(owner="platform team")),
            SCHEMA,
            "unknown key 'owner'",
        ),
    ],
)
def test_a_declaration_error_fails_at_load_naming_it(declaration: Any, schema: Any, error: str) -> None:
    with pytest.raises(RulesError, match=error):
        load_rules(schema, declaration)


def test_a_declaration_that_is_not_valid_yaml_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "x.rules.yaml"
    broken.write_text("inputs: {user_id: [\n")
    with pytest.raises(RulesError, match=f"{broken}: not valid YAML"):
        load_rules(SCHEMA, broken)


def test_the_repository_declaration_loads() -> None:
    rules = load_rules(SCHEMA_PATH, RULES_PATH)
    assert [field.name for field in rules.fields] == [field["name"] for field in SCHEMA["fields"]]


# -- generated code is current; no field name in the code -------------------------------------------------------


def test_regenerating_the_pure_engine_changes_nothing() -> None:
    assert codegen.main(["--check"]) == 0, f"run {codegen.COMMAND}"
    assert codegen.GENERATED_PATH.read_text().startswith(
        '"""Generated by `python -m streaming.conversion.rules.codegen`'
    )


def test_no_output_field_is_named_as_a_string_literal_in_the_code() -> None:
    """The declaration under `schemas/` is the one place that says which field is made how."""
    names = "|".join(field["name"] for field in SCHEMA["fields"])
    literal = re.compile(rf"""["']({names})["']""")
    found = [
        (str(path.relative_to(ROOT)), match.group(1), number)
        for folder in ("streaming", "native/src")
        for path in sorted((ROOT / folder).rglob("*"))
        if path.suffix in (".py", ".rs")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        for match in literal.finditer(line)
    ]
    assert found == []


# -- a new optional field is an edit of the schema and the declaration only ------------------------------------


def _v2(tmp_path: Path) -> tuple[Path, Path]:
    """v2: `referrer` copied from a new input key (rule kind text), and `os_version_major` derived from another
    new one (rule kind semver: its reason is an existing one, since a reason of its own would be a contract
    change of `streaming/records.py`); both optional, both null for events without them."""
    schema = copy.deepcopy(SCHEMA)
    schema["fields"] += [
        {"name": "referrer", "type": ["null", "string"], "default": None},
        {"name": "os_version_major", "type": ["null", "int"], "default": None},
    ]
    declaration = copy.deepcopy(DECLARATION)
    declaration["inputs"]["referrer"] = {"rule": "text"}
    declaration["inputs"]["os_version"] = {"rule": "semver", "reason": "invalid_app_version"}
    declaration["fields"]["referrer"] = {"input": "referrer"}
    declaration["fields"]["os_version_major"] = {"input": "os_version", "part": "major"}
    schema_path, rules_path = tmp_path / "v2.avsc", tmp_path / "v2.rules.yaml"
    schema_path.write_text(json.dumps(schema))
    rules_path.write_text(yaml.safe_dump(declaration))
    return schema_path, rules_path


def _kafka(values: list[bytes]) -> list[Message]:
    return [
        Message(topic="user-login", partition=i // 250, offset=i, key=b"k", value=v, timestamp=(1, NOW_MS))
        for i, v in enumerate(values)
    ]


def test_an_optional_field_from_a_new_input_key_is_taken_by_every_engine_with_no_code_change(tmp_path: Path) -> None:
    schema_path, rules_path = _v2(tmp_path)
    encoder = WireFormatEncoder(77, schema_path.read_text())
    events = EventFactory(5, IrregularityRates.with_malformed(0.05)).batch(1_000, NOW_MS / 1000)
    values = []
    for n, event in enumerate(events):  # two of three carry the new keys, as a v2 producer would send them
        extra = b', "referrer": "https://example.com/p%d", "os_version": "17.%d.1"' % (n, n % 3) if n % 3 else b""
        values.append(event.value[:-1] + extra + b"}" if event.value.endswith(b"}") else event.value)

    pure = fast_path.build_converter(encoder, rules_path, native=False)
    reference = pure.reference  # type: ignore[attr-defined]
    assert pure.__module__ != "streaming.conversion.rules.generated_fast_path"  # generated at start for v2
    engines = {"pure": pure.convert_batch}  # type: ignore[attr-defined]
    if native_path.available():
        engines["native"] = fast_path.build_converter(encoder, rules_path, native=True).convert_batch  # type: ignore[attr-defined]

    messages = _kafka(values)
    expected = [reference(v, "user-login", i // 250, i, NOW_MS, MIN_EVENT_TIME_MS) for i, v in enumerate(values)]
    records = [e for e in expected if isinstance(e, Converted)]
    parsed = fastavro.parse_schema(json.loads(schema_path.read_text()))
    decoded = [fastavro.schemaless_reader(io.BytesIO(r.value[5:]), parsed, None) for r in records]
    assert {d["referrer"] for d in decoded} > {None} and {d["os_version_major"] for d in decoded} == {None, 17}
    for name, convert_batch in engines.items():
        batch = convert_batch(messages, NOW_MS, MIN_EVENT_TIME_MS)
        assert batch.values == [r.value for r in records], name
        assert [r for _m, r in batch.rejected] == [e for e in expected if not isinstance(e, Converted)], name
        assert batch.lanes.reference == len(batch.rejected), name  # every record by a fast lane
        if name == "native":
            again = convert_batch(messages, NOW_MS, MIN_EVENT_TIME_MS)  # the version memo filled: all native
            assert again.lanes.native == len(records), again.lanes


# -- the fast-lane share on the production batch path ---------------------------------------------------------


@pytest.mark.parametrize("native", [False, True])
def test_usual_traffic_takes_the_fast_lanes_on_the_production_batch_path(native: bool) -> None:
    """The router over `converter_for` (what `kdp stream` runs), fresh, on the generator's valid events."""
    if native and not native_path.available():
        pytest.skip("kdp_native not built")
    encoder = WireFormatEncoder(3, SCHEMA)
    router = BatchRouter(fast_path.converter_for(encoder, native=native), "processed", "dlq")
    rates = IrregularityRates.with_malformed(0.0, timestamp_as_string=0.05)  # valid, the usual variety
    events = EventFactory(13, rates).batch(6_000, NOW_MS / 1000)
    messages = _kafka([event.value for event in events])
    lanes = [router.route(messages[i : i + 2_000], NOW_MS, MIN_EVENT_TIME_MS).lanes for i in range(0, 6_000, 2_000)]
    assert sum(lane.reference for lane in lanes) == 0
    assert sum(lane.native + lane.fast for lane in lanes) == 6_000
    if native:
        assert sum(lane.native for lane in lanes) > 5_900  # the pure lane only for a value's first sight


def test_a_dead_letter_is_counted_as_the_references() -> None:
    router = BatchRouter(fast_path.converter_for(WireFormatEncoder(3, SCHEMA), native=False), "processed", "dlq")
    routed = router.route(_kafka([b"{", b"[]"]), NOW_MS, MIN_EVENT_TIME_MS)
    assert routed.lanes == (0, 0, 2)


def test_the_reference_converter_counts_as_the_reference_one_by_one() -> None:
    router = BatchRouter(reference_converter(WireFormatEncoder(3, SCHEMA)), "processed", "dlq")
    events = EventFactory(2, IrregularityRates.with_malformed(0.0)).batch(10, NOW_MS / 1000)
    assert router.route(_kafka([e.value for e in events]), NOW_MS, MIN_EVENT_TIME_MS).lanes == (0, 0, 10)


def test_kdp_stream_refuses_a_schema_its_declaration_does_not_fit_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A converter whose registered schema has a field the declaration does not make does not start."""
    from kdp import cli
    from streaming.loop import pipeline

    schema = schema_with(lambda fields: fields.append({"name": "country", "type": "string"}))
    monkeypatch.setattr(
        pipeline, "open_converter", lambda *a, **k: fast_path.converter_for(WireFormatEncoder(9, schema))
    )

    assert cli.main(["stream", "--until-caught-up"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [
        f"kdp: configuration error: {RULES_PATH}: field 'country' of the schema is not declared under fields"
    ]


def test_a_rule_kind_an_engine_does_not_implement_is_refused_at_start_naming_the_field_and_the_engine(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As a kind added to the vocabulary but not (yet) to an engine would be: the start fails, nothing slows."""
    from types import SimpleNamespace

    from streaming.conversion.rules import kinds
    from streaming.conversion.rules.declaration import UnsupportedRulesError

    monkeypatch.setitem(kinds.KINDS, "geohash", kinds.RuleKind("geohash", (str,), {"text": kinds.TEXT}, {}, None))
    schema = schema_with(lambda fields: fields.append({"name": "place", "type": ["null", "string"], "default": None}))
    declared = declaration_with(
        lambda d: (d["inputs"].update(geo={"rule": "geohash"}), d["fields"].update(place={"input": "geo"}))
    )
    rules = load_rules(schema, declared)  # the declaration itself is fine
    encoder = WireFormatEncoder(5, schema)

    with pytest.raises(UnsupportedRulesError, match="reference engine cannot run field 'place' \\(input 'geo'\\)"):
        fast_path.build_converter(encoder, declared, native=False)
    with pytest.raises(UnsupportedRulesError, match="pure fast engine cannot run field 'place' \\(input 'geo'\\)"):
        fast_path.fused_converter(encoder, SimpleNamespace(rules=rules))  # type: ignore[arg-type]
    with pytest.raises(UnsupportedRulesError, match="native engine \\(kdp_native\\) cannot run field 'place'"):
        native_path.native_layout(rules)
