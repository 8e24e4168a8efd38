"""The Dagster job `replay_dead_letters` run in process against the real broker and registry: a dry run that
changes nothing, then the replay, its figures in the op's output metadata."""

from __future__ import annotations

import dataclasses
import time

import dagster as dg
import pytest
from kafka_io import create_topics
from metrics_run import free_port
from registry_io import register_output_schema
from scenario_settings import scenario_settings

from orchestration.definitions import defs
from orchestration.defs.resources import KafkaResource, SchemaRegistryResource, environment_bound
from streaming.generator.events import EventFactory, IrregularityRates
from streaming.generator.producer import generate
from streaming.loop.pipeline import open_converter

pytestmark = pytest.mark.integration

OP = "replay_dead_letters_op"


def _run(config: dict) -> tuple[dg.ExecuteInProcessResult, dict]:
    result = defs.resolve_job_def("replay_dead_letters").execute_in_process(
        run_config={"ops": {OP: {"config": config}}},
        resources={"kafka": environment_bound(KafkaResource), "registry": environment_bound(SchemaRegistryResource)},
        instance=dg.DagsterInstance.ephemeral(),
    )
    output = next(e for e in result.events_for_node(OP) if e.event_type == dg.DagsterEventType.STEP_OUTPUT)
    metadata = output.event_specific_data.metadata  # type: ignore[union-attr]
    return result, {name: getattr(value, "value", value) for name, value in metadata.items()}


def test_the_job_replays_and_reports_its_figures(stack, monkeypatch):
    settings = scenario_settings(stack.bootstrap, stack.registry_url, "exactly-once", "replay-dagster")
    create_topics(settings.bootstrap, [settings.source_topic, settings.output_topic, settings.dlq_topic], 2)
    register_output_schema(settings)
    factory = EventFactory(17, IrregularityRates.with_malformed(0.1), timestamp_jitter_s=0)
    assert generate({"bootstrap.servers": settings.bootstrap}, settings.source_topic, factory, count=500).ok
    time.sleep(2)  # older than the 1 s acceptance window below
    converter = open_converter(dataclasses.replace(settings, max_event_age="1s"), instance="narrow", poll_timeout=0.5)
    converter.subscribe()
    try:
        before = converter.run(until_caught_up=True)
    finally:
        converter.close()
    too_old = before.insights.reasons["event_too_old"]
    assert too_old > 0 and before.processed == 0
    for variable, value in {
        "KDP_BOOTSTRAP": settings.bootstrap,
        "KDP_REGISTRY_URL": settings.registry_url,
        "KDP_SOURCE_TOPIC": settings.source_topic,
        "KDP_OUTPUT_TOPIC": settings.output_topic,
        "KDP_DLQ_TOPIC": settings.dlq_topic,
        "KDP_TRANSACTIONAL_ID": settings.transactional_id,
        "KDP_DELIVERY": "exactly-once",
    }.items():
        monkeypatch.setenv(variable, value)  # as in a deployment: KDP_* variables, resources left unset

    dry, preview = _run({"reasons": ["event_too_old"], "dry_run": True})
    assert dry.success
    assert preview["would_take"] == too_old and preview["dry_run"] is True

    # A Pushgateway that cannot be reached (nothing listens on the port) never fails the replay: it is counted.
    monkeypatch.setenv("KDP_PUSHGATEWAY_URL", f"http://127.0.0.1:{free_port()}")
    result, figures = _run({"reasons": ["event_too_old"], "dry_run": False})
    assert result.success
    print(f"\nDagster replay: {figures}")
    assert figures["metrics_pushes"] == 0 and figures["metrics_push_failures"] >= 2
    assert figures["selected"] == too_old
    assert figures["processed"] == too_old and figures["dead_lettered_again"] == 0
    assert figures["not_selected"] == before.dead_lettered - too_old
    assert figures["selected_by_reason"] == {"event_too_old": too_old}
    assert figures["finished"] is True and figures["resumed"] is False
    assert result.output_for_node(OP)["processed"] == too_old
