"""Who may do what: one principal per operation of the pipeline, with the fewest rights that let it work.

The one declaration of the pipeline's Kafka ACLs and schema-registry roles. Everything else is derived from it:

- `kdp stack up --secure` creates a SCRAM user per principal and its ACLs (`kdp.devstack.security`), and gives
  each principal its registry role (`kdp.devstack.oidc`);
- `python -m kdp.devstack.acl_manifests` renders the ACLs a real cluster needs (`deploy/security/`: `kafka-acls`
  commands and Strimzi `KafkaUser` resources) and the principals' table of `docs/security.md`;
  a test checks that rendering again changes nothing.

Names are the pipeline's defaults from `streaming/topics.py` and `streaming/settings.py`. A deployment that
renames topics, the group or the transactional-id prefix renders its own ACLs from a changed declaration.

Kafka's ACL model, as these grants use it (Kafka 4.x `StandardAuthorizer`):

- producing needs WRITE (and DESCRIBE for metadata) on the topic; idempotence needs nothing more since 3.0;
  transactions need WRITE on the transactional id; a consumer that commits needs READ on its group;
- reading a group's commits or its members needs DESCRIBE on the group; listing groups needs DESCRIBE on the
  cluster;
- reassigning partitions and electing leaders need ALTER on the cluster, which also allows creating ACLs:
  Kafka has no narrower right, so the `reassignment` principal is as strong as an administrator and is kept
  apart from everything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from confluent_kafka.admin import AclOperation, ResourcePatternType, ResourceType

from streaming.settings import Settings

CLUSTER = "kafka-cluster"
"""The name Kafka gives the one CLUSTER resource in ACLs."""


class RegistryRole(StrEnum):
    """Apicurio Registry's roles (`apicurio.auth.roles.*` defaults)."""

    READ_ONLY = "sr-readonly"
    """Look up schemas and compatibility: what serializers and deserializers need."""
    DEVELOPER = "sr-developer"
    """Register schemas and change a subject's compatibility: the control plane that owns the contract."""
    ADMIN = "sr-admin"
    """Everything, global rules included: people."""


@dataclass(frozen=True)
class Grant:
    """Operations allowed to a principal on one resource, or on every resource whose name starts with `name`."""

    resource: ResourceType
    name: str
    operations: tuple[AclOperation, ...]
    pattern: ResourcePatternType = ResourcePatternType.LITERAL


@dataclass(frozen=True)
class Principal:
    """A user of the secure stack: its name, the operation it runs, its ACLs (none for super users) and its
    registry role (None: it never talks to the registry)."""

    name: str
    purpose: str
    grants: tuple[Grant, ...] = ()
    registry_role: RegistryRole | None = None
    super_user: bool = False


_DEFAULTS = Settings()
SOURCE, OUTPUT, DEAD_LETTERS = _DEFAULTS.source_topic, _DEFAULTS.output_topic, _DEFAULTS.dlq_topic
PIPELINE_TOPICS = (SOURCE, OUTPUT, DEAD_LETTERS)
CONVERTER_GROUP = _DEFAULTS.group_id
TRANSACTIONAL_PREFIX = _DEFAULTS.transactional_id
REPLAY_GROUP_PREFIX = "kdp-replay-"
"""`streaming.replay.run.replay_group`: one group per selection."""
REPLAY_TRANSACTIONAL_PREFIX = f"{TRANSACTIONAL_PREFIX}-replay-"
"""`streaming.replay.run.replay_instance` under the transactional-id prefix: one id per selection."""
DAGSTER_TRANSACTIONAL_PREFIX = f"{TRANSACTIONAL_PREFIX}-dagster-"
"""`orchestration/defs/conversion/assets.py`: one id per set of ranges."""
INSIGHTS_GROUP_PREFIX = "kdp-insights-"
"""`orchestration/insights/window_reader.py`: a throwaway group per read."""

_READ = (AclOperation.READ, AclOperation.DESCRIBE)
_DESCRIBE = (AclOperation.DESCRIBE,)
_WRITE = (AclOperation.WRITE, AclOperation.DESCRIBE)
_WRITE_WITHIN_LIMITS = (*_WRITE, AclOperation.DESCRIBE_CONFIGS)  # reads max.message.bytes to size its batches
_READ_AND_WRITE_WITHIN_LIMITS = (AclOperation.READ, *_WRITE_WITHIN_LIMITS)
_PROVISION_TOPIC = (
    AclOperation.CREATE,
    AclOperation.DESCRIBE,
    AclOperation.DESCRIBE_CONFIGS,
    AclOperation.ALTER_CONFIGS,  # incremental_alter_configs
    AclOperation.ALTER,  # create_partitions
)
_THROTTLE_TOPIC = (AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS)
_REASSIGN_CLUSTER = (
    AclOperation.DESCRIBE,  # describe_cluster, log dirs, list reassignments
    AclOperation.ALTER,  # alter_partition_reassignments, elect_leaders
    AclOperation.DESCRIBE_CONFIGS,  # broker throttles
    AclOperation.ALTER_CONFIGS,
)
_PREFIXED = ResourcePatternType.PREFIXED
_BROKER = ResourceType.BROKER  # confluent_kafka's name for the CLUSTER resource type


def _topic(name: str, operations: tuple[AclOperation, ...]) -> Grant:
    return Grant(ResourceType.TOPIC, name, operations)


ADMIN = Principal(
    "admin",
    "people, and the registry's journal: super user (every operation, ACLs included)",
    registry_role=RegistryRole.ADMIN,
    super_user=True,
)

PRINCIPALS: tuple[Principal, ...] = (
    ADMIN,
    Principal(
        "generator",
        "kdp generate: writes login events (idempotence needs no more than WRITE since Kafka 3.0)",
        (_topic(SOURCE, _WRITE),),
    ),
    Principal(
        "converter",
        "kdp stream: reads login events in its group, writes records and dead letters, in transactions",
        (
            _topic(SOURCE, _READ),
            _topic(OUTPUT, _WRITE_WITHIN_LIMITS),
            _topic(DEAD_LETTERS, _WRITE_WITHIN_LIMITS),
            Grant(ResourceType.GROUP, CONVERTER_GROUP, _READ),
            Grant(ResourceType.TRANSACTIONAL_ID, TRANSACTIONAL_PREFIX, _WRITE, _PREFIXED),
        ),
        RegistryRole.READ_ONLY,
    ),
    Principal(
        "replay",
        "kdp replay and the Dagster replay job: reads dead letters in a group per selection, writes records and "
        "new dead letters, in a transaction per selection",
        (
            _topic(DEAD_LETTERS, _READ_AND_WRITE_WITHIN_LIMITS),
            _topic(OUTPUT, _WRITE_WITHIN_LIMITS),
            Grant(ResourceType.GROUP, REPLAY_GROUP_PREFIX, _READ, _PREFIXED),
            Grant(ResourceType.TRANSACTIONAL_ID, REPLAY_TRANSACTIONAL_PREFIX, _WRITE, _PREFIXED),
        ),
        RegistryRole.READ_ONLY,
    ),
    Principal(
        "dagster",
        "Dagster's conversion: the sensor reads offsets and members of the converter's group, range runs "
        "convert and commit in it; the freshness check of processed_data, which runs with them, reads the "
        "newest records",
        (
            _topic(SOURCE, _READ),
            _topic(OUTPUT, _READ_AND_WRITE_WITHIN_LIMITS),
            _topic(DEAD_LETTERS, _WRITE_WITHIN_LIMITS),
            Grant(ResourceType.GROUP, CONVERTER_GROUP, _READ),
            Grant(ResourceType.GROUP, INSIGHTS_GROUP_PREFIX, _READ, _PREFIXED),
            Grant(ResourceType.TRANSACTIONAL_ID, DAGSTER_TRANSACTIONAL_PREFIX, _WRITE, _PREFIXED),
        ),
        RegistryRole.READ_ONLY,
    ),
    Principal(
        "provisioning",
        "the provisioning job: creates the pipeline's topics, adds partitions, aligns their settings; registers "
        "the schemas",
        tuple(_topic(name, _PROVISION_TOPIC) for name in PIPELINE_TOPICS),
        RegistryRole.DEVELOPER,
    ),
    Principal(
        "reassignment",
        "the reassignment jobs: plan from the cluster's state, throttle, move replicas, elect leaders. ALTER on "
        "the cluster also allows creating ACLs: as strong as admin, kept apart",
        (
            Grant(_BROKER, CLUSTER, _REASSIGN_CLUSTER),
            *(_topic(name, _THROTTLE_TOPIC) for name in PIPELINE_TOPICS),
        ),
    ),
    Principal(
        "insights",
        "the insights assets and checks: read records and dead letters by offsets, with throwaway groups",
        (
            _topic(OUTPUT, _READ),
            _topic(DEAD_LETTERS, _READ),
            Grant(ResourceType.GROUP, INSIGHTS_GROUP_PREFIX, _READ, _PREFIXED),
        ),
        RegistryRole.READ_ONLY,
    ),
    Principal(
        "schema",
        "the schema workflow (kdp schema): checks and registers the pipeline's schemas, changes a subject's "
        "compatibility; no Kafka rights",
        (),
        RegistryRole.DEVELOPER,
    ),
    Principal(
        "lag-exporter",
        "the lag exporter and KEDA's scaler: list groups, read the converter's and the replays' commits and the "
        "topics' offsets",
        (
            Grant(_BROKER, CLUSTER, _DESCRIBE),
            *(_topic(name, _DESCRIBE) for name in PIPELINE_TOPICS),
            Grant(ResourceType.GROUP, CONVERTER_GROUP, _DESCRIBE),
            Grant(ResourceType.GROUP, REPLAY_GROUP_PREFIX, _DESCRIBE, _PREFIXED),
        ),
    ),
)
NAMES = tuple(principal.name for principal in PRINCIPALS)


def principal(name: str) -> Principal:
    """The declared principal `name`; KeyError when there is none."""
    for candidate in PRINCIPALS:
        if candidate.name == name:
            return candidate
    raise KeyError(name)
