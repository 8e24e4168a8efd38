"""Hourly insights over `processed-data`: the plain Python under `orchestration.defs.insights`.

- `window_reader`: reads one event-time window of processed records and dead letters from Kafka, by offsets;
- `record_tally`: folds batches of processed records into the window's tally (native kernel or Python);
- `avro_layout`: where the fields the insights use are in an Avro body, from its writer schema;
- `aggregates`: the pure tallies and the insight rows computed from them;
- `sketch`: distinct users and devices in bounded memory (exact up to 131,072 per window);
- `store`: the DuckDB tables the rows are kept in, one set of rows per hour partition;
- `charts`: the PNG shown beside the numbers.

Nothing here knows about Dagster, so each part can be used and tested on its own.
"""
