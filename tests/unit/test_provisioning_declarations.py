"""Reading `topics.yaml`: names through the settings, values as Kafka spells them, typos refused."""

from __future__ import annotations

import pytest

from orchestration.provisioning.declarations import (
    DeclarationError,
    load_declarations,
    parse_declarations,
    resolve,
)
from streaming.settings import Settings

NAMES = {"source": "a", "output": "b", "dead_letter": "c"}


def test_the_project_file_declares_the_three_topics_named_through_the_settings():
    settings = Settings.from_env({"KDP_SOURCE_TOPIC": "t-in", "KDP_OUTPUT_TOPIC": "t-out", "KDP_DLQ_TOPIC": "t-dlq"})

    declarations = {d.role: d for d in load_declarations(settings)}

    assert {role: d.name for role, d in declarations.items()} == {
        "source": "t-in",
        "output": "t-out",
        "dead_letter": "t-dlq",
    }
    output = declarations["output"]
    assert output.value_subject == "t-out-value"
    assert output.value_schema is not None and output.value_schema.compatibility == "BACKWARD_TRANSITIVE"
    assert output.value_schema.file.name == "processed-data-value.avsc"
    assert all(d.replication_factor is None for d in declarations.values())  # `auto`


def test_defaults_apply_to_every_topic_and_a_topic_overrides_them_key_by_key():
    document = {
        "defaults": {"replication_factor": 2, "configs": {"cleanup.policy": "delete", "retention.ms": 1000}},
        "topics": {"source": {"partitions": 3, "configs": {"retention.ms": 5000, "preallocate": True}}},
    }

    (declaration,) = parse_declarations(document, NAMES)

    assert declaration.replication_factor == 2
    assert declaration.configs == {"cleanup.policy": "delete", "retention.ms": "5000", "preallocate": "true"}


def test_resolve_pins_a_declared_replication_factor_and_derives_min_insync_replicas_from_it():
    document = {
        "topics": {"source": {"partitions": 1, "replication_factor": 1, "configs": {"min.insync.replicas": "auto"}}}
    }
    (declaration,) = parse_declarations(document, NAMES)

    desired = resolve(declaration, broker_count=5)

    assert (desired.replication_factor, desired.configs["min.insync.replicas"]) == (1, "1")


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({"topics": {"source": {"partitions": 0}}}, "topics.source.partitions"),
        ({"topics": {"source": {"partition": 3}}}, "unknown keys ['partition']"),
        ({"topics": {"sink": {"partitions": 3}}}, "unknown roles ['sink']"),
        ({"topics": {"source": {"partitions": 1, "replication_factor": "three"}}}, "replication_factor"),
        ({"topics": {"output": {"partitions": 1, "value_schema": {"file": "nope.avsc"}}}}, "no schema file"),
        (
            {"topics": {"output": {"partitions": 1, "value_schema": {"file": "x", "compatibility": "LAX"}}}},
            "compatibility must be one of",
        ),
    ],
)
def test_malformed_declarations_are_refused_naming_the_key(document, named):
    with pytest.raises(DeclarationError, match=named.replace("[", r"\[").replace("]", r"\]")):
        parse_declarations(document, NAMES)
