"""Refusals of the cluster in one line, and the needs each operation checks are what its principal is granted."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import ResourcePatternType, ResourceType
from confluent_kafka.schema_registry.error import SchemaRegistryError

from kdp import cli
from kdp.devstack.principals import principal
from streaming import access
from streaming.cli import replay as replay_cli
from streaming.loop.pipeline import converter_needs
from streaming.replay.run import replay_needs
from streaming.replay.selection import ReplaySelection
from streaming.settings import Settings

SETTINGS = Settings(sasl_username="replay", sasl_mechanism="SCRAM-SHA-512")
_KINDS = {access.TOPIC: ResourceType.TOPIC, access.GROUP: ResourceType.GROUP}


def _granted(name: str, need: access.Need, operation: str) -> bool:
    """Whether principal `name`'s declared grants allow `operation` on the resource `need` names."""
    for grant in principal(name).grants:
        matches = (
            need.name.startswith(grant.name)
            if grant.pattern == ResourcePatternType.PREFIXED
            else need.name == grant.name
        )
        if grant.resource == _KINDS[need.kind] and matches and operation in {o.name for o in grant.operations}:
            return True
    return False


@pytest.mark.parametrize("execute", [False, True])
def test_what_a_replay_checks_is_what_the_replay_principal_is_granted(execute: bool) -> None:
    selection = ReplaySelection(reasons=frozenset({"invalid_json"}), limit=10)

    for need in replay_needs(Settings(), selection, execute=execute):
        assert all(_granted("replay", need, operation) for operation in need.operations), need


@pytest.mark.parametrize("name", ["converter", "dagster"])
def test_what_a_converter_checks_is_what_the_converter_and_dagster_conversion_are_granted(name: str) -> None:
    for need in converter_needs(Settings()):
        assert all(_granted(name, need, operation) for operation in need.operations), need


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (KafkaError.TOPIC_AUTHORIZATION_FAILED, access.TOPIC),
        (KafkaError.GROUP_AUTHORIZATION_FAILED, access.GROUP),
        (KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, access.TRANSACTIONAL_ID),
        (KafkaError.CLUSTER_AUTHORIZATION_FAILED, access.CLUSTER),
    ],
)
def test_every_authorization_failure_names_the_principal_and_its_kind_of_resource(code: int, kind: str) -> None:
    refused = access.denial(KafkaException(KafkaError(code)), SETTINGS)

    assert isinstance(refused, access.AccessDenied)
    assert (refused.principal, refused.kind) == ("replay", kind)
    line = access.refusal_line(KafkaException(KafkaError(code)), SETTINGS)
    assert line is not None and "'replay'" in line and kind in line and "\n" not in line


def test_a_failed_login_is_an_authentication_failure_naming_the_principal_and_mechanism() -> None:
    refused = access.denial(KafkaError(KafkaError._AUTHENTICATION, "invalid credentials"), SETTINGS)

    assert isinstance(refused, access.AuthenticationFailed)
    assert "'replay'" in str(refused) and "SCRAM-SHA-512" in str(refused) and "KDP_SASL_PASSWORD" in str(refused)


def test_other_errors_are_not_refusals() -> None:
    assert access.denial(KafkaException(KafkaError(KafkaError._TIMED_OUT)), SETTINGS) is None
    assert access.refusal_line(ValueError("no"), SETTINGS) is None


def test_a_refusal_within_a_named_block_names_the_resource_even_when_wrapped() -> None:
    class Broken(RuntimeError):
        pass

    named = access.denials_named(SETTINGS, access.TRANSACTIONAL_ID, "kdp-converter-replay-x", "WRITE")
    with pytest.raises(access.AccessDenied) as refused, named:
        try:
            raise KafkaException(KafkaError(KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED))
        except KafkaException as error:
            raise Broken("the producer cannot go on") from error

    assert str(refused.value).startswith(
        "principal 'replay' is not authorized to WRITE transactional id 'kdp-converter-replay-x'"
    )


def test_without_a_sasl_user_nothing_is_probed() -> None:
    access.check_access(Settings(bootstrap="127.0.0.1:1"), [access.topic("anything", "READ")], timeout=0.1)


def test_kdp_ends_a_refused_command_with_one_line_and_exit_code_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refused(_args: object) -> int:
        raise KafkaException(KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED))

    monkeypatch.setattr(replay_cli, "run_replay", refused)
    monkeypatch.setenv("KDP_SASL_USERNAME", "generator")

    assert cli.main(["replay", "--execute"]) == 2
    printed = capsys.readouterr()
    assert printed.err.splitlines() == [
        "kdp replay: refused: principal 'generator' is not authorized to use a group (GROUP_AUTHORIZATION_FAILED)"
    ]


@pytest.mark.parametrize(("status", "says"), [(401, "could not log in"), (403, "no registry role")])
def test_a_refusal_of_the_schema_registry_names_the_user_and_what_is_missing(status: int, says: str) -> None:
    refused = SchemaRegistryError(status, status * 100, "User is not authorized")

    line = access.refusal_line(refused, Settings(registry_user="converter"))

    assert line is not None and line.startswith("refused by the schema registry: 'converter'")
    assert says in line and f"HTTP {status}" in line
    assert access.refusal_line(SchemaRegistryError(404, 40401, "not found"), SETTINGS) is None
