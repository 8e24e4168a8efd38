"""The data plane's commands: one module per `kdp` subcommand (`stream`, `generate`, `replay`, `tail`), each with its
`add_*_parser` and handler; `kdp.cli` mounts them. The top of the data plane: nothing in `streaming` imports it.
"""
