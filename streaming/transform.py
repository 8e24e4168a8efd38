"""Raw login-event bytes -> a processed record (a dict) or a `Rejection`; pure, total, fast.

Contract of `transform(raw, topic, partition, offset, processed_at_ms, *, oldest_ms)`:
- It returns a dict whose keys are exactly the fields of `schemas/processed-data-value.avsc`, in schema
  order, with values ready for `streaming.encoding` (timestamps as int epoch milliseconds), or a
  `Rejection` whose `reason` is one of `streaming.records.Reason`.
- It is pure: no I/O, no clock (the caller passes `processed_at_ms`, one reading per batch), the same
  arguments always give the same result. (Two small bounded memo tables, for app versions and device
  types, only save work.)
- It never raises, whatever `raw` holds; a bug inside becomes `Reason.INTERNAL_ERROR`.

Two paths give one answer. The fast path handles the usual message (short, ASCII, a JSON object whose
fields have their JSON types) with one typed `msgspec` decode. Anything unusual, including every
rejection for shape, goes through `_explain`, which takes the message apart step by step so the reason
is precise; it is the reference, and the property tests check that the fast path agrees with it.

Rules (the first failing check decides the reason: the message as a whole, then the JSON type of every
field in schema order, then missing required fields, then each field's value in schema order):
- Message: at most `MAX_MESSAGE_BYTES`; UTF-8 (a leading byte-order mark is tolerated, RFC 8259 8.1);
  one JSON object. NaN/Infinity are not JSON and are refused. Duplicate keys: the last one wins, as in
  every mainstream parser (RFC 8259 leaves it open). Unknown fields are ignored without inspection
  (a newer producer may add fields), so a number out of range in an unknown field does no harm.
- Required: `user_id`, `locale`, `ip`, `app_version`, `timestamp` (null counts as missing).
- `user_id`, `device_id`: UUIDs in 8-4-4-4-12 hexadecimal text form, any case, written lower case.
  `device_id` may be absent or null. Ids like "undefined" or "0" are the classic producer bug this
  catches.
- `device_type`: absent, null or "" -> "unknown"; otherwise lower-cased, and it must be 1-32 characters
  of [a-z0-9._-] starting with a letter or digit: "iOS", "IOS" -> "ios"; a new platform is kept.
- `locale`: a USPS code of a state, DC or an inhabited territory (`US_LOCALES`), any case, written
  upper case.
- `ip`: see `streaming.ip_classes` (IPv4 or IPv6; written in canonical form, with version and class).
- `app_version`: MAJOR.MINOR[.PATCH][-PRERELEASE][+BUILD] (semver without leading zeros, numbers up to
  nine digits, 64 characters at most); PATCH is 0 when absent.
- `timestamp`: a JSON integer or a string of ASCII digits. It is epoch seconds if that puts it between
  2000-01-01 and 55 minutes after `processed_at_ms`; otherwise epoch milliseconds if *that* does (the two
  windows are three orders of magnitude apart, so no value is ambiguous); otherwise refused
  (microseconds, nanoseconds, negative, absurd). Floats and booleans are wrong types. An event time
  before `oldest_ms`, the acceptance window's edge that the caller computes once per batch from
  `KDP_MAX_EVENT_AGE` (see `streaming.settings`), is refused as `event_too_old`: dead-lettered with its
  bytes, replayable after widening the window, never dropped.

Every string written is thus bounded: ids 36 characters, `device_type` 32, `locale` 2, `ip` 45,
`app_version` 64. A valid message that is not pure ASCII (say, with an accented unknown field) takes the
precise path: same answer, a few microseconds more.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Any

import msgspec

from streaming.ip_classes import classify as classify_ip
from streaming.records import Reason, Rejection, quote

#: Larger messages are refused unparsed: an event is about 250 bytes, and parsing cost grows with size.
MAX_MESSAGE_BYTES = 64 * 1024
#: 2000-01-01T00:00:00Z: older event times are refused as absurd. It also tells epoch seconds from
#: milliseconds (see the contract above), so it holds whatever the acceptance window.
MIN_EVENT_TIME_MS = 946_684_800_000
#: How far after processing an event time may lie (producer clocks run fast). Outputs are stamped with the
#: processing time, not the event time, so this bounds skew, not what the broker accepts; the insights
#: reader relies on it to know how early in the log an hour's records can appear.
MAX_FUTURE_MS = 55 * 60 * 1000

#: The 50 states, DC, and the inhabited territories (American Samoa, Guam, Northern Mariana Islands,
#: Puerto Rico, US Virgin Islands). Military "states" (AA, AE, AP) and uninhabited ones are not homes.
US_LOCALES: frozenset[str] = frozenset((
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY",
    "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND",
    "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY",
    "DC", "AS", "GU", "MP", "PR", "VI",
))  # fmt: skip

UNKNOWN_DEVICE_TYPE = "unknown"

#: The fields the transform reads, with the JSON types each may have besides null.
FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "user_id": (str,),
    "device_id": (str,),
    "device_type": (str,),
    "locale": (str,),
    "ip": (str,),
    "app_version": (str,),
    "timestamp": (int, str),
}
REQUIRED_FIELDS: tuple[str, ...] = ("user_id", "locale", "ip", "app_version", "timestamp")


class _Event(msgspec.Struct, gc=False):
    """The fast path's view of an event: decoding fails unless each field present has its JSON type."""

    user_id: str | None = None
    device_id: str | None = None
    device_type: str | None = None
    locale: str | None = None
    ip: str | None = None
    app_version: str | None = None
    timestamp: int | str | None = None


_decode_event = msgspec.json.Decoder(_Event).decode
_decode_object_lazily = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode  # values left undecoded
_decode_any = msgspec.json.Decoder().decode

_LOWER_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").fullmatch
_PLATFORM = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}").fullmatch
_SEMVER = re.compile(
    r"(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})(?:\.(0|[1-9][0-9]{0,8}))?"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
).fullmatch
_MAX_APP_VERSION_CHARS = 64
_MAX_TIMESTAMP_DIGITS = 19
_JSON_WHITESPACE = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"

# Memo tables: app versions and device-type spellings are few, so each is parsed once. A table that
# reaches `_MEMO_LIMIT` entries (junk values) is emptied, which bounds memory and costs only speed.
_MEMO_LIMIT = 4096
_app_versions: dict[str, tuple[int, int, int] | None] = {}
_device_types: dict[str, str | None] = {}


def transform(
    raw: bytes | None,
    topic: str,
    partition: int,
    offset: int,
    processed_at_ms: int,
    *,
    oldest_ms: int = MIN_EVENT_TIME_MS,
) -> dict[str, Any] | Rejection:
    """The processed record of the message at `topic`/`partition`/`offset`, or why there is none.

    `oldest_ms` is the acceptance window's lower edge (`Settings.oldest_event_ms`, computed once per batch):
    an event time before it is refused as `event_too_old`. By default only the 2000-01-01 floor applies.
    """
    try:
        if type(raw) is bytes and len(raw) <= MAX_MESSAGE_BYTES and raw.isascii():
            e = _decode_event(raw)
            return _validate(
                e.user_id, e.device_id, e.device_type, e.locale, e.ip, e.app_version, e.timestamp,
                topic, partition, offset, processed_at_ms, oldest_ms,
            )  # fmt: skip
    except Exception:  # noqa: BLE001 - anything unusual is examined again, precisely, by _explain
        pass
    return _explain(raw, topic, partition, offset, processed_at_ms, oldest_ms)


def _validate(
    user_id: str | None,
    device_id: str | None,
    device_type: str | None,
    locale: str | None,
    ip: str | None,
    app_version: str | None,
    timestamp: int | str | None,
    topic: str,
    partition: int,
    offset: int,
    processed_at_ms: int,
    oldest_ms: int,
) -> dict[str, Any] | Rejection:
    """Check and normalise field values whose JSON types are already right (or None)."""
    if user_id is None or locale is None or ip is None or app_version is None or timestamp is None:
        values = {
            "user_id": user_id,
            "locale": locale,
            "ip": ip,
            "app_version": app_version,
            "timestamp": timestamp,
        }
        missing = [name for name in REQUIRED_FIELDS if values[name] is None]
        return Rejection(Reason.MISSING_FIELD, f"required field {missing[0]} is absent or null")

    if not _LOWER_UUID(user_id):
        canonical = _canonical_uuid(user_id)
        if canonical is None:
            return Rejection(Reason.INVALID_USER_ID, f"user_id {quote(user_id)} is not a UUID")
        user_id = canonical

    if device_id is not None and not _LOWER_UUID(device_id):
        canonical = _canonical_uuid(device_id)
        if canonical is None:
            return Rejection(Reason.INVALID_DEVICE_ID, f"device_id {quote(device_id)} is not a UUID")
        device_id = canonical

    if device_type is None:
        platform = UNKNOWN_DEVICE_TYPE
    else:
        platform = _device_types.get(device_type) or _remember(
            _device_types, device_type, _normalise_device_type(device_type)
        )
        if platform is None:
            return Rejection(
                Reason.INVALID_DEVICE_TYPE,
                f"device_type {quote(device_type)} is not 1-32 letters, digits, '.', '_' or '-'",
            )

    if locale not in US_LOCALES:
        upper = locale.upper() if locale.isascii() else ""
        if upper not in US_LOCALES:
            return Rejection(Reason.INVALID_LOCALE, f"locale {quote(locale)} is not a US state or territory code")
        locale = upper

    address = classify_ip(ip)
    if address is None:
        return Rejection(Reason.INVALID_IP, f"ip {quote(ip)} is not an IPv4 or IPv6 address")

    version = _app_versions.get(app_version) or _remember(_app_versions, app_version, _parse_app_version(app_version))
    if version is None:
        return Rejection(
            Reason.INVALID_APP_VERSION,
            f"app_version {quote(app_version)} is not MAJOR.MINOR[.PATCH][-PRE][+BUILD]",
        )

    if type(timestamp) is int and MIN_EVENT_TIME_MS <= timestamp * 1000 <= processed_at_ms + MAX_FUTURE_MS:
        event_time: int | None = timestamp * 1000  # the usual case, inline: whole epoch seconds
    else:
        event_time = _event_time_ms(timestamp, processed_at_ms)
    if event_time is None:
        return Rejection(
            Reason.INVALID_TIMESTAMP,
            f"timestamp {quote(timestamp)} is not epoch seconds or milliseconds "
            "between 2000-01-01 and 55 minutes after processing",
        )
    if event_time < oldest_ms:
        return Rejection(
            Reason.EVENT_TOO_OLD,
            f"event time {event_time} ms is {(processed_at_ms - event_time) / 86_400_000:.1f} days before "
            f"processing, older than the acceptance window (KDP_MAX_EVENT_AGE) allows",
        )

    return {
        "user_id": user_id,
        "device_id": device_id,
        "device_type": platform,
        "locale": locale,
        "ip": address[0],
        "ip_version": address[1],
        "ip_class": address[2],
        "app_version": app_version,
        "app_version_major": version[0],
        "app_version_minor": version[1],
        "app_version_patch": version[2],
        "event_time": event_time,
        "processed_at": processed_at_ms,
        "source_topic": topic,
        "source_partition": partition,
        "source_offset": offset,
    }


def _canonical_uuid(text: str) -> str | None:
    """`text` lower-cased if it is a UUID in hexadecimal text form of any case, else None."""
    if text.isascii():
        lowered = text.lower()
        if _LOWER_UUID(lowered):
            return lowered
    return None


def _normalise_device_type(text: str) -> str | None:
    if not text:
        return UNKNOWN_DEVICE_TYPE
    lowered = text.lower()
    return lowered if text.isascii() and _PLATFORM(lowered) else None


def _parse_app_version(text: str) -> tuple[int, int, int] | None:
    match = _SEMVER(text) if len(text) <= _MAX_APP_VERSION_CHARS else None
    if match is None:
        return None
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def _remember(memo: dict, key: str, value: Any) -> Any:
    """Store `value` under `key` (emptying a full table first) and return it."""
    if len(memo) >= _MEMO_LIMIT:
        memo.clear()
    memo[key] = value
    return value


def _event_time_ms(timestamp: int | str, processed_at_ms: int) -> int | None:
    """Epoch milliseconds of a timestamp in epoch seconds or milliseconds, or None if it is neither."""
    if isinstance(timestamp, str):
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= _MAX_TIMESTAMP_DIGITS):
            return None
        value = int(timestamp)
    else:
        value = timestamp
    latest = processed_at_ms + MAX_FUTURE_MS
    if MIN_EVENT_TIME_MS <= value * 1000 <= latest:
        return value * 1000
    if MIN_EVENT_TIME_MS <= value <= latest:
        return value
    return None


# -- the precise path ------------------------------------------------------------------------------------

_JSON_TYPE_NAMES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a number with a fraction or exponent",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


def _explain(
    raw: object, topic: str, partition: int, offset: int, processed_at_ms: int, oldest_ms: int = MIN_EVENT_TIME_MS
) -> dict[str, Any] | Rejection:
    """The reference transform: every check in turn, so that a rejection names its precise reason."""
    try:
        return _explain_unguarded(raw, topic, partition, offset, processed_at_ms, oldest_ms)
    except Exception as error:  # noqa: BLE001 - a bug must cost one dead letter, not the stream
        return Rejection(Reason.INTERNAL_ERROR, f"transform raised {type(error).__name__}: {error}")


def _explain_unguarded(
    raw: object, topic: str, partition: int, offset: int, processed_at_ms: int, oldest_ms: int
) -> dict[str, Any] | Rejection:
    if raw is None:
        return Rejection(Reason.EMPTY, "the message has no value (a tombstone)")
    if not isinstance(raw, bytes | bytearray | memoryview):
        return Rejection(Reason.INTERNAL_ERROR, f"transform expects bytes, got {type(raw).__name__}")
    data = bytes(raw)
    if len(data) > MAX_MESSAGE_BYTES:
        return Rejection(Reason.TOO_LARGE, f"{len(data)} bytes; the limit is {MAX_MESSAGE_BYTES}")
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    if not data.strip(_JSON_WHITESPACE):
        return Rejection(Reason.EMPTY, "the message is empty" if not data else "the message is only whitespace")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return Rejection(Reason.NOT_UTF8, f"invalid UTF-8 at byte {error.start}: {quote(data[error.start :])}")

    try:
        fields = _decode_at_a_fixed_depth(_decode_object_lazily, data)
    except msgspec.ValidationError:  # valid so far, but the top-level value is not an object
        return _not_an_object(data)
    except msgspec.DecodeError as error:
        return Rejection(Reason.INVALID_JSON, str(error))
    except RecursionError:
        return Rejection(Reason.INVALID_JSON, "nested deeper than the JSON decoder allows")

    values: dict[str, Any] = {}
    for name, json_types in FIELD_TYPES.items():
        value_json = fields.get(name)
        if value_json is None:
            values[name] = None
            continue
        try:
            value = _decode_at_a_fixed_depth(_decode_any, value_json)
        except msgspec.ValidationError:  # the only kind left: a number beyond what msgspec represents
            if name == "timestamp":
                return Rejection(Reason.INVALID_TIMESTAMP, "timestamp is a number out of range")
            return Rejection(Reason.WRONG_TYPE, f"{name} must be a string, not a number")
        except RecursionError:
            return Rejection(Reason.WRONG_TYPE, f"{name} is a deeply nested value")
        if value is not None and type(value) not in json_types:
            expected = " or ".join(_JSON_TYPE_NAMES[t] for t in json_types)
            return Rejection(Reason.WRONG_TYPE, f"{name} must be {expected}, not {_JSON_TYPE_NAMES[type(value)]}")
        values[name] = value

    return _validate(
        values["user_id"], values["device_id"], values["device_type"], values["locale"], values["ip"],
        values["app_version"], values["timestamp"], topic, partition, offset, processed_at_ms, oldest_ms,
    )  # fmt: skip


def _decode_at_a_fixed_depth(decode: Callable[[Any], Any], data: Any) -> Any:
    """`decode(data)`, whose verdict on deep nesting does not depend on who calls.

    msgspec stops at Python's recursion limit minus the caller's stack depth, so a RecursionError says
    as much about the caller as about the message. It is decoded again on a new thread, whose stack is
    always equally shallow: the nesting accepted is then a property of the bytes (and the recursion
    limit) alone, and the usual message pays nothing for it.
    """
    try:
        return decode(data)
    except RecursionError:
        pass
    outcome: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            outcome.append((True, decode(data)))
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            outcome.append((False, error))

    worker = threading.Thread(target=run, name="transform-decode")
    worker.start()
    worker.join()
    decoded, value = outcome[0]
    if decoded:
        return value
    raise value


def _not_an_object(data: bytes) -> Rejection:
    try:
        value = _decode_at_a_fixed_depth(_decode_any, data)
    except msgspec.ValidationError:
        return Rejection(Reason.NOT_AN_OBJECT, "the JSON value is a number out of range, not an object")
    except msgspec.DecodeError as error:
        return Rejection(Reason.INVALID_JSON, str(error))
    except RecursionError:
        return Rejection(Reason.INVALID_JSON, "nested deeper than the JSON decoder allows")
    return Rejection(Reason.NOT_AN_OBJECT, f"the JSON value is {_JSON_TYPE_NAMES[type(value)]}, not an object")
