"""The data plane: generator -> `user-login` -> convert (pure) -> delivery -> `processed-data` / dead letters.

Rooms by layer, each importing only the ones below it: `cli` (the commands) over `replay` and `generator`, over
`loop` (sources, router, commit span, assembly), over `delivery` (producers, commits), over `observe` (observer,
metrics), over `conversion` (rules engines, wire format), over the base modules here (settings, topics, records,
registry and Kafka access). Never imports `orchestration` or `kdp`.
"""
