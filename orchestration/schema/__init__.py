"""The output schema's governance: its subject's compatibility level, checks against every registered
version, a preview on live traffic, registration, and drift. Plain logic, no Dagster: `kdp schema` and the
Dagster definitions in `orchestration.defs.schema` (and provisioning) both call it."""
