"""The secure stack's decisions that need no JVM: ACLs, node settings, credential files, refusals."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from confluent_kafka.admin import AclOperation, ResourcePatternType, ResourceType

from kdp.devstack import certificates, cli, oidc, principals, security, stack
from kdp.devstack.config import StackConfig
from kdp.devstack.errors import StackError
from kdp.devstack.kafka_node import plan_nodes, server_properties
from kdp.devstack.stack import LocalStack
from streaming.replay.run import replay_group, replay_instance
from streaming.replay.selection import ReplaySelection
from streaming.settings import Settings


def _grants(principal: str) -> set[tuple[ResourceType, str, ResourcePatternType, AclOperation]]:
    return {
        (binding.restype, binding.name, binding.resource_pattern_type, binding.operation)
        for binding in security.acl_bindings()
        if binding.principal == f"User:{principal}"
    }


def test_super_users_have_no_acls_and_every_binding_allows_from_any_host() -> None:
    bindings = security.acl_bindings()

    assert not _grants(security.ADMIN) and not _grants(security.NODE)
    assert {(binding.host, binding.permission_type.name) for binding in bindings} == {("*", "ALLOW")}


def test_the_generator_may_only_write_login_events() -> None:
    literal = ResourcePatternType.LITERAL
    assert _grants("generator") == {
        (ResourceType.TOPIC, "user-login", literal, AclOperation.WRITE),
        (ResourceType.TOPIC, "user-login", literal, AclOperation.DESCRIBE),
    }


def test_the_converter_reads_its_source_writes_its_outputs_and_owns_a_transactional_prefix() -> None:
    grants = _grants("converter")
    literal, prefixed = ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED

    assert (ResourceType.TOPIC, "user-login", literal, AclOperation.READ) in grants
    assert (ResourceType.TOPIC, "processed-data", literal, AclOperation.WRITE) in grants
    assert (ResourceType.TOPIC, "user-login.dlq", literal, AclOperation.WRITE) in grants
    assert (ResourceType.GROUP, "kdp-converter", literal, AclOperation.READ) in grants
    assert (ResourceType.TRANSACTIONAL_ID, "kdp-converter", prefixed, AclOperation.WRITE) in grants
    assert not any(operation in (AclOperation.CREATE, AclOperation.ALTER) for *_, operation in grants)
    assert not any(restype == ResourceType.BROKER for restype, *_ in grants)


def test_only_reassignment_may_alter_the_cluster_and_only_provisioning_may_create_topics() -> None:
    everyone = [p.name for p in principals.PRINCIPALS if not p.super_user]
    cluster_alter = (ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL, AclOperation.ALTER)

    assert [name for name in everyone if cluster_alter in _grants(name)] == ["reassignment"]
    creators = {name for name in everyone for *_, operation in _grants(name) if operation == AclOperation.CREATE}
    assert creators == {"provisioning"}
    created = {name for _kind, name, _pattern, operation in _grants("provisioning") if operation == AclOperation.CREATE}
    assert created == {"user-login", "processed-data", "user-login.dlq"}


def test_the_replay_reads_dead_letters_in_its_own_groups_and_transactional_ids() -> None:
    grants = _grants("replay")
    selection = ReplaySelection(reasons=frozenset({"invalid_json"}))
    group, instance = replay_group(selection, "user-login.dlq"), replay_instance(selection, "user-login.dlq")
    transactional_id = f"{Settings().transactional_id}-{instance}"
    prefixed = ResourcePatternType.PREFIXED

    granted_groups = [name for kind, name, pattern, op in grants if kind == ResourceType.GROUP and pattern == prefixed]
    granted_ids = [name for kind, name, _p, op in grants if kind == ResourceType.TRANSACTIONAL_ID]
    assert any(group.startswith(prefix) for prefix in granted_groups)
    assert any(transactional_id.startswith(prefix) for prefix in granted_ids)
    assert (ResourceType.TOPIC, "user-login.dlq", ResourcePatternType.LITERAL, AclOperation.READ) in grants
    assert not any(name == "user-login" for _kind, name, *_ in grants)  # never the source
    assert not any(kind == ResourceType.BROKER for kind, *_ in grants)


def test_dagster_conversion_reads_the_source_in_the_converter_group_and_administers_nothing() -> None:
    grants = _grants("dagster")

    assert (ResourceType.GROUP, "kdp-converter", ResourcePatternType.LITERAL, AclOperation.READ) in grants
    assert (
        ResourceType.TRANSACTIONAL_ID,
        "kdp-converter-dagster-",
        ResourcePatternType.PREFIXED,
        AclOperation.WRITE,
    ) in grants
    administering = {AclOperation.CREATE, AclOperation.ALTER, AclOperation.ALTER_CONFIGS, AclOperation.DELETE}
    assert not any(operation in administering for *_, operation in grants)
    assert not any(kind == ResourceType.BROKER for kind, *_ in grants)


def test_read_only_principals_and_registry_roles() -> None:
    writes = {AclOperation.WRITE, AclOperation.CREATE, AclOperation.ALTER, AclOperation.ALTER_CONFIGS}
    for name in ("insights", "lag-exporter", "schema"):
        assert not any(operation in writes for *_, operation in _grants(name)), name
    assert not _grants("schema")
    roles = {p.name: p.registry_role for p in principals.PRINCIPALS}
    developers = {name for name, role in roles.items() if role == principals.RegistryRole.DEVELOPER}
    assert developers == {"provisioning", "schema"}
    assert roles["admin"] == principals.RegistryRole.ADMIN
    for name in ("converter", "replay", "dagster", "insights"):
        assert roles[name] == principals.RegistryRole.READ_ONLY, name


def test_a_secure_node_listens_only_with_tls_and_sasl_and_denies_what_no_acl_allows(tmp_path: Path) -> None:
    [node] = plan_nodes(StackConfig.from_env({}, home=tmp_path), 1)
    secret = security.Credential(security.NODE, "node-secret")
    tls = certificates.ensure_certificates(tmp_path, node.host)

    properties = server_properties(node, [node], security.broker_properties(node, secret, tls))

    assert properties["listeners"] == "SASL_SSL://127.0.0.1:9092,CONTROLLER://127.0.0.1:9192"
    assert properties["advertised.listeners"] == "SASL_SSL://127.0.0.1:9092"
    assert properties["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:SASL_PLAINTEXT"
    assert properties["inter.broker.listener.name"] == "SASL_SSL"
    assert properties["ssl.keystore.key"] == tls.key.read_text().strip()
    assert properties["ssl.truststore.certificates"] == tls.ca.read_text().strip()
    assert properties["sasl.mechanism.controller.protocol"] == "PLAIN"
    assert properties["authorizer.class.name"].endswith("StandardAuthorizer")
    assert properties["allow.everyone.if.no.acl.found"] == "false"
    assert properties["super.users"] == "User:admin;User:broker"
    assert properties["controller.quorum.voters"] == "1@127.0.0.1:9192"  # the plain settings stay


def test_credentials_are_private_stable_distinct_and_ready_to_source(tmp_path: Path) -> None:
    first = security.ensure_credentials(tmp_path)
    again = security.ensure_credentials(tmp_path)

    assert again == first
    assert len({credential.password for credential in first.values()}) == len(first)
    assert security.credentials_folder(tmp_path).stat().st_mode & 0o777 == 0o700
    files = [security.credentials_file(tmp_path), *security.credentials_folder(tmp_path).iterdir()]
    assert {path.stat().st_mode & 0o777 for path in files} == {0o600}
    sourced = subprocess.run(
        ["bash", "-c", f'source "{security.credentials_file(tmp_path, "converter")}" && bash -c "env"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert "KDP_SASL_USERNAME=converter" in sourced
    assert f"KDP_SSL_CA_LOCATION={certificates.tls_files(tmp_path).ca}" in sourced
    settings = Settings.from_env(security.principal_environment(tmp_path, "converter"))
    assert settings.kafka_config()["sasl.password"] == first["converter"].password
    assert first["converter"].password not in repr(first["converter"])
    assert security.read_credential(tmp_path, security.ADMIN) == first[security.ADMIN]


def test_a_principal_without_credentials_is_an_error_naming_the_flag(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="--secure"):
        security.principal_environment(tmp_path, "converter")


def test_format_arguments_carry_every_credential() -> None:
    arguments = security.scram_format_arguments([security.Credential("admin", "a1"), security.Credential("x", "b2")])

    assert arguments == [
        "--add-scram",
        "SCRAM-SHA-512=[name=admin,password=a1]",
        "--add-scram",
        "SCRAM-SHA-512=[name=x,password=b2]",
    ]


def test_the_registry_gets_its_kafka_login_privately_and_loses_it_on_a_plain_start(tmp_path: Path) -> None:
    path = tmp_path / "config" / "application.properties"

    tls = certificates.ensure_certificates(tmp_path / "home", "127.0.0.1")
    security.write_registry_settings(tmp_path, security.Credential("admin", "s3cret"), tls)
    text = path.read_text()
    assert "apicurio.kafka.common.security.protocol=SASL_SSL" in text
    assert f"apicurio.kafka.common.ssl.truststore.location={tls.ca}" in text
    assert f"quarkus.http.ssl.certificate.key-files={tls.key}" in text
    assert "quarkus.http.insecure-requests=disabled" in text
    assert 'username="admin" password="s3cret"' in text
    assert path.stat().st_mode & 0o777 == 0o600

    security.write_registry_settings(tmp_path, None)
    assert not path.exists()


def _formatted_home(home: Path) -> None:
    data = home / "kafka" / "node-1" / "data"
    data.mkdir(parents=True)
    (data / "meta.properties").write_text("node.id=1\nversion=1\ncluster.id=c1\n")


@pytest.fixture
def no_java(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(_explicit: str | None = None) -> None:
        raise AssertionError("a unit test reached the JVM")

    monkeypatch.setattr(stack, "find_java", refuse)


@pytest.mark.usefixtures("no_java")
def test_a_plain_cluster_is_not_started_secure_nor_a_secure_one_plain(tmp_path: Path) -> None:
    plain, secure = tmp_path / "plain", tmp_path / "secure"
    _formatted_home(plain)
    _formatted_home(secure)
    security.ensure_credentials(secure)

    with pytest.raises(StackError, match="formatted without --secure") as refused:
        LocalStack(StackConfig.from_env({}, home=plain, cache=tmp_path / "cache")).up(secure=True)
    assert "kdp stack down --purge" in str(refused.value)
    with pytest.raises(StackError, match="formatted with --secure"):
        LocalStack(StackConfig.from_env({}, home=secure, cache=tmp_path / "cache")).up()


def test_purge_forgets_the_credentials_with_the_data(tmp_path: Path) -> None:
    _formatted_home(tmp_path)
    security.ensure_credentials(tmp_path)

    LocalStack(StackConfig.from_env({}, home=tmp_path, cache=tmp_path / "cache")).down(purge=True)

    assert not security.has_credentials(tmp_path)
    assert not security.credentials_file(tmp_path).exists()


def test_status_names_the_credential_files_without_their_contents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _formatted_home(tmp_path)
    credentials = security.ensure_credentials(tmp_path)
    monkeypatch.setenv("KDP_HOME", str(tmp_path))

    assert cli.main(["status"]) == 0

    out = capsys.readouterr().out
    assert "SASL/SCRAM-SHA-512" in out
    assert str(security.credentials_file(tmp_path, "generator")) in out
    assert not any(credential.password in out for credential in credentials.values())


def test_cli_parses_secure() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    cli.add_stack_actions(parser)

    assert parser.parse_args(["up", "--secure"]).secure is True
    assert parser.parse_args(["up"]).secure is False


def test_the_stack_ca_signs_a_certificate_for_its_host_and_its_key_is_not_kept(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding

    tls = certificates.ensure_certificates(tmp_path, "127.0.0.1")
    again = certificates.ensure_certificates(tmp_path, "127.0.0.1")

    assert again == tls and tls.certificate.read_bytes() == again.certificate.read_bytes()  # made once
    assert tls.folder.stat().st_mode & 0o777 == 0o700
    assert {path.stat().st_mode & 0o777 for path in tls.folder.iterdir()} == {0o600}
    assert sorted(path.name for path in tls.folder.iterdir()) == ["ca.pem", "server-key.pem", "server.pem"]
    ca = x509.load_pem_x509_certificate(tls.ca.read_bytes())
    server = x509.load_pem_x509_certificate(tls.certificate.read_bytes())
    server.verify_directly_issued_by(ca)
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    moved = certificates.ensure_certificates(tmp_path, "10.1.2.3")  # another host: a new CA and certificate
    assert moved.ca.read_bytes() != ca.public_bytes(Encoding.PEM)


def test_the_oidc_realm_gives_each_principal_with_a_registry_role_a_client_holding_that_role() -> None:
    passwords = {p.name: f"secret-of-{p.name}" for p in principals.PRINCIPALS}

    made = oidc.realm(passwords)

    clients = {client["clientId"]: client for client in made["clients"]}
    roles = {user["serviceAccountClientId"]: user["realmRoles"] for user in made["users"]}
    holders = {p.name: p.registry_role.value for p in principals.PRINCIPALS if p.registry_role is not None}
    assert set(clients) == {*holders, oidc.REGISTRY_CLIENT}
    assert roles == {name: [role] for name, role in holders.items()}
    assert all(clients[name]["secret"] == passwords[name] for name in holders)
    assert all(clients[name]["serviceAccountsEnabled"] and not clients[name]["publicClient"] for name in holders)
    assert "generator" not in clients and roles["converter"] == ["sr-readonly"]


def test_the_secure_registry_requires_a_login_and_enforces_roles_and_clients_get_registry_credentials(
    tmp_path: Path,
) -> None:
    server = oidc.OidcServer(tmp_path / "oidc", 8180)
    security.write_registry_settings(
        tmp_path, security.Credential("admin", "s3cret"), None, oidc.registry_settings(server)
    )
    text = (tmp_path / "config" / "application.properties").read_text()

    assert "quarkus.oidc.tenant-enabled=true" in text
    assert f"quarkus.oidc.token-path={server.token_url}" in text
    assert "apicurio.authn.basic-client-credentials.enabled=true" in text
    assert "apicurio.auth.role-based-authorization=true" in text
    converter = security.Credential("converter", "pw").environment()
    assert (converter["KDP_REGISTRY_USER"], converter["KDP_REGISTRY_PASSWORD"]) == ("converter", "pw")
    assert "KDP_REGISTRY_USER" not in security.Credential("generator", "pw").environment()
