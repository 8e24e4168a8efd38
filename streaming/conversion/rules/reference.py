"""The reference engine: the definition of what a declaration's rules accept and write, readable and total.

`Reference(rules).transform(raw, topic, partition, offset, processed_at_ms, oldest_ms)` is the contract of
`streaming.conversion.transform.transform` (see there) for any checked declaration: a dict keyed by the schema's fields,
in schema order, or a `Rejection`. The faster engines (`streaming.conversion.rules.codegen`, the native kernel) hand it
every message they are unsure of, and the property tests check that they agree with it byte for byte.

The order of checks decides the reason (the first failing one): the message as a whole, then the JSON type of
every input in declaration order, then missing required inputs, then each input's value in declaration order
(the event time against the acceptance window right after its own check).

Two memo tables per `Reference` (platform spellings and semantic versions by input: few distinct values, each
parsed once) only save work; a table that reaches `MEMO_LIMIT` entries (junk values) is emptied, never
replaced, because the fast engines read these very dicts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import msgspec

from streaming.conversion.rules import kinds
from streaming.conversion.rules.declaration import Input, Rules, UnsupportedRulesError
from streaming.records import Reason, Rejection, quote

#: Larger messages are refused unparsed: an event is about 250 bytes, and parsing cost grows with size.
MAX_MESSAGE_BYTES = 64 * 1024
MEMO_LIMIT = 4096
_JSON_WHITESPACE = b" \t\r\n"
_BOM = b"\xef\xbb\xbf"
_JSON_TYPE_NAMES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a number with a fraction or exponent",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
    type(None): "null",
}
_decode_object_lazily = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode  # values left undecoded
_decode_any = msgspec.json.Decoder().decode


def remember(memo: dict, key: str, value: Any) -> Any:
    """Store `value` under `key` (emptying a full table first) and return it."""
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    memo[key] = value
    return value


def event_struct(rules: Rules) -> type[msgspec.Struct]:
    """The typed view of an event: decoding fails unless each input present has one of its kind's JSON types."""
    fields = [(i.name, _union(i.kind.json_types), None) for i in rules.inputs]
    return msgspec.defstruct("Event", fields, gc=False)  # type: ignore[no-any-return]


def _union(json_types: tuple[type, ...]) -> Any:
    union: Any = type(None)
    for json_type in reversed(json_types):
        union = json_type | union
    return union


class Reference:
    """The reference engine for `rules`: `transform` and, for every message, the precise `explain`."""

    def __init__(self, rules: Rules) -> None:
        self.rules = rules
        self.decode_event = msgspec.json.Decoder(event_struct(rules)).decode
        self.astuple = msgspec.structs.astuple
        #: Memo tables by input name, for the kinds whose check is worth remembering (platform, semver).
        self.memos: dict[str, dict[str, Any]] = {
            i.name: {} for i in rules.inputs if i.kind.name in ("platform", "semver")
        }
        #: The same tables by input index (None for an input without one), as the generated engine reads them.
        self.memos_by_input = [self.memos.get(i.name) for i in rules.inputs]
        #: Per input, in order: (check, whether it takes the processing time, number of parts, its value when
        #: absent or null, the input). A check returns the normalised value (a tuple of the parts when there are
        #: several), or None when the value fails the rule.
        self._steps = [(*self._check(i), len(i.kind.parts), i.params.get("default"), i) for i in rules.inputs]
        self._required = [(index, i.name) for index, i in enumerate(rules.inputs) if i.required]
        self._window = rules.event_time
        # The record: each field picks one value from the inputs' parts, flattened in order, then the context.
        offsets, at = {}, 0
        for i in rules.inputs:
            offsets[i.name] = at
            at += len(i.kind.parts)
        contexts = {name: at + n for n, name in enumerate(kinds.CONTEXT)}
        picks = [
            contexts[f.context] if f.input is None else offsets[f.input.name] + list(f.input.kind.parts).index(f.part)  # type: ignore[index,arg-type]
            for f in rules.fields
        ]
        # The record as a dict display compiled once from the field names (one C-level map build; dict(zip())
        # over the same values costs about three times as much, measured with bench/hot_path.py's events).
        display = ", ".join(f"{f.name!r}: flat[{pick}]" for f, pick in zip(rules.fields, picks, strict=True))
        self._record: Callable[[list[Any]], dict[str, Any]] = eval(  # noqa: S307 - built from checked identifiers
            compile(f"lambda flat: {{{display}}}", f"<record of {rules.source}>", "eval")
        )

    def _check(self, spec: Input) -> tuple[Callable[..., Any], bool]:
        kind = spec.kind.name
        if kind == "uuid":
            return kinds.uuid, False
        if kind == "platform":
            memo, default = self.memos[spec.name], spec.params["default"]
            return lambda value: memo.get(value) or remember(memo, value, kinds.platform(value, default)), False
        if kind == "code":
            codes = spec.params["codes"]
            return lambda value: kinds.code(value, codes), False
        if kind == "ip_address":
            return kinds.ip, False
        if kind == "semver":
            memo = self.memos[spec.name]

            def semver(value: str) -> Any:
                version = memo.get(value) or remember(memo, value, kinds.semver(value))
                return None if version is None else (value, *version)

            return semver, False
        if kind == "epoch_time":

            def event_time(value: int | str, now: int) -> int | None:
                if type(value) is int and kinds.MIN_EVENT_TIME_MS <= value * 1000 <= now + kinds.MAX_FUTURE_MS:
                    return value * 1000  # the usual case, inline: whole epoch seconds
                return kinds.epoch_time(value, now)

            return event_time, True
        if kind == "text":
            return str, False  # a str already (its JSON type was checked): the same object back
        taking = [field.name for field in self.rules.fields if field.input is spec] or ["(none)"]
        raise UnsupportedRulesError(
            f"{self.rules.source}: the reference engine cannot run field {taking[0]!r} (input {spec.name!r}): "
            f"rule kind {kind!r} is not one it implements"
        )

    def transform(
        self,
        raw: bytes | None,
        topic: str,
        partition: int,
        offset: int,
        processed_at_ms: int,
        oldest_ms: int = kinds.MIN_EVENT_TIME_MS,
    ) -> dict[str, Any] | Rejection:
        """The processed record of the message, or why there is none; never raises. `oldest_ms`: the acceptance
        window's lower edge (by default only the 2000-01-01 floor applies)."""
        try:
            if type(raw) is bytes and len(raw) <= MAX_MESSAGE_BYTES and raw.isascii():
                values = self.astuple(self.decode_event(raw))
                return self.validate(values, topic, partition, offset, processed_at_ms, oldest_ms)
        except Exception:  # noqa: BLE001 - anything unusual is examined again, precisely, by explain
            pass
        return self.explain(raw, topic, partition, offset, processed_at_ms, oldest_ms)

    def validate(
        self,
        values: tuple[Any, ...],
        topic: str,
        partition: int,
        offset: int,
        processed_at_ms: int,
        oldest_ms: int,
    ) -> dict[str, Any] | Rejection:
        """Check and normalise input values (in declaration order) whose JSON types are already right or None."""
        if None in values:
            for index, name in self._required:
                if values[index] is None:
                    return Rejection(Reason.MISSING_FIELD, f"required field {name} is absent or null")
        flat: list[Any] = []
        window = self._window
        for (check, takes_now, width, default, spec), value in zip(self._steps, values):  # noqa: B905 - same length
            if value is None:
                if width == 1:
                    flat.append(default)
                else:
                    flat += (None,) * width
                continue
            result = check(value, processed_at_ms) if takes_now else check(value)
            if result is None:
                detail = kinds.refusal_detail(spec.kind, spec.name, value, spec.params, quote(value))
                return Rejection(spec.reason, detail)  # type: ignore[arg-type]  # a kind that refuses has one
            if spec is window and result < oldest_ms:
                return Rejection(
                    Reason.EVENT_TOO_OLD,
                    f"event time {result} ms is {(processed_at_ms - result) / 86_400_000:.1f} days before "
                    f"processing, older than the acceptance window (KDP_MAX_EVENT_AGE) allows",
                )
            if width == 1:
                flat.append(result)
            else:
                flat += result
        flat += (processed_at_ms, topic, partition, offset)  # in the order of kinds.CONTEXT
        return self._record(flat)

    def explain(
        self, raw: object, topic: str, partition: int, offset: int, processed_at_ms: int, oldest_ms: int
    ) -> dict[str, Any] | Rejection:
        """The reference transform: every check in turn, so that a rejection names its precise reason."""
        try:
            return self._explain_unguarded(raw, topic, partition, offset, processed_at_ms, oldest_ms)
        except Exception as error:  # noqa: BLE001 - a bug must cost one dead letter, not the stream
            return Rejection(Reason.INTERNAL_ERROR, f"transform raised {type(error).__name__}: {error}")

    def _explain_unguarded(
        self, raw: object, topic: str, partition: int, offset: int, processed_at_ms: int, oldest_ms: int
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
            fields = decode_at_a_fixed_depth(_decode_object_lazily, data)
        except msgspec.ValidationError:  # valid so far, but the top-level value is not an object
            return _not_an_object(data)
        except msgspec.DecodeError as error:
            return Rejection(Reason.INVALID_JSON, str(error))
        except RecursionError:
            return Rejection(Reason.INVALID_JSON, "nested deeper than the JSON decoder allows")

        values: list[Any] = []
        for spec in self.rules.inputs:
            name, json_types = spec.name, spec.kind.json_types
            value_json = fields.get(name)
            if value_json is None:
                values.append(None)
                continue
            try:
                value = decode_at_a_fixed_depth(_decode_any, value_json)
            except msgspec.ValidationError:  # the only kind left: a number beyond what msgspec represents
                if int in json_types:
                    return Rejection(spec.reason, f"{name} is a number out of range")  # type: ignore[arg-type]
                return Rejection(Reason.WRONG_TYPE, f"{name} must be a string, not a number")
            except RecursionError:
                return Rejection(Reason.WRONG_TYPE, f"{name} is a deeply nested value")
            if value is not None and type(value) not in json_types:
                expected = " or ".join(_JSON_TYPE_NAMES[t] for t in json_types)
                return Rejection(Reason.WRONG_TYPE, f"{name} must be {expected}, not {_JSON_TYPE_NAMES[type(value)]}")
            values.append(value)
        return self.validate(tuple(values), topic, partition, offset, processed_at_ms, oldest_ms)


def decode_at_a_fixed_depth(decode: Callable[[Any], Any], data: Any) -> Any:
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
        value = decode_at_a_fixed_depth(_decode_any, data)
    except msgspec.ValidationError:
        return Rejection(Reason.NOT_AN_OBJECT, "the JSON value is a number out of range, not an object")
    except msgspec.DecodeError as error:
        return Rejection(Reason.INVALID_JSON, str(error))
    except RecursionError:
        return Rejection(Reason.INVALID_JSON, "nested deeper than the JSON decoder allows")
    return Rejection(Reason.NOT_AN_OBJECT, f"the JSON value is {_JSON_TYPE_NAMES[type(value)]}, not an object")
