"""Hourly insights over `processed-data`: the plain Python under `orchestration.defs.insights`.

- `window_reader`: reads one event-time window of processed records and dead letters from Kafka, by offsets;
- `aggregates`: the pure tallies and the insight rows computed from them;
- `store`: the DuckDB tables the rows are kept in, one set of rows per hour partition;
- `charts`: the PNG shown beside the numbers.

Nothing here knows about Dagster, so each part can be used and tested on its own.
"""
