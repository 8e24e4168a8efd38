"""What converting one source message gives: a `Converted` record ready to produce, or a `Rejection`.

`Convert` is the contract of the converter's one per-record function (`streaming.fast_path` builds it):

    convert(value, topic, partition, offset, now_ms, oldest_ms) -> Converted | Rejection

- `value` is the source message's value (None for a tombstone); `topic`/`partition`/`offset` say where it
  was read; `now_ms` is the batch's one clock reading (epoch milliseconds, written as `processed_at`);
  `oldest_ms` is the acceptance window's lower edge (`Settings.oldest_event_ms(now_ms)`).
- It is pure and never raises; a message that cannot become a record is a `Rejection` whose reason is one
  of `streaming.records.Reason` (the transform's reasons, or `encoding_failed` when the registered
  schema cannot hold the processed record).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, TypeAlias

from streaming.records import Rejection


class Converted(NamedTuple):
    """A processed record, encoded: what the converter produces to the output topic, and what it counts."""

    value: bytes
    """The record in Confluent wire format: magic byte, schema id, Avro body."""
    key: bytes
    """The record's `user_id`, UTF-8: the output topic is keyed by user."""
    device_type: str
    """The record's normalised `device_type` (for the running insights)."""
    locale: str
    """The record's normalised `locale` (for the running insights)."""


Convert: TypeAlias = Callable[[bytes | None, str, int, int, int, int], Converted | Rejection]
