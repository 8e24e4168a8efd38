"""The native batch form (`streaming.conversion.native_path`, the `kdp_native` kernel) gives what the pure-Python fused
`convert_batch` gives: every column byte for byte, the same rejected messages with the same rejections, the
same runs and byte count, and the same messages handed to the reference; every record's body is what
fastavro reads back as the transform's record.

Each comparison starts both paths from the same state of the transform's memo tables (a value seen for the
first time goes to the reference on either path), so that a difference can only come from the paths.
The kernel-free parts (the layout read from the schema, the choice of path) are tested whatever is installed;
the comparisons need the kernel, which `make install` builds when a Rust toolchain is present.
"""

from __future__ import annotations

import copy
import io
import json
import os
from typing import Any

import fastavro
import pytest
from confluent_kafka import Message
from corpus.hostile_logins import hostile_corpus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fast_path_properties import ENCODER, NOW_MS, PARSED, SCHEMA, VALID, messages_from_parts
from test_transform_properties import payloads

from streaming.conversion import fast_path, native_path
from streaming.conversion import transform as transform_module
from streaming.conversion.convert import ConvertedBatch, reference_converter
from streaming.conversion.encoding import WireFormatEncoder, wire_header
from streaming.conversion.rules import codegen
from streaming.conversion.rules.declaration import UnsupportedRulesError
from streaming.conversion.transform import MIN_EVENT_TIME_MS, transform
from streaming.generator.events import EventFactory, IrregularityRates
from streaming.settings import Settings, SettingsError

#: Set by CI when the kernel should have been built (`.ci/run`, when cargo is present): the native tests then
#: run, and fail, instead of being skipped when `kdp_native` is missing.
KERNEL_REQUIRED = os.environ.get("KDP_REQUIRE_NATIVE") == "1"
needs_kernel = pytest.mark.skipif(
    not native_path.available() and not KERNEL_REQUIRED, reason="kdp_native not built (no Rust toolchain)"
)
PROPERTY = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DAY_MS = 86_400_000


class Paths:
    """The pure fused path and the native one over it, both with their hand-overs to the reference recorded."""

    def __init__(self, encoder: WireFormatEncoder = ENCODER) -> None:
        engine = fast_path.reference_for(encoder.schema)
        names: dict[str, Any] = {}
        exec(compile(codegen.engine_source(engine.rules), "<spied converter>", "exec"), names)  # noqa: S102
        reference = reference_converter(encoder, engine)
        self.handed_over: list[Any] = []

        def spy(value: bytes | None, *rest: Any) -> Any:
            self.handed_over.append(value)
            return reference(value, *rest)

        usual, convert, self.pure = names["build"](wire_header(encoder.schema_id), spy, engine)
        convert.usual, convert.reference = usual, spy
        self.native = native_path.native_batch(encoder, engine, convert)

    def run(self, convert_batch: Any, messages: list[Any], now_ms: int, oldest_ms: int) -> tuple[ConvertedBatch, list]:
        self.handed_over = []
        return convert_batch(messages, now_ms, oldest_ms), self.handed_over


def memo_state() -> tuple[dict, ...]:
    return tuple(dict(memo) for memo in transform_module.REFERENCE.memos.values())


def restore(state: tuple[dict, ...]) -> None:
    """Put the memo tables back in place (the same dict objects: both paths hold them)."""
    for table, saved in zip(transform_module.REFERENCE.memos.values(), state, strict=True):
        table.clear()
        table.update(saved)


def assert_native_same(messages: list[Any], now_ms: int = NOW_MS, oldest_ms: int = MIN_EVENT_TIME_MS) -> ConvertedBatch:
    paths = Paths()
    before = memo_state()
    pure, pure_handed = paths.run(paths.pure, messages, now_ms, oldest_ms)
    after_pure = memo_state()
    restore(before)
    native, native_handed = paths.run(paths.native, messages, now_ms, oldest_ms)

    assert type(native) is ConvertedBatch
    assert native._replace(rejected=[], lanes=None) == pure._replace(rejected=[], lanes=None)
    assert native.lanes.native + native.lanes.fast == pure.lanes.fast and native.lanes.reference == pure.lanes.reference
    assert [type(v) for v in native.values] == [type(v) for v in pure.values]
    assert [(id(m), r) for m, r in native.rejected] == [(id(m), r) for m, r in pure.rejected]
    assert [id(m) for m in native.run_starts] == [id(m) for m in pure.run_starts]
    assert [id(m) for m in native.run_ends] == [id(m) for m in pure.run_ends]
    assert native_handed == pure_handed  # the same messages, in the same order, went to the reference
    assert memo_state() == after_pure
    rejected = {id(m) for m, _ in native.rejected}
    accepted = [m for m in messages if id(m) not in rejected]
    for message, value in zip(accepted, native.values, strict=True):
        record = transform(
            message.value(), message.topic(), message.partition(), message.offset(), now_ms, oldest_ms=oldest_ms
        )
        assert isinstance(record, dict)
        assert value[:5] == b"\x00" + ENCODER.schema_id.to_bytes(4, "big")
        decoded = fastavro.schemaless_reader(io.BytesIO(value[5:]), PARSED, None)
        for name in ("event_time", "processed_at"):
            decoded[name] = int(decoded[name].timestamp() * 1000)
        assert decoded == record
    return native


def kafka_message(value: bytes | None, topic: str = "user-login", partition: int = 0, offset: int = 0) -> Message:
    return Message(topic=topic, partition=partition, offset=offset, key=b"k", value=value, timestamp=(1, NOW_MS))


def event(**changes: Any) -> bytes:
    fields: dict[str, Any] = json.loads(b"{" + VALID + b"}")
    for name, value in changes.items():
        if value is ...:
            fields.pop(name, None)
        else:
            fields[name] = value
    return json.dumps(fields).encode()


UUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
PLAIN = b"{" + VALID + b"}"
EDGE_CASES: dict[str, bytes | None] = {
    "plain": PLAIN,
    "non-ASCII text": event(device_type="iOS\u00e9"),
    "non-ASCII unknown field": event(note="caf\u00e9"),
    "non-ASCII, not escaped": json.dumps({**json.loads(PLAIN), "device_type": "ándroid"}, ensure_ascii=False).encode(),
    "upper-case user id": event(user_id=UUID.upper()),
    "upper-case device id": event(device_id=UUID.upper()),
    "device id": event(device_id=UUID),
    "device id null": event(device_id=None),
    "device id not a UUID": event(device_id="nope"),
    "missing device_type": event(device_type=...),
    "device_type null": event(device_type=None),
    "device_type empty": event(device_type=""),
    "device_type upper": event(device_type="IOS"),
    "device_type unseen": event(device_type="never-seen-before-42"),
    "device_type invalid": event(device_type="bad type!"),
    "too old for the window": event(timestamp=NOW_MS // 1000 - 400 * 86_400),
    "before 2000": event(timestamp=900_000_000),
    "too far in the future": event(timestamp=NOW_MS // 1000 + 3_400),
    "just inside the future bound": event(timestamp=NOW_MS // 1000 + 3_300),
    "milliseconds": event(timestamp=NOW_MS - 5_000),
    "timestamp as digit string": event(timestamp=str(NOW_MS // 1000 - 5)),
    "timestamp as digit string with zeros": event(timestamp="000" + str(NOW_MS // 1000 - 5)),
    "timestamp as 20 digits": event(timestamp="0" * 10 + str(NOW_MS // 1000 - 5)),
    "timestamp empty string": event(timestamp=""),
    "timestamp float": event(timestamp=1720576825.0),
    "timestamp negative": event(timestamp=-1720576825),
    "timestamp big int": event(timestamp=2**64 + 1),
    "timestamp 19-digit int": event(timestamp=10**18 + 7),
    "timestamp bool": event(timestamp=True),
    "timestamp null": event(timestamp=None),
    "missing timestamp": event(timestamp=...),
    "user id a number": event(user_id=12),
    "locale lower": event(locale="ri"),
    "locale unknown": event(locale="XX"),
    "app version unseen": event(app_version="97.31.5-rc.1+b7"),
    "app version invalid": event(app_version="1.x"),
    "app version huge": event(app_version="999999999.2.3"),
    "ip private by first octet": event(ip="10.1.2.3"),
    "ip special first octet": event(ip="172.16.5.4"),
    "ip 192.168": event(ip="192.168.0.1"),
    "ip leading zero": event(ip="01.2.3.4"),
    "ip short": event(ip="1.2.3"),
    "ip octet over 255": event(ip="1.2.3.256"),
    "ip with space": event(ip=" 1.2.3.4"),
    "ipv6": event(ip="2001:DB8::1"),
    "ipv6 mapped": event(ip="::ffff:1.2.3.4"),
    "ipv6 invalid": event(ip="1::2::3"),
    "ipv6 zone": event(ip="fe80::1%eth0"),
    "escaped key": PLAIN.replace(b"user_id", b"user\\u005fid"),
    "escaped value": PLAIN.replace(b"RI", b"\\u0052I"),
    "duplicate key": PLAIN[:-1] + b', "locale": "CA"}',
    "duplicate key, first wrong": b'{"user_id": 5, ' + VALID + b"}",
    "duplicate key, last null": PLAIN[:-1] + b', "timestamp": null}',
    "duplicate key, last absent in effect": PLAIN[:-1] + b', "device_type": "web", "device_type": null}',
    "duplicate device id": PLAIN[:-1] + b', "device_id": "' + UUID.encode() + b'", "device_id": null}',
    "unknown key": event(extra=[1, {"a": None}]),
    "whitespace everywhere": b' \t\r\n{ "user_id" :\n"' + UUID.encode() + b'" , "app_version":"2.3.0","ip":"1.2.3.4",'
    b'"locale":"RI","timestamp" : 1720576825 }\n ',
    "trailing garbage": PLAIN + b"x",
    "two objects": PLAIN + PLAIN,
    "BOM": b"\xef\xbb\xbf" + PLAIN,
    "invalid UTF-8": PLAIN[:-1] + b', "x": "\xff\xfe"}',
    "control byte in a string": PLAIN.replace(b"2.3.0", b"2.3.0\x01"),
    "empty": b"",
    "whitespace only": b"  \n",
    "not JSON": b"user_id=1",
    "JSON array": b"[1, 2]",
    "JSON string": b'"hello"',
    "truncated": PLAIN[:-3],
    "null value (tombstone)": None,
    "nested deeply": b"[" * 5000 + b"]" * 5000,
    "too large": PLAIN[:-1] + b', "pad": "' + b"x" * 70_000 + b'"}',
}


@needs_kernel
@pytest.mark.parametrize("name", list(EDGE_CASES))
def test_native_equals_pure_on_edge_cases(name: str) -> None:
    value = EDGE_CASES[name]
    for _ in range(2):  # first sight of its values, then with the memo tables filled
        assert_native_same([kafka_message(value, offset=o) for o in range(3)])


@needs_kernel
def test_native_converts_the_plain_message_itself_and_hands_the_rest_to_the_pure_path() -> None:
    """Not a check that cannot fail: the kernel must actually write the usual message (nothing handed over)."""
    fallbacks: list[Any] = []
    pure = fast_path.fused_converter(ENCODER)
    usual = pure.usual  # type: ignore[attr-defined]

    def fallback(*args: Any) -> Any:
        fallbacks.append(args[0])
        return usual(*args)

    pure.usual = fallback  # type: ignore[attr-defined]
    convert_batch = native_path.native_batch(ENCODER, transform_module.REFERENCE, pure)
    reference_converter(ENCODER)(PLAIN, "t", 0, 0, NOW_MS, 0)  # its app version is known
    batch = convert_batch([kafka_message(PLAIN), kafka_message(b"junk"), kafka_message(event(ip="::1"))], NOW_MS, 0)
    assert len(batch.values) == 2 and len(batch.rejected) == 1
    assert fallbacks == [b"junk"]  # IPv6 too is written natively (classified by the same Python function)
    assert batch.lanes == (2, 0, 1)


#: Events near the kernel's edges, written as raw JSON text: any key order, spacing, case, absent or null
#: values, both timestamp forms, every IP kind.
@st.composite
def plain_events(draw: st.DrawFn) -> bytes:
    fields: dict[str, Any] = {
        "user_id": draw(st.uuids().map(str) | st.uuids().map(str).map(str.upper) | st.text(max_size=3)),
        "device_id": draw(st.none() | st.uuids().map(str) | st.uuids().map(str).map(str.upper)),
        "device_type": draw(st.none() | st.sampled_from(["ios", "iOS", "android", "", "web", "bad type!", "ÿ"])),
        "locale": draw(st.sampled_from(["CA", "ny", "PR", "XX", "RI"])),
        "ip": draw(st.ip_addresses().map(str) | st.sampled_from(["1.2.3.04", "1.2.3", "300.1.1.1", "a.b.c.d"])),
        "app_version": draw(st.sampled_from(["2.3.0", "2.4.0-beta", "1.0", "3.1.4+b1", "x"])),
        "timestamp": draw(
            st.integers(NOW_MS // 1000 - 10**8, NOW_MS // 1000 + 4000)
            | st.integers(0, 2 * NOW_MS)
            | st.integers(-(2**70), 2**70)
        ),
    }
    if draw(st.booleans()):
        fields["timestamp"] = str(fields["timestamp"])
    names = draw(st.permutations(sorted(fields)))
    kept = [name for name in names if draw(st.integers(0, 9)) > 0]  # sometimes a field is absent
    spaces = st.sampled_from(["", " ", "\n", "\t ", "  "])
    parts = [f"{draw(spaces)}{json.dumps(n)}{draw(spaces)}:{draw(spaces)}{json.dumps(fields[n])}" for n in kept]
    return ("{" + ",".join(parts) + draw(spaces) + "}" + draw(spaces)).encode()


@needs_kernel
@PROPERTY
@given(
    parts=st.lists(
        st.tuples(plain_events() | payloads(), st.sampled_from([0, 1, 2**31]), st.integers(1, 3)), max_size=12
    ),
    topic=st.sampled_from(["user-login", "ünïcode-topic"]),
    oldest_ms=st.sampled_from([0, MIN_EVENT_TIME_MS, NOW_MS - 3_600_000, NOW_MS - 7 * DAY_MS, NOW_MS + DAY_MS]),
)
def test_native_equals_pure_on_generated_batches(
    parts: list[tuple[bytes, int, int]], topic: str, oldest_ms: int
) -> None:
    """Runs of partitions revisited, a partition beyond the schema's int, offsets beyond its long, absent values."""
    messages = messages_from_parts(parts, topic)
    assert_native_same(messages, NOW_MS, oldest_ms)
    assert_native_same(messages, NOW_MS, oldest_ms)  # with the memo tables filled


@needs_kernel
def test_native_equals_pure_on_the_bench_backlog() -> None:
    events = EventFactory(7, IrregularityRates.with_malformed(0.05)).batch(20_000, NOW_MS / 1000)
    messages = [kafka_message(e.value, "user-login", (i // 500) % 6, i) for i, e in enumerate(events)]
    batches = [assert_native_same(messages[i : i + 5000], NOW_MS, NOW_MS - 7 * DAY_MS) for i in range(0, 20_000, 5000)]
    assert sum(len(batch.values) for batch in batches) > 18_000


@needs_kernel
def test_native_equals_pure_on_the_hostile_corpus() -> None:
    corpus = hostile_corpus(NOW_MS // 1000)
    messages = [kafka_message(m.value, "user-login", 0, 17 + i) for i, m in enumerate(corpus)]
    native = assert_native_same(messages, NOW_MS + 2_000, MIN_EVENT_TIME_MS)
    verdicts = {id(m): r.reason for m, r in native.rejected}
    assert [verdicts.get(id(m)) for m in messages] == [m.reason for m in corpus]


def _schema_with(change: Any) -> dict[str, Any]:
    schema = copy.deepcopy(SCHEMA)
    change(schema["fields"])
    return schema


@needs_kernel
@pytest.mark.parametrize(
    "change",
    [
        lambda fields: fields.reverse(),
        lambda fields: fields[1].update(type=["string", "null"]),  # device_id: null second in the union
        lambda fields: fields[5].update(type="long"),  # ip_version a long
    ],
)
def test_native_follows_the_registered_schema(change: Any) -> None:
    """Reordered fields, other types, records the schema cannot hold: what the pure path gives."""
    encoder = WireFormatEncoder(9, _schema_with(change))
    events = EventFactory(11, IrregularityRates.with_malformed(0.05)).batch(3_000, NOW_MS / 1000)
    messages = [kafka_message(e.value, "user-login", 2, i) for i, e in enumerate(events)]
    engine = fast_path.reference_for(encoder.schema)
    pure = fast_path.fused_converter(encoder, engine)
    native = native_path.native_batch(encoder, engine, pure)
    reference_converter(encoder, engine)(PLAIN, "t", 0, 0, NOW_MS, 0)
    native_batch, pure_batch = native(messages, NOW_MS, 0), pure.convert_batch(messages, NOW_MS, 0)  # type: ignore[attr-defined]
    assert native_batch._replace(lanes=None) == pure_batch._replace(lanes=None)
    assert native_batch.lanes.native > 2_000


def test_the_layout_is_read_from_the_registered_schema_and_the_declaration() -> None:
    layout = native_path.native_layout(transform_module.REFERENCE.rules)
    assert len(layout) == len(SCHEMA["fields"])
    assert layout[1] == (1, "value", "null|string", [])  # the second input, as is
    assert layout[5] == (4, "version", "int", [])  # a part of the fifth input (the address)
    assert layout[6] == (4, "class", "enum", SCHEMA["fields"][6]["type"]["symbols"])
    assert layout[11] == (6, "value", "long", [])
    assert layout[13] == (-1, "topic", "string", [])


def test_a_nullable_int_is_written_natively() -> None:
    schema = _schema_with(lambda fields: fields[5].update(type=["null", "int"]))  # ip_version
    assert native_path.native_layout(fast_path.reference_for(schema).rules)[5] == (4, "version", "null|int", [])


def test_a_rule_kind_the_kernel_does_not_implement_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """As a kind added to the vocabulary but not yet to the kernel would be: named, with the field and engine."""
    monkeypatch.setattr(native_path, "NATIVE_KINDS", native_path.NATIVE_KINDS - {"semver"})
    with pytest.raises(UnsupportedRulesError, match=r"native engine \(kdp_native\) cannot run field 'app_version'"):
        native_path.native_layout(transform_module.REFERENCE.rules)
    if native_path.available():
        with pytest.raises(UnsupportedRulesError, match="app_version.*KDP_FAST_PATH=python"):
            fast_path.converter_for(ENCODER, native=True)
    assert fast_path.converter_for(ENCODER, native=False)  # the pure engine runs it


def test_the_pure_path_can_be_forced() -> None:
    convert = fast_path.converter_for(ENCODER, native=False)
    assert convert.convert_batch.__module__ == "streaming.conversion.rules.generated_fast_path"  # type: ignore[attr-defined]
    if native_path.available():
        assert hasattr(fast_path.converter_for(ENCODER).convert_batch, "kernel")  # type: ignore[attr-defined]


def test_the_kernel_is_installed_when_ci_requires_it() -> None:
    if not KERNEL_REQUIRED:
        pytest.skip("KDP_REQUIRE_NATIVE is not set (CI sets it when cargo is present)")
    assert native_path.available(), "KDP_REQUIRE_NATIVE=1 but kdp_native is not importable (see .venv/native.log)"


def test_kdp_fast_path_is_validated_at_start() -> None:
    assert Settings.from_env({}).fast_path == "native"
    assert Settings.from_env({"KDP_FAST_PATH": "python"}).fast_path == "python"
    with pytest.raises(SettingsError, match="KDP_FAST_PATH"):
        Settings.from_env({"KDP_FAST_PATH": "rust"})
