"""Schema area: the evolution workflow's jobs (check, preview, register) and the drift check on processed-data.

The logic is `orchestration.schema.workflow`, which `kdp schema` runs too. Resources expected under the keys
`kafka` and `registry`, bound by the top-level `orchestration.definitions`.
"""

import dagster as dg

from orchestration.defs.schema.checks import output_schema_matches_repository
from orchestration.defs.schema.jobs import check_schema, preview_schema, register_schema

defs = dg.Definitions(
    jobs=[check_schema, preview_schema, register_schema], asset_checks=[output_schema_matches_repository]
)
