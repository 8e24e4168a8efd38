"""Baseline (b): our converter with confluent-kafka's stock `AvroSerializer` in place of our encoder.

`python -m bench.baselines.stock_serializer` runs the very loop of `bench.converter_subject` (same
consumer, transform, dead letters, delivery, batches); only `encode(record)` differs: it calls
`AvroSerializer(record, SerializationContext(output_topic, VALUE))` once per message, which is how the
library is meant to be used, and registers the schema under the output topic's subject itself. So the
ratio ours/stock is what our schema-generated encoder buys inside the whole pipeline.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from bench.converter_subject import parser, run_converter
from streaming.loop.pipeline import PROCESSED_SCHEMA
from streaming.settings import Settings


class StockAvroEncoder:
    """Quacks like `WireFormatEncoder` where the converter uses it: `encode(record) -> bytes`."""

    encode: Callable[[Mapping[str, Any]], bytes]

    def __init__(self, settings: Settings) -> None:
        serializer = AvroSerializer(
            SchemaRegistryClient(settings.registry_config()),
            PROCESSED_SCHEMA.read_text(),
            conf={"auto.register.schemas": True},
        )
        context = SerializationContext(settings.output_topic, MessageField.VALUE)

        def encode(record: Mapping[str, Any]) -> bytes:
            return serializer(record, context)  # type: ignore[return-value]

        self.encode = encode


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    run_converter("stock_serializer", args, encoder=StockAvroEncoder(Settings.from_env()))


if __name__ == "__main__":
    main()
