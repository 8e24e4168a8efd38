"""`kdp`: the project's command line, assembled from the planes it drives.

The data plane (`streaming`: generate, stream, tail) and the local-stack tooling (`localstack`: stack) each
keep their subcommand's parser beside the code it runs; this package only mounts them (`kdp.cli`) and adds
the end-to-end demo (`kdp.demo`). It sits above both, so neither imports the other: `streaming` never
imports `localstack` or `orchestration`.
"""
