"""Replaying dead letters on the real broker and registry: `kdp replay` and `streaming.replay.run`.

Each scenario prints its figures line: dead letters selected, processed, dead-lettered again, duplicates and
lost (counted by reading the topics back, read_committed, by source triple).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from collections import Counter

import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext
from kafka_io import create_topics, read_all
from killed_process import kill_after_committed_batches
from registry_io import register_output_schema
from scenario_settings import process_environment, scenario_settings

from streaming.delivery.dead_letter import read_dead_letter_headers
from streaming.generator.events import EventFactory, IrregularityRates
from streaming.generator.producer import generate
from streaming.loop.pipeline import open_converter
from streaming.records import DLQ_REASON, DLQ_SOURCE_OFFSET, DLQ_SOURCE_PARTITION, DLQ_SOURCE_TOPIC, Reason
from streaming.replay.run import execute_replay, replay_group
from streaming.replay.selection import ReplayError, ReplaySelection
from streaming.settings import Settings

pytestmark = pytest.mark.integration

Source = tuple[str, int, int]


def _kdp(settings: Settings, *arguments: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kdp", *arguments],
        env=process_environment(settings, **extra),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _convert_all(settings: Settings, instance: str) -> None:
    converter = open_converter(settings, instance=instance, poll_timeout=0.5)
    converter.subscribe()
    try:
        converter.run(until_caught_up=True)
    finally:
        converter.close()


def _processed_sources(settings: Settings) -> Counter[Source]:
    deserialize = AvroDeserializer(SchemaRegistryClient(settings.registry_config()))
    context = SerializationContext(settings.output_topic, MessageField.VALUE)
    records = (deserialize(m.value(), context) for m in read_all(settings.bootstrap, settings.output_topic))
    return Counter((r["source_topic"], r["source_partition"], r["source_offset"]) for r in records)


def _dead_letters(settings: Settings, reason: str) -> list[tuple[Source, dict[str, str]]]:
    found = []
    for message in read_all(settings.bootstrap, settings.dlq_topic):
        headers = read_dead_letter_headers(message.headers())
        if headers.get(DLQ_REASON) == reason:
            source = (headers[DLQ_SOURCE_TOPIC], int(headers[DLQ_SOURCE_PARTITION]), int(headers[DLQ_SOURCE_OFFSET]))
            found.append((source, headers))
    return found


def _figures(name: str, selected: set[Source], processed: Counter[Source], dead_lettered_again: int) -> dict:
    """The figures line of a scenario: of the `selected` sources, how many reached the output, twice, never."""
    figures = {
        "selected": len(selected),
        "processed": sum(1 for source in selected if processed[source] > 0),
        "dead_lettered_again": dead_lettered_again,
        "duplicates": sum(processed[source] - 1 for source in selected if processed[source] > 1),
        "lost": sum(1 for source in selected if processed[source] == 0) - dead_lettered_again,
    }
    print(f"\n{name}: " + ", ".join(f"{key} {value}" for key, value in figures.items()))
    return figures


@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
def test_fix_then_replay_converts_every_refused_output_once(stack, delivery):
    """`processed-data`'s max.message.bytes was set too small: every output is refused and dead-lettered
    `rejected_by_broker`. The topic is fixed; the dry run says what a replay would take and changes nothing;
    the replay converts each of them once, with its original source triple, and leaves the others alone."""
    settings = scenario_settings(stack.bootstrap, stack.registry_url, delivery, "replay-fix", batch_size=100)
    create_topics(settings.bootstrap, [settings.source_topic, settings.dlq_topic], 3)
    create_topics(settings.bootstrap, [settings.output_topic], 3, **{"max.message.bytes": "200"})
    register_output_schema(settings)
    factory = EventFactory(11, IrregularityRates.with_malformed(0.05))
    assert generate({"bootstrap.servers": settings.bootstrap}, settings.source_topic, factory, count=400).ok
    _convert_all(settings, "before-the-fix")
    refused = {source for source, _ in _dead_letters(settings, Reason.REJECTED_BY_BROKER.value)}
    assert len(refused) >= 360 and not _processed_sources(settings), "the too-small topic refused every output"

    admin = AdminClient({"bootstrap.servers": settings.bootstrap})
    fix = ConfigResource(
        ConfigResource.Type.TOPIC,
        settings.output_topic,
        incremental_configs=[ConfigEntry("max.message.bytes", "1048588", incremental_operation=AlterConfigOpType.SET)],
    )
    for future in admin.incremental_alter_configs([fix]).values():
        future.result(timeout=30)

    dry = _kdp(settings, "replay", "--reason", "rejected_by_broker")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert f"it would take {len(refused)}" in dry.stdout
    assert "nothing changed" in dry.stdout and "rejected_by_broker" in dry.stdout
    assert not _processed_sources(settings), "a dry run writes nothing"

    result = execute_replay(settings, ReplaySelection(reasons=frozenset({Reason.REJECTED_BY_BROKER.value})))

    processed = _processed_sources(settings)
    figures = _figures(f"fix-then-replay ({delivery})", refused, processed, result.summary.dead_lettered)
    print(result.line())
    assert figures == {
        "selected": len(refused),
        "processed": len(refused),
        "dead_lettered_again": 0,
        "duplicates": 0,
        "lost": 0,
    }
    assert set(processed) == refused, "only the refused outputs were replayed"
    assert result.figures()["selected"] == len(refused) and result.figures()["processed"] == len(refused)
    assert result.figures()["not_selected"] > 0, "the malformed events' dead letters were left alone"

    again = _kdp(settings, "replay", "--reason", "rejected_by_broker", "--execute")
    assert again.returncode == 2 and "nothing to replay" in again.stdout, again.stdout + again.stderr
    assert _processed_sources(settings) == processed, "the same selection never takes a dead letter twice"


def test_a_request_that_cannot_be_done_is_refused_and_changes_nothing(stack):
    settings = scenario_settings(stack.bootstrap, stack.registry_url, "at-least-once", "replay-bad")
    create_topics(settings.bootstrap, [settings.source_topic, settings.output_topic, settings.dlq_topic], 1)
    register_output_schema(settings)
    factory = EventFactory(5, IrregularityRates.with_malformed(0.2))
    assert generate({"bootstrap.servers": settings.bootstrap}, settings.source_topic, factory, count=200).ok
    _convert_all(settings, "bad-requests")
    processed_before = _processed_sources(settings)
    dead_letters_before = len(read_all(settings.bootstrap, settings.dlq_topic))

    cases = [
        (("--reason", "no_such_reason", "--execute"), {}, "unknown reason(s) no_such_reason"),
        (("--failed-since", "2099-01-01T00:00:00Z", "--execute"), {}, "starts in the future"),
        (("--reason", "rejected_by_broker", "--execute"), {}, "nothing to replay"),
        (("--execute",), {"KDP_DLQ_TOPIC": settings.dlq_topic + "-missing"}, "does not exist"),
    ]
    for arguments, extra, message in cases:
        outcome = _kdp(settings, "replay", *arguments, **extra)
        assert outcome.returncode == 2, (arguments, outcome.stdout, outcome.stderr)
        assert message in outcome.stdout, (arguments, outcome.stdout)

    assert _processed_sources(settings) == processed_before
    assert len(read_all(settings.bootstrap, settings.dlq_topic)) == dead_letters_before
    admin = AdminClient({"bootstrap.servers": settings.bootstrap})
    groups = {g.group_id for g in admin.list_consumer_groups().result(timeout=30).valid}
    selection = ReplaySelection(reasons=frozenset({"rejected_by_broker"}))
    assert replay_group(selection, settings.dlq_topic) not in groups, "no progress was committed"
    with pytest.raises(ReplayError, match="nothing to replay"):
        execute_replay(settings, selection)


def test_kill_9_in_the_middle_of_an_exactly_once_replay_loses_and_duplicates_nothing(stack):
    """Events older than a too-narrow acceptance window (`KDP_MAX_EVENT_AGE=1s`) were dead-lettered
    `event_too_old`; with the window widened (the default), `kdp replay --execute` is killed with SIGKILL after
    a few batches, then started again: every event is in `processed-data` once."""
    settings = scenario_settings(stack.bootstrap, stack.registry_url, "exactly-once", "replay-kill", batch_size=500)
    create_topics(settings.bootstrap, [settings.source_topic, settings.output_topic, settings.dlq_topic], 3)
    register_output_schema(settings)
    count = 20_000
    factory = EventFactory(13, IrregularityRates.with_malformed(0.0), timestamp_jitter_s=0)
    assert generate({"bootstrap.servers": settings.bootstrap}, settings.source_topic, factory, count=count).ok
    time.sleep(2)  # every event is now older than the 1 s window below
    narrow = dataclasses.replace(settings, max_event_age="1s")
    _convert_all(narrow, "narrow-window")
    too_old = {source for source, _ in _dead_letters(settings, Reason.EVENT_TOO_OLD.value)}
    assert len(too_old) == count

    command = [sys.executable, "-m", "kdp", "replay", "--execute", "--reason", "event_too_old", "--log-every", "0.5"]
    environment = process_environment(settings)
    kill_after_committed_batches(command, environment)
    partial = _processed_sources(settings)
    assert 0 < len(partial) < count, "killed too early or too late to prove anything"

    restarted = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600)
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    assert "(resumed)" in restarted.stdout, restarted.stdout

    processed = _processed_sources(settings)
    figures = _figures("kill -9 mid-replay (exactly-once)", too_old, processed, dead_lettered_again=0)
    print(f"killed after {len(partial)} processed; restart: {restarted.stdout.strip()}")
    assert figures["lost"] == 0 and figures["duplicates"] == 0
    assert figures["processed"] == count
    assert set(processed) == too_old
