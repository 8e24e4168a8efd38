"""What the cluster has now: brokers, and for each topic of interest its partitions, replication and configs.

Contract: `read_live_state(admin, names)` returns a `LiveState` describing exactly the topics of
`names` that exist (absent ones are simply missing from `topics`), or raises `ProvisioningError`
naming the topic whose metadata or configs could not be read. Every call is bounded by a timeout,
so a job step against an unreachable cluster fails instead of hanging.

The dataclasses are plain values: the planner (`plan.py`) takes them as input and unit tests
build them by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigEntry, ConfigResource, ConfigSource, ResourceType

CALL_TIMEOUT = 15.0


class ProvisioningError(RuntimeError):
    """A read or change of the cluster failed; the message names the topic and the setting."""


@dataclass(frozen=True)
class LiveConfig:
    """A topic config's current value. `is_default` means it is not set on the topic itself but
    inherited (from the broker or Kafka's default), so it changes when the broker's default does."""

    value: str | None
    is_default: bool


@dataclass(frozen=True)
class LiveTopic:
    name: str
    partitions: int
    #: The replica counts of its partitions: one value normally, several during a reassignment.
    replication_factors: frozenset[int]
    configs: Mapping[str, LiveConfig]


@dataclass(frozen=True)
class LiveState:
    broker_count: int
    topics: Mapping[str, LiveTopic]


def read_live_state(admin: AdminClient, names: Iterable[str], timeout: float = CALL_TIMEOUT) -> LiveState:
    """Brokers and the existing topics among `names`, with every config value of each."""
    try:
        # All topics, not `topic=`: a metadata request naming a missing topic may auto-create it.
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as error:
        raise ProvisioningError(f"cannot read the cluster's metadata: {error}") from None
    present = [name for name in dict.fromkeys(names) if name in metadata.topics]
    for name in present:
        topic_error = metadata.topics[name].error
        if topic_error is not None:
            raise ProvisioningError(f"topic {name!r}: metadata error {topic_error.str()}")
    configs = _read_configs(admin, present, timeout)
    topics = {
        name: LiveTopic(
            name=name,
            partitions=len(metadata.topics[name].partitions),
            replication_factors=frozenset(len(p.replicas) for p in metadata.topics[name].partitions.values()),
            configs=configs[name],
        )
        for name in present
    }
    return LiveState(broker_count=len(metadata.brokers), topics=topics)


def _read_configs(admin: AdminClient, names: list[str], timeout: float) -> dict[str, dict[str, LiveConfig]]:
    if not names:
        return {}
    futures = admin.describe_configs(
        [ConfigResource(ResourceType.TOPIC, name) for name in names], request_timeout=timeout
    )
    configs: dict[str, dict[str, LiveConfig]] = {}
    for resource, future in futures.items():
        try:
            entries = future.result(timeout=timeout)
        except Exception as error:  # KafkaException, or TimeoutError from the future
            raise ProvisioningError(f"topic {resource.name!r}: cannot read its configs: {error}") from None
        configs[resource.name] = {
            key: LiveConfig(entry.value, is_default=not _set_on_topic(entry)) for key, entry in entries.items()
        }
    return configs


def _set_on_topic(entry: ConfigEntry) -> bool:
    # The client reports the source as the enum or as its number, depending on the code path.
    return entry.source in (ConfigSource.DYNAMIC_TOPIC_CONFIG, ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
