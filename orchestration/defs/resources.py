"""Dagster resources: how the control plane reaches Kafka and the schema registry, and with which settings.

The resources hold the data plane's settings (`streaming.settings.Settings`) as fields and read nothing
else: `settings()` is built from the fields alone. `orchestration/definitions.py` binds them with
`environment_bound(...)`, each field to `dg.EnvVar` of its `KDP_*` variable, so the Dagster UI shows which
variable feeds which field, Dagster resolves them when a run or a tick starts, and a secret's value is
never shown (only its variable's name). An unbound field keeps `Settings`' default (the local stack's).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from orchestration.insights import report_files, store
from streaming.observe.metrics_push import MetricsPusher
from streaming.settings import ENV_NAMES, Settings

R = TypeVar("R", bound=dg.ConfigurableResource)

#: Settings every deployment states: where its cluster and its registry are. Bound even when unset, so
#: a run started without them fails at once naming the variable, instead of reaching for localhost.
REQUIRED = frozenset({"KDP_BOOTSTRAP", "KDP_REGISTRY_URL"})


class KafkaResource(dg.ConfigurableResource):
    """The cluster (bootstrap servers, client security) and the pipeline's Kafka-side settings: topics,
    consumer group, delivery mode. None: `Settings`' default."""

    bootstrap: str
    security_protocol: str | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_ca_location: str | None = None
    source_topic: str | None = None
    output_topic: str | None = None
    dlq_topic: str | None = None
    group_id: str | None = None
    delivery: str | None = None
    batch_size: int | None = None
    transactional_id: str | None = None
    commit_interval_ms: int | None = None
    max_event_age: str | None = None
    fast_path: str | None = None
    pushgateway_url: str | None = None
    """Where runs push their metrics (KDP_PUSHGATEWAY_URL); unset or empty: no push."""

    def settings(self, **overrides: Any) -> Settings:
        """Data-plane settings from this resource's fields, then `overrides`."""
        fields = {name: getattr(self, name) for name in type(self).model_fields}
        return _settings({**fields, **overrides})

    def admin(self) -> AdminClient:
        """An admin client. Keep a reference to it while its futures are pending."""
        return AdminClient(self.settings().kafka_config())


class SchemaRegistryResource(dg.ConfigurableResource):
    """A Confluent-API schema registry (Confluent Schema Registry, or Apicurio's ccompat API)."""

    registry_url: str
    registry_user: str | None = None
    registry_password: str | None = None
    ssl_ca_location: str | None = None
    """The CA that signs an https registry's certificate (KDP_SSL_CA_LOCATION, shared with the brokers')."""

    def settings(self) -> Settings:
        return _settings({name: getattr(self, name) for name in type(self).model_fields})

    def client(self) -> SchemaRegistryClient:
        return SchemaRegistryClient(self.settings().registry_config())


class InsightsStorageResource(dg.ConfigurableResource):
    """Where the insights keep their database and daily reports. None: under the Dagster instance's storage."""

    insights_db: str | None = None
    insights_reports: str | None = None

    def database(self, context: dg.AssetExecutionContext) -> Path:
        return store.database_path(context.instance.storage_directory(), self.insights_db)

    def reports(self, database: Path) -> Path:
        return report_files.reports_directory(database, self.insights_reports)


def environment_bound(resource: type[R]) -> R:
    """`resource` with each field bound to `dg.EnvVar` of its `KDP_*` variable (`dg.EnvVar.int` for numbers):
    the required ones always, the others when the variable is set (non-empty) where the definitions load. No
    value is used here; Dagster reads the values when a run or a tick starts."""
    fields = resource.model_fields
    bindings: dict[str, Any] = {}
    for name, attr in ENV_NAMES.items():
        if attr in fields and (name in REQUIRED or os.environ.get(name)):
            bindings[attr] = dg.EnvVar.int(name) if fields[attr].annotation == (int | None) else dg.EnvVar(name)
    return resource(**bindings)


def pipeline_settings(kafka: KafkaResource, registry: SchemaRegistryResource, **overrides: object) -> Settings:
    """The complete data-plane settings of a run: Kafka clients and registry together."""
    registry_settings = registry.settings()
    return kafka.settings(
        registry_url=registry_settings.registry_url,
        registry_user=registry_settings.registry_user,
        registry_password=registry_settings.registry_password,
        **overrides,
    )


def push_metadata(pusher: MetricsPusher, log: logging.Logger | logging.LoggerAdapter) -> dict[str, dg.MetadataValue]:
    """What a run says of its pushes to the Pushgateway: nothing when none is configured (KDP_PUSHGATEWAY_URL).
    Failed pushes are also a warning in the run's log (`log`, the Dagster context's), where the UI shows it."""
    if not pusher.enabled:
        return {}
    if pusher.failures:
        log.warning(
            "%d of %d pushes of this run's metrics to KDP_PUSHGATEWAY_URL=%s failed; the run went on without them",
            pusher.failures,
            pusher.failures + pusher.pushes,
            pusher.url,
        )
    return {
        "metrics_pushes": dg.MetadataValue.int(pusher.pushes),
        "metrics_push_failures": dg.MetadataValue.int(pusher.failures),
    }


def _settings(values: dict[str, Any]) -> Settings:
    return Settings(**{name: value for name, value in values.items() if value is not None})
