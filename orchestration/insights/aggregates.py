"""What one event-time window of login records says: pure tallies and the insight rows built from them.

`WindowTally` is filled one record at a time while a window is read (see `window_reader`; the native kernel
fills the same tally and hands it over at the end), so memory never grows with the number of records, and
not with the number of distinct users or devices either: those are counted by `sketch.DistinctSketch`,
exactly up to `sketch.CAPACITY` distinct ids per window and within about 0.4 % (one standard error) beyond.
What else it keeps grows with the distinct device types, locales, versions, minutes and reasons only.

The functions below turn a tally into the rows that are stored and shown. They never touch I/O or the clock,
and they keep the invariants the consistency check verifies: the records of a window are counted once per
breakdown, so every breakdown (device type, locale, version, minute) sums to `tally.records`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from orchestration.insights.sketch import DistinctSketch, hash_id

MINUTE_MS = 60_000
NONE_LABEL = "(none)"
"""How an absent (null) value is counted, so that each record lands in one bucket of each breakdown."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)


def epoch_ms(value: int | datetime) -> int:
    """Epoch milliseconds of an Avro `timestamp-millis` value, decoded as a datetime or left as a long.

    Integer arithmetic on the timedelta, not `datetime.timestamp()`: a float would round some milliseconds.
    """
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return (aware - _EPOCH) // _ONE_MS
    return int(value)


@dataclass
class WindowTally:
    """Running counts of the records and dead letters of the window `[start_ms, end_ms)`.

    Callers add the records the window counts on time (event time inside it, see `placement`), the late
    records that arrived in it (`add_late`), and the dead letters that failed in it; the tally does not
    filter, so what it counts is exactly what it was given. Late records are kept apart from the window's
    insights, which are by event time: only how many, the oldest event time and the largest delay.
    """

    start_ms: int
    end_ms: int
    records: int = 0
    device_types: Counter[str] = field(default_factory=Counter)
    locales: Counter[str] = field(default_factory=Counter)
    app_versions: Counter[str] = field(default_factory=Counter)
    users: DistinctSketch = field(default_factory=DistinctSketch)
    devices: DistinctSketch = field(default_factory=DistinctSketch)
    """Distinct devices, each with the (event time, app_version) of its latest event in the window."""
    minutes: Counter[int] = field(default_factory=Counter)
    """Minute index from the window start -> records."""
    newest_event_ms: int | None = None
    dead_letters: Counter[str] = field(default_factory=Counter)
    """Reason code -> dead letters."""
    late_records: int = 0
    """Records processed in this window whose own event-time window had closed (its end + slack) before."""
    oldest_late_event_ms: int | None = None
    max_late_delay_ms: int | None = None
    """The largest processing time - event time among the late records."""

    def __post_init__(self) -> None:
        if self.end_ms <= self.start_ms:
            raise ValueError(f"empty window: [{self.start_ms}, {self.end_ms})")

    def contains(self, timestamp_ms: int) -> bool:
        return self.start_ms <= timestamp_ms < self.end_ms

    def add_record(self, record: Mapping[str, Any], event_ms: int) -> None:
        """Count one processed record (a decoded `processed-data` value) whose event time is `event_ms`."""
        self.add_fields(
            record.get("user_id"),
            record.get("device_id"),
            record.get("device_type"),
            record.get("locale"),
            record.get("app_version"),
            event_ms,
        )

    def add_fields(
        self,
        user_id: str | None,
        device_id: str | None,
        device_type: str | None,
        locale: str | None,
        app_version: str | None,
        event_ms: int,
    ) -> None:
        """Count one processed record by the fields the insights use (absent or empty: `NONE_LABEL`)."""
        self.records += 1
        version = app_version or NONE_LABEL
        self.device_types[device_type or NONE_LABEL] += 1
        self.locales[locale or NONE_LABEL] += 1
        self.app_versions[version] += 1
        if user_id:
            self.users.update(hash_id(user_id))
        if device_id:
            self.devices.update(hash_id(device_id), event_ms, version)
        self.minutes[(event_ms - self.start_ms) // MINUTE_MS] += 1
        if self.newest_event_ms is None or event_ms > self.newest_event_ms:
            self.newest_event_ms = event_ms

    def add_late(self, event_ms: int, processed_ms: int) -> None:
        """Count one late record: processed in this window, its event-time window already closed."""
        self.late_records += 1
        if self.oldest_late_event_ms is None or event_ms < self.oldest_late_event_ms:
            self.oldest_late_event_ms = event_ms
        delay = processed_ms - event_ms
        if self.max_late_delay_ms is None or delay > self.max_late_delay_ms:
            self.max_late_delay_ms = delay

    def add_dead_letter(self, reason: str | None) -> None:
        self.dead_letters[reason or NONE_LABEL] += 1

    @property
    def dead_letter_total(self) -> int:
        return sum(self.dead_letters.values())


@dataclass(frozen=True)
class Share:
    """One value of a breakdown: how many, and their fraction of the breakdown's total (0 if it is empty)."""

    value: str
    count: int
    share: float


@dataclass(frozen=True)
class VersionAdoption:
    """An app version's logins in the window, and the devices whose latest login in the window used it
    (exact while the window's distinct devices are within the sketch's capacity, estimated beyond)."""

    app_version: str
    logins: int
    login_share: float
    devices: int
    device_share: float


@dataclass(frozen=True)
class UniqueCounts:
    """Records, distinct users and distinct devices of a window (see `sketch` for the distinct counts' error)."""

    records: int
    users: int
    devices: int


@dataclass(frozen=True)
class MinuteCount:
    minute_start_ms: int
    count: int


@dataclass(frozen=True)
class DeadLetterRate:
    """Dead letters of the window against everything the converter saw in it (records + dead letters)."""

    dead_letters: int
    records: int
    rate: float
    by_reason: tuple[Share, ...]
    """Each reason's count, with its share of all messages of the window (so the shares sum to `rate`)."""


def _fraction(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def distribution(counts: Mapping[str, int]) -> list[Share]:
    """Every value with its count and share, most frequent first (ties by value, for a stable order)."""
    total = sum(counts.values())
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [Share(value, count, _fraction(count, total)) for value, count in ordered]


def device_type_distribution(tally: WindowTally) -> list[Share]:
    return distribution(tally.device_types)


def top_locales(tally: WindowTally, limit: int) -> list[Share]:
    """The `limit` most frequent locales; shares are of all records, so they may sum to less than 1."""
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return distribution(tally.locales)[:limit]


def version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key ordering `MAJOR.MINOR.PATCH[-pre][+build]` numerically (2.10 after 2.9); text sorts last."""
    core = version.split("+", 1)[0].split("-", 1)[0]
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in core.split("."))


def app_version_adoption(tally: WindowTally) -> list[VersionAdoption]:
    """Per version, newest first: logins and share, devices on it at their latest login and share."""
    devices_on = tally.devices.estimate_by_value()
    device_total = sum(devices_on.values())
    versions = sorted(set(tally.app_versions) | set(devices_on), key=version_key, reverse=True)
    return [
        VersionAdoption(
            app_version=version,
            logins=tally.app_versions[version],
            login_share=_fraction(tally.app_versions[version], tally.records),
            devices=devices_on[version],
            device_share=_fraction(devices_on[version], device_total),
        )
        for version in versions
    ]


def unique_users_devices(tally: WindowTally) -> UniqueCounts:
    return UniqueCounts(records=tally.records, users=tally.users.estimate(), devices=tally.devices.estimate())


def events_per_minute(tally: WindowTally) -> list[MinuteCount]:
    """Every minute of the window in order, quiet minutes included as zeros (a gap is information)."""
    minutes = -(-(tally.end_ms - tally.start_ms) // MINUTE_MS)
    return [MinuteCount(tally.start_ms + m * MINUTE_MS, tally.minutes.get(m, 0)) for m in range(minutes)]


def dead_letter_rate(tally: WindowTally) -> DeadLetterRate:
    dead = tally.dead_letter_total
    seen = dead + tally.records
    by_reason = tuple(Share(s.value, s.count, _fraction(s.count, seen)) for s in distribution(tally.dead_letters))
    return DeadLetterRate(dead_letters=dead, records=tally.records, rate=_fraction(dead, seen), by_reason=by_reason)


def breakdown_totals(tally: WindowTally) -> dict[str, int]:
    """The sum of each breakdown; all equal `tally.records` unless something was counted wrongly."""
    return {
        "records": tally.records,
        "device_types": sum(tally.device_types.values()),
        "locales": sum(tally.locales.values()),
        "app_versions": sum(tally.app_versions.values()),
        "minutes": sum(tally.minutes.values()),
    }
