"""Static checks of docker-compose.yml: no Docker engine runs here or in CI, so the file is read as data.

Each rule is a function from a parsed compose document to a list of problems (empty = fine). The real
file must have none, and every rule is also fed a deliberately bad snippet to prove it can fail.
When a `docker compose` CLI is present, it also renders the file (that needs no engine).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from kdp.devstack.versions import KAFKA_VERSION
from orchestration.definitions import defs
from streaming.settings import ENV_NAMES, Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"

#: Variables of the Dagster instance (deploy/dagster/dagster.yaml) and of the Postgres image.
ALLOWED_NAMES = frozenset(
    {
        "DAGSTER_POSTGRES_HOST",
        "DAGSTER_POSTGRES_USER",
        "DAGSTER_POSTGRES_PASSWORD",
        "DAGSTER_POSTGRES_DB",
        "POSTGRES_USER",
        "POSTGRES_PASSWORD",
        "POSTGRES_DB",
    }
)
#: Third-party images are configured through their own variables; allowed only on those images.
IMAGE_CONFIG_NAMES = {
    "apache/kafka": re.compile(r"KAFKA_[A-Z0-9_]+|CLUSTER_ID"),
    "confluentinc/cp-schema-registry": re.compile(r"SCHEMA_REGISTRY_[A-Z0-9_]+"),
    "grafana/grafana": re.compile(r"GF_[A-Z0-9_]+"),
    "redpandadata/kminion": re.compile(r"(KAFKA|MINION|EXPORTER|LOGGER)_[A-Z0-9_]+"),
}
CONDITIONS = {"service_healthy", "service_completed_successfully"}
VERSION = re.compile(r"\d+\.\d+")


def load(text: str) -> dict[str, Any]:
    return yaml.safe_load(text)


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose.get("services") or {}


def environment_names(service: dict[str, Any]) -> list[str]:
    """Names of a service's environment, in either of compose's forms (mapping or NAME=value list)."""
    environment = service.get("environment") or {}
    if isinstance(environment, dict):
        return list(environment)
    return [entry.split("=", 1)[0] for entry in environment]


def image_parts(image: str) -> tuple[str, str | None]:
    """("repository", "tag") of an image reference; the tag is None when absent. A digest counts as a tag."""
    if "@" in image:
        named, digest = image.split("@", 1)
        return image_parts(named)[0], digest
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return image, None
    repository, tag = image.rsplit(":", 1)
    return repository, tag


def is_one_shot(service: dict[str, Any]) -> bool:
    return str(service.get("restart", "")) == "no"


# --- rule (a): environment only through known names -------------------------------------------------------
def environment_problems(compose: dict[str, Any]) -> list[str]:
    problems = []
    for name, service in services(compose).items():
        if "env_file" in service:
            problems.append(f"{name}: env_file hides which variables are set; list them under environment")
        repository = image_parts(service.get("image", ""))[0]
        image_names = IMAGE_CONFIG_NAMES.get(repository)
        for variable in environment_names(service):
            if variable.startswith("KDP_"):
                if variable not in ENV_NAMES:
                    problems.append(f"{name}: {variable} is not read by streaming.settings (ENV_NAMES)")
            elif variable not in ALLOWED_NAMES and not (image_names and image_names.fullmatch(variable)):
                problems.append(f"{name}: {variable} is neither a KDP_* setting nor on the allow-list")
    return problems


# --- rule (b): every image pinned to a version ------------------------------------------------------------
def image_problems(compose: dict[str, Any]) -> list[str]:
    problems = []
    for name, service in services(compose).items():
        image = service.get("image")
        if image is None:
            problems.append(f"{name}: no image name (a bare build is tagged 'latest')")
            continue
        _, tag = image_parts(image)
        if tag is None:
            problems.append(f"{name}: image {image} has no tag")
        elif not (tag.startswith("sha256:") or VERSION.search(tag)):
            problems.append(f"{name}: image {image} is not pinned to a version")
    return problems


# --- rule (c): long-running services have a healthcheck --------------------------------------------------
def healthcheck_problems(compose: dict[str, Any]) -> list[str]:
    """Every service states its restart policy: "no" marks a one-shot, any other a long-running service."""
    problems = []
    for name, service in services(compose).items():
        if "restart" not in service:
            problems.append(f'{name}: no restart policy ("no" for a one-shot, else a long-running policy)')
            continue
        if is_one_shot(service):
            continue
        check = service.get("healthcheck") or {}
        test = check.get("test")
        if check.get("disable") or not test or test in (["NONE"], "NONE"):
            problems.append(f"{name}: long-running service without a healthcheck")
    return problems


# --- rule (d): every dependency waits on a condition that can hold ------------------------------------------
def depends_on_problems(compose: dict[str, Any]) -> list[str]:
    problems = []
    known = services(compose)
    for name, service in known.items():
        depends_on = service.get("depends_on")
        if depends_on is None:
            continue
        if not isinstance(depends_on, dict):
            problems.append(f"{name}: depends_on is a list; give each dependency a condition")
            continue
        for target, spec in depends_on.items():
            condition = (spec or {}).get("condition")
            if condition not in CONDITIONS:
                problems.append(f"{name} -> {target}: condition {condition!r} is not one of {sorted(CONDITIONS)}")
            elif target not in known:
                problems.append(f"{name} -> {target}: no such service")
            elif condition == "service_healthy" and "healthcheck" not in known[target]:
                problems.append(f"{name} -> {target}: waits for health, but {target} has no healthcheck")
            elif condition == "service_completed_successfully" and not is_one_shot(known[target]):
                problems.append(f"{name} -> {target}: waits for completion, but {target} restarts")
    return problems


RULES = [environment_problems, image_problems, healthcheck_problems, depends_on_problems]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load(COMPOSE_FILE.read_text(encoding="utf-8"))


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.__name__)
def test_compose_file_passes(rule, compose):
    assert rule(compose) == []


# Deliberately bad snippets: each rule must notice its own kind of mistake.
@pytest.mark.parametrize(
    ("rule", "snippet", "expected"),
    [
        (
            environment_problems,
            "services: {c: {image: x:1.0, environment: {KDP_BOOTSTRAPS: k:9092}}}",
            "KDP_BOOTSTRAPS",
        ),
        (environment_problems, "services: {c: {image: x:1.0, environment: [BOOTSTRAP=k:9092]}}", "BOOTSTRAP"),
        (
            environment_problems,
            "services: {c: {image: x:1.0, environment: {KAFKA_NODE_ID: '1'}}}",
            "KAFKA_NODE_ID",
        ),
        (environment_problems, "services: {c: {image: x:1.0, env_file: .env}}", "env_file"),
        (image_problems, "services: {k: {image: apache/kafka}}", "no tag"),
        (image_problems, "services: {k: {image: 'apache/kafka:latest'}}", "not pinned"),
        (image_problems, "services: {k: {image: 'postgres:bookworm'}}", "not pinned"),
        (image_problems, "services: {k: {image: 'localhost:5000/kafka'}}", "no tag"),
        (image_problems, "services: {k: {build: .}}", "no image name"),
        (healthcheck_problems, "services: {db: {image: 'p:1.0', restart: always}}", "without a healthcheck"),
        (
            healthcheck_problems,
            "services: {db: {image: 'p:1.0', restart: always, healthcheck: {test: [NONE]}}}",
            "without",
        ),
        (healthcheck_problems, "services: {db: {image: 'p:1.0'}}", "no restart policy"),
        (depends_on_problems, "services: {a: {depends_on: [b]}, b: {}}", "is a list"),
        (depends_on_problems, "services: {a: {depends_on: {b: {}}}, b: {}}", "condition None"),
        (
            depends_on_problems,
            "services: {a: {depends_on: {b: {condition: service_started}}}, b: {}}",
            "service_started",
        ),
        (
            depends_on_problems,
            "services: {a: {depends_on: {b: {condition: service_healthy}}}, b: {}}",
            "no healthcheck",
        ),
        (
            depends_on_problems,
            "services: {a: {depends_on: {b: {condition: service_completed_successfully}}}, b: {restart: always}}",
            "restarts",
        ),
    ],
)
def test_rule_rejects_bad_snippet(rule, snippet, expected):
    problems = rule(load(snippet))
    assert len(problems) == 1
    assert expected in problems[0]


def test_image_parts_reads_registry_ports_and_digests():
    assert image_parts("localhost:5000/team/app:1.2.3") == ("localhost:5000/team/app", "1.2.3")
    assert image_parts("postgres@sha256:abc") == ("postgres", "sha256:abc")
    assert image_parts("apache/kafka") == ("apache/kafka", None)


# --- the shape the brief asks for ------------------------------------------------------------------------
def kafka_nodes(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services(compose).items() if image_parts(s.get("image", ""))[0] == "apache/kafka"}


def test_three_kraft_nodes_without_zookeeper(compose):
    nodes = kafka_nodes(compose)
    assert len(nodes) == 3
    for name, service in services(compose).items():
        assert "zookeeper" not in f"{name} {service.get('image', '')}".lower()
        assert not any("ZOOKEEPER" in variable for variable in environment_names(service))
    environments = [node["environment"] for node in nodes.values()]
    assert sorted(env["KAFKA_NODE_ID"] for env in environments) == ["1", "2", "3"]
    assert len({env["CLUSTER_ID"] for env in environments}) == 1
    for name, node in nodes.items():
        env = node["environment"]
        assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
        voters = {voter.split("@")[1].split(":")[0] for voter in env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")}
        assert voters == set(nodes)
        assert env["KAFKA_ADVERTISED_LISTENERS"].split(",")[0] == f"PLAINTEXT://{node['hostname']}:9092"
        assert node["hostname"] == name


def test_internal_topics_replicated_three_times_with_two_in_sync(compose):
    for node in kafka_nodes(compose).values():
        env = node["environment"]
        for key in (
            "KAFKA_DEFAULT_REPLICATION_FACTOR",
            "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
            "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
        ):
            assert env[key] == "3", key
        for key in (
            "KAFKA_MIN_INSYNC_REPLICAS",
            "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
            "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR",
        ):
            assert env[key] == "2", key
    registry = services(compose)["schema-registry"]["environment"]
    assert registry["SCHEMA_REGISTRY_KAFKASTORE_TOPIC_REPLICATION_FACTOR"] == "3"


def test_clients_reach_every_broker_and_the_registry(compose):
    nodes = kafka_nodes(compose)
    for name in ("generator", "converter", "provision", "dagster-daemon", "dagster-webserver"):
        env = services(compose)[name]["environment"]
        assert set(env["KDP_BOOTSTRAP"].split(",")) == {f"{n}:9092" for n in nodes}, name
        assert env["KDP_REGISTRY_URL"] == "http://schema-registry:8081", name


def test_converter_can_be_scaled(compose):
    """`--scale converter=N` needs no fixed container name or host port; the instance name (hostname) differs
    per replica, so nothing may pin it either."""
    converter = services(compose)["converter"]
    for key in ("container_name", "ports", "hostname"):
        assert key not in converter
    assert "--instance" not in converter["command"]
    # The converters share the default group (streaming.topics.CONVERTER_GROUP); no override may split them.
    assert "KDP_GROUP_ID" not in converter["environment"]
    assert converter["stop_grace_period"]


def test_provision_runs_once_after_the_cluster_and_before_the_pipeline(compose):
    all_services = services(compose)
    provision = all_services["provision"]
    assert provision["command"] == ["dg", "launch", "--job", "provision_topics"]
    waits_for = {target for target, spec in provision["depends_on"].items() if spec["condition"] == "service_healthy"}
    assert set(kafka_nodes(compose)) | {"schema-registry"} <= waits_for
    for name in ("generator", "converter"):
        assert all_services[name]["depends_on"]["provision"]["condition"] == "service_completed_successfully"


def test_project_image_tag_is_the_project_version(compose):
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    built = {s["image"] for s in services(compose).values() if "build" in s}
    assert built == {f"kafka-data-pipeline:{version}"}


def docker_compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(not docker_compose_available(), reason="no `docker compose` CLI on this machine")
def test_docker_compose_renders_the_file():
    """The Compose CLI's own parser and schema (no engine needed): merges, interpolation, conditions."""
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE_FILE), "config", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(Path.home())},
    )
    assert result.returncode == 0, result.stderr
    rendered = yaml.safe_load(result.stdout)
    assert rendered["services"]["converter"]["environment"]["KDP_DELIVERY"] == "at-least-once"
    assert environment_problems(rendered) == []


def test_daemon_starts_after_the_converter(compose):
    """The conversion sensor yields to a group with members; starting the daemon after the converter keeps
    its first ticks from launching runs over ranges the converter is about to read."""
    daemon = services(compose)["dagster-daemon"]
    assert daemon["depends_on"]["converter"]["condition"] == "service_healthy"


# --- compose runs what the tests run, and can be reached from this machine ------------------------------------
def test_kafka_is_the_version_the_local_stack_runs_and_tests(compose):
    for name, node in kafka_nodes(compose).items():
        assert image_parts(node["image"])[1] == KAFKA_VERSION, name


def published(service: dict[str, Any]) -> dict[int, tuple[str, int]]:
    """Container port -> (host address, host port) of a service's `ports` ("address:host:container" form)."""
    found = {}
    for entry in service.get("ports", []):
        parts = str(entry).split(":")
        address, host, container = parts if len(parts) == 3 else ("", *parts)
        found[int(container)] = (address, int(host))
    return found


def test_kafka_and_the_registry_are_published_on_this_machine(compose):
    """Every broker publishes an EXTERNAL listener on its own loopback port and advertises exactly that address,
    so a client here bootstraps from 127.0.0.1:9092 and reaches every broker the metadata names; the registry
    publishes its API port. Loopback only: the stack is for this machine."""
    host_ports = []
    for name, node in kafka_nodes(compose).items():
        env = node["environment"]
        listeners = dict(entry.split("://") for entry in env["KAFKA_LISTENERS"].split(","))
        protocols = dict(entry.split(":") for entry in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
        advertised = dict(entry.split("://") for entry in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
        container_port = int(listeners["EXTERNAL"].rsplit(":", 1)[1])
        address, host_port = published(node)[container_port]
        assert address == "127.0.0.1", name
        assert advertised["EXTERNAL"] == f"127.0.0.1:{host_port}", name
        assert protocols["EXTERNAL"] == "PLAINTEXT", name
        host_ports.append(host_port)
    assert len(set(host_ports)) == len(host_ports) and min(host_ports) == 9092
    assert Settings().bootstrap.endswith(":9092")  # the pipeline's default port is the first broker's
    registry = services(compose)["schema-registry"]
    listen_port = int(registry["environment"]["SCHEMA_REGISTRY_LISTENERS"].rsplit(":", 1)[1])
    assert published(registry)[listen_port] == ("127.0.0.1", 8081)


def test_published_ports_are_read_from_the_three_entry_forms():
    assert published({"ports": ["127.0.0.1:9092:19092", "3000:3000"]}) == {19092: ("127.0.0.1", 9092), 3000: ("", 3000)}


def test_the_lag_exporter_and_the_pushgateway_run_and_are_scraped(compose):
    all_services = services(compose)
    kminion, pushgateway = all_services["kminion"], all_services["pushgateway"]
    brokers = set(kminion["environment"]["KAFKA_BROKERS"].split(","))
    assert brokers == {f"{n}:9092" for n in kafka_nodes(compose)}
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    static = [job for job in scrape["scrape_configs"] if "static_configs" in job]
    targets = {job["job_name"]: job["static_configs"][0]["targets"] for job in static}
    assert targets["kafka-lag"] == [f"kminion:{kminion['environment']['EXPORTER_PORT']}"]
    assert targets["pushgateway"] == ["pushgateway:9091"]
    assert "9091" in " ".join(pushgateway["healthcheck"]["test"])
    for name in ("kminion", "pushgateway"):
        assert all_services["prometheus"]["depends_on"][name]["condition"] == "service_healthy"


def test_dagster_runs_push_to_the_pushgateway(compose):
    """The runs execute in the daemon's container (DefaultRunLauncher), so the daemon's environment is theirs."""
    daemon = services(compose)["dagster-daemon"]
    environment = {**daemon["environment"], "KDP_DELIVERY": "at-least-once"}  # the file's ${...} left to compose
    assert Settings.from_env(environment).pushgateway_url == "http://pushgateway:9091"
    assert daemon["depends_on"]["pushgateway"]["condition"] == "service_healthy"


def test_the_dagster_daemon_runs_the_schedules(compose):
    """`dagster-daemon run` on the workspace that loads the project's definitions, whose schedules start on."""
    daemon = services(compose)["dagster-daemon"]
    assert daemon["command"][:2] == ["dagster-daemon", "run"]
    workspace_in_container = daemon["command"][daemon["command"].index("--workspace") + 1]
    assert workspace_in_container == "/app/workspace.yaml"
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "COPY workspace.yaml" in dockerfile
    workspace = yaml.safe_load((ROOT / "workspace.yaml").read_text(encoding="utf-8"))
    assert workspace["load_from"][0]["python_module"]["module_name"] == "orchestration.definitions"
    schedules = list(defs.schedules or [])
    assert schedules, "orchestration.definitions has no schedule for the daemon to run"
    for schedule in schedules:
        assert schedule.default_status.value == "RUNNING", schedule.name
