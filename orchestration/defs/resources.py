"""Dagster resources: how the control plane reaches Kafka and the schema registry.

Every field defaults to None, meaning "as the data plane would have it": the `KDP_*` environment
variables read by `streaming.settings` when a run or a sensor tick needs a client, else the local
stack's defaults. Nothing is read at import time. A deployment that wants other variable names
binds the fields explicitly, e.g. `KafkaResource(sasl_password=dg.EnvVar("MY_SECRET"))`; values
set here win over the environment. Secrets are never put into metadata or logs.
"""

from __future__ import annotations

import logging

import dagster as dg
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from streaming.metrics_push import MetricsPusher
from streaming.settings import Settings


class KafkaResource(dg.ConfigurableResource):
    """Bootstrap servers, client security and delivery mode of the control plane's clients."""

    bootstrap: str | None = None
    security_protocol: str | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_ca_location: str | None = None
    delivery: str | None = None

    def settings(self, **overrides: object) -> Settings:
        """Data-plane settings: environment first, then this resource's fields, then overrides."""
        fields = {name: getattr(self, name) for name in type(self).model_fields}
        return Settings.from_env(**{**fields, **overrides})  # type: ignore[arg-type]

    def admin(self) -> AdminClient:
        """An admin client. Keep a reference to it while its futures are pending."""
        return AdminClient(self.settings().kafka_config())


class SchemaRegistryResource(dg.ConfigurableResource):
    """A Confluent-API schema registry (Confluent Schema Registry, or Apicurio's ccompat API)."""

    url: str | None = None
    user: str | None = None
    password: str | None = None

    def settings(self) -> Settings:
        return Settings.from_env(registry_url=self.url, registry_user=self.user, registry_password=self.password)

    def client(self) -> SchemaRegistryClient:
        return SchemaRegistryClient(self.settings().registry_config())


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
