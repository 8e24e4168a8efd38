"""The event factory: deterministic for a seed, the original's shapes, and irregularities at their rates."""

from __future__ import annotations

import json
import math
import uuid
from collections import Counter

import pytest

from streaming.generator.events import (
    FIELDS,
    MALFORMED_KINDS,
    EventFactory,
    GeneratedEvent,
    Irregularity,
    IrregularityRates,
)

NOW = 1_720_576_825.0
N = 20_000
STATE_CODES = {
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY",
    "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND",
    "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY",
}  # fmt: skip


def is_uuid4(text: object) -> bool:
    if not isinstance(text, str):
        return False
    try:
        parsed = uuid.UUID(text)
    except ValueError:
        return False
    return parsed.version == 4 and str(parsed) == text


def of_kind(events: list[GeneratedEvent], kind: Irregularity) -> list[GeneratedEvent]:
    return [event for event in events if event.kind is kind]


@pytest.fixture(scope="module")
def default_events() -> list[GeneratedEvent]:
    return EventFactory(seed=7).batch(N, now=NOW)


@pytest.fixture(scope="module")
def irregular_events() -> list[GeneratedEvent]:
    rates = IrregularityRates.with_malformed(0.25, missing_device_type=0.05)
    return EventFactory(seed=11, rates=rates).batch(N, now=NOW)


def test_same_seed_gives_identical_events_and_another_seed_does_not() -> None:
    rates = IrregularityRates.with_malformed(0.2)
    first = EventFactory(seed=123, rates=rates).batch(2000, now=NOW)
    second = EventFactory(seed=123, rates=rates).batch(2000, now=NOW)
    other = EventFactory(seed=124, rates=rates).batch(2000, now=NOW)
    assert first == second
    assert [e.value for e in first] != [e.value for e in other]


def test_batches_continue_one_stream() -> None:
    whole = EventFactory(seed=5).batch(300, now=NOW)
    factory = EventFactory(seed=5)
    assert factory.batch(100, now=NOW) + factory.batch(200, now=NOW) == whole


def test_rates_overlay_the_same_sequence_of_logins() -> None:
    plain = EventFactory(seed=9).batch(500, now=NOW)
    noisy = EventFactory(seed=9, rates=IrregularityRates.with_malformed(0.5)).batch(500, now=NOW)
    assert [e.key for e in plain] == [e.key for e in noisy]


def test_well_formed_events_have_the_seven_fields_in_the_originals_shapes(
    default_events: list[GeneratedEvent],
) -> None:
    well_formed = of_kind(default_events, Irregularity.NONE)
    assert len(well_formed) > 0.9 * N
    for event in well_formed:
        record = json.loads(event.value)
        assert tuple(record) == FIELDS
        # Byte for byte what json.dumps writes, like the original generator.
        assert json.dumps(record).encode() == event.value
        assert is_uuid4(record["user_id"]) and is_uuid4(record["device_id"])
        assert event.key == record["user_id"].encode()
        assert isinstance(record["app_version"], str) and record["app_version"][0].isdigit()
        octets = record["ip"].split(".")
        assert len(octets) == 4 and all(o.isdigit() and str(int(o)) == o and int(o) < 256 for o in octets)
        assert record["locale"] in STATE_CODES
        assert type(record["timestamp"]) is int and abs(record["timestamp"] - NOW) <= 3
        assert record["device_type"].lower() in {"android", "ios"}


def test_missing_device_type_is_the_only_difference(default_events: list[GeneratedEvent]) -> None:
    missing = of_kind(default_events, Irregularity.MISSING_DEVICE_TYPE)
    assert missing
    for event in missing:
        assert tuple(json.loads(event.value)) == FIELDS[:-1]


def test_device_type_spellings_vary_like_the_original(default_events: list[GeneratedEvent]) -> None:
    spellings = Counter(json.loads(e.value)["device_type"] for e in of_kind(default_events, Irregularity.NONE))
    assert {"android", "Android", "ANDROID", "iOS", "IOS"} <= set(spellings)
    assert spellings.most_common(2)[0][0] in {"android", "iOS"}  # the usual spellings dominate


def test_ips_include_private_and_multicast_addresses(default_events: list[GeneratedEvent]) -> None:
    first_octets = {int(json.loads(e.value)["ip"].split(".")[0]) for e in of_kind(default_events, Irregularity.NONE)}
    assert 10 in first_octets and 127 in first_octets and first_octets & set(range(224, 240))


def test_the_pool_gives_meaningful_unique_counts(default_events: list[GeneratedEvent]) -> None:
    factory = EventFactory(seed=7)
    assert factory.user_count == 10_000
    assert factory.user_count <= factory.device_count <= 3 * factory.user_count
    users = {e.key for e in default_events}
    # 20k logins over 10k users: most users appear, several more than once.
    assert 5_000 < len(users) < 10_000
    devices_per_user: dict[bytes, set[str]] = {}
    for event in of_kind(default_events, Irregularity.NONE):
        devices_per_user.setdefault(event.key, set()).add(json.loads(event.value)["device_id"])
    assert max(len(devices) for devices in devices_per_user.values()) <= 3
    assert any(len(devices) > 1 for devices in devices_per_user.values())


def binomial_tolerance(n: int, p: float) -> float:
    return 5 * math.sqrt(n * p * (1 - p)) + 1


def test_default_rates_leave_only_device_type_out(default_events: list[GeneratedEvent]) -> None:
    kinds = Counter(e.kind for e in default_events)
    assert set(kinds) == {Irregularity.NONE, Irregularity.MISSING_DEVICE_TYPE}
    assert abs(kinds[Irregularity.MISSING_DEVICE_TYPE] - 0.05 * N) <= binomial_tolerance(N, 0.05)


def test_irregularities_arrive_at_their_rates(irregular_events: list[GeneratedEvent]) -> None:
    kinds = Counter(e.kind for e in irregular_events)
    expected = {Irregularity.MISSING_DEVICE_TYPE: 0.05, **{kind: 0.05 for kind in MALFORMED_KINDS}}
    expected[Irregularity.NONE] = 1 - sum(expected.values())
    for kind, rate in expected.items():
        assert abs(kinds[kind] - rate * N) <= binomial_tolerance(N, rate), kind


def test_missing_field_leaves_out_exactly_one_other_field(irregular_events: list[GeneratedEvent]) -> None:
    left_out: Counter[str] = Counter()
    for event in of_kind(irregular_events, Irregularity.MISSING_FIELD):
        record = json.loads(event.value)
        missing = set(FIELDS) - set(record)
        assert len(missing) == 1 and "device_type" in record
        left_out.update(missing)
    assert set(left_out) == set(FIELDS[:-1])


def test_timestamp_as_string_is_a_numeric_string(irregular_events: list[GeneratedEvent]) -> None:
    for event in of_kind(irregular_events, Irregularity.TIMESTAMP_AS_STRING):
        record = json.loads(event.value)
        assert tuple(record) == FIELDS
        assert isinstance(record["timestamp"], str) and abs(int(record["timestamp"]) - NOW) <= 3


def test_wrong_type_breaks_a_field_type_or_the_object(irregular_events: list[GeneratedEvent]) -> None:
    expected_types = {name: str for name in FIELDS} | {"timestamp": int}
    broken: Counter[str] = Counter()
    for event in of_kind(irregular_events, Irregularity.WRONG_TYPE):
        record = json.loads(event.value)
        if not isinstance(record, dict):
            broken["<not an object>"] += 1
            continue
        wrong = [name for name, value in record.items() if type(value) is not expected_types[name]]
        assert len(wrong) == 1, record
        broken.update(wrong)
    assert set(broken) == set(FIELDS) | {"<not an object>"}


def test_not_json_is_refused_by_a_json_parser(irregular_events: list[GeneratedEvent]) -> None:
    not_json = of_kind(irregular_events, Irregularity.NOT_JSON)
    assert not_json
    for event in not_json:
        assert event.value
        with pytest.raises(ValueError):  # JSONDecodeError or UnicodeDecodeError
            json.loads(event.value)


def test_empty_messages_are_empty_and_still_keyed(irregular_events: list[GeneratedEvent]) -> None:
    empty = of_kind(irregular_events, Irregularity.EMPTY)
    assert empty and all(e.value == b"" and is_uuid4(e.key.decode()) for e in empty)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"missing_device_type": -0.1}, "missing_device_type"),
        ({"empty": 1.5}, "empty"),
        ({"not_json": 0.6, "wrong_type": 0.6}, "add up to 1.25"),
    ],
)
def test_bad_rates_are_refused_with_their_name(kwargs: dict[str, float], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        IrregularityRates(**kwargs)


def test_malformed_rate_spreads_evenly_over_the_malformed_kinds() -> None:
    rates = IrregularityRates.with_malformed(0.5, missing_device_type=0.05, empty=0.1)
    by_kind = rates.by_kind()
    assert by_kind[Irregularity.MISSING_DEVICE_TYPE] == 0.05
    assert by_kind[Irregularity.EMPTY] == pytest.approx(0.2)
    for kind in MALFORMED_KINDS:
        if kind is not Irregularity.EMPTY:
            assert by_kind[kind] == pytest.approx(0.1)
    assert rates.total == pytest.approx(0.65)


def test_extra_keys_ride_on_well_formed_events_and_leave_the_rest_of_each_event_as_it_was():
    rates = IrregularityRates.with_malformed(0.2)
    plain = EventFactory(5, rates, users=50).batch(2_000, now=1_720_576_825)
    extended = EventFactory(5, rates, users=50, extra_keys={"os_version": ["17.1.2", "14.0"]}).batch(
        2_000, now=1_720_576_825
    )

    carried = 0
    for before, after in zip(plain, extended, strict=True):
        assert (before.key, before.kind) == (after.key, after.kind)
        if after.kind in (Irregularity.NONE, Irregularity.MISSING_DEVICE_TYPE):
            event = json.loads(after.value)
            assert event.pop("os_version") in ("17.1.2", "14.0")
            assert event == json.loads(before.value)
            carried += 1
        else:
            assert after.value == before.value
    assert carried > 1_000


def test_an_extra_key_may_not_replace_one_of_the_events_own_keys():
    with pytest.raises(ValueError, match="'ip' is one of the event's own keys"):
        EventFactory(1, extra_keys={"ip": ["1.2.3.4"]})
