"""Schema area: the evolution workflow's jobs (check, preview, register) and the drift check on processed-data.

The logic is `orchestration.schema.workflow`, which `kdp schema` runs too.
"""
