"""The hourly insights against the real stack: known records in, the same counts out, checks pass and fail.

Each test writes to topics of its own (a unique processed-data topic with the project's schema registered
under its subject, and a unique dead-letter topic) through a *transactional* producer, so the reader meets
commit markers and an aborted transaction, as it does behind the exactly-once converter. Records are written
the way the converter writes them: Kafka timestamp = `processed_at`, dead letters stamped with their failure
time. The window is the hour that began three hours ago, and the records around it exercise every bound
(`orchestration.insights.placement`): processed too early to be read, clocks running ahead, the previous
hour's records in its slack and after it (late here), a very old event (late here), this hour's records in
the slack and after it (the next hour's late ones), and records processed past the read's end."""

from __future__ import annotations

import json
import os
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
from insights_reference import ExactVisitor
from kafka_io import create_topics, read_all
from registry_io import register_output_schema
from scenario_settings import scenario_settings

from kdp.devstack.stack import StackInfo
from orchestration.definitions import control_plane
from orchestration.defs.insights.assets import HOURLY, PROCESSED_DATA, hourly_insights
from orchestration.defs.resources import (
    InsightsStorageResource,
    KafkaResource,
    SchemaRegistryResource,
    environment_bound,
)
from orchestration.insights import store
from orchestration.insights.aggregates import epoch_ms
from orchestration.insights.placement import HOUR_MS, Window
from orchestration.insights.record_tally import native_available
from orchestration.insights.window_reader import read_window
from streaming.conversion.encoding import WireFormatDecoder
from streaming.delivery.dead_letter import dead_letter_headers
from streaming.loop.pipeline import open_converter
from streaming.records import Rejection
from streaming.settings import Settings
from streaming.topic_reader import current_ranges, read_range_batches, reader_consumer
from streaming.topics import value_subject

pytestmark = pytest.mark.integration

SCHEMA_TEXT = (Path(__file__).resolve().parents[2] / "schemas" / "processed-data-value.avsc").read_text()
MINUTE_MS = 60_000
LOGIN_EVENT = {
    "app_version": "2.3.0",
    "device_type": "android",
    "ip": "199.172.111.135",
    "locale": "RI",
    "device_id": "5f0c1f4e-7c54-4a2e-9a0e-2b1f3c4d5e6f",
}
SLACK_MS = 10 * MINUTE_MS  # the insights' default slack
YEAR_2001 = 978_307_200_000  # 2001-01-01 00:00 UTC
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
    expected_late: list[dict[str, object]] = field(default_factory=list)
    expected_reasons: Counter[str] = field(default_factory=Counter)


class Writer:
    """A transactional producer of Avro records (AvroSerializer, the registered schema) and dead letters."""

    def __init__(self, stack: StackInfo, topics: Topics) -> None:
        self.topics = topics
        registry = SchemaRegistryClient({"url": stack.registry_url, "timeout": 30})
        registry.register_schema(value_subject(topics.processed), Schema(SCHEMA_TEXT, "AVRO"))
        self.serialize = AvroSerializer(
            registry, SCHEMA_TEXT, conf={"auto.register.schemas": False, "use.latest.version": True}
        )
        self.producer = Producer({"bootstrap.servers": stack.bootstrap, "transactional.id": f"test-{uuid.uuid4()}"})
        self.producer.init_transactions(30)
        self.counter = 0

    def records(
        self, event_times: list[int], processed_ms: int | None = None, commit: bool = True, expect: str | None = None
    ) -> None:
        """One transaction of records, each stamped with its processing time as the converter does:
        `processed_ms`, or one second after its event. `expect`: "counted" or "late" in the test's window."""
        self.producer.begin_transaction()
        for event_ms in event_times:
            self.counter += 1
            record = login(self.counter, event_ms, processed_ms)
            value = self.serialize(record, SerializationContext(self.topics.processed, MessageField.VALUE))
            timestamp = int(record["processed_at"])  # type: ignore[call-overload]
            self.producer.produce(self.topics.processed, value, key=str(record["user_id"]), timestamp=timestamp)
            if commit and expect == "counted":
                self.topics.expected_records.append(record)
            elif commit and expect == "late":
                self.topics.expected_late.append(record)
        self._finish(commit)

    def raw(self, value: bytes, timestamp_ms: int) -> None:
        """A value that is not wire-format Avro, on the processed topic (as a misbehaving producer would)."""
        self.producer.begin_transaction()
        self.producer.produce(self.topics.processed, value, timestamp=timestamp_ms)
        self._finish(True)

    def dead_letters(self, letters: list[tuple[str, int]]) -> None:
        """Dead letters failed at the given times (their Kafka timestamp too), of a source stamped in 2001."""
        self.producer.begin_transaction()
        for reason, failed_ms in letters:
            rejection = Rejection(reason, "written by the test")
            headers: list[tuple[str, str | bytes | None]] = [
                *dead_letter_headers(rejection, "user-login", 0, 0, YEAR_2001, failed_at_ms=failed_ms)
            ]
            self.producer.produce(self.topics.dead_letters, b"{not json", timestamp=failed_ms, headers=headers)
            if self.topics.start_ms <= failed_ms < self.topics.end_ms:
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
    monkeypatch.setenv("KDP_INSIGHTS_DB", str(tmp_path / "insights.duckdb"))
    yield topics


def resources(stack: StackInfo) -> dict[str, object]:
    return {
        "kafka": environment_bound(KafkaResource),
        "registry": environment_bound(SchemaRegistryResource),
        "insights_storage": environment_bound(InsightsStorageResource),
    }


def write_a_typical_hour(writer: Writer, topics: Topics) -> int:
    """Write the hour's scenarios in processing-time order; return how many records the reader must read."""
    start, end = topics.start_ms, topics.end_ms
    # Processed two hours before: not read at all (before start - 55 min).
    writer.records([start - 120 * MINUTE_MS + i * 1000 for i in range(20)])
    read = 0
    # The previous hour's, processed 50 min before this one: read (after start - 55 min), not counted.
    writer.records([start - 50 * MINUTE_MS + i * 1000 for i in range(15)])
    # A clock 50 min ahead: this hour's events processed 30 min before it: counted.
    writer.records(
        [start + 20 * MINUTE_MS + i for i in range(4)], processed_ms=start - 30 * MINUTE_MS, expect="counted"
    )
    read += 15 + 4
    # The previous hour's, processed in its slack: its hour counts them.
    writer.records([start - 2 * MINUTE_MS + i for i in range(5)], processed_ms=start + 5 * MINUTE_MS)
    # The previous hour's, processed after its slack: late here.
    writer.records([start - 30 * MINUTE_MS + i for i in range(3)], processed_ms=start + 20 * MINUTE_MS, expect="late")
    # A very old event, processed in this hour: late here.
    writer.records([YEAR_2001], processed_ms=start + 40 * MINUTE_MS, expect="late")
    read += 5 + 3 + 1
    # The hour itself, in several transactions, a few per minute.
    for minute in range(0, 60, 3):
        events = [start + minute * MINUTE_MS + s * 7_000 for s in range(minute % 4 + 1)]
        writer.records(events, expect="counted")
        read += len(events)
    # Aborted: never delivered, never counted.
    writer.records([start + 30 * MINUTE_MS + i for i in range(25)], commit=False)
    # Clocks 50 min ahead: the next hour's events processed in this one: read, not counted.
    writer.records([end + 40 * MINUTE_MS + i for i in range(6)], processed_ms=end - 10 * MINUTE_MS)
    # The next hour's, processed in it: read, not counted.
    writer.records([end + i * 1000 for i in range(10)], processed_ms=end + 2 * MINUTE_MS)
    # This hour's, processed after its end but in the slack: counted.
    writer.records([end - 1, end - 40_000, start + 59 * MINUTE_MS], processed_ms=end + 5 * MINUTE_MS, expect="counted")
    # This hour's, processed after the slack: the next hour's late ones, read (before the margin) but not counted.
    writer.records([start + 10 * MINUTE_MS, start + 11 * MINUTE_MS], processed_ms=end + 12 * MINUTE_MS)
    read += 6 + 10 + 3 + 2
    # Processed past end + slack + margin: the read stops at the first of these on each partition.
    writer.records([end + 15 * MINUTE_MS + i * 1000 for i in range(10)], processed_ms=end + 16 * MINUTE_MS)
    writer.dead_letters(
        [("invalid_json", start - 1), ("invalid_json", start + 1000), ("invalid_json", start + 20 * MINUTE_MS)]
        + [("missing_field", end - 1), ("invalid_ip", end), ("invalid_ip", end + 6 * MINUTE_MS)]
    )
    return read


def independent_count(stack: StackInfo, topics: Topics) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """The hour's records and late records, found by reading the whole topic back with confluent-kafka's
    AvroDeserializer and applying the rule: on time if processed before its hour's end + slack, else late in
    the hour it was processed in."""
    deserialize = AvroDeserializer(SchemaRegistryClient({"url": stack.registry_url, "timeout": 30}))
    counted, late = [], []
    for message in read_all(stack.bootstrap, topics.processed):
        record = deserialize(message.value(), SerializationContext(topics.processed, MessageField.VALUE))
        event_ms = int(record["event_time"].timestamp() * 1000)
        processed_ms = int(record["processed_at"].timestamp() * 1000)
        event_hour_end = event_ms - event_ms % (60 * MINUTE_MS) + 60 * MINUTE_MS
        if processed_ms < event_hour_end + SLACK_MS:
            if topics.start_ms <= event_ms < topics.end_ms:
                counted.append(record)
        elif topics.start_ms <= processed_ms < topics.end_ms:
            late.append(record)
    return counted, late


def metadata_of(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, object]:
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(asset)]
    materialization = event.materialization
    assert materialization is not None
    return {key: value.value for key, value in materialization.metadata.items()}


def checks_of(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()}


def test_hour_counts_equal_an_independent_count_and_checks_pass(stack: StackInfo, window_topics: Topics) -> None:
    topics = window_topics
    read = write_a_typical_hour(Writer(stack, topics), topics)
    expected = topics.expected_records
    counted, late = independent_count(stack, topics)
    # The test's own bookkeeping agrees with a full read of the topic.
    assert (len(counted), len(late)) == (len(expected), len(topics.expected_late)) == (len(expected), 4)

    partition_key, _, _ = hour_three_hours_ago()
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [dg.AssetSpec(PROCESSED_DATA), hourly_insights],
            partition_key=partition_key,
            resources=resources(stack),
            instance=instance,
        )
        rerun = dg.materialize(
            [dg.AssetSpec(PROCESSED_DATA), hourly_insights],
            partition_key=partition_key,
            resources=resources(stack),
            instance=instance,
        )
    assert result.success and rerun.success

    window = metadata_of(result, "login_window")
    assert window["records"] == len(expected)
    assert window["dead_letters"] == sum(topics.expected_reasons.values()) == 3
    assert window["undecodable"] == 0
    assert window["late_records"] == 4
    assert window["oldest_late_event_time"] == YEAR_2001 / 1000
    assert window["max_late_delay_hours"] == round((topics.start_ms + 40 * MINUTE_MS - YEAR_2001) / 3_600_000, 2)
    # Read: from 55 min before the hour to the first record processed past end + slack + margin; not before.
    assert window["records_scanned"] == read
    uniques = metadata_of(result, "unique_users_devices")
    assert uniques["unique_users"] == len({r["user_id"] for r in expected})
    assert uniques["unique_devices"] == len({r["device_id"] for r in expected if r["device_id"]})
    assert metadata_of(result, "dead_letter_rate")["dead_letter_rate"] == pytest.approx(3 / (3 + len(expected)))

    database = Path(os.environ["KDP_INSIGHTS_DB"])  # set by the fixture
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
    late_rows = store.fetch(database, "SELECT late_records FROM late_events WHERE partition_key = ?", [partition_key])
    assert late_rows == [(4,)]
    # The re-run replaced the hour's rows instead of adding to them.
    assert store.fetch(database, "SELECT count(*) FROM window_summary") == [(1,)]
    assert store.fetch(database, "SELECT sum(records) FROM device_types") == [(len(expected),)]
    assert Path(str(window["chart_path"])).read_bytes()[:4] == b"\x89PNG"

    checks = checks_of(result)
    assert checks["counts_consistent_with_offsets"].passed, checks["counts_consistent_with_offsets"].description
    assert checks["counts_consistent_with_offsets"].metadata["late_records"].value == 4
    assert checks["dead_letter_rate_below_threshold"].passed


def test_the_native_and_python_visitors_count_the_real_log_as_the_full_decode_does(
    stack: StackInfo, window_topics: Topics
) -> None:
    """On the broker's own batches (commit markers, an aborted transaction, a value that is not Avro): the same
    offsets read and the same counts from the native kernel, the Python visitor and the previous implementation
    (every record decoded whole with fastavro, exact sets; `tests/unit/insights_reference.py`)."""
    topics = window_topics
    writer = Writer(stack, topics)
    writer.raw(b"definitely not avro", topics.start_ms + 30 * MINUTE_MS)  # first: before the records that end reads
    write_a_typical_hour(writer, topics)
    settings = Settings(bootstrap=stack.bootstrap, output_topic=topics.processed, dlq_topic=topics.dead_letters)
    registry = SchemaRegistryClient({"url": stack.registry_url, "timeout": 30})
    window = Window(topics.start_ms, topics.end_ms)
    reference = ExactVisitor(window, registry)
    consumer = reader_consumer(settings, "insights")
    try:
        ranges = current_ranges(consumer, topics.processed, from_time_ms=window.records_from_ms)
        reference_ranges = read_range_batches(consumer, ranges, reference.visit_batch)
    finally:
        consumer.close()
    native = (
        read_window(settings, registry, topics.start_ms, topics.end_ms, native=True) if native_available() else None
    )
    python = read_window(settings, registry, topics.start_ms, topics.end_ms, native=False)
    for scan in [s for s in (native, python) if s is not None]:
        assert [p.offsets for p in scan.records] == reference_ranges
        assert {p.offsets.partition: (p.counted, p.late, p.undecodable) for p in scan.records} == {
            r.partition: tuple(reference.answers[r.partition][o] for o in ("counted", "late", "undecodable"))
            for r in reference_ranges
        }
        tally, exact = scan.tally, reference.tally
        assert (tally.records, tally.device_types, tally.locales, tally.app_versions, tally.minutes) == (
            exact.records,
            exact.device_types,
            exact.locales,
            exact.app_versions,
            exact.minutes,
        )
        assert (tally.late_records, tally.oldest_late_event_ms, tally.max_late_delay_ms, tally.newest_event_ms) == (
            exact.late_records,
            exact.oldest_late_event_ms,
            exact.max_late_delay_ms,
            exact.newest_event_ms,
        )
        assert (tally.users.estimate(), tally.devices.estimate()) == (len(exact.users), len(exact.device_versions))
        assert tally.devices.estimate_by_value() == exact.devices_by_version()
        assert scan.undecodable == 1 and tally.records == len(topics.expected_records)


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
            [dg.AssetSpec(PROCESSED_DATA), hourly_insights],
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
    full = control_plane(resources(stack))
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


def test_a_very_old_event_is_counted_as_late_in_the_hour_it_arrived_in(stack: StackInfo, window_topics: Topics) -> None:
    """An event from 2001 converted three hours ago: its own hour is no partition (they begin in 2026) and,
    read anyway, counts and reads nothing; the hour it was processed in shows it as a late record."""
    topics = window_topics
    writer = Writer(stack, topics)
    writer.records([topics.start_ms + MINUTE_MS, topics.start_ms + 2 * MINUTE_MS], expect="counted")
    writer.records([YEAR_2001], processed_ms=topics.start_ms + 7 * MINUTE_MS, expect="late")
    writer.records([topics.start_ms + 8 * MINUTE_MS], expect="counted")

    partition_key, _, _ = hour_three_hours_ago()
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [dg.AssetSpec(PROCESSED_DATA), hourly_insights],
            partition_key=partition_key,
            resources=resources(stack),
            instance=instance,
        )
    window = metadata_of(result, "login_window")
    assert (window["records"], window["late_records"]) == (3, 1)
    assert window["oldest_late_event_time"] == YEAR_2001 / 1000
    assert metadata_of(result, "unique_users_devices")["records"] == 3  # the hour's insights stay by event time
    assert checks_of(result)["counts_consistent_with_offsets"].passed

    assert not HOURLY.has_partition_key("2001-01-01-00:00")
    settings = Settings(
        bootstrap=stack.bootstrap,
        registry_url=str(stack.registry_url),
        output_topic=topics.processed,
        dlq_topic=topics.dead_letters,
    )
    its_own_hour = read_window(
        settings, SchemaRegistryClient({"url": stack.registry_url, "timeout": 30}), YEAR_2001, YEAR_2001 + HOUR_MS
    )
    assert (its_own_hour.tally.records, its_own_hour.tally.late_records, its_own_hour.scanned) == (0, 0, 0)


def test_the_converters_very_old_event_is_counted_late_in_the_hour_it_was_processed_in(stack: StackInfo) -> None:
    """End to end with the real converter on LogAppendTime topics, as provisioned: an event from 2001 and one
    from now are converted; the 2001 one is a late record of the hour it was processed in, the other counts in
    its own hour, and the 2001 hour itself reads nothing."""
    settings = scenario_settings(stack.bootstrap, str(stack.registry_url), "exactly-once", "insights-late")
    append_time = {"message.timestamp.type": "LogAppendTime", "retention.ms": "-1"}
    create_topics(stack.bootstrap, [settings.source_topic, settings.output_topic, settings.dlq_topic], 3, **append_time)
    register_output_schema(settings)
    now_s = int(datetime.now(UTC).timestamp())
    producer = Producer({"bootstrap.servers": stack.bootstrap})
    for seconds in (YEAR_2001 // 1000, now_s):
        event = {**LOGIN_EVENT, "user_id": str(uuid.uuid4()), "timestamp": seconds}
        producer.produce(settings.source_topic, json.dumps(event).encode())
    assert producer.flush(30) == 0
    converter = open_converter(settings)
    converter.subscribe()
    try:
        summary = converter.run(until_caught_up=True)
    finally:
        converter.close()
    assert (summary.processed, summary.dead_lettered) == (2, 0)

    registry = SchemaRegistryClient(settings.registry_config())
    decoder, stock = WireFormatDecoder(registry), AvroDeserializer(registry)
    records = [decoder.decode(m.value()) for m in read_all(settings, settings.output_topic)]
    context = SerializationContext(settings.output_topic, MessageField.VALUE)
    # The contract's decoder reads what confluent-kafka's own deserializer reads.
    assert records == [stock(m.value(), context) for m in read_all(settings, settings.output_topic)]
    by_event = {epoch_ms(r["event_time"]): epoch_ms(r["processed_at"]) for r in records}
    assert set(by_event) == {YEAR_2001, now_s * 1000}

    def hour_of(ms: int) -> tuple[int, int]:
        return ms - ms % HOUR_MS, ms - ms % HOUR_MS + HOUR_MS

    arrival = read_window(settings, registry, *hour_of(by_event[YEAR_2001]))
    assert arrival.tally.late_records == 1
    assert arrival.tally.oldest_late_event_ms == YEAR_2001
    assert arrival.tally.max_late_delay_ms == by_event[YEAR_2001] - YEAR_2001
    own_hour = read_window(settings, registry, *hour_of(now_s * 1000))  # the same hour, unless one just began
    assert own_hour.tally.records == 1
    assert own_hour.tally.newest_event_ms == now_s * 1000
    year_2001 = read_window(settings, registry, *hour_of(YEAR_2001))
    assert (year_2001.tally.records, year_2001.tally.late_records, year_2001.scanned) == (0, 0, 0)


def test_schema_text_is_the_projects_contract() -> None:
    """Guards the test's own assumption: the records written above have exactly the schema's fields."""
    fields = {f["name"] for f in json.loads(SCHEMA_TEXT)["fields"]}
    assert fields == set(login(1, 0))
