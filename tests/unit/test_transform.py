"""The transform's rules, one example each, and the irregularities met in the wild."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from streaming.conversion.transform import MAX_MESSAGE_BYTES, transform
from streaming.generator.events import EventFactory, Irregularity, IrregularityRates
from streaming.records import DLQ_HEADERS, DLQ_REPLAY_HEADERS, MAX_DETAIL_CHARS, Reason, Rejection

NOW_MS = 1_720_576_830_000  # processing time: five seconds after the event
USER = "0f8fad5b-d9cb-469f-a165-70867728950e"
DEVICE = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
DROP = object()
SCHEMA = json.loads((Path(__file__).parents[2] / "schemas" / "processed-data-value.avsc").read_text())


def event(**changes: Any) -> dict[str, Any]:
    """A well-formed event as the generator writes it, with `changes` applied (DROP removes a field)."""
    fields: dict[str, Any] = {
        "user_id": USER,
        "app_version": "2.3.0",
        "ip": "108.228.145.239",
        "locale": "RI",
        "device_id": DEVICE,
        "timestamp": 1_720_576_825,
        "device_type": "iOS",
    }
    fields.update(changes)
    return {name: value for name, value in fields.items() if value is not DROP}


def run(payload: Any) -> dict[str, Any] | Rejection:
    raw = payload if isinstance(payload, bytes) or payload is None else json.dumps(payload).encode()
    return transform(raw, "user-login", 2, 1234, NOW_MS)


def reason(payload: Any) -> str:
    result = run(payload)
    assert isinstance(result, Rejection), f"expected a rejection, got {result}"
    return result.reason


def test_a_well_formed_event_becomes_the_record_the_schema_describes() -> None:
    record = run(event())

    assert record == {
        "user_id": USER,
        "device_id": DEVICE,
        "device_type": "ios",
        "locale": "RI",
        "ip": "108.228.145.239",
        "ip_version": 4,
        "ip_class": "PUBLIC",
        "app_version": "2.3.0",
        "app_version_major": 2,
        "app_version_minor": 3,
        "app_version_patch": 0,
        "event_time": 1_720_576_825_000,
        "processed_at": NOW_MS,
        "source_topic": "user-login",
        "source_partition": 2,
        "source_offset": 1234,
    }
    assert list(record) == [field["name"] for field in SCHEMA["fields"]]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spelling", "normalised"),
    [("iOS", "ios"), ("IOS", "ios"), ("ios", "ios"), ("Android", "android"), ("ANDROID", "android"),
     ("", "unknown"), (None, "unknown"), (DROP, "unknown"), ("HarmonyOS", "harmonyos"),
     ("web-2.0", "web-2.0")],
)  # fmt: skip
def test_device_type_is_lower_cased_and_unknown_when_missing(spelling: Any, normalised: str) -> None:
    assert run(event(device_type=spelling))["device_type"] == normalised  # type: ignore[index]


@pytest.mark.parametrize("bad", ["i OS", "ios\n", "-ios", "x" * 33, "Ｉos", "ios\u200b"])
def test_device_type_that_is_not_a_short_name_is_refused(bad: str) -> None:
    assert reason(event(device_type=bad)) == Reason.INVALID_DEVICE_TYPE


def test_device_id_is_optional() -> None:
    assert run(event(device_id=DROP))["device_id"] is None  # type: ignore[index]
    assert run(event(device_id=None))["device_id"] is None  # type: ignore[index]


def test_ids_are_uuids_in_any_case_written_lower_case() -> None:
    record = run(event(user_id=USER.upper(), device_id=DEVICE.upper()))

    assert (record["user_id"], record["device_id"]) == (USER, DEVICE)  # type: ignore[index]


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "undefined",
        "null",
        "0",
        USER + " ",
        " " + USER,
        USER.replace("-", ""),
        USER[:-1] + "g",
        "{" + USER + "}",
    ],
)
def test_ids_that_are_not_uuids_are_refused(bad: str) -> None:
    assert reason(event(user_id=bad)) == Reason.INVALID_USER_ID
    assert reason(event(device_id=bad)) == Reason.INVALID_DEVICE_ID


@pytest.mark.parametrize(
    ("timestamp", "event_time"),
    [
        (1_720_576_825, 1_720_576_825_000),  # epoch seconds
        ("1720576825", 1_720_576_825_000),  # as a numeric string
        (1_720_576_825_123, 1_720_576_825_123),  # epoch milliseconds
        ("1720576825123", 1_720_576_825_123),
        (946_684_800, 946_684_800_000),  # 2000-01-01, the earliest accepted
        (NOW_MS // 1000 + 3_300, NOW_MS + 3_300_000),  # 55 minutes ahead, the latest accepted
    ],
)
def test_timestamp_in_seconds_or_milliseconds(timestamp: Any, event_time: int) -> None:
    assert run(event(timestamp=timestamp))["event_time"] == event_time  # type: ignore[index]


@pytest.mark.parametrize(
    "timestamp",
    [
        946_684_799,  # 1999
        -1_720_576_825,
        0,
        NOW_MS // 1000 + 3_301,  # more than 55 minutes in the future
        NOW_MS + 3_300_001,
        1_720_576_825_000_000,  # microseconds
        10**30,
        "1720576825.5",
        " 1720576825",
        "+1720576825",
        "-1720576825",
        "1e9",
        "",
        "١٧٢٠٥٧٦٨٢٥",  # Arabic-Indic digits: int() would take them
        "9" * 20,
    ],
)
def test_absurd_or_unreadable_timestamps_are_refused(timestamp: Any) -> None:
    assert reason(event(timestamp=timestamp)) == Reason.INVALID_TIMESTAMP


@pytest.mark.parametrize("age_ms", [1, 86_400_000, NOW_MS - 978_307_200_000])  # to 2001-01-01
def test_an_event_older_than_the_acceptance_window_is_refused_and_one_inside_is_not(age_ms: int) -> None:
    event_time = NOW_MS - age_ms
    raw = json.dumps(event(timestamp=event_time)).encode()
    too_old = transform(raw, "user-login", 0, 0, NOW_MS, oldest_ms=event_time + 1)
    assert isinstance(too_old, Rejection) and too_old.reason == Reason.EVENT_TOO_OLD
    assert "KDP_MAX_EVENT_AGE" in too_old.detail
    kept = transform(raw, "user-login", 0, 0, NOW_MS, oldest_ms=event_time)
    assert isinstance(kept, dict) and kept["event_time"] == event_time
    assert transform(raw, "user-login", 0, 0, NOW_MS) == kept  # no window: only the 2000 floor


def test_the_acceptance_window_is_checked_after_every_other_rule() -> None:
    raw = json.dumps(event(timestamp=978_307_200, locale="XX")).encode()
    assert transform(raw, "t", 0, 0, NOW_MS, oldest_ms=NOW_MS).reason == Reason.INVALID_LOCALE  # type: ignore[union-attr]


@pytest.mark.parametrize("timestamp", [1_720_576_825.0, True, [1_720_576_825], {"s": 1}])
def test_timestamp_of_another_json_type_is_a_wrong_type(timestamp: Any) -> None:
    assert reason(event(timestamp=timestamp)) == Reason.WRONG_TYPE


def test_huge_numbers_are_refused_without_trouble() -> None:
    huge = b'{"user_id": "%s", "app_version": "2.3.0", "ip": "1.2.3.4", "locale": "RI", "timestamp": %s}'
    assert reason(huge % (USER.encode(), b"9" * 5000)) == Reason.INVALID_TIMESTAMP
    assert reason(huge % (USER.encode(), b"1e999")) == Reason.INVALID_TIMESTAMP
    assert reason(json.dumps(event(user_id=10**40)).encode()) == Reason.WRONG_TYPE


@pytest.mark.parametrize(
    ("ip", "canonical", "version", "ip_class"),
    [
        ("10.0.0.1", "10.0.0.1", 4, "PRIVATE"),
        ("2001:DB8:0:0::1", "2001:db8::1", 6, "RESERVED"),
        ("2a00:1450:4001:0811:0000:0000:0000:200e", "2a00:1450:4001:811::200e", 6, "PUBLIC"),
        ("::ffff:192.168.0.1", "::ffff:192.168.0.1", 6, "PRIVATE"),
    ],
)
def test_ip_is_canonical_with_version_and_class(ip: str, canonical: str, version: int, ip_class: str) -> None:
    record = run(event(ip=ip))

    assert (record["ip"], record["ip_version"], record["ip_class"]) == (canonical, version, ip_class)  # type: ignore[index]


@pytest.mark.parametrize("ip", ["", "1.2.3", "01.2.3.4", "256.0.0.1", "fe80::1%eth0", "1.2.3.4\n", "localhost"])
def test_malformed_ip_is_refused(ip: str) -> None:
    assert reason(event(ip=ip)) == Reason.INVALID_IP


@pytest.mark.parametrize(("locale", "written"), [("RI", "RI"), ("ri", "RI"), ("DC", "DC"), ("PR", "PR"), ("gu", "GU")])
def test_locale_is_a_us_state_or_territory_written_upper_case(locale: str, written: str) -> None:
    assert run(event(locale=locale))["locale"] == written  # type: ignore[index]


@pytest.mark.parametrize("locale", ["", "XX", "AA", "R", "RII", " RI", "en-US", "ＲＩ"])
def test_other_locales_are_refused(locale: str) -> None:
    assert reason(event(locale=locale)) == Reason.INVALID_LOCALE


@pytest.mark.parametrize(
    ("version", "parts"),
    [("2.3.0", (2, 3, 0)), ("2.4.0-beta", (2, 4, 0)), ("2.3", (2, 3, 0)), ("10.20.30+build.7", (10, 20, 30)),
     ("0.0.1-rc.1+sha.5114f85", (0, 0, 1)), ("999999999.0.0", (999_999_999, 0, 0))],
)  # fmt: skip
def test_app_version_is_parsed(version: str, parts: tuple[int, int, int]) -> None:
    record = run(event(app_version=version))

    assert record["app_version"] == version  # type: ignore[index]
    assert (record["app_version_major"], record["app_version_minor"], record["app_version_patch"]) == parts  # type: ignore[index]


@pytest.mark.parametrize(
    "version",
    ["", "2", "v2.3.0", "2.3.0.1", "02.3.0", "2.3.", "2..3", "2.3.0-", "1234567890.0.0", "2.3.0 ", "2.3-é"],
)
def test_other_app_versions_are_refused(version: str) -> None:
    assert reason(event(app_version=version)) == Reason.INVALID_APP_VERSION


@pytest.mark.parametrize("field", ["user_id", "locale", "ip", "app_version", "timestamp"])
def test_required_fields_absent_or_null_are_missing(field: str) -> None:
    assert reason(event(**{field: DROP})) == Reason.MISSING_FIELD
    assert reason(event(**{field: None})) == Reason.MISSING_FIELD
    assert field in run(event(**{field: DROP})).detail  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("field", "value"),
    [("user_id", 42), ("app_version", 2.3), ("ip", 1822527983), ("locale", ["RI"]), ("device_id", [DEVICE]),
     ("device_type", 1), ("device_type", False), ("timestamp", {"seconds": 1})],
)  # fmt: skip
def test_wrong_json_types_are_named(field: str, value: Any) -> None:
    result = run(event(**{field: value}))

    assert isinstance(result, Rejection)
    assert result.reason == Reason.WRONG_TYPE
    assert result.detail.startswith(field)


def test_a_wrong_type_is_reported_before_a_missing_field_and_bad_values() -> None:
    assert reason(event(user_id="nope", locale=DROP, timestamp=True)) == Reason.WRONG_TYPE
    assert reason(event(user_id="nope", locale=DROP)) == Reason.MISSING_FIELD
    assert reason(event(user_id="nope", ip="x")) == Reason.INVALID_USER_ID


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, Reason.EMPTY),
        (b"", Reason.EMPTY),
        (b" \r\n\t", Reason.EMPTY),
        (b"\xef\xbb\xbf", Reason.EMPTY),
        (b"x" * (MAX_MESSAGE_BYTES + 1), Reason.TOO_LARGE),
        (b'{"user_id": "\xff"}', Reason.NOT_UTF8),
        (b"\x00\x00\x00\x00\x07H0f8f\xad", Reason.NOT_UTF8),  # an Avro record on the wrong topic
        (b"\xed\xa0\x80", Reason.NOT_UTF8),  # a UTF-8-encoded surrogate
        (b"user_id=42 ip=1.2.3.4", Reason.INVALID_JSON),
        (b'{"user_id": "0f8f', Reason.INVALID_JSON),  # truncated
        (b'{"timestamp": NaN}', Reason.INVALID_JSON),
        (b'{"timestamp": Infinity}', Reason.INVALID_JSON),
        (b'{"ip": "1.2.3.4\x01"}', Reason.INVALID_JSON),  # a raw control character inside a string
        (b'{"user_id": "\\ud800"}', Reason.INVALID_JSON),  # a lone surrogate escape: not representable
        (b'{"a": 1} {"b": 2}', Reason.INVALID_JSON),
        (b'{"x": ' + b"[" * 5000 + b"]" * 5000 + b"}", Reason.INVALID_JSON),
        (b"[" * 5000 + b"]" * 5000, Reason.INVALID_JSON),
        (b"[1, 2]", Reason.NOT_AN_OBJECT),
        (b"null", Reason.NOT_AN_OBJECT),
        (b'"a string"', Reason.NOT_AN_OBJECT),
        (b"1720576825", Reason.NOT_AN_OBJECT),
        (b"1e999", Reason.NOT_AN_OBJECT),
        (b"{}", Reason.MISSING_FIELD),
    ],
)
def test_messages_that_are_not_a_json_object(raw: bytes | None, expected: str) -> None:
    assert reason(raw) == expected


def test_byte_order_mark_non_ascii_and_unknown_fields_are_tolerated() -> None:
    body = json.dumps(event(note="café ☕", nested={"deep": [1, 2, {"x": 1e308}]}), ensure_ascii=False)

    assert isinstance(run(body.encode()), dict)
    assert isinstance(run(b"\xef\xbb\xbf" + body.encode()), dict)
    assert isinstance(run(body.encode().replace(b"}", b', "big": 1e999}', 1)), dict)  # unknown: not inspected


def test_duplicate_keys_last_one_wins() -> None:
    raw = json.dumps(event()).encode()[:-1] + b', "locale": "TX", "device_type": "Android"}'

    record = run(raw)

    assert (record["locale"], record["device_type"]) == ("TX", "android")  # type: ignore[index]


def test_escaped_control_characters_in_values_are_refused_by_each_fields_rule() -> None:
    assert reason(event(locale="R\u0000I")) == Reason.INVALID_LOCALE
    assert reason(event(ip="1.2.3.4\u0000")) == Reason.INVALID_IP
    assert reason(event(app_version="2.3.0\u001b[31m")) == Reason.INVALID_APP_VERSION


def test_rejection_details_are_short_and_do_not_echo_the_payload() -> None:
    secret = "s3cr3t" * 1000
    for payload in (
        event(user_id=secret),
        event(locale=secret),
        b'{"user_id": "' + secret.encode() + b"\xff",
    ):
        result = run(payload)
        assert isinstance(result, Rejection)
        assert len(result.detail) <= MAX_DETAIL_CHARS
        assert secret[:60] not in result.detail


def test_input_types_other_than_bytes_are_survived() -> None:
    assert isinstance(transform(bytearray(json.dumps(event()).encode()), "t", 0, 0, NOW_MS), dict)
    assert isinstance(transform(memoryview(json.dumps(event()).encode()), "t", 0, 0, NOW_MS), dict)
    assert transform("{}", "t", 0, 0, NOW_MS).reason == Reason.INTERNAL_ERROR  # type: ignore[arg-type, union-attr]


#: What each kind of generated event may become (see streaming/generator/events.py for how each is made).
ALLOWED = {
    Irregularity.NONE: {"record"},
    Irregularity.MISSING_DEVICE_TYPE: {"record"},
    Irregularity.TIMESTAMP_AS_STRING: {"record"},
    Irregularity.MISSING_FIELD: {
        Reason.MISSING_FIELD,
        "record",
    },  # "record" when device_id is the one left out
    Irregularity.WRONG_TYPE: {
        Reason.WRONG_TYPE,
        Reason.MISSING_FIELD,
        Reason.NOT_AN_OBJECT,
    },  # null is missing
    Irregularity.NOT_JSON: {Reason.INVALID_JSON, Reason.NOT_UTF8},
    Irregularity.EMPTY: {Reason.EMPTY},
}


def test_every_kind_of_generated_event_gets_its_expected_outcome() -> None:
    factory = EventFactory(seed=7, rates=IrregularityRates.with_malformed(0.5))
    now = NOW_MS / 1000
    seen: dict[Irregularity, set[str]] = {}

    for generated in factory.batch(20_000, now):
        result = transform(generated.value, "user-login", 0, 0, NOW_MS)
        outcome = "record" if isinstance(result, dict) else result.reason
        assert outcome in ALLOWED[generated.kind], (generated, result)
        seen.setdefault(generated.kind, set()).add(outcome)

    assert set(seen) == set(ALLOWED)


def test_every_reason_code_and_dead_letter_header_is_documented_for_consumers() -> None:
    readme = (Path(__file__).parents[2] / "schemas" / "README.md").read_text()

    for code in Reason:
        assert f"| `{code.value}` |" in readme
    for header in DLQ_HEADERS + DLQ_REPLAY_HEADERS:
        assert f"| `{header}` |" in readme


def test_a_rejection_detail_is_cut_to_its_bound() -> None:
    rejection = Rejection(Reason.WRONG_TYPE, "x" * 1000)

    assert len(rejection.detail) == MAX_DETAIL_CHARS
    assert rejection.detail.endswith("...")
