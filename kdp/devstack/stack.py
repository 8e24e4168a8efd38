"""The local stack as a whole: `up`, `down`, `status` and `running` for the CLI and the test fixture.

Contracts:
- `up` is idempotent. It starts only what is not running, returns only when the whole stack is usable (see
  `readiness`), and when it fails it stops what it started itself, so a failed `up` leaves nothing new behind.
- `down` stops only processes recorded in this home's pid files (registry first, so it does not spend its last
  seconds reconnecting to a vanishing Kafka; then every Kafka node at once). `purge=True` also deletes the
  data.
- The Kafka data is the record of the cluster's size: asking for another size than the formatted one is an
  error that says how to start over, never a silent reformat.
- `up` and `down` of one home are serialised by a lock file, so two test sessions starting at once end up
  sharing one stack instead of racing for its ports.

`run.json` in the home records the ports and choices of the latest `up`, so `status`, `running` and the test
fixture can find a stack started with other ports than the current defaults.

`up(secure=True)` (`kdp stack up --secure`) starts the same stack with TLS, SASL/SCRAM authentication and ACLs
(see `kdp.devstack.security` and `kdp.devstack.certificates`), and an OIDC server beside the registry, which then
requires a login and enforces roles (`kdp.devstack.oidc`; started before Kafka, awaited before the registry).
Like the size, security is a property of the data: the credentials are created when the storage is formatted,
so a plain cluster cannot be started secure, nor a secure one plain.
"""

from __future__ import annotations

import fcntl
import json
import logging
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from kdp.devstack import certificates, kafka_node, maven, oidc, processes, readiness, registry, security
from kdp.devstack.aot import aot_cache, keep_recordings
from kdp.devstack.config import (
    ENV_CONTROLLER_PORT,
    ENV_KAFKA_PORT,
    ENV_OIDC_PORT,
    ENV_REGISTRY_MGMT_PORT,
    ENV_REGISTRY_PORT,
    HOST,
    StackConfig,
)
from kdp.devstack.errors import StackError
from kdp.devstack.java import JavaRuntime, find_java
from kdp.devstack.kafka_node import KafkaNode
from kdp.devstack.logfiles import excerpt
from kdp.devstack.ports import ensure_ports_free
from kdp.devstack.registry import RegistryProcess
from kdp.devstack.versions import KAFKA_VERSION, OIDC_VERSION, REGISTRY_VERSION

log = logging.getLogger(__name__)

RUN_FILE = "run.json"
DEFAULT_TIMEOUT = 180.0
STOP_TIMEOUT = 60.0
"""Stopping takes about a second; only a JVM writing its AOT cache at exit takes 10-20 s (see `aot`)."""


@dataclass(frozen=True)
class StackInfo:
    """How clients reach a running stack."""

    bootstrap: str
    registry_url: str | None
    brokers: int
    home: Path | None
    """The stack's KDP_HOME; None for a stack that `kdp stack` did not start (named by the environment)."""
    secure: bool = False
    """Clients must authenticate (SASL/SCRAM); their credentials are in `security.credentials_file(home, ...)`."""

    def environment(self) -> dict[str, str]:
        """The settings that point the pipeline at this stack (`streaming.settings` reads them).

        Never credentials: for a secure stack, add a principal's `security.principal_environment(home, name)`.
        """
        found = {"KDP_BOOTSTRAP": self.bootstrap}
        if self.registry_url:
            found["KDP_REGISTRY_URL"] = self.registry_url
        return found


@dataclass(frozen=True)
class RunRecord:
    """What the latest `up` of a home chose (`run.json`)."""

    brokers: int
    with_registry: bool
    kafka_port: int
    controller_port: int
    registry_port: int
    registry_management_port: int
    java: str
    java_description: str
    secure: bool = False
    host: str = HOST
    oidc_port: int = 8180

    @classmethod
    def of(cls, config: StackConfig, info: StackInfo, java: JavaRuntime) -> RunRecord:
        return cls(
            brokers=info.brokers,
            with_registry=info.registry_url is not None,
            kafka_port=config.kafka_port,
            controller_port=config.controller_port,
            registry_port=config.registry_port,
            registry_management_port=config.registry_management_port,
            java=java.executable,
            java_description=java.description,
            secure=info.secure,
            host=config.host,
            oidc_port=config.oidc_port,
        )


@dataclass(frozen=True)
class _Plan:
    """What one `up` found and decided: the nodes, which of them (and whether the registry) must start."""

    config: StackConfig
    nodes: list[KafkaNode]
    cluster_id: str | None
    """None when the data is not formatted yet."""
    idle_nodes: list[KafkaNode]
    registry: RegistryProcess
    start_registry: bool
    oidc_server: oidc.OidcServer
    start_oidc: bool
    """The secure stack's registry authenticates through the OIDC server: it runs beside the registry."""
    info: StackInfo


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    pid: int | None
    address: str
    log: Path


@dataclass(frozen=True)
class StackStatus:
    """What `kdp stack status` shows."""

    home: Path
    cache: Path
    cluster_id: str | None
    formatted_brokers: int
    components: list[ComponentStatus]
    java: str | None
    secure: bool = False
    credentials: list[Path] = field(default_factory=list)
    """The secure stack's credential files (paths only: their contents are never shown)."""

    @property
    def running(self) -> list[ComponentStatus]:
        return [component for component in self.components if component.pid is not None]


class LocalStack:
    """One local stack: the home (state) and cache (downloads) of `config`."""

    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig.from_env()

    # ----------------------------------------------------------------------------------------------- up

    def up(
        self, brokers: int = 1, with_registry: bool = True, timeout: float = DEFAULT_TIMEOUT, secure: bool = False
    ) -> StackInfo:
        """Start what is not running and wait until all of it is usable (see the module's contract)."""
        deadline = time.monotonic() + timeout
        with self._locked():
            plan = self._plan(brokers, with_registry, secure)
            if plan.idle_nodes or plan.start_registry or plan.start_oidc:
                self._start(plan, deadline)
            else:
                self._await_kafka(plan, [], deadline)
                if with_registry:
                    self._await_registry(plan.registry, [], deadline, _registry_login(plan.config.home, secure))
                log.info("The stack under %s is already running: nothing to do.", plan.config.home)
        log.info("Stack ready: Kafka at %s, registry at %s", plan.info.bootstrap, plan.info.registry_url)
        return plan.info

    def _plan(self, brokers: int, with_registry: bool, secure: bool) -> _Plan:
        """What `up` has to do; raises StackError for a request the data or running processes cannot meet."""
        config = self._config_for(brokers, secure)
        nodes = kafka_node.plan_nodes(config, brokers)
        cluster_id, formatted = kafka_node.formatted_cluster(config.home)
        if formatted and formatted != brokers:
            raise StackError(_size_mismatch(config.home, formatted, brokers))
        if formatted and security.has_credentials(config.home) != secure:
            raise StackError(_security_mismatch(config.home, secure))
        registry_process = RegistryProcess.of(config, tls=secure)
        oidc_server = oidc.OidcServer.of(config)
        return _Plan(
            config=config,
            nodes=nodes,
            cluster_id=cluster_id,
            idle_nodes=[node for node in nodes if processes.running_pid(node.pid_file, node.marker) is None],
            registry=registry_process,
            start_registry=with_registry and _pid(registry_process) is None,
            oidc_server=oidc_server,
            start_oidc=secure and with_registry and _oidc_pid(oidc_server) is None,
            info=StackInfo(
                config.bootstrap(brokers),
                registry_process.url if with_registry else None,
                brokers,
                config.home,
                secure,
            ),
        )

    def _start(self, plan: _Plan, deadline: float) -> None:
        """Launch the idle nodes (formatting a new cluster first), then the registry; wait for readiness.

        On any failure (or Ctrl-C) the processes launched here are stopped before the error propagates.
        """
        config = plan.config
        ensure_ports_free(
            _ports_to_bind(
                plan.idle_nodes,
                plan.registry if plan.start_registry else None,
                plan.oidc_server if plan.start_oidc else None,
            ),
            plan.config.host,
        )
        java = find_java(config.java)
        self._prepare_home()
        credentials = security.ensure_credentials(config.home) if plan.info.secure else None
        tls = certificates.ensure_certificates(config.home, config.host) if plan.info.secure else None
        oidc_install = None
        if plan.start_oidc:
            began = time.monotonic()
            oidc_install = maven.install_oidc(config.cache, lambda folder: _build_oidc(java.executable, folder))
            deadline += time.monotonic() - began  # once per machine: a download and a build, not a start
        with ThreadPoolExecutor(max_workers=1) as downloads:
            # The registry's 160 MB download overlaps Kafka's download, formatting and start.
            registry_install = downloads.submit(maven.install_registry, config.cache) if plan.start_registry else None
            libs = maven.install_kafka(config.cache)
            self._write_run(RunRecord.of(config, plan.info, java))
            started: list[readiness.Watched] = []
            try:
                if oidc_install is not None and credentials is not None:  # it needs no Kafka: starts beside it
                    self._launch_oidc(plan, java, oidc_install, credentials[security.ADMIN], started)
                self._launch_kafka(plan, java, libs, started, credentials, tls)
                self._await_kafka(plan, started, deadline)
                if credentials is not None:
                    clients = [credentials[name] for name in security.CLIENT_NAMES]
                    security.ensure_scram_users(plan.info.bootstrap, credentials[security.ADMIN], clients)
                    count = security.apply_acls(plan.info.bootstrap, credentials[security.ADMIN])
                    log.info("Kafka requires SASL/%s; %d ACLs in place", security.MECHANISM, count)
                if oidc_install is not None and credentials is not None:
                    self._await_oidc(plan, credentials, started, deadline)
                if registry_install is not None:
                    admin = credentials[security.ADMIN] if credentials else None
                    authentication = oidc.registry_settings(plan.oidc_server) if credentials else None
                    security.write_registry_settings(plan.registry.folder, admin, tls, authentication)
                    self._launch_registry(plan, java, registry_install.result(), started)
                if plan.info.registry_url:
                    login = _registry_login(config.home, plan.info.secure)
                    self._await_registry(plan.registry, started, deadline, login)
            except BaseException:
                _stop_started(started)
                raise

    @staticmethod
    def _launch_kafka(
        plan: _Plan,
        java: JavaRuntime,
        libs: Path,
        started: list[readiness.Watched],
        credentials: dict[str, security.Credential] | None,
        tls: certificates.TlsFiles | None,
    ) -> None:
        """Write every node's configuration, format a new cluster's storage, launch the idle nodes.

        With `credentials` (a secure stack) the nodes get SASL listeners and the authorizer, and a new cluster's
        storage gets every principal's SCRAM credential.
        """
        program = f"kafka-{KAFKA_VERSION}"
        caches = [
            aot_cache(java, plan.config.cache, program, kafka_node.JVM_OPTIONS, libs, node.folder)
            for node in plan.nodes
        ]
        for node in plan.nodes:
            secured = security.broker_properties(node, credentials[security.NODE], tls) if credentials and tls else None
            kafka_node.write_configuration(node, plan.nodes, secured)
        if plan.cluster_id is None:
            cluster_id = kafka_node.new_cluster_id()
            log.info("Formatting storage of %d Kafka node(s) for cluster %s", len(plan.nodes), cluster_id)
            options = caches[0].jvm_options(may_record=False) if caches[0] else []
            scram = security.scram_format_arguments(credentials.values()) if credentials else []
            kafka_node.format_storage(java.executable, libs, plan.nodes, cluster_id, options, scram)
        for node, cache in zip(plan.nodes, caches, strict=True):
            if node not in plan.idle_nodes:
                continue
            log.info("Starting Kafka %s node %d on %s (%s)", KAFKA_VERSION, node.node_id, node.address, node.rack)
            options = cache.jvm_options(may_record=node.node_id == 1) if cache else []
            _say_if_recording(options, f"Kafka node {node.node_id}")
            process = kafka_node.launch(java.executable, libs, node, options)
            logs = (node.server_log, node.stdout_log)
            started.append(readiness.Watched(f"Kafka node {node.node_id}", process, logs))

    @staticmethod
    def _launch_oidc(
        plan: _Plan, java: JavaRuntime, install: Path, admin: security.Credential, started: list[readiness.Watched]
    ) -> None:
        log.info("Starting the OIDC server (Keycloak %s) on %s", OIDC_VERSION, plan.oidc_server.url)
        oidc.prepare(plan.oidc_server, install, admin.password)
        process = oidc.launch(java.executable, install, plan.oidc_server)
        started.append(readiness.Watched("The OIDC server", process, (plan.oidc_server.log_file,)))

    @staticmethod
    def _await_oidc(
        plan: _Plan, credentials: dict[str, security.Credential], started: list[readiness.Watched], deadline: float
    ) -> None:
        """Wait for the OIDC server, then make its realm: a client per principal with a registry role."""
        began = time.monotonic()
        readiness.wait_for_oidc(plan.oidc_server, started, deadline)
        passwords = {name: credential.password for name, credential in credentials.items()}
        oidc.create_realm(plan.oidc_server, credentials[security.ADMIN].password, passwords)
        log.info("OIDC server ready, realm %s made, after %.1f s", oidc.REALM, time.monotonic() - began)

    @staticmethod
    def _launch_registry(plan: _Plan, java: JavaRuntime, install: Path, started: list[readiness.Watched]) -> None:
        log.info("Starting Apicurio Registry %s on %s", REGISTRY_VERSION, plan.registry.url)
        program = f"registry-{REGISTRY_VERSION}"
        cache = aot_cache(java, plan.config.cache, program, registry.JVM_OPTIONS, install, plan.registry.folder)
        options = cache.jvm_options(may_record=True) if cache else []
        _say_if_recording(options, "the registry")
        process = registry.launch(java.executable, install, plan.registry, plan.info.bootstrap, options)
        started.append(readiness.Watched("The registry", process, (plan.registry.log_file,)))

    def _config_for(self, brokers: int, secure: bool) -> StackConfig:
        """The configuration to use: this one, unless processes of a previous `up` still run.

        Then their recorded ports are the truth, and a request for another size, other ports or other security
        is refused rather than half-applied.
        """
        record = self.read_run()
        if record is None or not self._any_running():
            return self.config
        recorded = self._running_config()
        if record.brokers != brokers or recorded != self.config or record.secure != secure:
            raise StackError(
                f"A stack already runs under {self.config.home} with {record.brokers} broker(s) on Kafka "
                f"port {record.kafka_port} and registry port {record.registry_port}"
                f"{' (secure)' if record.secure else ''}, not what was asked ({brokers} broker(s), ports "
                f"{self.config.kafka_port} and {self.config.registry_port}{' (secure)' if secure else ''}). "
                "Use it as it is, or stop it first with `kdp stack down`."
            )
        return recorded

    @staticmethod
    def _await_kafka(plan: _Plan, started: list[readiness.Watched], deadline: float) -> None:
        began = time.monotonic()
        logs = [node.server_log for node in plan.nodes]
        admin = _admin_security(plan.config.home, plan.info.secure)
        readiness.wait_for_kafka(plan.info.bootstrap, plan.info.brokers, started, deadline, logs, admin)
        if started:
            log.info(
                "Kafka ready: metadata lists %d broker(s) after %.1f s",
                plan.info.brokers,
                time.monotonic() - began,
            )

    @staticmethod
    def _await_registry(
        registry_process: RegistryProcess,
        started: list[readiness.Watched],
        deadline: float,
        login: tuple[str, str] | None = None,
    ) -> None:
        began = time.monotonic()
        ca = _registry_ca(registry_process)
        readiness.wait_for_registry(registry_process.url, started, deadline, registry_process.log_file, ca, login)
        if started:
            log.info("Registry ready after %.1f s", time.monotonic() - began)
        compatibility = registry.ensure_compatibility(registry_process.url, ca, login)
        log.info("Registry global compatibility: %s", compatibility)

    # --------------------------------------------------------------------------------------------- down

    def down(self, purge: bool = False) -> list[str]:
        """Stop this home's processes (registry, then all Kafka nodes together); `purge` deletes the data.

        Returns one line per process stopped, AOT cache saved and purge, for the CLI to print.
        """
        home = self.config.home
        accounts = []
        with self._locked():
            registry_process = RegistryProcess.of(self.config)
            oidc_server = oidc.OidcServer.of(self.config)
            # The registry first, so it does not spend its last seconds reconnecting; then all nodes at once.
            batches = [
                {registry_process.pid_file: registry_process.marker, oidc_server.pid_file: oidc_server.marker},
                {
                    folder / "kafka.pid": processes.marker_argument(folder)
                    for folder in kafka_node.existing_node_folders(home)
                },
            ]
            for markers in batches:
                for pid_file, stopped in processes.stop_all(list(markers), markers, STOP_TIMEOUT).items():
                    accounts.append(f"{_component_name(pid_file)}: {stopped}")
                    for kept in keep_recordings(pid_file.parent, self.config.cache, not stopped.killed):
                        accounts.append(f"saved Java's AOT cache {kept} for faster starts")
            if purge:
                for path in (kafka_node.kafka_folder(home), registry_process.folder, oidc_server.folder):
                    shutil.rmtree(path, ignore_errors=True)
                (home / RUN_FILE).unlink(missing_ok=True)
                security.forget_credentials(home)  # they open only the deleted cluster
                certificates.forget_certificates(home)
                accounts.append(f"deleted the data and logs under {home}")
        return accounts

    # ------------------------------------------------------------------------------------ observation

    def status(self) -> StackStatus:
        """Which processes of this home run, where, with which pids; plus cluster id, Java and folders."""
        config = self._running_config()
        record = self.read_run()
        cluster_id, formatted = kafka_node.formatted_cluster(config.home)
        components = []
        for index, folder in enumerate(kafka_node.existing_node_folders(config.home)):
            pid = processes.running_pid(folder / "kafka.pid", processes.marker_argument(folder))
            address = f"{config.host}:{config.kafka_port + index}"
            components.append(
                ComponentStatus(f"kafka {KAFKA_VERSION} {folder.name}", pid, address, folder / "logs" / "server.log")
            )
        secure = record.secure if record else security.has_credentials(config.home)
        registry_process = RegistryProcess.of(config, tls=secure)
        if registry_process.folder.exists():
            components.append(
                ComponentStatus(
                    f"registry (Apicurio {REGISTRY_VERSION})",
                    _pid(registry_process),
                    registry_process.url,
                    registry_process.log_file,
                )
            )
        oidc_server = oidc.OidcServer.of(config)
        if oidc_server.folder.exists():
            components.append(
                ComponentStatus(
                    f"OIDC server (Keycloak {OIDC_VERSION})",
                    _oidc_pid(oidc_server),
                    oidc_server.url,
                    oidc_server.log_file,
                )
            )
        java = record.java_description + f" ({record.java})" if record else None
        credentials = security.client_credential_files(config.home) if secure else []
        return StackStatus(config.home, config.cache, cluster_id, formatted, components, java, secure, credentials)

    def running(self) -> StackInfo | None:
        """This home's stack if every process of its latest `up` runs and it is usable; else None.

        "Usable" is checked with short timeouts: this is for callers deciding whether to start a stack.
        """
        record = self.read_run()
        if record is None:
            return None
        config = self._running_config()
        nodes = kafka_node.plan_nodes(config, record.brokers)
        registry_process = RegistryProcess.of(config, tls=record.secure)
        if any(processes.running_pid(node.pid_file, node.marker) is None for node in nodes):
            return None
        if record.with_registry and _pid(registry_process) is None:
            return None
        if record.with_registry and record.secure and _oidc_pid(oidc.OidcServer.of(config)) is None:
            return None
        info = StackInfo(
            config.bootstrap(record.brokers),
            registry_process.url if record.with_registry else None,
            record.brokers,
            config.home,
            record.secure,
        )
        probe = readiness.quiet_admin(info.bootstrap, _admin_security(config.home, record.secure))
        if readiness.kafka_broker_count(probe, timeout=5) < info.brokers:
            return None
        login = _registry_login(config.home, record.secure)
        if info.registry_url and not registry.answers(info.registry_url, _registry_ca(registry_process), login):
            return None
        return info

    def log_files(self, component: str | None = None) -> list[tuple[str, Path]]:
        """(title, path) of the logs of `component` ("kafka", "registry" or None for both)."""
        found = []
        if component in (None, "kafka"):
            for folder in kafka_node.existing_node_folders(self.config.home):
                found.append((f"kafka {folder.name}", folder / "logs" / "server.log"))
        if component in (None, "registry"):
            found.append(("registry", RegistryProcess.of(self.config).log_file))
        return [(title, path) for title, path in found if path.exists()]

    def read_run(self) -> RunRecord | None:
        try:
            return RunRecord(**json.loads((self.config.home / RUN_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    # -------------------------------------------------------------------------------------- internals

    def _running_config(self) -> StackConfig:
        """This configuration with the ports of the latest `up`, if any: those are what processes use."""
        record = self.read_run()
        if record is None:
            return self.config
        return replace(
            self.config,
            kafka_port=record.kafka_port,
            controller_port=record.controller_port,
            registry_port=record.registry_port,
            registry_management_port=record.registry_management_port,
            oidc_port=record.oidc_port,
            host=record.host,
        )

    def _any_running(self) -> bool:
        registry_process = RegistryProcess.of(self.config)
        if _pid(registry_process) is not None or _oidc_pid(oidc.OidcServer.of(self.config)) is not None:
            return True
        return any(
            processes.running_pid(folder / "kafka.pid", processes.marker_argument(folder)) is not None
            for folder in kafka_node.existing_node_folders(self.config.home)
        )

    def _prepare_home(self) -> None:
        """Create the home with its own `.gitignore`: a home inside a checkout never shows up in git."""
        self.config.home.mkdir(parents=True, exist_ok=True)
        ignore = self.config.home / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# Local stack state (kdp stack): never commit.\n*\n")

    def _write_run(self, record: RunRecord) -> None:
        (self.config.home / RUN_FILE).write_text(json.dumps(asdict(record), indent=2) + "\n")

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self._prepare_home()
        with (self.config.home / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


def _admin_security(home: Path, secure: bool) -> dict[str, str] | None:
    """librdkafka's settings for the stack's own probes of a secure cluster: the admin's login; else None."""
    if not secure:
        return None
    admin = security.read_credential(home, security.ADMIN)
    if admin is None:
        raise StackError(f"The secure stack under {home} lost its credentials: `kdp stack down --purge` resets it.")
    return admin.client_config()


def _registry_ca(registry_process: RegistryProcess) -> Path | None:
    """The CA to trust for the registry's HTTPS (secure stack), else None."""
    return certificates.tls_files(registry_process.folder.parent).ca if registry_process.tls else None


def _pid(registry_process: RegistryProcess) -> int | None:
    return processes.running_pid(registry_process.pid_file, registry_process.marker)


def _oidc_pid(server: oidc.OidcServer) -> int | None:
    return processes.running_pid(server.pid_file, server.marker)


def _build_oidc(java: str, folder: Path) -> None:
    """Keycloak's one-time build in its install folder (`oidc.BUILD_OPTIONS`); StackError when it fails."""
    log.info("Building Keycloak %s for the secure stack (once per machine; a minute or two)", OIDC_VERSION)
    output = folder / "build.log"
    with output.open("w") as sink:
        done = subprocess.run(oidc.build_command(java, folder), cwd=folder, stdout=sink, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise StackError(f"Building Keycloak failed (exit {done.returncode}):\n{excerpt(output, 25)}")


def _registry_login(home: Path, secure: bool) -> tuple[str, str] | None:
    """The stack's own login to a registry that requires one (the secure stack's admin); else None."""
    if not secure:
        return None
    admin = security.read_credential(home, security.ADMIN)
    return (admin.username, admin.password) if admin is not None else None


def _ports_to_bind(
    nodes: list[KafkaNode], registry_process: RegistryProcess | None, oidc_server: oidc.OidcServer | None = None
) -> dict[str, int]:
    wanted = {}
    for node in nodes:
        wanted[f"Kafka node {node.node_id} clients (--kafka-port, {ENV_KAFKA_PORT})"] = node.port
        wanted[f"Kafka node {node.node_id} controller (--controller-port, {ENV_CONTROLLER_PORT})"] = (
            node.controller_port
        )
    if registry_process is not None:
        wanted[f"registry API (--registry-port, {ENV_REGISTRY_PORT})"] = registry_process.port
        wanted[f"registry health (--registry-management-port, {ENV_REGISTRY_MGMT_PORT})"] = (
            registry_process.management_port
        )
    if oidc_server is not None:
        wanted[f"OIDC server (--oidc-port, {ENV_OIDC_PORT})"] = oidc_server.port
    return wanted


def _size_mismatch(home: Path, formatted: int, requested: int) -> str:
    return (
        f"The Kafka data under {home} is a {formatted}-broker cluster, but {requested} broker(s) were asked "
        "for. "
        f"Start it with `--brokers {formatted}`, or delete its data with `kdp stack down --purge` "
        f"(or use another KDP_HOME) to start a {requested}-broker cluster."
    )


def _security_mismatch(home: Path, secure: bool) -> str:
    if secure:
        return (
            f"The Kafka data under {home} was formatted without --secure: its cluster has no credentials. "
            "Start it without --secure, or delete its data with `kdp stack down --purge` (or use another "
            "KDP_HOME) to start a secure one."
        )
    return (
        f"The Kafka data under {home} was formatted with --secure: start it with `kdp stack up --secure`, or "
        "delete its data with `kdp stack down --purge` (or use another KDP_HOME) to start a plain one."
    )


def _component_name(pid_file: Path) -> str:
    if pid_file.parent.name in ("registry", "oidc"):
        return "OIDC server" if pid_file.parent.name == "oidc" else "registry"
    return f"kafka {pid_file.parent.name}"


def _say_if_recording(options: list[str], what: str) -> None:
    if any(option.startswith("-XX:AOTCacheOutput") for option in options):
        log.info(
            "Recording Java's AOT cache for %s: its first stop takes 10-20 s longer, later starts less CPU",
            what,
        )


def _stop_started(started: list[readiness.Watched]) -> None:
    """Stop the processes a failed `up` launched (they are our children: terminate, wait, kill)."""
    for item in reversed(started):
        item.process.terminate()
    for item in reversed(started):
        try:
            item.process.wait(timeout=STOP_TIMEOUT)
        except Exception:
            item.process.kill()
            item.process.wait()
