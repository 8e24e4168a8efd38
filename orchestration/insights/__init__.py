"""Hourly insights over `processed-data` and their daily report: the plain Python under
`orchestration.defs.insights`.

- `window_reader`: reads one event-time window of processed records and dead letters from Kafka, by offsets;
- `record_tally`: folds batches of processed records into the window's tally (native kernel or Python);
- `avro_layout`: where the fields the insights use are in an Avro body, from its writer schema;
- `aggregates`: the pure tallies and the insight rows computed from them;
- `sketch`: distinct users and devices in bounded memory (exact up to 131,072 per window);
- `store`: the DuckDB tables the rows are kept in, one set of rows per hour partition;
- `charts`: the PNG shown beside the numbers;
- `distinct_counts`: each hour's distinct user and device ids in a mergeable form, and their merge;
- `rollup`: one day of the stored hours, added up (and uniques merged);
- `comparison`, `report`, `daily_charts`, `report_render`, `report_files`: the daily report, from the
  figures compared with earlier days to the HTML and Markdown files.

Nothing here knows about Dagster, so each part can be used and tested on its own.
"""
