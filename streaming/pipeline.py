"""Assembling a ready converter: settings -> registered schema -> encoder, consumer, delivery.

The one place where `kdp stream`, the Dagster conversion job and the benchmarks build the
converter, so all three run the same transform, encoder and delivery code.
"""

from __future__ import annotations

import gc
import logging
import socket
from pathlib import Path

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from streaming import access
from streaming.conversion import reference_converter
from streaming.converter import Converter
from streaming.encoding import WireFormatEncoder
from streaming.fast_path import converter_for
from streaming.kafka_clients import make_consumer, make_delivery
from streaming.malloc_arenas import limit_malloc_arenas
from streaming.observer import NO_OBSERVER, ConverterObserver
from streaming.schema_registry import ensure_value_schema, load_schema
from streaming.settings import Settings
from streaming.topics import value_subject

log = logging.getLogger(__name__)

SCHEMAS = Path(__file__).resolve().parent.parent / "schemas"
PROCESSED_SCHEMA = SCHEMAS / "processed-data-value.avsc"


FORBIDDEN, NOT_FOUND = 403, 404


def register_output_schema(settings: Settings, schema_path: Path = PROCESSED_SCHEMA) -> WireFormatEncoder:
    """Register (or find) the output schema under its subject and build its encoder.

    Raises `SchemaIncompatibleError` naming the subject when the registry refuses the schema:
    the converter must not start writing records that readers could not decode. With read-only registry
    credentials it only looks the schema up (a 404 `SchemaRegistryError` when nobody registered it yet).
    """
    schema_str = load_schema(schema_path)
    client = SchemaRegistryClient(settings.registry_config())
    subject = value_subject(settings.output_topic)
    try:
        schema_id = ensure_value_schema(client, subject, schema_str).schema_id
    except SchemaRegistryError as error:
        if error.http_status_code != FORBIDDEN:
            raise
        # Read-only registry credentials (the secure stack's converters): the control plane registered it.
        try:
            found = client.lookup_schema(subject, Schema(schema_str, "AVRO")).schema_id
        except SchemaRegistryError as missing:
            if missing.http_status_code != NOT_FOUND:
                raise
            raise error from None  # not registered yet, and these credentials may not: the refusal says so
        if found is None:  # pragma: no cover - a registry breaking its API
            raise
        schema_id = found
    log.info("output schema registered as id %d under subject %s", schema_id, subject)
    return WireFormatEncoder(schema_id, schema_str)


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
    encoder: WireFormatEncoder | None = None,
    observer: ConverterObserver = NO_OBSERVER,
    client_config: dict[str, object] | None = None,
    **converter_options: object,
) -> Converter:
    """A converter with its clients connected and its output schema registered.

    `static_member`: join the group as static member `instance` (`group.instance.id`), so that this
    instance restarted after a crash takes its partitions back at once, instead of waiting for the
    broker to expire the crashed member (`session.timeout.ms`, 45 s). Only for a stable instance name
    in a group (`kdp stream --instance`); a range run (assign(), no membership) must not set it.
    `observer` is told of every batch boundary (`streaming.observer`), by the loop and by the delivery.
    `client_config` is added to both clients' settings (librdkafka statistics for `streaming.metrics`).
    """
    access.check_access(settings, converter_needs(settings))
    encoder = encoder or register_output_schema(settings)
    # The fused fast path is generated from a registered schema; a stand-in encoder (the bench's stock
    # AvroSerializer baseline) goes through the reference path, transform then its own `encode`.
    convert = (
        converter_for(encoder, native=settings.native_fast_path)
        if isinstance(encoder, WireFormatEncoder)
        else reference_converter(encoder)
    )
    identity = {"group.instance.id": instance} if static_member and instance else {}
    extra = client_config or {}
    limit_malloc_arenas()  # before the clients start their threads
    instance = instance or default_instance()
    with access.denials_named(settings, access.TRANSACTIONAL_ID, f"{settings.transactional_id}-{instance}", "WRITE"):
        delivery = make_delivery(settings, instance, observer=observer, extra_config=extra)
    # What the process holds by now (modules, clients, the generated code) lives as long as it does: moved out
    # of the cyclic collector's sight, it is no longer traversed by every full collection that a batch's
    # thousands of messages trigger (measured: 0.4 µs of GC a message before, 0.15 after).
    gc.freeze()
    return Converter(
        settings,
        make_consumer(settings, **identity, **extra),
        delivery,
        convert,
        new_consumer=lambda: make_consumer(settings, **identity, **extra),
        observer=observer,
        **converter_options,  # type: ignore[arg-type]
    )
