"""Assembling a ready converter: settings -> registered schema (looked up) -> encoder, consumer, delivery.

The one place where `kdp stream`, the Dagster conversion job and the benchmarks build the
converter, so all three run the same transform, encoder and delivery code. The output schema is
looked up, never registered: a converter whose schema is not registered refuses to start
(`SchemaNotRegisteredError`, naming the subject and the command that registers it).
"""

from __future__ import annotations

import gc
import logging
import socket
from pathlib import Path
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient

from streaming import access
from streaming.conversion.convert import reference_converter
from streaming.conversion.encoding import WireFormatEncoder
from streaming.conversion.fast_path import build_converter
from streaming.conversion.rules.declaration import RULES_PATH
from streaming.delivery.kafka_clients import KAFKA, Cluster, make_consumer, make_delivery
from streaming.loop.converter import Converter
from streaming.malloc_arenas import give_back_free_memory_every, limit_malloc_arenas
from streaming.observe.observer import NO_OBSERVER, ConverterObserver
from streaming.package_files import package_file
from streaming.schema_registry import RegisteredValueSchema, load_schema, lookup_value_schema
from streaming.settings import Settings
from streaming.topics import value_subject

log = logging.getLogger(__name__)

PROCESSED_SCHEMA = package_file("schemas/processed-data-value.avsc")
SCHEMAS = PROCESSED_SCHEMA.parent


def registered_output_schema(settings: Settings, schema_path: Path = PROCESSED_SCHEMA) -> RegisteredValueSchema:
    """The output schema at `schema_path` as registered under the output topic's subject (id and version).

    Reads only. Raises `SchemaNotRegisteredError` naming the subject when the registry does not hold that schema:
    the converter must not write records under a schema the control plane has not registered.
    """
    client = SchemaRegistryClient(settings.registry_config())
    subject = value_subject(settings.output_topic)
    return lookup_value_schema(client, subject, load_schema(schema_path), schema_file=_shown(schema_path))


def output_encoder(settings: Settings, schema_path: Path = PROCESSED_SCHEMA) -> WireFormatEncoder:
    """The encoder of the output schema at `schema_path`, as registered (see `registered_output_schema`)."""
    registered = registered_output_schema(settings, schema_path)
    return WireFormatEncoder(registered.schema_id, load_schema(schema_path))


def _shown(path: Path) -> str:
    """`path` relative to the project when it lies inside it (what an operator recognises in an error)."""
    try:
        return str(path.resolve().relative_to(SCHEMAS.parent))
    except ValueError:
        return str(path)


def default_instance() -> str:
    """A name for this converter that is stable across its restarts on the same host."""
    return socket.gethostname()


def converter_needs(settings: Settings) -> list[access.Need]:
    """What a converter needs of the cluster: read its source in its group, write its outputs."""
    return [
        access.topic(settings.source_topic, "READ"),
        access.topic(settings.output_topic, "WRITE"),
        access.topic(settings.dlq_topic, "WRITE"),
        access.group(settings.group_id, "READ"),
    ]


def open_converter(
    settings: Settings,
    *,
    instance: str | None = None,
    static_member: bool = False,
    schema_path: Path = PROCESSED_SCHEMA,
    rules_path: Path = RULES_PATH,
    encoder: WireFormatEncoder | None = None,
    observer: ConverterObserver = NO_OBSERVER,
    client_config: dict[str, object] | None = None,
    cluster: Cluster = KAFKA,
    **converter_options: object,
) -> Converter:
    """A converter with its clients connected and its output schema looked up in the registry.

    `schema_path`, `rules_path`: the output schema it writes, looked up under the output subject, and the rules
    declaration that fills it (default: the repository's; a rolling change of both is `kdp schema`'s workflow).
    `static_member`: join the group as static member `instance` (`group.instance.id`), so that this
    instance restarted after a crash takes its partitions back at once, instead of waiting for the
    broker to expire the crashed member (`session.timeout.ms`, 45 s). Only for a stable instance name
    in a group (`kdp stream --instance`); a range run (assign(), no membership) must not set it.
    `observer` is told of every batch boundary (`streaming.observe.observer`), by the loop and by the delivery.
    `client_config` is added to both clients' settings (librdkafka statistics for `streaming.observe.metrics`).
    `cluster` gives the clients (default: the Kafka cluster of `settings`; tests give an in-memory broker), and
    `converter_options` go to `Converter` (its clock, poll timeout, ...).
    """
    cluster.check_access(settings, converter_needs(settings))
    encoder = encoder or output_encoder(settings, schema_path)
    # The fused fast path is generated from a registered schema; a stand-in encoder (the bench's stock
    # AvroSerializer baseline) goes through the reference path, transform then its own `encode`.
    convert = (
        build_converter(encoder, rules_path, native=settings.native_fast_path)
        if isinstance(encoder, WireFormatEncoder)
        else reference_converter(encoder)
    )
    identity = {"group.instance.id": instance} if static_member and instance else {}
    extra = client_config or {}
    instance = instance or default_instance()
    with access.denials_named(settings, access.TRANSACTIONAL_ID, f"{settings.transactional_id}-{instance}", "WRITE"):
        delivery = make_delivery(settings, instance, observer=observer, extra_config=extra, cluster=cluster)
    consumer_extra = {**identity, **extra, **delivery.consumer_config()}
    return Converter(
        settings,
        make_consumer(settings, consumer_extra, cluster),
        delivery,
        convert,
        new_consumer=lambda: make_consumer(settings, consumer_extra, cluster),
        observer=observer,
        **converter_options,  # type: ignore[arg-type]
    )


def open_dedicated_converter(settings: Settings, **options: Any) -> Converter:
    """`open_converter(settings, **options)` in a process that is this converter and nothing else (`kdp stream`,
    the benchmarks' subject), tuned for it. The tuning is process-wide, so Dagster runs and tests, which share
    their process with other work, open their converters untuned:

    - fewer malloc arenas (`streaming.malloc_arenas`), set before the Kafka clients start their threads, and
      free heap memory handed back to the system once a minute;
    - `gc.freeze()` once the converter is built: what the process holds by then (modules, clients, the generated
      code) lives as long as it does, and moved out of the cyclic collector's sight it is no longer traversed by
      every full collection that a batch's thousands of messages trigger (measured: 0.4 µs of GC a message
      before, 0.15 after).
    """
    limit_malloc_arenas()
    converter = open_converter(settings, **options)
    gc.freeze()
    give_back_free_memory_every()
    return converter
