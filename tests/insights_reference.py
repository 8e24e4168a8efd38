"""The hourly insights' record tally as it was before the field-level decoder and the sketches: every record
decoded whole by `WireFormatDecoder` (fastavro), counted with exact sets. Kept for the tests only, as the
answer the new implementation must give (exactly, and for distinct counts within the sketch's error)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from orchestration.insights.aggregates import MINUTE_MS, NONE_LABEL, epoch_ms
from orchestration.insights.placement import Outcome, Window
from streaming.conversion.encoding import SchemaLookup, UndecodableRecord, WireFormatDecoder


@dataclass
class ExactTally:
    start_ms: int
    end_ms: int
    records: int = 0
    device_types: Counter[str] = field(default_factory=Counter)
    locales: Counter[str] = field(default_factory=Counter)
    app_versions: Counter[str] = field(default_factory=Counter)
    users: set[str] = field(default_factory=set)
    device_versions: dict[str, tuple[int, str]] = field(default_factory=dict)
    minutes: Counter[int] = field(default_factory=Counter)
    newest_event_ms: int | None = None
    late_records: int = 0
    oldest_late_event_ms: int | None = None
    max_late_delay_ms: int | None = None

    def add_record(self, record: dict[str, Any], event_ms: int) -> None:
        self.records += 1
        version = record.get("app_version") or NONE_LABEL
        self.device_types[record.get("device_type") or NONE_LABEL] += 1
        self.locales[record.get("locale") or NONE_LABEL] += 1
        self.app_versions[version] += 1
        user_id = record.get("user_id")
        if user_id:
            self.users.add(user_id)
        device_id = record.get("device_id")
        if device_id:
            seen = self.device_versions.get(device_id)
            if seen is None or event_ms >= seen[0]:
                self.device_versions[device_id] = (event_ms, version)
        self.minutes[(event_ms - self.start_ms) // MINUTE_MS] += 1
        if self.newest_event_ms is None or event_ms > self.newest_event_ms:
            self.newest_event_ms = event_ms

    def add_late(self, event_ms: int, processed_ms: int) -> None:
        self.late_records += 1
        if self.oldest_late_event_ms is None or event_ms < self.oldest_late_event_ms:
            self.oldest_late_event_ms = event_ms
        delay = processed_ms - event_ms
        if self.max_late_delay_ms is None or delay > self.max_late_delay_ms:
            self.max_late_delay_ms = delay

    def devices_by_version(self) -> Counter[str]:
        return Counter(version for _, version in self.device_versions.values())


class ExactVisitor:
    """`read_window`'s record visitor as it was, behind the batch contract of `read_range_batches`."""

    def __init__(self, window: Window, registry: SchemaLookup) -> None:
        self.window = window
        self.decoder = WireFormatDecoder(registry)
        self.tally = ExactTally(window.start_ms, window.end_ms)
        self.answers: dict[int, Counter[str]] = defaultdict(Counter)

    def visit_batch(self, messages: list[Any], ends: dict[int, int]) -> None:
        for message in messages:
            partition, offset = message.partition(), message.offset()
            if partition not in ends or offset >= ends[partition]:
                continue
            outcome = self.visit(message.value())
            if outcome is Outcome.BEYOND:
                ends[partition] = offset
            else:
                self.answers[partition][outcome] += 1

    def visit(self, value: bytes | None) -> Outcome:
        try:
            record = self.decoder.decode(value)
            event_ms, processed_ms = epoch_ms(record["event_time"]), epoch_ms(record["processed_at"])
        except (UndecodableRecord, KeyError, TypeError, ValueError):
            return Outcome.UNDECODABLE
        outcome = self.window.place_record(event_ms, processed_ms)
        if outcome is Outcome.COUNTED:
            self.tally.add_record(record, event_ms)
        elif outcome is Outcome.LATE:
            self.tally.add_late(event_ms, processed_ms)
        return outcome
