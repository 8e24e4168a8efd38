"""Raw login-event bytes -> a processed record (a dict) or a `Rejection`; pure, total, fast.

Contract of `transform(raw, topic, partition, offset, processed_at_ms, oldest_ms)`:
- It returns a dict whose keys are exactly the fields of `schemas/processed-data-value.avsc`, in schema
  order, with values ready for `streaming.conversion.encoding` (timestamps as int epoch milliseconds), or a
  `Rejection` whose `reason` is one of `streaming.records.Reason`.
- It is pure: no I/O, no clock (the caller passes `processed_at_ms`, one reading per batch), the same
  arguments always give the same result. (Two small bounded memo tables, for app versions and device
  types, only save work.)
- It never raises, whatever `raw` holds; a bug inside becomes `Reason.INTERNAL_ERROR`.

The rules are declared once, in `schemas/processed-data-value.rules.yaml` (the event's keys, the rule kind
that checks each, and which output field takes which value); this module is the reference engine
(`streaming.conversion.rules.reference`) for the repository's declaration. What the declaration says today:

Rules (the first failing check decides the reason: the message as a whole, then the JSON type of every
input in declaration order, then missing required inputs, then each input's value in declaration order):
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
- `locale`: a USPS code of a state, DC or an inhabited territory (the `codes` of the
  declaration), any case, written
  upper case.
- `ip`: see `streaming.conversion.ip_classes` (IPv4 or IPv6; written in canonical form, with version and class).
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

from streaming.conversion.rules.declaration import repository_rules
from streaming.conversion.rules.kinds import MAX_FUTURE_MS, MIN_EVENT_TIME_MS
from streaming.conversion.rules.reference import MAX_MESSAGE_BYTES, Reference

__all__ = ["MAX_FUTURE_MS", "MAX_MESSAGE_BYTES", "MIN_EVENT_TIME_MS", "REFERENCE", "transform"]

#: The reference engine of the repository's declaration (its memo tables are shared by the fast engines
#: built from the same declaration, see `streaming.conversion.fast_path`).
REFERENCE = Reference(repository_rules())

#: `transform(raw, topic, partition, offset, processed_at_ms, oldest_ms=MIN_EVENT_TIME_MS)`: the contract above.
#: `oldest_ms` is the acceptance window's lower edge (`Settings.oldest_event_ms`, computed once per batch): an
#: event time before it is refused as `event_too_old`.
transform = REFERENCE.transform
