"""The conversion area's plain Python, under `orchestration.defs.conversion`: bounded reads of watermarks and
commits for a sensor tick (`offsets`) and the pure choice of which offset ranges to request (`pending`).
Nothing here knows about Dagster."""
