"""The declared topics: `topics.yaml` read, validated and resolved for one cluster.

Contract: `load_declarations(settings)` returns one `TopicDeclaration` per role of `topics.yaml`,
named through `settings` (KDP_SOURCE_TOPIC etc.), or raises `DeclarationError` naming the file,
the role and the key at fault. Nothing here talks to Kafka: `resolve` turns the cluster-relative
values (`auto`) into numbers given a broker count, so the same file fits one broker and three.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orchestration.schema.registry import DEFAULT_COMPATIBILITY
from streaming import topics
from streaming.package_files import package_file
from streaming.schema_registry import COMPATIBILITY_LEVELS
from streaming.settings import Settings

DECLARATIONS_FILE = package_file("orchestration/provisioning/topics.yaml")

AUTO = "auto"
#: `replication_factor: auto` = min(AUTO_REPLICATION_FACTOR, brokers).
AUTO_REPLICATION_FACTOR = 3
#: `min.insync.replicas: auto` = min(AUTO_MIN_INSYNC_REPLICAS, replication factor).
AUTO_MIN_INSYNC_REPLICAS = 2
MIN_INSYNC_REPLICAS = "min.insync.replicas"

#: Role in `topics.yaml` -> the `Settings` attribute holding that topic's name.
ROLE_SETTINGS = {"source": "source_topic", "output": "output_topic", "dead_letter": "dlq_topic"}


class DeclarationError(ValueError):
    """`topics.yaml` is malformed; the message names the file, the role and the key."""


@dataclass(frozen=True)
class ValueSchema:
    """The Avro schema of a topic's values and the compatibility level provisioning sets on its subject when
    the subject has none of its own (a level an operator set on the subject is kept)."""

    file: Path
    compatibility: str


@dataclass(frozen=True)
class TopicDeclaration:
    """One topic as declared. `replication_factor` None and a `min.insync.replicas` of "auto"
    stand for the cluster-relative values that `resolve` fills in."""

    role: str
    name: str
    partitions: int
    replication_factor: int | None
    configs: Mapping[str, str]
    value_schema: ValueSchema | None = None

    @property
    def value_subject(self) -> str:
        return topics.value_subject(self.name)


@dataclass(frozen=True)
class DesiredTopic:
    """A declaration resolved for a cluster: every value is what the topic must have."""

    name: str
    partitions: int
    replication_factor: int
    configs: Mapping[str, str]


def load_declarations(settings: Settings, path: Path | None = None) -> list[TopicDeclaration]:
    """The declarations of `path` (default: the project's `topics.yaml`), named through `settings`."""
    path = path or DECLARATIONS_FILE
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise DeclarationError(f"{path}: cannot read the topic declarations: {error}") from None
    names = {role: getattr(settings, attr) for role, attr in ROLE_SETTINGS.items()}
    try:
        return parse_declarations(document, names)
    except DeclarationError as error:
        raise DeclarationError(f"{path}: {error}") from None


def parse_declarations(document: Any, names: Mapping[str, str]) -> list[TopicDeclaration]:
    """Declarations from a parsed `topics.yaml` document; `names` maps each role to its topic."""
    if not isinstance(document, dict) or not isinstance(document.get("topics"), dict):
        raise DeclarationError("expected a mapping with a `topics:` section")
    _reject_unknown_keys("the document", document, {"defaults", "topics"})
    defaults = document.get("defaults") or {}
    _reject_unknown_keys("defaults", defaults, {"replication_factor", "configs"})
    unknown_roles = set(document["topics"]) - set(names)
    if unknown_roles:
        raise DeclarationError(f"unknown roles {sorted(unknown_roles)}; known: {sorted(names)}")
    return [_declaration(role, names[role], body or {}, defaults) for role, body in document["topics"].items()]


def resolve(declaration: TopicDeclaration, broker_count: int) -> DesiredTopic:
    """The declaration with `auto` replaced by its value on a cluster of `broker_count` brokers."""
    replication_factor = declaration.replication_factor or min(AUTO_REPLICATION_FACTOR, broker_count)
    configs = dict(declaration.configs)
    if configs.get(MIN_INSYNC_REPLICAS) == AUTO:
        configs[MIN_INSYNC_REPLICAS] = str(min(AUTO_MIN_INSYNC_REPLICAS, replication_factor))
    return DesiredTopic(declaration.name, declaration.partitions, replication_factor, configs)


def _declaration(role: str, name: str, body: Any, defaults: Mapping[str, Any]) -> TopicDeclaration:
    where = f"topics.{role}"
    if not isinstance(body, dict):
        raise DeclarationError(f"{where} must be a mapping")
    _reject_unknown_keys(where, body, {"partitions", "replication_factor", "configs", "value_schema"})
    partitions = body.get("partitions")
    if type(partitions) is not int or partitions < 1:
        raise DeclarationError(f"{where}.partitions must be a whole number >= 1, not {partitions!r}")
    replication_factor = body.get("replication_factor", defaults.get("replication_factor", AUTO))
    if replication_factor != AUTO and (type(replication_factor) is not int or replication_factor < 1):
        raise DeclarationError(
            f"{where}.replication_factor must be `auto` or a whole number >= 1, not {replication_factor!r}"
        )
    configs = {
        **_configs("defaults.configs", defaults.get("configs")),
        **_configs(f"{where}.configs", body.get("configs")),
    }
    min_isr = configs.get(MIN_INSYNC_REPLICAS)
    if min_isr is not None and min_isr != AUTO and not (min_isr.isdigit() and int(min_isr) >= 1):
        raise DeclarationError(f"{where}: {MIN_INSYNC_REPLICAS} must be `auto` or a whole number >= 1")
    return TopicDeclaration(
        role=role,
        name=name,
        partitions=partitions,
        replication_factor=None if replication_factor == AUTO else replication_factor,
        configs=configs,
        value_schema=_value_schema(f"{where}.value_schema", body.get("value_schema")),
    )


def _configs(where: str, configs: Any) -> dict[str, str]:
    """Config values as Kafka spells them: numbers as digits, booleans as true/false, lists joined."""
    if configs is None:
        return {}
    if not isinstance(configs, dict):
        raise DeclarationError(f"{where} must be a mapping of Kafka topic configs")
    return {str(key): _kafka_value(f"{where}.{key}", value) for key, value in configs.items()}


def _kafka_value(where: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ",".join(value)
    raise DeclarationError(f"{where} must be a number, a word or a list of words, not {value!r}")


def _value_schema(where: str, body: Any) -> ValueSchema | None:
    if body is None:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("file"), str):
        raise DeclarationError(f"{where} must be a mapping with `file:` (and optionally `compatibility:`)")
    _reject_unknown_keys(where, body, {"file", "compatibility"})
    compatibility = body.get("compatibility", DEFAULT_COMPATIBILITY)
    if compatibility not in COMPATIBILITY_LEVELS:
        raise DeclarationError(f"{where}.compatibility must be one of {', '.join(COMPATIBILITY_LEVELS)}")
    return ValueSchema(file=_schema_file(where, body["file"]), compatibility=compatibility)


def _schema_file(where: str, name: str) -> Path:
    """A schema file named as in the repository (`schemas/...`, shipped with the project) or by an absolute path."""
    if Path(name).is_absolute():
        if not Path(name).is_file():
            raise DeclarationError(f"{where}.file: no schema file at {name}")
        return Path(name)
    try:
        return package_file(name)
    except FileNotFoundError as error:
        raise DeclarationError(f"{where}.file: no schema file: {error}") from None


def _reject_unknown_keys(where: str, body: Any, known: set[str]) -> None:
    if not isinstance(body, dict):
        raise DeclarationError(f"{where} must be a mapping")
    unknown = set(body) - known
    if unknown:
        raise DeclarationError(f"{where} has unknown keys {sorted(unknown)}; known: {sorted(known)}")
