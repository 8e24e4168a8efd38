"""The generated ACL manifests and the docs' table say what the declaration says, and are up to date."""

from __future__ import annotations

import shlex

import yaml
from confluent_kafka.admin import ResourceType

from kdp.devstack import acl_manifests, security
from kdp.devstack.principals import PRINCIPALS

Acl = tuple[str, str, str, str, str]
"""(principal, resource type, name, pattern, operation), in Kafka's spelling."""


def _declared() -> set[Acl]:
    return {
        (
            binding.principal.removeprefix("User:"),
            binding.restype.name,
            binding.name if binding.restype != ResourceType.BROKER else "kafka-cluster",
            binding.resource_pattern_type.name,
            acl_manifests.operation_name(binding.operation),
        )
        for binding in security.acl_bindings()
    }


def test_regenerating_the_manifests_and_the_table_changes_nothing() -> None:
    assert acl_manifests.out_of_date() == []
    assert acl_manifests.main(["--check"]) == 0


def test_the_kafka_acls_commands_grant_exactly_the_declared_acls() -> None:
    kinds = {"--topic": "TOPIC", "--group": "GROUP", "--transactional-id": "TRANSACTIONAL_ID"}
    rendered: set[Acl] = set()
    for line in acl_manifests.kafka_acls_script().splitlines():
        if not line.startswith("acl "):
            continue
        words = shlex.split(line)[1:]
        principal = words[words.index("--allow-principal") + 1].removeprefix("User:")
        operations = [words[i + 1] for i, word in enumerate(words) if word == "--operation"]
        pattern = "PREFIXED" if "--resource-pattern-type" in words else "LITERAL"
        if "--cluster" in words:
            kind, name = "BROKER", "kafka-cluster"
        else:
            [flag] = [word for word in words if word in kinds]
            kind, name = kinds[flag], words[words.index(flag) + 1]
        rendered |= {(principal, kind, name, pattern, operation) for operation in operations}

    assert rendered == _declared()


def test_the_strimzi_users_grant_exactly_the_declared_acls() -> None:
    kinds = {"topic": "TOPIC", "group": "GROUP", "transactionalId": "TRANSACTIONAL_ID", "cluster": "BROKER"}
    users = list(yaml.safe_load_all(acl_manifests.kafka_users_yaml()))
    rendered: set[Acl] = set()
    for user in users:
        assert user["kind"] == "KafkaUser" and user["spec"]["authentication"]["type"] == "scram-sha-512"
        for acl in user["spec"]["authorization"]["acls"]:
            resource = acl["resource"]
            kind = kinds[resource["type"]]
            name = resource.get("name", "kafka-cluster")
            pattern = "PREFIXED" if resource.get("patternType") == "prefix" else "LITERAL"
            rendered |= {(user["metadata"]["name"], kind, name, pattern, op) for op in acl["operations"]}

    assert rendered == _declared()
    assert {user["metadata"]["name"] for user in users} == {p.name for p in PRINCIPALS if p.grants}


def test_the_docs_table_has_a_row_per_principal_with_its_role() -> None:
    table = acl_manifests.principals_table()
    rows = [line for line in table.splitlines() if line.startswith("| `")]

    assert [row.split("`")[1] for row in rows] == [p.name for p in PRINCIPALS]
    for row, principal in zip(rows, PRINCIPALS, strict=True):
        role = principal.registry_role.value if principal.registry_role else "none"
        assert role in row.split("|")[3]
    assert table in (acl_manifests.ROOT / acl_manifests.SECURITY_DOC).read_text()
