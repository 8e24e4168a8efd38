"""The hourly insights against the real stack: known records in, the same counts out, checks pass and fail.

Each test writes to topics of its own (a unique processed-data topic with the project's schema registered
under its subject, and a unique dead-letter topic) through a *transactional* producer, so the reader meets
commit markers and an aborted transaction, as it does behind the exactly-once converter. The window is the
hour that began three hours ago, and the records around it exercise every bound: just before the window,
just after it (inside the reader's slack), well after it, in-window records that arrive late in the log,
and records from clocks that run ahead."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext
from kafka_io import create_topics, read_all

from localstack.stack import StackInfo
from orchestration.defs.insights import defs as insights_defs
from orchestration.defs.insights.assets import PROCESSED_DATA, hourly_insights
from orchestration.defs.resources import KafkaResource, SchemaRegistryResource
from orchestration.insights import store
from streaming.dead_letter import dead_letter_headers
from streaming.records import Rejection
from streaming.topics import value_subject

pytestmark = pytest.mark.integration

SCHEMA_TEXT = (Path(__file__).resolve().parents[2] / "schemas" / "processed-data-value.avsc").read_text()
MINUTE_MS = 60_000
DEVICE_TYPES = ("ios", "android", "unknown")
LOCALES = ("NY", "CA", "TX", "WA", "FL")
VERSIONS = ("2.3.0", "2.4.0", "2.10.1")


def hour_three_hours_ago() -> tuple[str, int, int]:
    """Partition key, start and end (epoch ms) of the hour that began three hours ago."""
    start = (datetime.now(UTC) - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    start_ms = int(start.timestamp() * 1000)
    return start.strftime("%Y-%m-%d-%H:00"), start_ms, start_ms + 60 * MINUTE_MS


def login(i: int, event_ms: int, processed_ms: int | None = None) -> dict[str, object]:
    """A valid processed record; values cycle so that every breakdown has several buckets."""
    return {
        "user_id": str(uuid.UUID(int=i % 37)),
        "device_id": None if i % 10 == 0 else str(uuid.UUID(int=1000 + i % 53)),
        "device_type": DEVICE_TYPES[i % 3],
        "locale": LOCALES[i % 5],
        "ip": "8.8.8.8",
        "ip_version": 4,
        "ip_class": "PUBLIC",
        "app_version": VERSIONS[i % 3],
        "app_version_major": 2,
        "app_version_minor": 3,
        "app_version_patch": 0,
        "event_time": event_ms,
        "processed_at": event_ms + 1000 if processed_ms is None else processed_ms,
        "source_topic": "user-login",
        "source_partition": 0,
        "source_offset": i,
    }


@dataclass
class Topics:
    """The two topics of one test and what the test wrote into them, as the expected answers."""

    processed: str
    dead_letters: str
    start_ms: int
    end_ms: int
    expected_records: list[dict[str, object]] = field(default_factory=list)
    expected_reasons: Counter[str] = field(default_factory=Counter)


class Writer:
    """A transactional producer of Avro records (AvroSerializer, the registered schema) and dead letters."""

    def __init__(self, stack: StackInfo, topics: Topics) -> None:
        self.topics = topics
        registry = SchemaRegistryClient({"url": stack.registry_url})
        registry.register_schema(value_subject(topics.processed), Schema(SCHEMA_TEXT, "AVRO"))
        self.serialize = AvroSerializer(
            registry, SCHEMA_TEXT, conf={"auto.register.schemas": False, "use.latest.version": True}
        )
        self.producer = Producer({"bootstrap.servers": stack.bootstrap, "transactional.id": f"test-{uuid.uuid4()}"})
        self.producer.init_transactions(30)
        self.counter = 0

    def records(self, event_times: list[int], commit: bool = True, processed_ms: int | None = None) -> None:
        """One transaction of records stamped with their event times; in-window ones expected if committed."""
        self.producer.begin_transaction()
        for event_ms in event_times:
            self.counter += 1
            record = login(self.counter, event_ms, processed_ms)
            value = self.serialize(record, SerializationContext(self.topics.processed, MessageField.VALUE))
            self.producer.produce(self.topics.processed, value, key=str(record["user_id"]), timestamp=event_ms)
            if commit and self.topics.start_ms <= event_ms < self.topics.end_ms:
                self.topics.expected_records.append(record)
        self._finish(commit)

    def raw(self, value: bytes, timestamp_ms: int) -> None:
        """A value that is not wire-format Avro, on the processed topic (as a misbehaving producer would)."""
        self.producer.begin_transaction()
        self.producer.produce(self.topics.processed, value, timestamp=timestamp_ms)
        self._finish(True)

    def dead_letters(self, letters: list[tuple[str, int]]) -> None:
        self.producer.begin_transaction()
        for reason, timestamp_ms in letters:
            rejection = Rejection(reason, "written by the test")
            headers: list[tuple[str, str | bytes | None]] = [
                *dead_letter_headers(rejection, "user-login", 0, 0, timestamp_ms, failed_at_ms=timestamp_ms + 1000)
            ]
            self.producer.produce(self.topics.dead_letters, b"{not json", timestamp=timestamp_ms, headers=headers)
            if self.topics.start_ms <= timestamp_ms < self.topics.end_ms:
                self.topics.expected_reasons[reason] += 1
        self._finish(True)

    def _finish(self, commit: bool) -> None:
        if commit:
            self.producer.commit_transaction(30)
        else:
            self.producer.flush(30)
            self.producer.abort_transaction(30)


@pytest.fixture
def window_topics(
    stack: StackInfo, topic_name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Topics]:
    """Fresh topics, named in KDP_OUTPUT_TOPIC and KDP_DLQ_TOPIC for the resources, and a database."""
    _, start_ms, end_ms = hour_three_hours_ago()
    topics = Topics(f"{topic_name}-processed", f"{topic_name}-dlq", start_ms, end_ms)
    # Records stamped hours ago must not meet time-based retention on a broker with other defaults.
    create_topics(stack.bootstrap, [topics.processed, topics.dead_letters], partitions=3, **{"retention.ms": "-1"})
    monkeypatch.setenv("KDP_OUTPUT_TOPIC", topics.processed)
    monkeypatch.setenv("KDP_DLQ_TOPIC", topics.dead_letters)
    monkeypatch.setenv(store.ENV_DB, str(tmp_path / "insights.duckdb"))
    yield topics


def resources(stack: StackInfo) -> dict[str, object]:
    return {
        "kafka": KafkaResource(bootstrap=stack.bootstrap),
        "registry": SchemaRegistryResource(url=stack.registry_url),
    }


def write_a_typical_hour(writer: Writer, topics: Topics) -> None:
    start, end = topics.start_ms, topics.end_ms
    # Two hours before: not read at all.
    writer.records([start - 120 * MINUTE_MS + i * 1000 for i in range(20)])
    # Inside the lower slack: read, not counted.
    writer.records([start - 5 * MINUTE_MS + i * 1000 for i in range(15)])
    # Clients whose clocks run ahead, processed during the hour: read, not counted, must not end the read.
    writer.records([end + 50 * MINUTE_MS + i for i in range(6)], processed_ms=start + 1000)
    # The hour itself, in several transactions, a few per minute.
    for minute in range(0, 60, 3):
        writer.records([start + minute * MINUTE_MS + s * 7_000 for s in range(minute % 4 + 1)])
    # Aborted: never delivered, never counted.
    writer.records([start + 30 * MINUTE_MS + i for i in range(25)], commit=False)
    # After the hour, inside the upper slack: read, not counted.
    writer.records([end + 2 * MINUTE_MS + i * 1000 for i in range(10)])
    # In the hour but late in the log: counted.
    writer.records([end - 1, end - 40_000, start + 59 * MINUTE_MS])
    # Exactly at the end: the next hour's.
    writer.records([end, end + 1000])
    # Beyond the slack: the read stops at the first of these on each partition.
    writer.records([end + 30 * MINUTE_MS + i * 1000 for i in range(10)])
    writer.dead_letters(
        [("invalid_json", start + 1000), ("invalid_json", start + 20 * MINUTE_MS), ("missing_field", end - 1)]
        + [("invalid_json", start - 1), ("invalid_ip", end)]  # just outside the hour
    )


def independent_count(stack: StackInfo, topics: Topics) -> list[dict[str, object]]:
    """The in-window records, found by reading the topic back with confluent-kafka's AvroDeserializer."""
    deserialize = AvroDeserializer(SchemaRegistryClient({"url": stack.registry_url}))
    found = []
    for message in read_all(stack.bootstrap, topics.processed):
        record = deserialize(message.value(), SerializationContext(topics.processed, MessageField.VALUE))
        event_ms = int(record["event_time"].timestamp() * 1000)
        if topics.start_ms <= event_ms < topics.end_ms:
            found.append(record)
    return found


def metadata_of(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, object]:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
    materialization = event.materialization
    assert materialization is not None
    return {key: value.value for key, value in materialization.metadata.items()}


def checks_of(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()}


def test_hour_counts_equal_an_independent_count_and_checks_pass(stack: StackInfo, window_topics: Topics) -> None:
    topics = window_topics
    write_a_typical_hour(Writer(stack, topics), topics)
    expected = topics.expected_records
    assert len(independent_count(stack, topics)) == len(expected)  # the test's own bookkeeping agrees with Kafka

    partition_key, _, _ = hour_three_hours_ago()
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [PROCESSED_DATA, hourly_insights],
            partition_key=partition_key,
            resources=resources(stack),
            instance=instance,
        )
        rerun = dg.materialize(
            [PROCESSED_DATA, hourly_insights],
            partition_key=partition_key,
            resources=resources(stack),
            instance=instance,
        )
    assert result.success and rerun.success

    window = metadata_of(result, "login_window")
    assert window["records"] == len(expected)
    assert window["dead_letters"] == sum(topics.expected_reasons.values()) == 3
    assert window["undecodable"] == 0
    # Read: lower slack, skew, hour, upper slack, next hour's first two; not 2 h before, 30 min after.
    assert window["records_scanned"] == 15 + 6 + len(expected) + 10 + 2
    uniques = metadata_of(result, "unique_users_devices")
    assert uniques["unique_users"] == len({r["user_id"] for r in expected})
    assert uniques["unique_devices"] == len({r["device_id"] for r in expected if r["device_id"]})
    assert metadata_of(result, "dead_letter_rate")["dead_letter_rate"] == pytest.approx(3 / (3 + len(expected)))

    database = Path(store.database_path("unused"))
    device_rows = store.fetch(
        database, "SELECT device_type, records FROM device_types WHERE partition_key = ?", [partition_key]
    )
    assert dict(device_rows) == Counter(str(r["device_type"]) for r in expected)
    locale_rows = store.fetch(database, "SELECT locale, records FROM locales WHERE partition_key = ?", [partition_key])
    assert dict(locale_rows) == Counter(str(r["locale"]) for r in expected)
    version_rows = store.fetch(
        database, "SELECT app_version, logins FROM app_versions WHERE partition_key = ?", [partition_key]
    )
    assert dict(version_rows) == Counter(str(r["app_version"]) for r in expected)
    minute_rows = store.fetch(
        database,
        "SELECT count(*), sum(records), max(records) FROM events_per_minute WHERE partition_key = ?",
        [partition_key],
    )
    by_minute = Counter((int(r["event_time"]) - topics.start_ms) // MINUTE_MS for r in expected)  # type: ignore[call-overload]
    assert minute_rows == [(60, len(expected), max(by_minute.values()))]
    reason_rows = store.fetch(
        database,
        "SELECT reason, dead_letters FROM dead_letter_reasons WHERE partition_key = ?",
        [partition_key],
    )
    assert dict(reason_rows) == topics.expected_reasons
    # The re-run replaced the hour's rows instead of adding to them.
    assert store.fetch(database, "SELECT count(*) FROM window_summary") == [(1,)]
    assert store.fetch(database, "SELECT sum(records) FROM device_types") == [(len(expected),)]
    assert Path(str(window["chart_path"])).read_bytes()[:4] == b"\x89PNG"

    checks = checks_of(result)
    assert checks["counts_consistent_with_offsets"].passed, checks["counts_consistent_with_offsets"].description
    assert checks["dead_letter_rate_below_threshold"].passed


def test_checks_fail_on_a_high_dead_letter_rate_and_an_undecodable_record(
    stack: StackInfo, window_topics: Topics
) -> None:
    topics = window_topics
    writer = Writer(stack, topics)
    writer.records([topics.start_ms + i * MINUTE_MS for i in range(10)])
    writer.raw(b"definitely not avro", topics.start_ms + 30 * MINUTE_MS)
    writer.dead_letters([("invalid_json", topics.start_ms + 1000)])  # 1 of 11 messages: 9.1 %

    partition_key, _, _ = hour_three_hours_ago()
    strict = {"ops": {"hourly_insights": {"config": {"max_dead_letter_rate": 0.05}}}}
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [PROCESSED_DATA, hourly_insights],
            partition_key=partition_key,
            resources=resources(stack),
            instance=instance,
            run_config=strict,
        )
    assert result.success  # failing checks report; they do not fail the run
    checks = checks_of(result)
    consistency = checks["counts_consistent_with_offsets"]
    assert not consistency.passed
    assert "1 records could not be decoded" in (consistency.description or "")
    rate = checks["dead_letter_rate_below_threshold"]
    assert not rate.passed
    assert "exceeds 5.00%" in (rate.description or "")
    assert metadata_of(result, "login_window")["records"] == 10


def test_scheduled_job_runs_the_freshness_check_which_fails_on_stale_data_and_passes_on_fresh(
    stack: StackInfo, window_topics: Topics
) -> None:
    topics = window_topics
    writer = Writer(stack, topics)
    writer.records([topics.start_ms + i * MINUTE_MS for i in range(5)])  # newest record about 2 hours old
    partition_key, _, _ = hour_three_hours_ago()
    full = dg.Definitions.merge(insights_defs, dg.Definitions(resources=resources(stack)))
    job = full.resolve_job_def("insights_hourly")

    with dg.instance_for_test() as instance:
        stale = job.execute_in_process(partition_key=partition_key, instance=instance)
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        writer.records([now_ms - 1000])
        fresh = job.execute_in_process(partition_key=partition_key, instance=instance)

    assert not checks_of(stale)["newest_record_is_recent"].passed
    assert "min old" in (checks_of(stale)["newest_record_is_recent"].description or "")
    assert checks_of(fresh)["newest_record_is_recent"].passed
    assert checks_of(fresh)["counts_consistent_with_offsets"].passed
    assert metadata_of(fresh, "login_window")["records"] == 5


def test_schema_text_is_the_projects_contract() -> None:
    """Guards the test's own assumption: the records written above have exactly the schema's fields."""
    fields = {f["name"] for f in json.loads(SCHEMA_TEXT)["fields"]}
    assert fields == set(login(1, 0))
