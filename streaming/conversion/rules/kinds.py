"""The closed vocabulary of rule kinds: what each accepts, what it writes, and how the reference checks it.

A rule kind checks one input value (a key of the JSON event) and normalises it; an output field takes that
value, or one of its parts. Each engine implements every kind once: the reference here and in
`streaming.conversion.rules.reference`, the pure fast path in `streaming.conversion.rules.codegen`, the native kernel in
`native/src/lib.rs`. A kind an engine does not know is refused when a converter starts.

| kind       | JSON types      | parts (value type)                               | refused when                      |
|------------|-----------------|--------------------------------------------------|-----------------------------------|
| uuid       | string          | text: lower-case 8-4-4-4-12 hex                  | not a UUID (any case accepted)    |
| platform   | string          | text: lower case; absent, null, "" -> `default`  | not 1-32 [a-z0-9._-], first alnum |
| code       | string          | text: upper case, one of `codes`                 | not one of `codes` (any case)     |
| ip_address | string          | canonical (text), version (int), class (enum)    | not an IPv4 or IPv6 address       |
| semver     | string          | text (as sent), major, minor, patch (int)        | not MAJOR.MINOR[.PATCH][-P][+B]   |
| epoch_time | integer, string | millis: epoch milliseconds (long)                | not epoch s or ms in the window;  |
|            |                 |                                                  | older than the acceptance window  |
| text       | string          | text: as sent                                    | never (besides its JSON type)     |

An input that is not `required` and absent or null gives null for every part (a field that takes it must
be a union with null), except `platform`, which gives its `default`.

Context sources (`context:` in the declaration) are facts of processing, not of the event: `processing_time`
(millis: the batch's clock reading), `topic` (text), `partition` (int), `offset` (long).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from streaming.conversion.ip_classes import classify

#: 2000-01-01T00:00:00Z: older event times are refused as absurd. It also tells epoch seconds from
#: milliseconds (see `epoch_time`), so it holds whatever the acceptance window.
MIN_EVENT_TIME_MS = 946_684_800_000
#: How far after processing an event time may lie (producer clocks run fast). Outputs are stamped with the
#: processing time, not the event time, so this bounds skew, not what the broker accepts; the insights
#: reader relies on it to know how early in the log an hour's records can appear.
MAX_FUTURE_MS = 55 * 60 * 1000
MAX_TIMESTAMP_DIGITS = 19
MAX_SEMVER_CHARS = 64

LOWER_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").fullmatch
PLATFORM = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}").fullmatch
SEMVER = re.compile(
    r"(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})(?:\.(0|[1-9][0-9]{0,8}))?"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
).fullmatch

# Value types a part produces; `streaming.conversion.rules.declaration` checks each against the field's Avro type.
TEXT, INT, LONG, MILLIS, IP_CLASS = "text", "int", "long", "millis", "address_class"


@dataclass(frozen=True)
class RuleKind:
    """One kind of rule: the JSON types it accepts (besides null), its parts and their value types (the
    first is the default part), its parameters (name -> Python type), and how a failing value is told."""

    name: str
    json_types: tuple[type, ...]
    parts: Mapping[str, str]
    params: Mapping[str, type]
    #: `{name}` and `{value}` (quoted) filled in; None: no value fails (no reason to declare).
    message: str | None
    #: Whether absent or null gives a value (the `default` parameter) rather than null.
    has_default: bool = False

    @property
    def default_part(self) -> str:
        return next(iter(self.parts))


KINDS: dict[str, RuleKind] = {
    kind.name: kind
    for kind in (
        RuleKind("uuid", (str,), {"text": TEXT}, {}, "{name} {value} is not a UUID"),
        RuleKind(
            "platform",
            (str,),
            {"text": TEXT},
            {"default": str},
            "{name} {value} is not 1-32 letters, digits, '.', '_' or '-'",
            has_default=True,
        ),
        RuleKind(
            "code", (str,), {"text": TEXT}, {"codes": list, "described_as": str}, "{name} {value} is not {described_as}"
        ),
        RuleKind(
            "ip_address",
            (str,),
            {"canonical": TEXT, "version": INT, "class": IP_CLASS},
            {},
            "{name} {value} is not an IPv4 or IPv6 address",
        ),
        RuleKind(
            "semver",
            (str,),
            {"text": TEXT, "major": INT, "minor": INT, "patch": INT},
            {},
            "{name} {value} is not MAJOR.MINOR[.PATCH][-PRE][+BUILD]",
        ),
        RuleKind(
            "epoch_time",
            (int, str),
            {"millis": MILLIS},
            {},
            "{name} {value} is not epoch seconds or milliseconds between 2000-01-01 and 55 minutes after processing",
        ),
        RuleKind("text", (str,), {"text": TEXT}, {}, None),
    )
}

#: Facts of processing a field may take (`context:`), with their value types.
CONTEXT: dict[str, str] = {"processing_time": MILLIS, "topic": TEXT, "partition": INT, "offset": LONG}


# -- the reference implementation of each kind: text in, normalised value out, None if refused --------------


def uuid(text: str) -> str | None:
    """`text` lower-cased if it is a UUID in hexadecimal text form of any case, else None."""
    if LOWER_UUID(text):
        return text
    if text.isascii():
        lowered = text.lower()
        if LOWER_UUID(lowered):
            return lowered
    return None


def platform(text: str, default: str) -> str | None:
    """A platform name lower-cased; "" is `default`."""
    if not text:
        return default
    lowered = text.lower()
    return lowered if text.isascii() and PLATFORM(lowered) else None


def code(text: str, codes: frozenset[str]) -> str | None:
    """`text` upper-cased if it is one of `codes` (which are upper case)."""
    if text in codes:
        return text
    upper = text.upper() if text.isascii() else ""
    return upper if upper in codes else None


def ip(text: str) -> tuple[str, int, str] | None:
    """(canonical text, version, class), see `streaming.conversion.ip_classes`."""
    return classify(text)


def semver(text: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) of MAJOR.MINOR[.PATCH][-PRERELEASE][+BUILD]; PATCH is 0 when absent."""
    match = SEMVER(text) if len(text) <= MAX_SEMVER_CHARS else None
    if match is None:
        return None
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def epoch_time(timestamp: int | str, processed_at_ms: int) -> int | None:
    """Epoch milliseconds of a timestamp in epoch seconds or milliseconds, or None if it is neither.

    A JSON integer or a string of ASCII digits. Epoch seconds if that puts it between 2000-01-01 and
    `MAX_FUTURE_MS` after `processed_at_ms`; otherwise epoch milliseconds if *that* does (the two windows are
    three orders of magnitude apart, so no value is ambiguous); otherwise None.
    """
    if isinstance(timestamp, str):
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= MAX_TIMESTAMP_DIGITS):
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


def refusal_detail(kind: RuleKind, name: str, value: Any, params: Mapping[str, Any], quoted: str) -> str:
    """The dead letter's detail for `value` of input `name` failing `kind`."""
    assert kind.message is not None
    return kind.message.format(name=name, value=quoted, **{k: v for k, v in params.items() if isinstance(v, str)})
