"""The converter against the real broker and registry: every message accounted for, in both modes."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from kafka_io import create_topics, read_all
from killed_process import kill_after_committed_batches
from registry_io import register_output_schema
from scenario_settings import process_environment, scenario_settings

from orchestration.schema.registry import subject_level
from streaming.delivery.dead_letter import read_dead_letter_headers
from streaming.generator.events import EventFactory, IrregularityRates
from streaming.generator.producer import generate
from streaming.loop.pipeline import open_converter
from streaming.settings import Settings

pytestmark = pytest.mark.integration

EVENTS = 50_000


def _settings(stack, delivery: str, **overrides) -> Settings:
    return scenario_settings(stack.bootstrap, stack.registry_url, delivery, "converter", **overrides)


def _fill_source(settings: Settings, count: int, seed: int = 7) -> dict[tuple[int, int], bytes]:
    """Create the topics, produce `count` events (>= 5% malformed), return them by (partition, offset)."""
    create_topics(settings.bootstrap, [settings.source_topic, settings.output_topic, settings.dlq_topic], 3)
    register_output_schema(settings)
    factory = EventFactory(seed, IrregularityRates.with_malformed(0.08))
    summary = generate({"bootstrap.servers": settings.bootstrap}, settings.source_topic, factory, count=count)
    assert summary.ok and summary.delivered == count
    return {(m.partition(), m.offset()): m.value() for m in read_all(settings.bootstrap, settings.source_topic)}


def _outputs(settings: Settings) -> tuple[list[dict], list]:
    deserialize = AvroDeserializer(SchemaRegistryClient(settings.registry_config()))
    context = SerializationContext(settings.output_topic, MessageField.VALUE)
    records = [deserialize(m.value(), context) for m in read_all(settings.bootstrap, settings.output_topic)]
    return records, read_all(settings.bootstrap, settings.dlq_topic)


def _source_positions(records: list[dict], dead_letters: list) -> Counter:
    positions: Counter = Counter((r["source_partition"], r["source_offset"]) for r in records)
    for m in dead_letters:
        headers = read_dead_letter_headers(m.headers())
        positions[(int(headers["kdp.dlq.source.partition"]), int(headers["kdp.dlq.source.offset"]))] += 1
    return positions


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
def test_every_event_becomes_one_record_or_one_dead_letter(stack, delivery):
    settings = _settings(stack, delivery)
    source = _fill_source(settings, EVENTS)
    converter = open_converter(settings, instance="test")
    converter.subscribe()
    try:
        summary = converter.run(until_caught_up=True)
    finally:
        converter.close()

    records, dead_letters = _outputs(settings)
    assert summary.consumed == EVENTS
    assert len(records) + len(dead_letters) == EVENTS
    assert len(dead_letters) >= 0.05 * EVENTS
    assert (summary.processed, summary.dead_lettered) == (len(records), len(dead_letters))
    assert set(_source_positions(records, dead_letters).values()) == {1}
    for record in records:
        assert record["source_topic"] == settings.source_topic
        assert record["device_type"] == record["device_type"].lower()
    for m in dead_letters:
        headers = read_dead_letter_headers(m.headers())
        original = source[(int(headers["kdp.dlq.source.partition"]), int(headers["kdp.dlq.source.offset"]))]
        assert m.value() == original or (m.value() is None and original in (None, b""))
        assert headers["kdp.dlq.reason"]
    missing_device = [r for r in records if r["device_type"] == "unknown"]
    assert missing_device, "about 5% of events lack device_type and must default to 'unknown'"


def test_kill_9_in_exactly_once_loses_and_duplicates_nothing(stack, tmp_path):
    # Small batches and frequent progress lines: the kill lands after a few batches even when the converter
    # would take the whole source in under a second (a quiet machine, the native kernel).
    settings = _settings(stack, "exactly-once", batch_size=500)
    _fill_source(settings, EVENTS)
    env = process_environment(settings)
    command = [sys.executable, "-m", "kdp", "stream", "--instance", "one", "--log-every", "0.05"]
    kill_after_committed_batches(command, env)  # some, but not all, of its work committed
    before_restart = _outputs(settings)
    assert len(before_restart[0]) + len(before_restart[1]) < EVENTS, "killed too late to prove anything"

    finish = subprocess.run([*command, "--until-caught-up"], env=env, capture_output=True, text=True, timeout=300)
    assert finish.returncode == 0, finish.stdout + finish.stderr

    records, dead_letters = _outputs(settings)
    positions = _source_positions(records, dead_letters)
    assert len(positions) == EVENTS, "lost messages"
    assert set(positions.values()) == {1}, "duplicated messages"


def test_a_converter_whose_schema_is_not_registered_refuses_to_start_in_one_line(stack):
    settings = _settings(stack, "at-least-once")
    create_topics(settings.bootstrap, [settings.source_topic, settings.output_topic, settings.dlq_topic], 1)
    subject = f"{settings.output_topic}-value"

    started = subprocess.run(
        [sys.executable, "-m", "kdp", "stream", "--until-caught-up"],
        env=process_environment(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert started.returncode == 2, started.stderr
    refusal = [line for line in started.stderr.splitlines() if line.startswith("kdp stream:")]
    assert len(refusal) == 1 and "Traceback" not in started.stderr, started.stderr
    assert repr(subject) in refusal[0] and "kdp schema register --execute" in refusal[0]
    registry = SchemaRegistryClient(settings.registry_config())
    assert subject not in registry.get_subjects()  # looked up, nothing written
    assert subject_level(registry, subject) is None


def test_an_operators_level_survives_a_converter_and_the_subject_keeps_one_version(stack):
    """The converter only looks its schema up: the level an operator set on the output subject before it ran
    is the same afterwards, and the subject still has one version."""
    settings = _settings(stack, "exactly-once")
    _fill_source(settings, 2_000)
    subject = f"{settings.output_topic}-value"
    registry = SchemaRegistryClient(settings.registry_config())
    registry.set_compatibility(subject_name=subject, level="FULL_TRANSITIVE")

    finish = subprocess.run(
        [sys.executable, "-m", "kdp", "stream", "--until-caught-up", "--instance", "one"],
        env=process_environment(settings),
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert finish.returncode == 0, finish.stdout + finish.stderr
    assert subject_level(registry, subject) == "FULL_TRANSITIVE"
    assert registry.get_versions(subject) == [1]
    records, dead_letters = _outputs(settings)
    assert len(records) + len(dead_letters) == 2_000


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
def test_outputs_the_broker_refuses_for_good_become_dead_letters_not_endless_retries(stack, delivery):
    """An output topic that accepts no record (max.message.bytes below any batch): the converter must
    not redo the batch forever; each message ends as a dead letter saying the broker refused it."""
    import threading

    from streaming.records import Reason

    settings = _settings(stack, delivery, batch_size=100)
    create_topics(settings.bootstrap, [settings.source_topic, settings.dlq_topic], 3)
    create_topics(settings.bootstrap, [settings.output_topic], 3, **{"max.message.bytes": "200"})
    register_output_schema(settings)
    factory = EventFactory(3)
    assert generate({"bootstrap.servers": settings.bootstrap}, settings.source_topic, factory, count=300).ok

    converter = open_converter(settings, instance="refused")
    converter.subscribe()
    stop = threading.Event()
    watchdog = threading.Timer(240, stop.set)  # a loop that never ends shows up as a failed count below
    watchdog.start()
    try:
        summary = converter.run(stop, until_caught_up=True)
    finally:
        watchdog.cancel()
        converter.close()

    records, dead_letters = _outputs(settings)
    assert records == []
    assert summary.consumed == 300
    reasons = {read_dead_letter_headers(m.headers())["kdp.dlq.reason"] for m in dead_letters}
    assert reasons == {Reason.REJECTED_BY_BROKER.value}
    positions = _source_positions(records, dead_letters)
    assert len(positions) == 300, "every message accounted for"
    if delivery == "exactly-once":
        assert set(positions.values()) == {1}, "redone batches were aborted: one dead letter each"
    # at-least-once: dead letters of a batch that failed for other messages are sent again on its redo
