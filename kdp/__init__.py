"""`kdp`: the project's command line, assembled from the planes it drives.

The data plane (`streaming`: generate, stream, tail, replay) keeps its subcommands' parsers in `streaming.cli`;
the local-stack tooling (`kdp.devstack`: stack) and the schema workflow (`kdp.schema_cli`) keep theirs here.
This package mounts them (`kdp.cli`) and adds the end-to-end demo (`kdp.demo`). It sits above the planes:
`streaming` never imports `kdp` or `orchestration`.
"""
