"""What the transform hands on: the rejection of a message, its reason codes, and the dead-letter headers.

A processed record is a plain `dict` keyed by the Avro field names of `schemas/processed-data-value.avsc`
(see `streaming.conversion.transform`); a message that cannot become one becomes a `Rejection`. The reason codes
below are a closed set: dashboards, alerts and replays group dead letters by them, so adding one is a
contract change (document it in `schemas/README.md`), and renaming one breaks readers.

The `DLQ_*` names are the headers of a dead letter (built in `streaming.delivery.dead_letter`); the value of a dead
letter is the source message's bytes, untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

#: Upper bound of `Rejection.detail`, in characters: a detail explains, it never carries the payload.
MAX_DETAIL_CHARS = 200


class Reason(StrEnum):
    """Why a message became a dead letter; the value is what the `kdp.dlq.reason` header carries."""

    #: No value (a tombstone), zero bytes, or only whitespace.
    EMPTY = "empty"
    #: Larger than `streaming.conversion.transform.MAX_MESSAGE_BYTES`; not parsed at all.
    TOO_LARGE = "too_large"
    #: Not valid UTF-8, so not JSON (RFC 8259 section 8.1); e.g. an Avro record sent to the wrong topic.
    NOT_UTF8 = "not_utf8"
    #: Not parseable JSON: syntax errors, NaN/Infinity, trailing data, raw control characters in strings,
    #: lone UTF-16 surrogate escapes, nesting deeper than the decoder's limit.
    INVALID_JSON = "invalid_json"
    #: Valid JSON, but the top-level value is an array, string, number, boolean or null.
    NOT_AN_OBJECT = "not_an_object"
    #: A required field is absent or null.
    MISSING_FIELD = "missing_field"
    #: A field has the wrong JSON type (e.g. a numeric `user_id`, a boolean `timestamp`).
    WRONG_TYPE = "wrong_type"
    #: `user_id` is not a UUID in its 8-4-4-4-12 hexadecimal text form.
    INVALID_USER_ID = "invalid_user_id"
    #: `device_id` is present but not a UUID in its 8-4-4-4-12 hexadecimal text form.
    INVALID_DEVICE_ID = "invalid_device_id"
    #: `device_type` is not a short platform name (1 to 32 letters, digits, `.`, `_`, `-`).
    INVALID_DEVICE_TYPE = "invalid_device_type"
    #: `timestamp` is not epoch seconds or milliseconds between 2000-01-01 and 55 minutes after processing.
    INVALID_TIMESTAMP = "invalid_timestamp"
    #: `timestamp` is valid but older than the acceptance window (`KDP_MAX_EVENT_AGE`) allows.
    EVENT_TOO_OLD = "event_too_old"
    #: `ip` is not an IPv4 dotted quad or an IPv6 address (leading zeros, zone ids, junk are refused).
    INVALID_IP = "invalid_ip"
    #: `locale` is not a US state, DC or inhabited territory code.
    INVALID_LOCALE = "invalid_locale"
    #: `app_version` is not `MAJOR.MINOR[.PATCH][-PRERELEASE][+BUILD]`.
    INVALID_APP_VERSION = "invalid_app_version"
    #: Never produced by the transform: the converter uses it if the encoder refuses a processed record.
    ENCODING_FAILED = "encoding_failed"
    #: Never produced by the transform: the broker refused the processed record for good (e.g. larger
    #: than the output topic's `max.message.bytes`), so the converter dead-letters its source instead.
    REJECTED_BY_BROKER = "rejected_by_broker"
    #: A bug: the transform itself raised. It is caught so that one message cannot stop the stream.
    INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message that cannot become a processed record: `reason` is a `Reason`, `detail` a short,
    human-readable explanation naming the field, quoting at most a short prefix of the offending value."""

    reason: str
    detail: str

    def __post_init__(self) -> None:
        if len(self.detail) > MAX_DETAIL_CHARS:
            object.__setattr__(self, "detail", self.detail[: MAX_DETAIL_CHARS - 3] + "...")


def quote(value: object, limit: int = 40) -> str:
    """`repr(value)` cut to about `limit` characters: enough to recognise a value, never a whole payload."""
    text = repr(value[: limit + 1] if isinstance(value, str | bytes) else value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# Headers of a dead letter; every value is UTF-8 text (numbers in decimal).
DLQ_REASON = "kdp.dlq.reason"  # a `Reason` value
DLQ_DETAIL = "kdp.dlq.detail"  # `Rejection.detail`
DLQ_SOURCE_TOPIC = "kdp.dlq.source.topic"
DLQ_SOURCE_PARTITION = "kdp.dlq.source.partition"
DLQ_SOURCE_OFFSET = "kdp.dlq.source.offset"
DLQ_SOURCE_TIMESTAMP = "kdp.dlq.source.timestamp"  # the source message's timestamp, epoch milliseconds
DLQ_FAILED_AT = "kdp.dlq.failed_at"  # when the converter rejected it, epoch milliseconds

# Written only on the dead letter of a replayed message that was refused again (`streaming.replay.headers`).
DLQ_REPLAY_COUNT = "kdp.dlq.replay.count"  # how many replays it has been through, 1 after the first
DLQ_REPLAY_PREVIOUS_REASON = "kdp.dlq.replay.previous_reason"  # the reason of the dead letter it replaced
DLQ_REPLAY_ID = "kdp.dlq.replay.id"  # the replay that wrote it (`ReplaySelection.replay_id`)

DLQ_HEADERS: tuple[str, ...] = (
    DLQ_REASON,
    DLQ_DETAIL,
    DLQ_SOURCE_TOPIC,
    DLQ_SOURCE_PARTITION,
    DLQ_SOURCE_OFFSET,
    DLQ_SOURCE_TIMESTAMP,
    DLQ_FAILED_AT,
)

DLQ_REPLAY_HEADERS: tuple[str, ...] = (DLQ_REPLAY_COUNT, DLQ_REPLAY_PREVIOUS_REASON, DLQ_REPLAY_ID)
