"""The dead-letter record: the original bytes, untouched, and why and where they failed.

Contract (documented for consumers in `schemas/README.md`): the dead letter's value is the
source message's value byte for byte (an absent value stays absent), its key is the source key,
and the headers carry the reason code, a short human-readable detail, the source coordinates
and the time of failure. Keeping the payload untouched means a fixed converter can replay a
dead-letter topic without any loss of information.

This module is the one place that writes and reads those headers: the converter writes them with
`dead_letter_headers`; `kdp tail`, the insights reader and the tests read them with
`read_dead_letter_headers` (all `kdp.dlq.*` headers as text) and `failed_at_ms` (the failure time).
A dead letter's Kafka timestamp is its failure time too (`kdp.dlq.failed_at`), never the source's, so that
the dead-letter topic's retention runs from when the dead letter was written; readers find an hour of
dead letters by it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from streaming import records
from streaming.records import Rejection


def dead_letter_headers(
    rejection: Rejection, topic: str, partition: int, offset: int, source_timestamp_ms: int, failed_at_ms: int
) -> list[tuple[str, str | bytes | None]]:
    """Headers of the dead letter of the message at `topic`/`partition`/`offset`."""
    return [
        (records.DLQ_REASON, rejection.reason.encode()),
        (records.DLQ_DETAIL, rejection.detail.encode("utf-8", "backslashreplace")),
        (records.DLQ_SOURCE_TOPIC, topic.encode()),
        (records.DLQ_SOURCE_PARTITION, str(partition).encode()),
        (records.DLQ_SOURCE_OFFSET, str(offset).encode()),
        (records.DLQ_SOURCE_TIMESTAMP, str(source_timestamp_ms).encode()),
        (records.DLQ_FAILED_AT, str(failed_at_ms).encode()),
    ]


def read_dead_letter_headers(
    headers: Sequence[tuple[str, str | bytes | None]] | Mapping[str, str | bytes | None] | None,
) -> dict[str, str]:
    """The `kdp.dlq.*` headers of a consumed dead letter (`Message.headers()`), decoded to text; empty when
    the message is not a dead letter."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers or []
    return {
        name: value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")
        for name, value in pairs
        if name.startswith("kdp.dlq.")
    }


def failed_at_ms(headers: Mapping[str, str]) -> int | None:
    """When the converter rejected the message (`kdp.dlq.failed_at` of `read_dead_letter_headers`), epoch
    milliseconds; None when the header is absent or not a whole number."""
    text = headers.get(records.DLQ_FAILED_AT, "")
    return int(text) if text.isascii() and text.isdigit() else None
