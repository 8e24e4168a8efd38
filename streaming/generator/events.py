"""The login event as the take-home's generator writes it, and the irregularities met in the wild.

A well-formed event is one line of JSON with seven fields, in this order and spacing (values shown):

    {user_id: "<uuid4>", app_version: "2.3.0", ip: "108.228.145.239", locale: "RI",
     device_id: "<uuid4>", timestamp: 1720576825, device_type: "iOS"}

The keys are the inputs of the rules declaration (`schemas/processed-data-value.rules.yaml`), found by their
rule kind (`EVENT_KEYS`): the generator writes what the converter reads.

- `locale` is a US state code (the user's home state), `ip` four random octets (private, reserved and
  multicast addresses included, as in the original), `timestamp` whole epoch seconds.
- `device_type` is `android` or `iOS` in the spelling the device's app build uses (`Android`, `IOS`, ...),
  and is left out of about 5 % of the events (`missing_device_type`).

`extra_keys` (`kdp generate --extra-key KEY=VALUE[,VALUE...]`) adds keys the seven do not have, after them, to
the well-formed events and those missing `device_type`: each event takes one of the key's values at random
(a stream of its own, so the other keys do not change). That is how a schema change that reads a new input
key is tried on traffic that carries it.

On top of that, `IrregularityRates` adds the faults a consumer meets in the wild, each with its own rate
(default 0): another field missing, the timestamp as a numeric string, a field of the wrong JSON type (or
a payload that is not a JSON object), bytes that are not JSON, and empty messages. Every event has exactly
one `Irregularity` (`NONE` when well-formed), returned beside its bytes so that tests can count them.

Contract: `EventFactory` is pure and deterministic. The same seed, rates and pool size, asked for the same
counts with the same `now`, yield byte-identical events (ids come from `random.Random(seed)`, never from
`os.urandom`); the caller owns the clock. Speed matters (a generator must outrun the pipeline it feeds), so
the well-formed path formats pre-built per-device fragments with one f-string, and only the rare irregular
events go through `json.dumps`.
"""

from __future__ import annotations

import json
import random
import uuid
from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, NamedTuple

from streaming.conversion.rules.declaration import repository_rules

US_STATES: tuple[str, ...] = (
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY",
    "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND",
    "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY",
)  # fmt: skip

#: App builds in the field and how common each is; most devices run the current one.
APP_VERSIONS: dict[str, float] = {"2.3.0": 0.80, "2.2.1": 0.12, "2.1.4": 0.05, "2.4.0-beta": 0.03}

#: The two platforms and the spellings their app builds send; the first spelling is the usual one.
DEVICE_TYPE_SPELLINGS: dict[str, tuple[str, ...]] = {
    "android": ("android", "Android", "ANDROID"),
    "iOS": ("iOS", "IOS", "ios"),
}
USUAL_SPELLING_SHARE = 0.7


def _input_key(kind: str, required: bool) -> str:
    """The key of the declaration's input checked by rule `kind` (and required or not)."""
    inputs = repository_rules().inputs
    return next(spec.name for spec in inputs if (spec.kind.name, spec.required) == (kind, required))


#: The event's keys: (user id, device id, device type, locale, ip, app version, timestamp).
EVENT_KEYS: tuple[str, ...] = tuple(
    _input_key(kind, required)
    for kind, required in (
        ("uuid", True),
        ("uuid", False),
        ("platform", False),
        ("code", True),
        ("ip_address", True),
        ("semver", True),
        ("epoch_time", True),
    )
)
USER_ID, DEVICE_ID, DEVICE_TYPE, LOCALE, IP, APP_VERSION, TIMESTAMP = EVENT_KEYS

#: The seven fields of a well-formed event, in the order the original generator writes them.
FIELDS: tuple[str, ...] = (USER_ID, APP_VERSION, IP, LOCALE, DEVICE_ID, TIMESTAMP, DEVICE_TYPE)


class Irregularity(StrEnum):
    """What is unusual about one generated message; exactly one per message."""

    NONE = "none"
    MISSING_DEVICE_TYPE = "missing_device_type"
    MISSING_FIELD = "missing_field"  # one of the six other fields is left out
    TIMESTAMP_AS_STRING = "timestamp_as_string"  # "timestamp": "1720576825"
    WRONG_TYPE = "wrong_type"  # a field of the wrong JSON type, or a payload that is not an object
    NOT_JSON = "not_json"  # truncated JSON, undecodable bytes, or a plain-text line
    EMPTY = "empty"  # zero bytes


#: The kinds that `--malformed-rate` spreads over (missing device_type is the original's normal behaviour).
MALFORMED_KINDS: tuple[Irregularity, ...] = (
    Irregularity.MISSING_FIELD,
    Irregularity.TIMESTAMP_AS_STRING,
    Irregularity.WRONG_TYPE,
    Irregularity.NOT_JSON,
    Irregularity.EMPTY,
)


@dataclass(frozen=True)
class IrregularityRates:
    """The share of events of each irregular kind; the kinds are exclusive, so the rates add up to <= 1.

    Field names are the `Irregularity` values, so `rates.by_kind()` maps kinds to rates. A bad rate raises
    `ValueError` naming the field.
    """

    missing_device_type: float = 0.05
    missing_field: float = 0.0
    timestamp_as_string: float = 0.0
    wrong_type: float = 0.0
    not_json: float = 0.0
    empty: float = 0.0

    def __post_init__(self) -> None:
        for name, rate in asdict(self).items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} rate {rate} must be between 0 and 1")
        if self.total > 1.0 + 1e-9:
            raise ValueError(f"the irregularity rates add up to {self.total:g}; their sum must be at most 1")

    @classmethod
    def with_malformed(cls, malformed_rate: float, **rates: float) -> IrregularityRates:
        """Rates with `malformed_rate` spread evenly over `MALFORMED_KINDS`, added to the per-kind `rates`."""
        if not 0.0 <= malformed_rate <= 1.0:
            raise ValueError(f"malformed rate {malformed_rate} must be between 0 and 1")
        share = malformed_rate / len(MALFORMED_KINDS)
        combined = dict(rates)
        for kind in MALFORMED_KINDS:
            combined[kind.value] = combined.get(kind.value, 0.0) + share
        return cls(**combined)

    @property
    def total(self) -> float:
        return sum(asdict(self).values())

    def by_kind(self) -> dict[Irregularity, float]:
        return {Irregularity(name): rate for name, rate in asdict(self).items()}


class GeneratedEvent(NamedTuple):
    """One message to produce: `key` is the user id (also for irregular payloads), `kind` its label."""

    key: bytes
    value: bytes
    kind: Irregularity


class _Device(NamedTuple):
    """A device of the pool, with its event pre-formatted around the two parts that vary (ip, timestamp)."""

    key: bytes
    fields: dict[str, Any]  # the fixed fields, for the slow path of irregular events
    head: str  # the JSON up to the ip's value
    middle: str  # from after the ip to the timestamp's value
    tail: str  # after the timestamp: the device type and the closing brace


_OCTETS = tuple(str(octet) for octet in range(256))
_new_event = tuple.__new__  # builds a GeneratedEvent without NamedTuple's Python-level __new__


class EventFactory:
    """Seeded, pure source of login events for a pool of users with one to three devices each.

    The pool (users, their home state, their devices, each device's platform, spelling and app build) is
    drawn from the seed before any event, so it does not depend on the rates. Each event then picks a device
    uniformly (users with more devices log in more often), a fresh random IP, and a timestamp within
    `timestamp_jitter_s` seconds either side of `now`.
    """

    def __init__(
        self,
        seed: int,
        rates: IrregularityRates | None = None,
        *,
        users: int = 10_000,
        max_devices_per_user: int = 3,
        timestamp_jitter_s: int = 3,
        extra_keys: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        if users < 1 or max_devices_per_user < 1:
            raise ValueError("users and max_devices_per_user must be at least 1")
        extra_keys = dict(extra_keys or {})
        for name, values in extra_keys.items():
            if name in FIELDS:
                raise ValueError(f"extra key {name!r} is one of the event's own keys")
            if not values:
                raise ValueError(f"extra key {name!r} has no values")
        # Each key's possible JSON fragments, pre-formatted: `, "name": "value"`.
        self._extra_fragments = [
            [f", {json.dumps(name)}: {json.dumps(value)}" for value in values] for name, values in extra_keys.items()
        ]
        self._extra_rng = random.Random(f"{seed}/extra-keys")
        if timestamp_jitter_s < 0:
            raise ValueError("timestamp_jitter_s must be >= 0")
        self.rates = rates if rates is not None else IrregularityRates()
        self._rng = random.Random(seed)
        # The details of irregular payloads come from a second stream, so that the main one (device, IP,
        # timestamp) is the same whatever the rates: irregularities overlay one base sequence of logins.
        self._detail_rng = random.Random(f"{seed}/irregularities")
        self._devices = self._build_pool(users, max_devices_per_user)
        self._user_count = users
        self._jitter = timestamp_jitter_s
        # Kinds are chosen with one uniform draw: [0, missing_device_type) is the cheap missing-device-type
        # path, then one interval per malformed kind, and everything above the total is well-formed.
        self._missing_device_type_below = self.rates.missing_device_type
        self._slow_kinds = MALFORMED_KINDS
        bounds, upper = [], self.rates.missing_device_type
        for kind in MALFORMED_KINDS:
            upper += getattr(self.rates, kind.value)
            bounds.append(upper)
        self._slow_bounds = bounds
        self._irregular_below = upper

    @property
    def user_count(self) -> int:
        return self._user_count

    @property
    def device_count(self) -> int:
        return len(self._devices)

    def _uuid4(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _build_pool(self, users: int, max_devices_per_user: int) -> list[_Device]:
        rng = self._rng
        versions, version_weights = list(APP_VERSIONS), list(APP_VERSIONS.values())
        devices = []
        for _ in range(users):
            user_id = self._uuid4()
            locale = rng.choice(US_STATES)
            for _ in range(rng.randint(1, max_devices_per_user)):
                device_id = self._uuid4()
                spellings = DEVICE_TYPE_SPELLINGS[rng.choice(("android", "iOS"))]
                usual = rng.random() < USUAL_SPELLING_SHARE
                device_type = spellings[0] if usual else rng.choice(spellings[1:])
                app_version = rng.choices(versions, version_weights)[0]
                fields = {
                    USER_ID: user_id,
                    APP_VERSION: app_version,
                    LOCALE: locale,
                    DEVICE_ID: device_id,
                    DEVICE_TYPE: device_type,
                }
                devices.append(
                    _Device(
                        key=user_id.encode(),
                        fields=fields,
                        head=f'{{"{USER_ID}": "{user_id}", "{APP_VERSION}": "{app_version}", "{IP}": "',
                        middle=f'", "{LOCALE}": "{locale}", "{DEVICE_ID}": "{device_id}", "{TIMESTAMP}": ',
                        tail=f', "{DEVICE_TYPE}": "{device_type}"}}',
                    )
                )
        return devices

    def batch(self, count: int, now: float) -> list[GeneratedEvent]:
        """The next `count` events, timestamped around `now` (epoch seconds)."""
        rng = self._rng
        draw, bits = rng.random, rng.getrandbits
        devices, device_count = self._devices, len(self._devices)
        octets = _OCTETS
        earliest, span = int(now) - self._jitter, 2 * self._jitter + 1
        missing_below, irregular_below = self._missing_device_type_below, self._irregular_below
        extras = bool(self._extra_fragments)
        none, missing_device_type = Irregularity.NONE, Irregularity.MISSING_DEVICE_TYPE
        out: list[GeneratedEvent] = []
        append = out.append
        for _ in range(count):
            # Four draws from the main stream per event, whatever its kind.
            u = draw()
            device = devices[int(draw() * device_count)]
            n = bits(32)
            ip = f"{octets[n >> 24]}.{octets[(n >> 16) & 255]}.{octets[(n >> 8) & 255]}.{octets[n & 255]}"
            ts = earliest + int(draw() * span)
            if u >= irregular_below:
                payload = f"{device.head}{ip}{device.middle}{ts}{device.tail}"
                if extras:
                    payload = payload[:-1] + self._extras() + "}"
                append(_new_event(GeneratedEvent, (device.key, payload.encode(), none)))
            elif u < missing_below:
                payload = f"{device.head}{ip}{device.middle}{ts}{self._extras() if extras else ''}}}"
                append(_new_event(GeneratedEvent, (device.key, payload.encode(), missing_device_type)))
            else:
                kind = self._slow_kinds[bisect_right(self._slow_bounds, u)]
                value = self._irregular_payload(kind, device, ip, ts)
                append(_new_event(GeneratedEvent, (device.key, value, kind)))
        return out

    def _extras(self) -> str:
        """The extra keys of one event, each with one of its values: `, "k1": "v", "k2": "w"`."""
        choice = self._extra_rng.choice
        return "".join(choice(fragments) for fragments in self._extra_fragments)

    def _irregular_payload(self, kind: Irregularity, device: _Device, ip: str, ts: int) -> bytes:
        rng = self._detail_rng
        fields = {name: device.fields.get(name) for name in FIELDS}
        fields[IP], fields[TIMESTAMP] = ip, ts
        if kind is Irregularity.MISSING_FIELD:
            del fields[rng.choice(FIELDS[:-1])]
        elif kind is Irregularity.TIMESTAMP_AS_STRING:
            fields[TIMESTAMP] = str(ts)
        elif kind is Irregularity.WRONG_TYPE:
            return json.dumps(_wrong_type(rng, fields)).encode()
        elif kind is Irregularity.NOT_JSON:
            return _not_json(rng, json.dumps(fields).encode(), fields)
        elif kind is Irregularity.EMPTY:
            return b""
        return json.dumps(fields).encode()


#: How each field looks when a producer gets its type wrong (seen in the wild, or close to it).
_WRONG_TYPES: dict[str, Callable[[random.Random, Any], Any]] = {
    USER_ID: lambda rng, value: rng.randrange(1, 10**9),  # a numeric id from an older backend
    APP_VERSION: lambda rng, value: float(".".join(value.split(".")[:2])),  # 2.3 instead of "2.3.0"
    IP: lambda rng, value: int.from_bytes(bytes(int(part) for part in value.split(".")), "big"),
    LOCALE: lambda rng, value: None,
    DEVICE_ID: lambda rng, value: [value],
    TIMESTAMP: lambda rng, value: None,
    DEVICE_TYPE: lambda rng, value: 1,
}


def _wrong_type(rng: random.Random, fields: dict[str, Any]) -> Any:
    """`fields` with one value of the wrong JSON type, or (one time in eight) not an object at all."""
    variant = rng.randrange(len(FIELDS) + 1)
    if variant == len(FIELDS):
        return list(fields.values())
    name = FIELDS[variant]
    fields[name] = _WRONG_TYPES[name](rng, fields[name])
    return fields


def _not_json(rng: random.Random, well_formed: bytes, fields: dict[str, Any]) -> bytes:
    """Bytes no JSON parser accepts: a truncated payload, an Avro record in Confluent wire format that
    landed on the wrong topic (magic byte 0, schema id, binary body), or a plain-text log line."""
    variant = rng.randrange(3)
    if variant == 0:
        return well_formed[: rng.randrange(1, len(well_formed) - 1)]
    if variant == 1:
        body = bytes(rng.getrandbits(8) for _ in range(rng.randint(20, 80)))
        return b"\x00" + rng.randrange(1, 1000).to_bytes(4, "big") + body
    return " ".join(f"{name}={value}" for name, value in fields.items()).encode()
