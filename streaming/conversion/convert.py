"""The per-record conversion the batch router calls: source bytes -> wire-format bytes or a rejection.

Contract of a `Convert` function, `convert(value, topic, partition, offset, now_ms, oldest_ms)`:
- it returns a `Converted` (the output record's wire-format bytes and key, and the two fields the running
  tallies count) or a `Rejection` naming why the message cannot be converted;
- `now_ms` is the batch's one clock reading (the processing time), `oldest_ms` the oldest event time the
  batch accepts (older events are rejected);
- it is pure and total, as `streaming.conversion.transform` is: no I/O, no clock, never raises.

A `Convert` may carry its batch form as its attribute `convert_batch` (a `ConvertBatch`: the fused fast
path does, see `streaming.conversion.fast_path`); `batch_form(convert)` is that, or the one-by-one loop over `convert`.
Both give the same `ConvertedBatch` for the same messages.

`reference_converter` is the definition: the reference engine of a rules declaration
(`streaming.conversion.rules.reference`; by default the repository's, `streaming.conversion.transform`), then the
registered schema's
`WireFormatEncoder.encode`. The faster engines (`streaming.conversion.fast_path`) have this contract too and give
byte-identical `value`s; `ConvertedBatch.lanes` counts which engine decided each message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

from streaming.conversion.avro_codegen import RecordEncodingError
from streaming.conversion.encoding import WireFormatEncoder
from streaming.conversion.rules.reference import Reference
from streaming.conversion.transform import REFERENCE
from streaming.records import Reason, Rejection


class Converted(NamedTuple):
    """A converted record: `value` in Confluent wire format, `key` the user id in UTF-8."""

    value: bytes
    key: bytes
    device_type: str
    locale: str


Convert = Callable[[bytes | None, str, int, int, int, int], Converted | Rejection]
"""`convert(value, topic, partition, offset, now_ms, oldest_ms) -> Converted | Rejection`; see the module."""


class SourceMessage(Protocol):
    """What conversion reads of a consumed message (`confluent_kafka.Message` has it)."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def value(self) -> bytes | None: ...


class Lanes(NamedTuple):
    """How many messages of a batch each engine converted (or refused): the native kernel, the pure fast
    engine, the reference (`streaming.conversion.fast_path`)."""

    native: int
    fast: int
    reference: int


class ConvertedBatch(NamedTuple):
    """A batch of messages converted, as columns: what the router needs and nothing per message besides.

    `values[i]`, `keys[i]`, `device_types[i]`, `locales[i]` are the i-th record converted, in the order
    consumed; `rejected` holds every other message with its `Rejection`, in the order consumed. A run is a
    stretch of consecutive messages of one topic and partition: `run_starts[j]` and `run_ends[j]` are the
    first and last message of the j-th run. `bytes_in`: the sum of the values' lengths. `lanes`: how many
    messages each engine decided.
    """

    values: list[bytes]
    keys: list[bytes]
    device_types: list[str]
    locales: list[str]
    rejected: list[tuple[Any, Rejection]]
    run_starts: list[Any]
    run_ends: list[Any]
    bytes_in: int
    lanes: Lanes


ConvertBatch = Callable[[Sequence[SourceMessage], int, int], ConvertedBatch]
"""`convert_batch(messages, now_ms, oldest_ms) -> ConvertedBatch`: `Convert` over a batch of consumed messages."""

_new_tuple = tuple.__new__  # builds a Converted in C: a NamedTuple's own __new__ is Python, ~0.4 µs a call


def reference_converter(encoder: WireFormatEncoder, reference: Reference = REFERENCE) -> Convert:
    """The reference `Convert`: `reference.transform` (by default the repository's declaration), then
    `encoder.encode`; a record the schema cannot hold is rejected as `encoding_failed`."""
    encode = encoder.encode
    transform = reference.transform
    key, (device_type, locale) = reference.rules.key.name, (f.name for f in reference.rules.tallies)

    def convert(
        value: bytes | None, topic: str, partition: int, offset: int, now_ms: int, oldest_ms: int
    ) -> Converted | Rejection:
        result = transform(value, topic, partition, offset, now_ms, oldest_ms)
        if type(result) is not dict:
            return result  # type: ignore[return-value]
        try:
            wire = encode(result)
        except RecordEncodingError as error:  # the schema cannot hold it: a dead letter, not a crash
            return Rejection(Reason.ENCODING_FAILED, str(error))
        return _new_tuple(Converted, (wire, result[key].encode(), result[device_type], result[locale]))

    return convert


def one_by_one(convert: Convert) -> ConvertBatch:
    """The batch form of any `Convert`: one call per message (what a `convert_batch` must agree with).

    Lanes: a fused `convert` (`streaming.conversion.fast_path`) carries its fast lane alone as `convert.usual` (None: it
    declines) and its reference as `convert.reference`; each message then goes to one of them and is counted
    under it. Any other `Convert` is counted as the reference.
    """
    usual: Convert | None = getattr(convert, "usual", None)
    reference: Convert = getattr(convert, "reference", convert) if usual is not None else convert

    def convert_batch(messages: Sequence[SourceMessage], now_ms: int, oldest_ms: int) -> ConvertedBatch:
        values: list[bytes] = []
        keys: list[bytes] = []
        device_types: list[str] = []
        locales: list[str] = []
        rejected: list[tuple[Any, Rejection]] = []
        run_starts: list[Any] = []
        run_ends: list[Any] = []
        bytes_in = fast = 0
        for index, message in enumerate(messages):
            value, topic, partition, offset = message.value(), message.topic(), message.partition(), message.offset()
            if index == 0 or (topic, partition) != (run_starts[-1].topic(), run_starts[-1].partition()):
                if index:
                    run_ends.append(messages[index - 1])
                run_starts.append(message)
            if value is not None:
                bytes_in += len(value)
            result = usual(value, topic, partition, offset, now_ms, oldest_ms) if usual else None  # type: ignore[arg-type]
            if result is None:
                result = reference(value, topic, partition, offset, now_ms, oldest_ms)  # type: ignore[arg-type]
            else:
                fast += 1
            if type(result) is Rejection:
                rejected.append((message, result))
            else:
                converted: Converted = result  # type: ignore[assignment]
                values.append(converted.value)
                keys.append(converted.key)
                device_types.append(converted.device_type)
                locales.append(converted.locale)
        if messages:
            run_ends.append(messages[-1])
        lanes = Lanes(0, fast, len(messages) - fast)
        return ConvertedBatch(values, keys, device_types, locales, rejected, run_starts, run_ends, bytes_in, lanes)

    return convert_batch


def batch_form(convert: Convert) -> ConvertBatch:
    """`convert`'s own `convert_batch` if it carries one, otherwise `one_by_one(convert)`."""
    own: ConvertBatch | None = getattr(convert, "convert_batch", None)
    return own if own is not None else one_by_one(convert)
