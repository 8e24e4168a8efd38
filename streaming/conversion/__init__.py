"""The conversion: source bytes in, wire-format record bytes or a rejection out. Pure: no I/O, no clock.

`rules/` holds the rules declaration (read from `schemas/`) and its engines; `convert` the contract every engine
meets; `transform` the reference engine bound to the repository's declaration; `fast_path` and `native_path` the
fast engines; `encoding` and `avro_codegen` the Confluent wire format; `ip_classes` the address classification.
Imports only the package's base modules (`streaming.settings`, `streaming.records`, ...).
"""
