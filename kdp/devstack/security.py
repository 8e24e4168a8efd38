"""`kdp stack up --secure`: who may connect to the local Kafka, and what each principal may do.

The secure stack is the production security model on loopback, so that a missing ACL or a client that drops its
credentials fails here first rather than in a deployment:

- **Encryption.** Clients connect to one SASL_SSL listener: TLS with a server certificate signed by a CA made
  at the stack's first secure start (`kdp.devstack.certificates`; clients trust `<home>/tls/ca.pem`, named in
  every credentials file as `KDP_SSL_CA_LOCATION`). A client that does not trust that CA is refused during
  the TLS handshake, before any password is sent. The registry's API is served over HTTPS with the same
  certificate.
- **Authentication.** Inside TLS, SCRAM-SHA-512. The credentials are
  created when the storage is formatted (`kafka-storage format --add-scram`), so they exist from the cluster's
  first moment; an unauthenticated client or a wrong password is refused during the handshake.
- **Authorization.** `StandardAuthorizer` with `allow.everyone.if.no.acl.found=false`: without an ACL, nothing
  is allowed. `User:admin` and the nodes' own `User:broker` are super users; every other principal gets exactly
  the ACLs declared in `kdp.devstack.principals`, created after start through the Admin API (idempotent, so
  every start re-applies them).
- **Node to node.** Brokers replicate and send transaction markers over the same SASL_SSL listener as `broker`
  (SCRAM, the CA trusted as clients trust it). The KRaft controller listener (loopback, nodes only) requires
  SASL without TLS, with PLAIN and the same `broker` secret in the
  nodes' JAAS configuration: SCRAM is not possible there (the controller must authenticate brokers before the
  metadata holding SCRAM credentials is readable), and a PLAINTEXT controller listener would need
  `User:ANONYMOUS` as a super user, which would let any local process administer the cluster through the
  controller port (the Admin API can talk to controllers directly). No listener accepts anonymous connections.
- **The registry** (Apicurio) reaches Kafka as `admin` through its `apicurio.kafka.common.*` client settings,
  written to `<home>/registry/config/application.properties` (mode 0600), which Quarkus reads from the working
  directory, so the password appears neither on a command line nor in a log. Its API requires a login and
  enforces the principals' registry roles through the stack's OIDC server (`kdp.devstack.oidc`); each
  principal with a role logs in to it with its own name and password (`KDP_REGISTRY_USER`/`_PASSWORD`).

Secrets: generated at the first `up --secure` (`secrets.token_urlsafe`), kept in `<home>/credentials/` (mode
0700; files 0600) as `KDP_*` variables ready to `source`, one file per principal; `<home>/credentials.env` is
the admin's, the developer's default. Nothing here prints or logs a password; the node secret reaches the
nodes through their `server.properties` (0600) and the storage tool through a Java argument file (0600, deleted
after use), never through a command line that `ps` would show.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialAlteration,
    UserScramCredentialUpsertion,
)

from kdp.devstack.certificates import TlsFiles, tls_files
from kdp.devstack.errors import StackError
from kdp.devstack.kafka_node import KafkaNode
from kdp.devstack.principals import NAMES, PRINCIPALS, Principal
from kdp.devstack.private_files import write_private

PROTOCOL = "SASL_SSL"
MECHANISM = "SCRAM-SHA-512"
CONTROLLER_MECHANISM = "PLAIN"
CLIENT_LISTENER = "SASL_SSL"
"""The listener's name: Kafka's convention of naming a listener after its protocol."""

ADMIN = "admin"
NODE = "broker"
"""The nodes' own principal: inter-broker (SCRAM) and controller (PLAIN) connections. Not for clients."""
SUPER_USERS = (ADMIN, NODE)

CREDENTIALS_FOLDER = "credentials"
DEFAULT_CREDENTIALS_FILE = "credentials.env"
REGISTRY_SETTINGS = Path("config") / "application.properties"
"""Relative to the registry's working directory: Quarkus reads `$PWD/config/application.properties`."""

CALL_TIMEOUT = 30.0
SCRAM_ITERATIONS = 4096
"""As `kafka-storage format --add-scram` stores them."""


CLIENT_NAMES = NAMES


@dataclass(frozen=True)
class Credential:
    """One SCRAM user's name and password; the password never shows in `repr`."""

    username: str
    password: str = field(repr=False)
    ca_location: str | None = None
    """The CA certificate file the client trusts (the stack's `tls/ca.pem`)."""

    def environment(self) -> dict[str, str]:
        """The `KDP_*` security variables `streaming.settings` reads for this principal: its Kafka login, and the
        same name and password for the registry when the principal has a registry role."""
        found = {
            "KDP_SECURITY_PROTOCOL": PROTOCOL,
            "KDP_SASL_MECHANISM": MECHANISM,
            "KDP_SASL_USERNAME": self.username,
            "KDP_SASL_PASSWORD": self.password,
        }
        if self.ca_location:
            found["KDP_SSL_CA_LOCATION"] = self.ca_location
        if any(p.name == self.username and p.registry_role is not None for p in PRINCIPALS):
            found["KDP_REGISTRY_USER"] = self.username
            found["KDP_REGISTRY_PASSWORD"] = self.password
        return found

    def client_config(self) -> dict[str, str]:
        """librdkafka's security settings for this principal (for the stack's own admin clients)."""
        found = {
            "security.protocol": PROTOCOL,
            "sasl.mechanism": MECHANISM,
            "sasl.username": self.username,
            "sasl.password": self.password,
        }
        if self.ca_location:
            found["ssl.ca.location"] = self.ca_location
        return found


# ------------------------------------------------------------------------------------------- credentials


def credentials_folder(home: Path) -> Path:
    return home / CREDENTIALS_FOLDER


def credentials_file(home: Path, principal: str | None = None) -> Path:
    """`<home>/credentials/<principal>.env`, or the admin's `<home>/credentials.env` when no principal is named."""
    if principal is None:
        return home / DEFAULT_CREDENTIALS_FILE
    return credentials_folder(home) / f"{principal}.env"


def client_credential_files(home: Path) -> list[Path]:
    """The files a person sources: the admin's default, then one per client principal."""
    return [credentials_file(home), *(credentials_file(home, name) for name in CLIENT_NAMES)]


def has_credentials(home: Path) -> bool:
    """Whether this home belongs to a secure stack (credentials are made before its storage is formatted)."""
    return credentials_file(home, NODE).exists()


def ensure_credentials(home: Path) -> dict[str, Credential]:
    """Every principal's credential (the nodes' own included), generating those not stored yet.

    Stored passwords are kept: they are in the formatted cluster's metadata. The files are (re)written with
    mode 0600 in a 0700 folder on every call, so their format and permissions stay right.
    """
    folder = credentials_folder(home)
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    found = {}
    for name in (NODE, *CLIENT_NAMES):
        stored = read_credential(home, name)
        found[name] = stored or Credential(name, secrets.token_urlsafe(24), str(tls_files(home).ca))
        write_private(credentials_file(home, name), _env_file(found[name], _purpose(name)))
    write_private(credentials_file(home), _env_file(found[ADMIN], _purpose(ADMIN)))
    return found


def read_credential(home: Path, principal: str) -> Credential | None:
    """The stored credential of `principal`, or None when there is none (or the file is damaged)."""
    variables = read_env_file(credentials_file(home, principal))
    username, password = variables.get("KDP_SASL_USERNAME"), variables.get("KDP_SASL_PASSWORD")
    if username != principal or not password:
        return None
    return Credential(username, password, str(tls_files(home).ca))


def principal_environment(home: Path, principal: str) -> dict[str, str]:
    """What `source <home>/credentials/<principal>.env` sets; StackError when the stack has no such file."""
    credential = read_credential(home, principal)
    if credential is None:
        raise StackError(
            f"No credentials of {principal!r} under {credentials_folder(home)}: was the stack started with "
            "`kdp stack up --secure`?"
        )
    return credential.environment()


def read_env_file(path: Path) -> dict[str, str]:
    """The `export NAME=value` lines of a file written by `_env_file` (comments skipped); empty when absent."""
    try:
        lines = [line.strip() for line in path.read_text().splitlines()]
    except OSError:
        return {}
    pairs = (line.removeprefix("export ").split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {name.strip(): value.strip() for name, value in pairs}


def forget_credentials(home: Path) -> None:
    """Delete the stored credentials (with the cluster's data: they only open that cluster)."""
    shutil.rmtree(credentials_folder(home), ignore_errors=True)
    credentials_file(home).unlink(missing_ok=True)


def _purpose(name: str) -> str:
    if name == NODE:
        return "the Kafka nodes themselves (inter-broker and controller connections); not for clients"
    return next(principal.purpose for principal in PRINCIPALS if principal.name == name)


def _env_file(credential: Credential, purpose: str) -> str:
    lines = [
        f"# Kafka credentials of the local stack's `{credential.username}` principal: {purpose}.",
        "# Written by `kdp stack up --secure`. Keep private (mode 0600). Use: source <this file>",
        *(f"export {name}={value}" for name, value in credential.environment().items()),
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------- broker settings


def broker_properties(node: KafkaNode, node_secret: Credential, tls: TlsFiles) -> dict[str, str]:
    """The `server.properties` entries that make `node` secure, laid over its plain configuration.

    Keys the plain configuration has too (listeners, protocol map, inter-broker listener) are replaced in place.
    The certificate, key and CA go in as PEM text (the file is 0600): a PEM key *file* would need a password.
    """
    scram_login = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{node_secret.username}" password="{node_secret.password}";'
    )
    # PLAIN's JAAS entry is both the client side (username/password) and the server's user list (user_<name>).
    plain_login = (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="{node_secret.username}" password="{node_secret.password}" '
        f'user_{node_secret.username}="{node_secret.password}";'
    )
    client = CLIENT_LISTENER.lower()
    return {
        "listeners": f"{CLIENT_LISTENER}://{node.address},CONTROLLER://{node.host}:{node.controller_port}",
        "advertised.listeners": f"{CLIENT_LISTENER}://{node.address}",
        "listener.security.protocol.map": f"{CLIENT_LISTENER}:SASL_SSL,CONTROLLER:SASL_PLAINTEXT",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.certificate.chain": tls.certificate.read_text().strip(),
        "ssl.keystore.key": tls.key.read_text().strip(),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.certificates": tls.ca.read_text().strip(),
        "ssl.endpoint.identification.algorithm": "https",
        "inter.broker.listener.name": CLIENT_LISTENER,
        "sasl.mechanism.inter.broker.protocol": MECHANISM,
        "sasl.mechanism.controller.protocol": CONTROLLER_MECHANISM,
        f"listener.name.{client}.sasl.enabled.mechanisms": MECHANISM,
        f"listener.name.{client}.{MECHANISM.lower()}.sasl.jaas.config": scram_login,
        "listener.name.controller.sasl.enabled.mechanisms": CONTROLLER_MECHANISM,
        f"listener.name.controller.{CONTROLLER_MECHANISM.lower()}.sasl.jaas.config": plain_login,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": ";".join(f"User:{name}" for name in SUPER_USERS),
    }


def scram_format_arguments(credentials: Iterable[Credential]) -> list[str]:
    """`kafka-storage format` arguments that store these SCRAM credentials in the new cluster's metadata."""
    arguments = []
    for credential in credentials:
        arguments += ["--add-scram", f"{MECHANISM}=[name={credential.username},password={credential.password}]"]
    return arguments


# -------------------------------------------------------------------------------------------------- ACLs


def acl_bindings(principals: Iterable[Principal] = PRINCIPALS) -> list[AclBinding]:
    """Every ALLOW binding the principals' grants describe, from any host."""
    return [
        AclBinding(
            grant.resource,
            grant.name,
            grant.pattern,
            f"User:{principal.name}",
            "*",
            operation,
            AclPermissionType.ALLOW,
        )
        for principal in principals
        for grant in principal.grants
        for operation in grant.operations
    ]


def apply_acls(bootstrap: str, admin: Credential) -> int:
    """Make the cluster's ACLs exactly those declared, as `admin`: create the missing ones, delete the ones the
    declaration no longer has (a narrowed grant takes effect on the next start); returns how many are in place."""
    client = AdminClient({"bootstrap.servers": bootstrap, **admin.client_config()})
    declared = acl_bindings()
    present = client.describe_acls(_EVERY_ACL, request_timeout=CALL_TIMEOUT).result(timeout=CALL_TIMEOUT)
    stale = [binding for binding in present if binding not in declared]
    failures = []
    if stale:
        filters = [_matching_exactly(binding) for binding in stale]
        failures += _failures(client.delete_acls(filters, request_timeout=CALL_TIMEOUT))
    failures += _failures(client.create_acls(declared, request_timeout=CALL_TIMEOUT))
    if failures:
        raise StackError("Setting the secure stack's ACLs failed:\n" + "\n".join(failures))
    return len(declared)


def ensure_scram_users(bootstrap: str, admin: Credential, credentials: Iterable[Credential]) -> None:
    """Store the SCRAM credentials of `credentials` in the running cluster, as `admin`.

    The format step stores every principal known then; this adds those declared since (and rewrites the others
    with the same password), so a stack formatted before a principal was declared needs no purge.
    """
    client = AdminClient({"bootstrap.servers": bootstrap, **admin.client_config()})
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    upserts: list[UserScramCredentialAlteration] = [
        UserScramCredentialUpsertion(c.username, info, c.password.encode()) for c in credentials
    ]
    failures = _failures(client.alter_user_scram_credentials(upserts, request_timeout=CALL_TIMEOUT))
    if failures:
        raise StackError("Storing the secure stack's SCRAM credentials failed:\n" + "\n".join(failures))


_EVERY_ACL = AclBindingFilter(  # None matches any name, principal and host (the stubs say str)
    ResourceType.ANY,
    None,  # type: ignore[arg-type]
    ResourcePatternType.ANY,
    None,  # type: ignore[arg-type]
    None,  # type: ignore[arg-type]
    AclOperation.ANY,
    AclPermissionType.ANY,
)


def _matching_exactly(binding: AclBinding) -> AclBindingFilter:
    return AclBindingFilter(
        binding.restype,
        binding.name,
        binding.resource_pattern_type,
        binding.principal,
        binding.host,
        binding.operation,
        binding.permission_type,
    )


def _failures(futures: Mapping[Any, Future[Any]]) -> list[str]:
    failures = []
    for subject, future in futures.items():
        try:
            future.result(timeout=CALL_TIMEOUT)
        except KafkaException as error:
            failures.append(f"{subject}: {error.args[0].str()}")
    return failures


# ----------------------------------------------------------------------------------------------- registry


def write_registry_settings(
    registry_folder: Path,
    admin: Credential | None,
    tls: TlsFiles | None = None,
    authentication: Mapping[str, str] | None = None,
) -> None:
    """Give the registry its Kafka credentials, its HTTPS certificate and its `authentication` settings (the
    secure stack's, from `kdp.devstack.oidc.registry_settings`), or take them away.

    Apicurio passes every `apicurio.kafka.common.*` property to its Kafka producer, consumer and admin client.
    Its own `apicurio.kafkasql.security.sasl.*` settings only build an OAuth login, hence these raw ones.
    With `tls`, Quarkus serves the API over HTTPS only (`insecure-requests=disabled` opens no plain port), with
    the stack's server certificate, on the registry's port (`registry.command` sets `quarkus.http.ssl-port`).
    """
    path = registry_folder / REGISTRY_SETTINGS
    if admin is None:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    settings: Mapping[str, str] = {
        "apicurio.kafka.common.security.protocol": PROTOCOL,
        "apicurio.kafka.common.sasl.mechanism": MECHANISM,
        "apicurio.kafka.common.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{admin.username}" password="{admin.password}";'
        ),
    }
    if tls is not None:
        settings = {
            **settings,
            "apicurio.kafka.common.ssl.truststore.type": "PEM",
            "apicurio.kafka.common.ssl.truststore.location": str(tls.ca),
            "quarkus.http.ssl.certificate.files": str(tls.certificate),
            "quarkus.http.ssl.certificate.key-files": str(tls.key),
            "quarkus.http.insecure-requests": "disabled",
        }
    if authentication is not None:
        settings = {**settings, **authentication}
    header = (
        "# Written by `kdp stack up --secure` (kdp/devstack/security.py) on every start: the registry's Kafka login."
    )
    write_private(path, "\n".join([header, *(f"{key}={value}" for key, value in settings.items())]) + "\n")
