"""The daily report from real hourly insights: records on real topics, a few hours of three days materialized
from them, then the day's report.

The day is yesterday (UTC), compared with the day before and the same day a week earlier. Records are written
the way the converter writes them (Avro through the registry, Kafka timestamp = `processed_at`, dead letters
stamped with their failure time), in processing-time order. One user logs in during two hours of the day, so a
sum of the hourly unique counts would be wrong by one; one record arrives late. Only five hours of the day are
materialized, so the report is made and its completeness check fails naming the other nineteen.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from kafka_io import create_topics

from kdp.devstack.stack import StackInfo
from orchestration.defs.insights.assets import PROCESSED_DATA, hourly_insights
from orchestration.defs.insights.daily_report import daily_insights_report
from orchestration.defs.resources import (
    InsightsStorageResource,
    KafkaResource,
    SchemaRegistryResource,
    environment_bound,
)
from orchestration.insights import report, rollup, store
from streaming.delivery.dead_letter import dead_letter_headers
from streaming.records import Rejection
from streaming.topics import value_subject

pytestmark = pytest.mark.integration

SCHEMA_TEXT = (Path(__file__).resolve().parents[2] / "schemas" / "processed-data-value.avsc").read_text()
MINUTE_MS = 60_000
YEAR_2001 = 978_307_200_000


@dataclass(frozen=True)
class Login:
    user: str
    device: str
    device_type: str
    locale: str
    version: str


def at(day: date, hour: int, minute: int = 0) -> int:
    return int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC).timestamp() * 1000)


def record(login: Login, event_ms: int, processed_ms: int, offset: int) -> dict[str, object]:
    major, minor, patch = (int(part) for part in login.version.split("."))
    return {
        "user_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, login.user)),
        "device_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, login.device)),
        "device_type": login.device_type,
        "locale": login.locale,
        "ip": "8.8.8.8",
        "ip_version": 4,
        "ip_class": "PUBLIC",
        "app_version": login.version,
        "app_version_major": major,
        "app_version_minor": minor,
        "app_version_patch": patch,
        "event_time": event_ms,
        "processed_at": processed_ms,
        "source_topic": "user-login",
        "source_partition": 0,
        "source_offset": offset,
    }


class Writer:
    def __init__(self, stack: StackInfo, processed: str, dead_letters: str) -> None:
        self.processed, self.dead_letter_topic = processed, dead_letters
        registry = SchemaRegistryClient({"url": stack.registry_url, "timeout": 30})
        registry.register_schema(value_subject(processed), Schema(SCHEMA_TEXT, "AVRO"))
        self.serialize = AvroSerializer(
            registry, SCHEMA_TEXT, conf={"auto.register.schemas": False, "use.latest.version": True}
        )
        self.producer = Producer({"bootstrap.servers": stack.bootstrap, "enable.idempotence": True})
        self.offset = 0

    def logins(self, logins: list[Login], event_ms: int, processed_ms: int | None = None) -> None:
        for i, login in enumerate(logins):
            self.offset += 1
            event = event_ms + i * MINUTE_MS
            value = record(login, event, event + 1000 if processed_ms is None else processed_ms, self.offset)
            timestamp = int(value["processed_at"])  # type: ignore[call-overload]
            serialized = self.serialize(value, SerializationContext(self.processed, MessageField.VALUE))
            self.producer.produce(self.processed, serialized, key=str(value["user_id"]), timestamp=timestamp)

    def dead_letters(self, reasons: list[str], failed_ms: int) -> None:
        for reason in reasons:
            headers: list[tuple[str, str | bytes | None]] = [
                *dead_letter_headers(Rejection(reason, "written by the test"), "user-login", 0, 0, YEAR_2001, failed_ms)
            ]
            self.producer.produce(self.dead_letter_topic, b"{not json", timestamp=failed_ms, headers=headers)

    def flush(self) -> None:
        assert self.producer.flush(30) == 0


ALICE = Login("alice", "alice-phone", "ios", "NY", "2.10.0")
BOB = Login("bob", "bob-laptop", "android", "CA", "2.9.1")
CAROL = Login("carol", "carol-tablet", "ios", "NY", "2.10.0")
DAVE = Login("dave", "dave-phone", "android", "TX", "2.9.1")
ERIN = Login("erin", "erin-phone", "ios", "NY", "2.9.1")


@pytest.fixture
def topics(stack: StackInfo, topic_name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Writer]:
    processed, dead = f"{topic_name}-processed", f"{topic_name}-dlq"
    create_topics(stack.bootstrap, [processed, dead], partitions=3, **{"retention.ms": "-1"})
    monkeypatch.setenv("KDP_OUTPUT_TOPIC", processed)
    monkeypatch.setenv("KDP_DLQ_TOPIC", dead)
    monkeypatch.setenv("KDP_INSIGHTS_DB", str(tmp_path / "insights" / "insights.duckdb"))
    monkeypatch.delenv("KDP_INSIGHTS_REPORTS", raising=False)
    yield Writer(stack, processed, dead)


def test_daily_report_from_real_hourly_insights_has_every_section_and_names_the_missing_hours(
    stack: StackInfo, topics: Writer, tmp_path: Path
) -> None:
    day = datetime.now(UTC).date() - timedelta(days=1)
    previous, last_week = day - timedelta(days=1), day - timedelta(days=7)
    writer = topics
    # In processing-time order: a week before, the day before, then the day.
    writer.logins([ALICE, BOB, DAVE, ERIN], at(last_week, 9))
    writer.logins([ALICE, BOB], at(previous, 9))
    writer.dead_letters(["invalid_json"], at(previous, 9, 30))
    writer.logins([ALICE, BOB, DAVE], at(day, 2))
    writer.logins([ALICE, CAROL], at(day, 9))
    writer.logins([ERIN], at(day, 3, 10), processed_ms=at(day, 9, 30))  # its hour closed at 04:10: late in 09
    writer.dead_letters(["invalid_json", "missing_field"], at(day, 9, 40))
    writer.logins([CAROL, DAVE, ERIN], at(day, 15))
    writer.flush()

    hours = [(last_week, 9), (previous, 9), (day, 2), (day, 9), (day, 15)]
    # Bound to the KDP_* variables (the stack's, and this test's topics), as the project's definitions bind them.
    resources = {
        "kafka": environment_bound(KafkaResource),
        "registry": environment_bound(SchemaRegistryResource),
        "insights_storage": environment_bound(InsightsStorageResource),
    }
    with dg.instance_for_test() as instance:
        for hour_day, hour in hours:
            hourly = dg.materialize(
                [dg.AssetSpec(PROCESSED_DATA), hourly_insights],
                partition_key=rollup.hour_keys(hour_day)[hour],
                resources=resources,
                instance=instance,
            )
            assert hourly.success
        result = dg.materialize(
            [daily_insights_report],
            partition_key=day.isoformat(),
            resources={"insights_storage": resources["insights_storage"]},
            instance=instance,
        )
    assert result.success

    [event] = result.get_asset_materialization_events()
    assert event.materialization is not None
    metadata = {key: value.value for key, value in event.materialization.metadata.items()}
    assert metadata["hours_present"] == 3
    assert (metadata["logins"], metadata["dead_letters"], metadata["late_records"]) == (8, 2, 1)
    # The hours' unique users add up to 8 (3 + 2 + 3: alice, carol and dave each in two hours); the day has 5.
    hourly_users = store.fetch(
        Path(str(tmp_path / "insights" / "insights.duckdb")),
        "SELECT sum(unique_users) FROM window_summary WHERE partition_key LIKE ?",
        [f"{day.isoformat()}-%"],
    )
    assert hourly_users == [(8,)]
    assert (metadata["unique_users"], metadata["unique_devices"]) == (5, 5)

    page = Path(str(metadata["report_path"])).read_text()
    for title in report.SECTION_TITLES:
        assert f"<h2>{title}</h2>" in page
    assert len(re.findall(r'<img alt="[^"]*" src="data:image/png;base64,', page)) == 2
    # logins: 8 against 2 the day before (+300 %) and 4 a week before (+100 %)
    assert "<td>logins</td><td>8</td><td>2</td><td>+6 (+300.0%)</td><td>4</td><td>+4 (+100.0%)</td>" in page
    assert "<td>unique users</td><td>5</td><td>2</td>" in page
    assert "<td>NY</td><td>5</td>" in page and "<td>2.10.0</td><td>4</td>" in page
    assert "<td>invalid_json</td><td>1</td>" in page and "<td>missing_field</td><td>1</td>" in page
    assert "<td>late records</td><td>1</td>" in page
    assert "## Dead letters by reason" in str(metadata["preview"])

    [check] = result.get_asset_check_evaluations()
    assert not check.passed
    assert check.description == "21 of 24 hours not materialized: 00:00-01:00, 03:00-08:00, 10:00-14:00, 16:00-23:00"
