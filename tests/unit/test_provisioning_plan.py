"""The provisioning planner on hand-built cluster states: what it creates, changes and refuses."""

from __future__ import annotations

from orchestration.provisioning.declarations import TopicDeclaration
from orchestration.provisioning.live_state import LiveConfig, LiveState, LiveTopic
from orchestration.provisioning.plan import (
    AddPartitions,
    AlterConfigs,
    ConfigChange,
    CreateTopic,
    UnmanagedConfig,
    plan_topics,
    render_markdown,
)

CONFIGS = {"retention.ms": "604800000", "cleanup.policy": "delete", "min.insync.replicas": "auto"}


def declared(name: str = "logins", partitions: int = 6, replication_factor: int | None = None) -> TopicDeclaration:
    return TopicDeclaration("source", name, partitions, replication_factor, CONFIGS)


def live_topic(
    name: str = "logins", partitions: int = 6, replicas: int = 1, configs: dict[str, LiveConfig] | None = None
) -> LiveTopic:
    if configs is None:
        configs = {
            "retention.ms": LiveConfig("604800000", is_default=False),
            "cleanup.policy": LiveConfig("delete", is_default=False),
            "min.insync.replicas": LiveConfig("1", is_default=False),
            "segment.bytes": LiveConfig("1073741824", is_default=True),
        }
    return LiveTopic(name, partitions, frozenset({replicas}), configs)


def cluster(*topics: LiveTopic, brokers: int = 1) -> LiveState:
    return LiveState(brokers, {topic.name: topic for topic in topics})


def test_a_missing_topic_is_created_with_auto_values_resolved_for_the_cluster():
    plan = plan_topics([declared()], cluster(brokers=5))

    assert plan.actions == (
        CreateTopic(
            "logins",
            6,
            3,
            {"retention.ms": "604800000", "cleanup.policy": "delete", "min.insync.replicas": "2"},
        ),
    )
    assert plan.errors == ()


def test_auto_values_on_a_single_broker_are_one_replica_and_one_in_sync():
    (action,) = plan_topics([declared()], cluster(brokers=1)).actions

    assert isinstance(action, CreateTopic)
    assert (action.replication_factor, action.configs["min.insync.replicas"]) == (1, "1")


def test_a_topic_that_matches_gives_an_empty_plan():
    plan = plan_topics([declared()], cluster(live_topic()))

    assert plan.is_empty
    assert render_markdown(plan).startswith("**No changes**")


def test_more_declared_partitions_are_added():
    plan = plan_topics([declared(partitions=12)], cluster(live_topic(partitions=6)))

    assert plan.actions == (AddPartitions("logins", current=6, target=12),)
    assert plan.errors == ()


def test_fewer_declared_partitions_is_an_error_and_no_action():
    plan = plan_topics([declared(partitions=3)], cluster(live_topic(partitions=6)))

    assert plan.actions == ()
    (error,) = plan.errors
    assert (error.topic, error.setting) == ("logins", "partitions")
    assert "cannot remove partitions" in error.message and "declare 6" in error.message


def test_a_replication_factor_change_is_an_error_pointing_to_the_reassignment_job():
    plan = plan_topics([declared(replication_factor=3)], cluster(live_topic(replicas=1), brokers=3))

    (error,) = plan.errors
    assert (error.topic, error.setting) == ("logins", "replication_factor")
    assert "reassignment job" in error.message
    assert all(not isinstance(action, AddPartitions) for action in plan.actions)


def test_a_replication_factor_above_the_broker_count_is_an_error_even_for_a_new_topic():
    plan = plan_topics([declared(replication_factor=3)], cluster(brokers=1))

    assert [(e.topic, e.setting) for e in plan.errors] == [("logins", "replication_factor")]
    assert "1 broker(s)" in plan.errors[0].message


def test_only_the_config_keys_that_differ_are_altered():
    configs = {
        "retention.ms": LiveConfig("86400000", is_default=False),
        "cleanup.policy": LiveConfig("delete", is_default=False),
        "min.insync.replicas": LiveConfig("1", is_default=False),
    }
    plan = plan_topics([declared()], cluster(live_topic(configs=configs)))

    assert plan.actions == (AlterConfigs("logins", (ConfigChange("retention.ms", "86400000", False, "604800000"),)),)


def test_an_equal_value_inherited_from_a_broker_default_is_pinned_on_the_topic():
    configs = {
        "retention.ms": LiveConfig("604800000", is_default=True),
        "cleanup.policy": LiveConfig("delete", is_default=False),
        "min.insync.replicas": LiveConfig("1", is_default=False),
    }
    plan = plan_topics([declared()], cluster(live_topic(configs=configs)))

    assert plan.actions == (AlterConfigs("logins", (ConfigChange("retention.ms", "604800000", True, "604800000"),)),)


def test_overrides_the_declarations_do_not_mention_are_reported_not_changed():
    configs = {
        **live_topic().configs,
        "segment.ms": LiveConfig("3600000", is_default=False),
    }
    plan = plan_topics([declared()], cluster(live_topic(configs=configs)))

    assert plan.is_empty
    assert plan.unmanaged == (UnmanagedConfig("logins", "segment.ms", "3600000"),)


def test_the_rendered_plan_lists_each_change_and_each_error():
    plan = plan_topics(
        [declared("new"), declared("grown", partitions=8), declared("shrunk", partitions=2)],
        cluster(live_topic("grown", partitions=6), live_topic("shrunk", partitions=4)),
    )
    text = render_markdown(plan)

    assert "| `new` | create topic | all | — | 6 partitions, replication factor 1, 3 configs" in text
    assert "| `grown` | add partitions | partitions | 6 | 8 |" in text
    assert "| `shrunk` | partitions | declared 2 but the topic has 4" in text
    assert text.startswith("**2 change(s), 1 error(s)**")
