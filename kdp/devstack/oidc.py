"""The secure stack's OpenID Connect server: Keycloak, which tells the registry who a client is and what role it has.

Why: the registry (Apicurio) enforces roles only for identities an OIDC server vouches for. With
`apicurio.authn.basic-client-credentials.enabled`, a client sends HTTP basic credentials, as confluent-kafka's
`SchemaRegistryClient` does (`KDP_REGISTRY_USER`, `KDP_REGISTRY_PASSWORD`); the registry exchanges them at the
token endpoint (OAuth client credentials) and reads the role from the token (`realm_access.roles`). A wrong
password gets 401; a role that does not allow the request gets 403. Why Keycloak: it checks client secrets
(a mock OAuth server issues a token to anyone), and its distribution is on Maven Central.

One realm, `kdp`, made from `kdp.devstack.principals`: the three registry roles, and for every principal with a
registry role a confidential client (id: the principal's name; secret: its stack password) whose service
account holds that role. The server keeps nothing: its database is in memory (`--db=dev-mem`, fixed when the
distribution is built once in the cache, `build_command`), and every start creates the realm anew through
the admin API, as the stack's `admin`, from the credentials of that start.

Layout under `<home>/oidc/` (Keycloak's home for this stack): `lib`, `themes`, `providers` link to the cached
distribution; `conf/keycloak.conf` (0600) holds the bootstrap admin's login, so no secret is on a command line;
`data/` is this stack's own; `oidc.log`, `oidc.pid`. Plain HTTP on the stack's host (loopback by default): the
registry's token client trusts only the JVM's CAs, not the stack's (see docs/security.md).
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kdp.devstack import processes
from kdp.devstack.config import HOST, StackConfig
from kdp.devstack.principals import PRINCIPALS, RegistryRole
from kdp.devstack.private_files import write_private

REALM = "kdp"
REGISTRY_CLIENT = "registry"
"""The registry's own client id (`quarkus.oidc.client-id`): it only validates tokens."""
ADMIN_CLI = "admin-cli"
CALL_TIMEOUT = 180.0
"""Making the realm is a burst of database work: measured 23 s on a loaded two-core machine, more at worse."""
JVM_OPTIONS = (
    "-Xms64m",
    "-Xmx384m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/java.security=ALL-UNNAMED",
    "-Djava.util.logging.manager=org.jboss.logmanager.LogManager",
    "-Dpicocli.disable.closures=true",
    "-Djava.util.concurrent.ForkJoinPool.common.threadFactory="
    "io.quarkus.bootstrap.forkjoin.QuarkusForkJoinWorkerThreadFactory",
)
"""What Keycloak's `kc.sh` passes, with the registry's small heap and client compiler (a handful of token
requests per pipeline start)."""
BUILD_OPTIONS = ("--db=dev-mem",)
"""Fixed at build time: an in-memory database (the realm is made anew at every start)."""
_LINKED = ("lib", "themes", "providers")
_ENTRY_POINT = "io.quarkus.bootstrap.runner.QuarkusEntryPoint"


@dataclass(frozen=True)
class OidcServer:
    """The OIDC server's folder and address under one home. Pure data."""

    folder: Path
    port: int
    host: str = HOST

    @classmethod
    def of(cls, config: StackConfig) -> OidcServer:
        return cls(config.home / "oidc", config.oidc_port, config.host)

    @property
    def log_file(self) -> Path:
        return self.folder / "oidc.log"

    @property
    def pid_file(self) -> Path:
        return self.folder / "oidc.pid"

    @property
    def marker(self) -> str:
        return processes.marker_argument(self.folder)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def issuer(self) -> str:
        return f"{self.url}/realms/{REALM}"

    @property
    def token_url(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token"


# ------------------------------------------------------------------------------------------------- realm


def realm(passwords: Mapping[str, str]) -> dict[str, Any]:
    """The `kdp` realm (Keycloak's JSON representation): a client per principal with a registry role, its
    secret from `passwords` (principal -> password), its service account holding that role."""
    holders = [p for p in PRINCIPALS if p.registry_role is not None and p.name in passwords]
    return {
        "realm": REALM,
        "enabled": True,
        "sslRequired": "none",  # loopback; see the module docstring
        "roles": {"realm": [{"name": role.value} for role in RegistryRole]},
        "clients": [
            {"clientId": REGISTRY_CLIENT, "enabled": True, "bearerOnly": True},
            *(
                {
                    "clientId": principal.name,
                    "enabled": True,
                    "publicClient": False,
                    "clientAuthenticatorType": "client-secret",
                    "secret": passwords[principal.name],
                    "serviceAccountsEnabled": True,
                    "standardFlowEnabled": False,
                    "directAccessGrantsEnabled": False,
                }
                for principal in holders
            ),
        ],
        "users": [
            {
                "username": f"service-account-{principal.name}",
                "enabled": True,
                "serviceAccountClientId": principal.name,
                "realmRoles": [principal.registry_role.value],  # type: ignore[union-attr]
            }
            for principal in holders
        ],
    }


def registry_settings(server: OidcServer) -> dict[str, str]:
    """The registry's authentication and role settings for this server."""
    return {
        "quarkus.oidc.tenant-enabled": "true",
        "quarkus.oidc.auth-server-url": server.issuer,
        "quarkus.oidc.token-path": server.token_url,
        "quarkus.oidc.client-id": REGISTRY_CLIENT,
        "apicurio.authn.basic-client-credentials.enabled": "true",
        "apicurio.auth.role-based-authorization": "true",
        "apicurio.auth.role-source": "token",
    }


# ----------------------------------------------------------------------------------------------- process


def build_command(java: str, install: Path) -> list[str]:
    """Keycloak's one-time build in its install folder (what `kc.sh build` runs), with `BUILD_OPTIONS`."""
    return [*_java(java, install, install), "build", *BUILD_OPTIONS]


def prepare(server: OidcServer, install: Path, admin_password: str) -> None:
    """This stack's Keycloak home: links to the cached distribution, the bootstrap admin's login (0600)."""
    server.folder.mkdir(parents=True, exist_ok=True)
    for name in _LINKED:
        link = server.folder / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(install / name)
    (server.folder / "conf").mkdir(mode=0o700, exist_ok=True)
    settings = {"bootstrap-admin-username": "admin", "bootstrap-admin-password": admin_password}
    header = "# Written by `kdp stack up --secure` (kdp/devstack/oidc.py) on every start: the bootstrap admin."
    write_private(server.folder / "conf" / "keycloak.conf", "\n".join([header, *_lines(settings)]) + "\n")


def command(java: str, install: Path, server: OidcServer) -> list[str]:
    """The server's JVM command line: the prebuilt distribution, HTTP on the stack's host."""
    return [
        *_java(java, server.folder, install, marker=server.marker),
        "start",
        "--optimized",
        "--http-enabled=true",
        f"--http-host={server.host}",
        f"--http-port={server.port}",
        "--hostname-strict=false",
        "--cache=local",  # one node: no cluster discovery
    ]


def launch(java: str, install: Path, server: OidcServer) -> subprocess.Popen[bytes]:
    """Start the server in the background; its pid goes to `server.pid_file`."""
    return processes.start(
        command(java, install, server), cwd=server.folder, log_file=server.log_file, pid_file=server.pid_file
    )


def answers(server: OidcServer) -> bool:
    """True when the server serves its master realm's OpenID configuration."""
    try:
        with urllib.request.urlopen(f"{server.url}/realms/master/.well-known/openid-configuration", timeout=2) as r:
            return bool(r.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def create_realm(server: OidcServer, admin_password: str, passwords: Mapping[str, str]) -> None:
    """Make the `kdp` realm (deleting any earlier one) as the bootstrap admin."""
    form = {"grant_type": "password", "client_id": ADMIN_CLI, "username": "admin", "password": admin_password}
    token = _post_form(f"{server.url}/realms/master/protocol/openid-connect/token", form)["access_token"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        _request(f"{server.url}/admin/realms/{REALM}", "DELETE", headers)
    except urllib.error.HTTPError as error:
        if error.code != 404:
            raise
    _request(f"{server.url}/admin/realms", "POST", headers, json.dumps(realm(passwords)).encode())


def _java(java: str, home: Path, install: Path, marker: str | None = None) -> list[str]:
    return [
        java,
        *JVM_OPTIONS,
        *([marker] if marker else []),
        f"-Dkc.home.dir={home}",
        f"-Djboss.server.config.dir={home / 'conf'}",
        "-cp",
        str(install / "lib" / "quarkus-run.jar"),
        _ENTRY_POINT,
    ]


def _lines(settings: Mapping[str, str]) -> Sequence[str]:
    return [f"{key}={value}" for key, value in settings.items()]


def _post_form(url: str, form: Mapping[str, str]) -> dict[str, Any]:
    data = urllib.parse.urlencode(form).encode()
    with urllib.request.urlopen(url, data=data, timeout=CALL_TIMEOUT) as response:
        answer: dict[str, Any] = json.load(response)
        return answer


def _request(url: str, method: str, headers: Mapping[str, str], data: bytes | None = None) -> None:
    request = urllib.request.Request(url, data=data, headers=dict(headers), method=method)
    with urllib.request.urlopen(request, timeout=CALL_TIMEOUT):
        return
