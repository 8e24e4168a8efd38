"""Properties of the transform over generated inputs: total, fast path = reference path, output encodable.

Strategies build events whose every field is sometimes valid, sometimes nearly valid, sometimes any JSON
value, sometimes absent; then serialise them in different ways, and sometimes damage the bytes.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from streaming.conversion.encoding import WireFormatEncoder
from streaming.conversion.transform import MIN_EVENT_TIME_MS, REFERENCE, transform
from streaming.generator.events import US_STATES
from streaming.records import MAX_DETAIL_CHARS, Reason, Rejection

SCHEMA_TEXT = (Path(__file__).parents[2] / "schemas" / "processed-data-value.avsc").read_text()
SCHEMA = json.loads(SCHEMA_TEXT)
FIELD_NAMES = [field["name"] for field in SCHEMA["fields"]]
PARSED = fastavro.parse_schema(SCHEMA)
ENCODER = WireFormatEncoder(1, SCHEMA)
NOW_MS = 1_720_576_830_000
REASONS = {reason.value for reason in Reason} - {Reason.INTERNAL_ERROR, Reason.ENCODING_FAILED}

PROPERTY = settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)
uuids = st.uuids().map(str)
#: Per field: values the rules accept (some of them after normalising), and values they may refuse.
valid_values: dict[str, st.SearchStrategy[Any]] = {
    "user_id": uuids | uuids.map(str.upper),
    "device_id": uuids | st.none(),
    "device_type": st.sampled_from(["iOS", "IOS", "ios", "android", "Android", "", "Web", "harmony_os"]),
    "locale": st.sampled_from(US_STATES) | st.sampled_from(US_STATES).map(str.lower),
    "ip": st.ip_addresses().map(str),
    "app_version": st.from_regex(r"\A(0|[1-9][0-9]{0,2})\.[0-9]{1,3}(\.[0-9]{1,2})?(-[a-z0-9.]{1,8})?\Z"),
    "timestamp": st.integers(min_value=NOW_MS // 1000 - 10**8, max_value=NOW_MS // 1000 + 86_400)
    | st.integers(min_value=NOW_MS - 10**11, max_value=NOW_MS + 86_400_000)
    | st.integers(min_value=NOW_MS // 1000 - 10**8, max_value=NOW_MS // 1000).map(str),
}
odd_values: dict[str, st.SearchStrategy[Any]] = {
    "user_id": st.text(max_size=40),
    "device_id": st.text(max_size=40),
    "device_type": st.text(max_size=40),
    "locale": st.text(max_size=3),
    "ip": st.text(alphabet="0123456789.:abcdef%", max_size=45),
    "app_version": st.text(max_size=12),
    "timestamp": st.integers() | st.text(alphabet="0123456789 .-+e", max_size=20),
}


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """Each field valid 85 % of the time, so that about a third of the events are wholly valid."""
    event = {}
    for name in valid_values:
        kind = draw(st.integers(0, 39))
        if kind < 34:
            event[name] = draw(valid_values[name])
        elif kind < 37:
            event[name] = draw(odd_values[name])
        elif kind < 39:
            event[name] = draw(json_values)
    event.update(draw(st.dictionaries(st.text(max_size=8), json_values, max_size=2)))
    return event


@st.composite
def payloads(draw: st.DrawFn) -> bytes:
    """An event serialised one of several ways, sometimes with a BOM, a duplicate key, or damaged bytes."""
    event = draw(events())
    raw = json.dumps(event, ensure_ascii=draw(st.booleans())).encode()
    style = draw(st.integers(0, 9))
    if style == 0:
        raw = b"\xef\xbb\xbf" + raw
    elif style == 1 and event:
        name = draw(st.sampled_from(sorted(event)))
        raw = raw[:-1] + b", " + json.dumps({name: draw(json_values)}).encode()[1:]
    elif style == 2:
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(max_size=4)) + raw[at + draw(st.integers(0, 4)) :]
    elif style == 3:
        raw = raw[: draw(st.integers(0, len(raw)))]
    return raw


def check_rejection(result: Rejection) -> None:
    assert result.reason in REASONS, result
    assert len(result.detail) <= MAX_DETAIL_CHARS


def check_record(record: dict[str, Any]) -> None:
    """The record has the schema's fields in order, and survives encoding and decoding unchanged."""
    assert list(record) == FIELD_NAMES
    encoded = ENCODER.encode(record)
    assert encoded[:5] == b"\x00\x00\x00\x00\x01"
    decoded = fastavro.schemaless_reader(io.BytesIO(encoded[5:]), PARSED, None)
    for name in ("event_time", "processed_at"):  # timestamp-millis reads back as an aware datetime
        assert decoded[name] == datetime.fromtimestamp(record[name] / 1000, UTC)
        decoded[name] = record[name]
    assert decoded == record


VALID = (
    b'"user_id": "0f8fad5b-d9cb-469f-a165-70867728950e", "app_version": "2.3.0", "ip": "1.2.3.4", '
    b'"locale": "RI", "timestamp": 1720576825'
)


@PROPERTY
@given(payloads())
@example(b"{" + VALID.replace(b"user_id", b"user\\u005fid") + b"}")  # an escaped key is the same key
@example(b'{"user_id": 5, ' + VALID + b"}")  # a wrong type, then the right one: the last wins
@example(b"{" + VALID + b', "device_type": null, "device_type": "iOS"}')
@example(b"{" + VALID + b', "extra": "\xff"}')  # invalid UTF-8 in an unknown field: still not UTF-8
@example(b"{" + VALID.replace(b"RI", b"\\u0052I") + b"}")
def test_fast_path_agrees_with_the_reference_and_every_outcome_is_sound(raw: bytes) -> None:
    result = transform(raw, "user-login", 3, 99, NOW_MS)

    assert result == REFERENCE.explain(raw, "user-login", 3, 99, NOW_MS, MIN_EVENT_TIME_MS)
    if isinstance(result, Rejection):
        check_rejection(result)
    else:
        check_record(result)


@PROPERTY
@given(st.binary(max_size=300))
def test_any_bytes_give_a_record_or_a_rejection_never_an_exception(raw: bytes) -> None:
    result = transform(raw, "user-login", 0, 0, NOW_MS)

    assert result == REFERENCE.explain(raw, "user-login", 0, 0, NOW_MS, MIN_EVENT_TIME_MS)
    if isinstance(result, Rejection):
        check_rejection(result)
    else:
        check_record(result)


@PROPERTY
@given(
    user=uuids,
    device=uuids | st.none(),
    state=st.sampled_from(US_STATES),
    ip=st.ip_addresses(),
    version=st.tuples(st.integers(0, 99), st.integers(0, 99), st.integers(0, 99)),
    seconds=st.integers(946_684_800, NOW_MS // 1000 + 3_300),
    as_string=st.booleans(),
)
def test_valid_events_always_become_records_with_their_values(
    user: str,
    device: str | None,
    state: str,
    ip: Any,
    version: tuple[int, int, int],
    seconds: int,
    as_string: bool,
) -> None:
    event = {
        "user_id": user,
        "app_version": ".".join(map(str, version)),
        "ip": str(ip),
        "locale": state,
        "device_id": device,
        "timestamp": str(seconds) if as_string else seconds,
    }

    record = transform(json.dumps(event).encode(), "user-login", 0, 7, NOW_MS)

    assert isinstance(record, dict), record
    assert record["event_time"] == seconds * 1000
    assert (record["app_version_major"], record["app_version_minor"], record["app_version_patch"]) == version
    assert (record["user_id"], record["device_id"], record["locale"]) == (user, device, state)
    assert record["ip_version"] == ip.version
    check_record(record)
