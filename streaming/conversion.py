"""The per-record conversion the batch router calls: source bytes -> wire-format bytes or a rejection.

Contract of a `Convert` function, `convert(value, topic, partition, offset, now_ms, oldest_ms)`:
- it returns a `Converted` (the output record's wire-format bytes and key, and the two fields the running
  tallies count) or a `Rejection` naming why the message cannot be converted;
- `now_ms` is the batch's one clock reading (the processing time), `oldest_ms` the oldest event time the
  batch accepts (older events are rejected);
- it is pure and total, as `streaming.transform` is: no I/O, no clock, never raises.

`reference_converter` is today's path: `streaming.transform.transform`, then the registered schema's
`WireFormatEncoder.encode`. A faster implementation (a transform fused with the encoder, say) is dropped in
by giving the router another function with this contract; it must give byte-identical `value`s.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from streaming.avro_codegen import RecordEncodingError
from streaming.encoding import WireFormatEncoder
from streaming.records import Reason, Rejection
from streaming.transform import transform


class Converted(NamedTuple):
    """A converted record: `value` in Confluent wire format, `key` the user id in UTF-8."""

    value: bytes
    key: bytes
    device_type: str
    locale: str


Convert = Callable[[bytes | None, str, int, int, int, int], Converted | Rejection]
"""`convert(value, topic, partition, offset, now_ms, oldest_ms) -> Converted | Rejection`; see the module."""

_new_tuple = tuple.__new__  # builds a Converted in C: a NamedTuple's own __new__ is Python, ~0.4 µs a call


def reference_converter(encoder: WireFormatEncoder) -> Convert:
    """The reference `Convert`: `transform`, then `encoder.encode`; a record the schema cannot hold is
    rejected as `encoding_failed`."""
    encode = encoder.encode

    def convert(
        value: bytes | None, topic: str, partition: int, offset: int, now_ms: int, oldest_ms: int
    ) -> Converted | Rejection:
        result = transform(value, topic, partition, offset, now_ms, oldest_ms=oldest_ms)
        if type(result) is not dict:
            return result  # type: ignore[return-value]
        try:
            wire = encode(result)
        except RecordEncodingError as error:  # the schema cannot hold it: a dead letter, not a crash
            return Rejection(Reason.ENCODING_FAILED, str(error))
        return _new_tuple(Converted, (wire, result["user_id"].encode(), result["device_type"], result["locale"]))

    return convert
