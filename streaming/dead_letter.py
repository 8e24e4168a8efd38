"""The dead-letter record: the original bytes, untouched, and why and where they failed.

Contract (documented for consumers in `schemas/README.md`): the dead letter's value is the
source message's value byte for byte (an absent value stays absent), its key is the source key,
and the headers carry the reason code, a short human-readable detail, the source coordinates
and the time of failure. Keeping the payload untouched means a fixed converter can replay a
dead-letter topic without any loss of information.
"""

from __future__ import annotations

from collections.abc import Sequence

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


def read_dead_letter_headers(headers: Sequence[tuple[str, str | bytes | None]] | None) -> dict[str, str]:
    """The `kdp.dlq.*` headers of a consumed dead letter, decoded to text (for readers and tests)."""
    return {
        name: value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")
        for name, value in headers or []
        if name.startswith("kdp.dlq.")
    }
