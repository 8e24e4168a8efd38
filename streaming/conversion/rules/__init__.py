"""The conversion rules as data, and the engines that run them.

- `declaration`: `schemas/<subject>.rules.yaml` loaded and checked against its Avro schema (`load_rules`).
- `kinds`: the closed vocabulary of rule kinds, and the reference implementation of each.
- `reference`: the reference engine, the definition of what a declaration accepts and writes.
- `codegen`: the pure-Python fast engine generated from a declaration (`generated_fast_path.py` for the
  repository's, written by `python -m streaming.conversion.rules.codegen`).

The native engine is `streaming.conversion.native_path` (over `native/`);
`streaming.conversion.fast_path.build_converter` assembles
all three into the converter for a schema and a declaration.
"""
