"""What the converter reports and how it is exported: the observer protocol the loop and the deliveries call,
the running insight tallies, Prometheus metrics (served by `kdp stream`, pushed by Dagster runs) and librdkafka's
statistics. Imports the conversion's types, never the loop.
"""
