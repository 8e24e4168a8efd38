"""The `replay_dead_letters` job is registered, launchable with typed config, and reads nothing at import."""

import dagster as dg

from orchestration.definitions import defs
from orchestration.defs.replay.jobs import ReplayConfig
from streaming.replay.selection import DEFAULT_MAX_REPLAYS


def test_the_replay_job_is_in_the_definitions_with_its_typed_config():
    job = defs.resolve_job_def("replay_dead_letters")
    assert job.tags.get("kdp/area") == "replay"
    op = job.graph.node_named("replay_dead_letters_op").definition
    fields = op.config_schema.as_field().config_type.fields  # type: ignore[union-attr]
    assert {
        "reasons",
        "source_partitions",
        "source_offsets",
        "failed_since",
        "failed_until",
        "limit",
        "max_replays",
        "dry_run",
    } <= set(fields)
    assert {"kafka", "registry"} <= op.required_resource_keys


def test_an_empty_config_means_every_dead_letter_and_a_dry_run():
    config = ReplayConfig()
    assert (config.reasons, config.limit, config.max_replays, config.dry_run) == ([], None, DEFAULT_MAX_REPLAYS, True)


def test_a_bad_request_fails_the_run_before_any_connection(monkeypatch):
    """An unknown reason is refused by the selection, before the op opens a client (no broker is reachable)."""
    monkeypatch.setenv("KDP_BOOTSTRAP", "127.0.0.1:1")
    monkeypatch.setenv("KDP_REGISTRY_URL", "http://127.0.0.1:1")
    result = defs.resolve_job_def("replay_dead_letters").execute_in_process(
        run_config={"ops": {"replay_dead_letters_op": {"config": {"reasons": ["no_such_reason"]}}}},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "unknown reason(s) no_such_reason" in str(failure.event_specific_data.error)  # type: ignore[union-attr]
