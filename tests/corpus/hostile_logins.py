"""Hostile login messages, each with the outcome the converter owes it: a specification, not a fixture.

Every `HostileMessage` is one source message (value and key) and what must become of it: either a dead
letter whose `kdp.dlq.reason` is `reason`, or (`reason` None) a processed record whose fields include
`record`. The expectations are written from the contracts in `streaming/conversion/transform.py`, `streaming/conversion/ip_classes.py`
and `schemas/README.md`, never computed by the transform, so the converter is checked against them.

The messages go after what breaks parsers and pipelines: invalid UTF-8, byte-order marks, deep nesting,
huge numbers, NaN and Infinity, duplicate keys, raw control characters, lone surrogates, top-level arrays
and scalars, a wrong JSON type in every field, empty strings and nulls, timestamps in seconds,
milliseconds, micro- and nanoseconds, negative or far in the future, IPv6 and malformed addresses, and
sizes on either side of the 64 KiB limit.

`hostile_corpus(now_s)` builds the corpus for a processing time shortly after `now_s` (epoch seconds);
timestamps near the future bound depend on it.
"""

# ruff: noqa: E501 - one message a line reads as a table; wrapping would hide the expectations

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from streaming.conversion.transform import MAX_MESSAGE_BYTES
from streaming.records import Reason

USER_ID = "6f1c2a7e-3b4d-4c5e-8f90-1a2b3c4d5e6f"
DEVICE_ID = "0a9b8c7d-6e5f-4a3b-9c2d-1e0f2a3b4c5d"
KEY = b"hostile-key"


@dataclass(frozen=True)
class HostileMessage:
    name: str
    value: bytes | None
    reason: Reason | None
    """The dead letter's reason; None when the message must become a processed record."""
    record: Mapping[str, Any] = field(default_factory=dict)
    """The record's fields that differ from the base event's record (see `expected_record`)."""
    key: bytes | None = KEY


def base_event(now_s: int) -> dict[str, Any]:
    """A valid event, as the generator writes one."""
    return {
        "user_id": USER_ID,
        "device_id": DEVICE_ID,
        "device_type": "ios",
        "locale": "CA",
        "ip": "8.8.8.8",
        "app_version": "2.3.0",
        "timestamp": now_s,
    }


def expected_record(now_s: int, message: HostileMessage) -> dict[str, Any]:
    """The fields the processed record of `message` must have (all but `processed_at` and `source_*`)."""
    assert message.reason is None, f"{message.name} must become a dead letter, not a record"
    return {
        "user_id": USER_ID,
        "device_id": DEVICE_ID,
        "device_type": "ios",
        "locale": "CA",
        "ip": "8.8.8.8",
        "ip_version": 4,
        "ip_class": "PUBLIC",
        "app_version": "2.3.0",
        "app_version_major": 2,
        "app_version_minor": 3,
        "app_version_patch": 0,
        "event_time": now_s * 1000,
        **message.record,
    }


def hostile_corpus(now_s: int) -> list[HostileMessage]:
    corpus = [
        *_bytes_and_encodings(now_s),
        *_json_syntax(now_s),
        *_top_level_values(),
        *_numbers(now_s),
        *_wrong_types_and_nulls(now_s),
        *_timestamps(now_s),
        *_addresses(now_s),
        *_field_values(now_s),
        *_sizes(now_s),
        *_keys(now_s),
    ]
    names = [message.name for message in corpus]
    assert len(names) == len(set(names)), "corpus names must be unique"
    return corpus


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def _with(now_s: int, **changes: Any) -> bytes:
    return _json({**base_event(now_s), **changes})


def _without(now_s: int, name: str) -> bytes:
    event = base_event(now_s)
    del event[name]
    return _json(event)


def _plus_unknown(now_s: int, raw_value: bytes) -> bytes:
    """The base event with one more field, `extra`, whose raw JSON text is `raw_value`."""
    return _json(base_event(now_s))[:-1] + b', "extra": ' + raw_value + b"}"


def _bytes_and_encodings(now_s: int) -> list[HostileMessage]:
    valid = _json(base_event(now_s))
    bom = b"\xef\xbb\xbf"
    return [
        HostileMessage("tombstone (no value)", None, Reason.EMPTY),
        HostileMessage("zero bytes", b"", Reason.EMPTY),
        HostileMessage("only whitespace", b" \t\r\n ", Reason.EMPTY),
        HostileMessage("only a byte-order mark", bom, Reason.EMPTY),
        HostileMessage("byte-order mark then a valid event", bom + valid, None),
        HostileMessage("two byte-order marks", bom + bom + valid, Reason.INVALID_JSON),
        HostileMessage("UTF-16LE with its byte-order mark", b"\xff\xfe" + valid.decode().encode("utf-16-le"), Reason.NOT_UTF8),
        HostileMessage("UTF-16LE without byte-order mark (NULs)", valid.decode().encode("utf-16-le"), Reason.INVALID_JSON),
        HostileMessage("Latin-1 accent in an unknown field", _plus_unknown(now_s, b'"caf\xe9"'), Reason.NOT_UTF8),
        HostileMessage("lone continuation byte", _plus_unknown(now_s, b'"\x80"'), Reason.NOT_UTF8),
        HostileMessage("overlong encoding of '/'", _plus_unknown(now_s, b'"\xc0\xaf"'), Reason.NOT_UTF8),
        HostileMessage("UTF-8-encoded surrogate", _plus_unknown(now_s, b'"\xed\xa0\x80"'), Reason.NOT_UTF8),
        HostileMessage("truncated multi-byte sequence", valid + b"\xe2\x82", Reason.NOT_UTF8),
        HostileMessage("Avro record in wire format on the wrong topic", b"\x00\x00\x00\x00\x07H\xff\xfe\x02abc", Reason.NOT_UTF8),
        HostileMessage("NUL bytes only", b"\x00\x00\x00", Reason.INVALID_JSON),
        HostileMessage("valid UTF-8 in an unknown field", _plus_unknown(now_s, _json("café ☕ 😀")), None),
    ]  # fmt: skip


def _json_syntax(now_s: int) -> list[HostileMessage]:
    valid = _json(base_event(now_s))
    return [
        HostileMessage("NaN timestamp", _with(now_s)[:-1] + b', "timestamp": NaN}', Reason.INVALID_JSON),
        HostileMessage("Infinity in an unknown field", _plus_unknown(now_s, b"Infinity"), Reason.INVALID_JSON),
        HostileMessage("-Infinity at top level", b"-Infinity", Reason.INVALID_JSON),
        HostileMessage("trailing garbage", valid + b" x", Reason.INVALID_JSON),
        HostileMessage("two objects back to back", valid + valid, Reason.INVALID_JSON),
        HostileMessage("trailing newline and spaces", valid + b"\n  ", None),
        HostileMessage("truncated half-way", valid[: len(valid) // 2], Reason.INVALID_JSON),
        HostileMessage("single quotes", valid.replace(b'"', b"'"), Reason.INVALID_JSON),
        HostileMessage("trailing comma", valid[:-1] + b",}", Reason.INVALID_JSON),
        HostileMessage("a comment", b"/* login */ " + valid, Reason.INVALID_JSON),
        HostileMessage("raw control character in a string", _plus_unknown(now_s, b'"a\x01b"'), Reason.INVALID_JSON),
        HostileMessage("raw tab in a string", _plus_unknown(now_s, b'"a\tb"'), Reason.INVALID_JSON),
        HostileMessage("raw newline in a string", _plus_unknown(now_s, b'"a\nb"'), Reason.INVALID_JSON),
        HostileMessage("escaped NUL in an unknown field", _plus_unknown(now_s, b'"a\\u0000b"'), None),
        HostileMessage("DEL character (not a JSON control) in a string", _plus_unknown(now_s, b'"a\x7fb"'), None),
        HostileMessage("lone high surrogate escape in locale", _with(now_s)[:-1] + b', "locale": "\\ud800"}', Reason.INVALID_JSON),
        HostileMessage("lone low surrogate escape in an unknown field", _plus_unknown(now_s, b'"\\udc00"'), Reason.INVALID_JSON),
        HostileMessage("surrogate pair escape in an unknown field", _plus_unknown(now_s, b'"\\ud83d\\ude00"'), None),
        HostileMessage("unknown field nested 100 deep", _plus_unknown(now_s, b"[" * 100 + b"]" * 100), None),
        HostileMessage("unknown field nested 5000 deep", _plus_unknown(now_s, b'{"a":' * 5000 + b"1" + b"}" * 5000), Reason.INVALID_JSON),
        HostileMessage("top-level arrays nested 20000 deep", b"[" * 20000 + b"]" * 20000, Reason.INVALID_JSON),
        HostileMessage("user_id nested in arrays 50 deep", _with(now_s, user_id=json.loads("[" * 50 + "]" * 50)), Reason.WRONG_TYPE),
        HostileMessage("duplicate user_id, the last valid", b'{"user_id": "nope", ' + valid[1:], None, {"user_id": USER_ID}),
        HostileMessage("duplicate user_id, the last invalid", valid[:-1] + b', "user_id": "nope"}', Reason.INVALID_USER_ID),
        HostileMessage("duplicate timestamp, the last milliseconds", valid[:-1] + f', "timestamp": {now_s * 1000 + 123}}}'.encode(), None,
                       {"event_time": now_s * 1000 + 123}),
    ]  # fmt: skip


def _top_level_values() -> list[HostileMessage]:
    return [
        HostileMessage(f"top-level {name}", raw, Reason.NOT_AN_OBJECT)
        for name, raw in [
            ("empty array", b"[]"),
            ("array holding an event", b'[{"user_id": "' + USER_ID.encode() + b'"}]'),
            ("null", b"null"),
            ("string", b'"user-login"'),
            ("integer", b"42"),
            ("boolean", b"true"),
            ("integer beyond 64 bits", b"1" + b"0" * 40),
            ("number beyond float range", b"1e999"),
        ]
    ] + [HostileMessage("empty object", b"{}", Reason.MISSING_FIELD)]


def _numbers(now_s: int) -> list[HostileMessage]:
    huge_int = b"1" + b"0" * 40
    return [
        HostileMessage("huge integer in an unknown field", _plus_unknown(now_s, huge_int), None),
        HostileMessage("number beyond float range in an unknown field", _plus_unknown(now_s, b"1e999"), None),
        HostileMessage("user_id a number beyond float range", _with(now_s)[:-1] + b', "user_id": 1e999}', Reason.WRONG_TYPE),
        HostileMessage("user_id an integer beyond 64 bits", _with(now_s)[:-1] + b', "user_id": ' + huge_int + b"}", Reason.WRONG_TYPE),
        HostileMessage("timestamp an integer beyond 64 bits", _with(now_s)[:-1] + b', "timestamp": ' + huge_int + b"}", Reason.INVALID_TIMESTAMP),
        HostileMessage("timestamp a number beyond float range", _with(now_s)[:-1] + b', "timestamp": 1e400}', Reason.INVALID_TIMESTAMP),
        HostileMessage("timestamp with an exponent", _with(now_s)[:-1] + b', "timestamp": 1.7e9}', Reason.WRONG_TYPE),
        HostileMessage("timestamp with a zero fraction", _with(now_s)[:-1] + f', "timestamp": {now_s}.0}}'.encode(), Reason.WRONG_TYPE),
        HostileMessage("timestamp negative zero", _with(now_s)[:-1] + b', "timestamp": -0}', Reason.INVALID_TIMESTAMP),
    ]  # fmt: skip


_WRONG_VALUES: dict[str, Any] = {
    "an integer": 7,
    "a fraction": 2.5,
    "a boolean": False,
    "an array": ["8.8.8.8"],
    "an object": {"value": "x"},
}
_REQUIRED = ("user_id", "locale", "ip", "app_version", "timestamp")


def _wrong_types_and_nulls(now_s: int) -> list[HostileMessage]:
    messages = []
    for name in base_event(now_s):
        for kind, value in _WRONG_VALUES.items():
            if name == "timestamp" and kind == "an integer":
                continue  # an integer is the timestamp's own type
            messages.append(HostileMessage(f"{name} {kind}", _with(now_s, **{name: value}), Reason.WRONG_TYPE))
    for name in _REQUIRED:
        messages.append(HostileMessage(f"{name} null", _with(now_s, **{name: None}), Reason.MISSING_FIELD))
        messages.append(HostileMessage(f"{name} absent", _without(now_s, name), Reason.MISSING_FIELD))
    messages += [
        HostileMessage("device_id null", _with(now_s, device_id=None), None, {"device_id": None}),
        HostileMessage("device_id absent", _without(now_s, "device_id"), None, {"device_id": None}),
        HostileMessage("device_type null", _with(now_s, device_type=None), None, {"device_type": "unknown"}),
        HostileMessage("device_type absent", _without(now_s, "device_type"), None, {"device_type": "unknown"}),
        # Types are checked for every field before presence: the wrong type is reported, not the absence.
        HostileMessage("user_id absent and timestamp a boolean", _json({"device_id": DEVICE_ID, "timestamp": True}),
                       Reason.WRONG_TYPE),
        HostileMessage("user_id \"\"", _with(now_s, user_id=""), Reason.INVALID_USER_ID),
        HostileMessage("device_id \"\"", _with(now_s, device_id=""), Reason.INVALID_DEVICE_ID),
        HostileMessage("device_type \"\"", _with(now_s, device_type=""), None, {"device_type": "unknown"}),
        HostileMessage("locale \"\"", _with(now_s, locale=""), Reason.INVALID_LOCALE),
        HostileMessage("ip \"\"", _with(now_s, ip=""), Reason.INVALID_IP),
        HostileMessage("app_version \"\"", _with(now_s, app_version=""), Reason.INVALID_APP_VERSION),
        HostileMessage("timestamp \"\"", _with(now_s, timestamp=""), Reason.INVALID_TIMESTAMP),
    ]  # fmt: skip
    return messages


def _timestamps(now_s: int) -> list[HostileMessage]:
    now_ms = now_s * 1000
    year_2000_s = 946_684_800
    invalid = Reason.INVALID_TIMESTAMP
    return [
        HostileMessage("timestamp in seconds", _with(now_s, timestamp=now_s), None, {"event_time": now_ms}),
        HostileMessage("timestamp in milliseconds", _with(now_s, timestamp=now_ms + 789), None, {"event_time": now_ms + 789}),
        HostileMessage("timestamp in seconds as a string", _with(now_s, timestamp=str(now_s)), None, {"event_time": now_ms}),
        HostileMessage("timestamp in milliseconds as a string", _with(now_s, timestamp=str(now_ms)), None, {"event_time": now_ms}),
        HostileMessage("timestamp in microseconds", _with(now_s, timestamp=now_ms * 1000), invalid),
        HostileMessage("timestamp in nanoseconds", _with(now_s, timestamp=now_ms * 1_000_000), invalid),
        HostileMessage("timestamp -1", _with(now_s, timestamp=-1), invalid),
        HostileMessage("timestamp minus now", _with(now_s, timestamp=-now_s), invalid),
        HostileMessage("timestamp 0", _with(now_s, timestamp=0), invalid),
        HostileMessage("timestamp 2000-01-01T00:00:00Z", _with(now_s, timestamp=year_2000_s), None, {"event_time": year_2000_s * 1000}),
        HostileMessage("timestamp one second before 2000", _with(now_s, timestamp=year_2000_s - 1), invalid),
        HostileMessage("timestamp 10 minutes ahead", _with(now_s, timestamp=now_s + 600), None, {"event_time": now_ms + 600_000}),
        HostileMessage("timestamp 2 hours ahead", _with(now_s, timestamp=now_s + 7200), invalid),
        HostileMessage("timestamp in 2100", _with(now_s, timestamp=4_102_444_800), invalid),
        HostileMessage("timestamp in 3000, milliseconds", _with(now_s, timestamp=32_503_680_000_000), invalid),
        HostileMessage("timestamp string with a space", _with(now_s, timestamp=f" {now_s}"), invalid),
        HostileMessage("timestamp string with a fraction", _with(now_s, timestamp=f"{now_s}.5"), invalid),
        HostileMessage("timestamp string negative", _with(now_s, timestamp="-1"), invalid),
        HostileMessage("timestamp string of full-width digits", _with(now_s, timestamp="１７００００００００"), invalid),
        HostileMessage("timestamp string of 25 digits", _with(now_s, timestamp="1" * 25), invalid),
        HostileMessage("timestamp ISO-8601 string", _with(now_s, timestamp="2024-01-01T00:00:00Z"), invalid),
    ]  # fmt: skip


def _addresses(now_s: int) -> list[HostileMessage]:
    def ok(name: str, ip: str, canonical: str, version: int, ip_class: str) -> HostileMessage:
        return HostileMessage(
            name, _with(now_s, ip=ip), None, {"ip": canonical, "ip_version": version, "ip_class": ip_class}
        )

    def bad(name: str, ip: str) -> HostileMessage:
        return HostileMessage(name, _with(now_s, ip=ip), Reason.INVALID_IP)

    return [
        ok("IPv6 loopback", "::1", "::1", 6, "LOOPBACK"),
        ok("IPv6 upper case with zeros", "2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1", 6, "RESERVED"),
        ok("IPv6 global unicast", "2a00:1450:4001:82a::200e", "2a00:1450:4001:82a::200e", 6, "PUBLIC"),
        ok("IPv4-mapped IPv6", "::ffff:8.8.8.8", "::ffff:8.8.8.8", 6, "PUBLIC"),
        ok("IPv6 of 45 characters", "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
           "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 6, "MULTICAST"),
        ok("IPv6 link-local", "FE80::1", "fe80::1", 6, "LINK_LOCAL"),
        ok("IPv4 unspecified", "0.0.0.0", "0.0.0.0", 4, "UNSPECIFIED"),
        ok("IPv4 carrier-grade NAT", "100.64.0.1", "100.64.0.1", 4, "SHARED"),
        ok("IPv4 private", "10.0.0.1", "10.0.0.1", 4, "PRIVATE"),
        ok("IPv4 broadcast", "255.255.255.255", "255.255.255.255", 4, "RESERVED"),
        bad("IPv6 with a zone id", "fe80::1%eth0"),
        bad("IPv6 in brackets", "[::1]"),
        bad("IPv6 with two '::'", "2001:db8::1::1"),
        bad("IPv6 with nine groups", "1:2:3:4:5:6:7:8:9"),
        bad("IPv4 octet over 255", "256.1.1.1"),
        bad("IPv4 with three octets", "1.2.3"),
        bad("IPv4 with a leading zero", "01.2.3.4"),
        bad("IPv4 with a trailing space", "1.2.3.4 "),
        bad("IPv4 with a prefix length", "1.2.3.4/24"),
        bad("IPv4 with a port", "1.2.3.4:443"),
        bad("IPv4 followed by NUL", "1.2.3.4\u0000"),
        bad("IPv4 in full-width digits", "１.２.３.４"),
        bad("IPv4 as one decimal number in a string", "134744072"),
        bad("a host name", "localhost"),
    ]  # fmt: skip


def _field_values(now_s: int) -> list[HostileMessage]:
    return [
        HostileMessage("user_id upper case", _with(now_s, user_id=USER_ID.upper()), None, {"user_id": USER_ID}),
        HostileMessage("user_id nil UUID", _with(now_s, user_id="00000000-0000-0000-0000-000000000000"), None,
                       {"user_id": "00000000-0000-0000-0000-000000000000"}),
        HostileMessage("user_id in braces", _with(now_s, user_id="{" + USER_ID + "}"), Reason.INVALID_USER_ID),
        HostileMessage("user_id without dashes", _with(now_s, user_id=USER_ID.replace("-", "")), Reason.INVALID_USER_ID),
        HostileMessage("user_id 'undefined'", _with(now_s, user_id="undefined"), Reason.INVALID_USER_ID),
        HostileMessage("user_id with an escaped NUL", _with(now_s, user_id=USER_ID + "\u0000"), Reason.INVALID_USER_ID),
        HostileMessage("user_id with full-width digits", _with(now_s, user_id="６" + USER_ID[1:]), Reason.INVALID_USER_ID),
        HostileMessage("device_id upper case", _with(now_s, device_id=DEVICE_ID.upper()), None, {"device_id": DEVICE_ID}),
        HostileMessage("device_id '0'", _with(now_s, device_id="0"), Reason.INVALID_DEVICE_ID),
        HostileMessage("device_type 'iOS'", _with(now_s, device_type="iOS"), None, {"device_type": "ios"}),
        HostileMessage("device_type 'ANDROID'", _with(now_s, device_type="ANDROID"), None, {"device_type": "android"}),
        HostileMessage("device_type a new platform", _with(now_s, device_type="tvOS.17_beta-1"), None,
                       {"device_type": "tvos.17_beta-1"}),
        HostileMessage("device_type of 32 characters", _with(now_s, device_type="a" * 32), None, {"device_type": "a" * 32}),
        HostileMessage("device_type of 33 characters", _with(now_s, device_type="a" * 33), Reason.INVALID_DEVICE_TYPE),
        HostileMessage("device_type with a space", _with(now_s, device_type="Windows Phone"), Reason.INVALID_DEVICE_TYPE),
        HostileMessage("device_type starting with '-'", _with(now_s, device_type="-x"), Reason.INVALID_DEVICE_TYPE),
        HostileMessage("device_type with a BEL control", _with(now_s, device_type="io\u0007s"), Reason.INVALID_DEVICE_TYPE),
        HostileMessage("device_type with non-ASCII letters", _with(now_s, device_type="ıos"), Reason.INVALID_DEVICE_TYPE),
        HostileMessage("locale lower case", _with(now_s, locale="ny"), None, {"locale": "NY"}),
        HostileMessage("locale a territory", _with(now_s, locale="PR"), None, {"locale": "PR"}),
        HostileMessage("locale a military 'state'", _with(now_s, locale="AA"), Reason.INVALID_LOCALE),
        HostileMessage("locale three letters", _with(now_s, locale="CAL"), Reason.INVALID_LOCALE),
        HostileMessage("locale with a cedilla", _with(now_s, locale="ÇA"), Reason.INVALID_LOCALE),
        HostileMessage("locale with a NUL", _with(now_s, locale="C\u0000"), Reason.INVALID_LOCALE),
        HostileMessage("locale a language tag", _with(now_s, locale="en_US"), Reason.INVALID_LOCALE),
        HostileMessage("app_version MAJOR.MINOR", _with(now_s, app_version="1.2"), None,
                       {"app_version": "1.2", "app_version_major": 1, "app_version_minor": 2, "app_version_patch": 0}),
        HostileMessage("app_version with pre-release and build", _with(now_s, app_version="1.2.3-beta.1+build.5"), None,
                       {"app_version": "1.2.3-beta.1+build.5", "app_version_major": 1, "app_version_minor": 2,
                        "app_version_patch": 3}),
        HostileMessage("app_version of nine-digit numbers", _with(now_s, app_version="999999999.0.1"), None,
                       {"app_version": "999999999.0.1", "app_version_major": 999_999_999, "app_version_minor": 0,
                        "app_version_patch": 1}),
        HostileMessage("app_version of a ten-digit number", _with(now_s, app_version="1234567890.0.0"), Reason.INVALID_APP_VERSION),
        HostileMessage("app_version of 64 characters", _with(now_s, app_version="1.2.3-" + "a" * 58), None,
                       {"app_version": "1.2.3-" + "a" * 58, "app_version_major": 1, "app_version_minor": 2,
                        "app_version_patch": 3}),
        HostileMessage("app_version of 65 characters", _with(now_s, app_version="1.2.3-" + "a" * 59), Reason.INVALID_APP_VERSION),
        HostileMessage("app_version with a leading zero", _with(now_s, app_version="01.2.3"), Reason.INVALID_APP_VERSION),
        HostileMessage("app_version with a 'v'", _with(now_s, app_version="v1.2.3"), Reason.INVALID_APP_VERSION),
        HostileMessage("app_version of four numbers", _with(now_s, app_version="1.2.3.4"), Reason.INVALID_APP_VERSION),
        HostileMessage("app_version with an escaped newline", _with(now_s, app_version="1.2.3\n"), Reason.INVALID_APP_VERSION),
    ]  # fmt: skip


def _padded(now_s: int, size: int, **changes: Any) -> bytes:
    """The base event (with `changes`) padded with an unknown field to exactly `size` bytes."""
    head = _with(now_s, **changes)[:-1] + b', "padding": "'
    return head + b"x" * (size - len(head) - 2) + b'"}'


def _sizes(now_s: int) -> list[HostileMessage]:
    at_limit = _padded(now_s, MAX_MESSAGE_BYTES)
    over_limit = _padded(now_s, MAX_MESSAGE_BYTES + 1)
    assert len(at_limit) == MAX_MESSAGE_BYTES and len(over_limit) == MAX_MESSAGE_BYTES + 1
    long_version = _with(now_s, app_version="1." + "2" * (MAX_MESSAGE_BYTES - 300))
    return [
        HostileMessage("valid event of exactly 64 KiB", at_limit, None),
        HostileMessage("valid event one byte over 64 KiB", over_limit, Reason.TOO_LARGE),
        HostileMessage("64 KiB of spaces", b" " * MAX_MESSAGE_BYTES, Reason.EMPTY),
        HostileMessage("app_version of nearly 64 KiB", long_version, Reason.INVALID_APP_VERSION),
        HostileMessage("user_id of nearly 64 KiB", _with(now_s, user_id="a" * (MAX_MESSAGE_BYTES - 300)), Reason.INVALID_USER_ID),
        HostileMessage("200 KB message", _padded(now_s, 200_000), Reason.TOO_LARGE),
    ]  # fmt: skip


def _keys(now_s: int) -> list[HostileMessage]:
    valid = _json(base_event(now_s))
    return [
        HostileMessage("valid event without a key", valid, None, key=None),
        HostileMessage("invalid event without a key", b"{}", Reason.MISSING_FIELD, key=None),
        HostileMessage("invalid event with a binary key", b"[]", Reason.NOT_AN_OBJECT, key=b"\x00\xff\xfe key"),
        HostileMessage("valid event with a 10 KB key", valid, None, key=b"k" * 10_000),
    ]
