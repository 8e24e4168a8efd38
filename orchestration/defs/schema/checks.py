"""The drift check: the registry's latest version of processed-data's subject is the repository's schema.

It fails (severity WARN) when someone registered another schema than the repository's, or when the
repository's schema was changed and not registered yet (`kdp schema register`); converters started from this
repository would refuse to start in the second case. `orchestration.schema.workflow.drift` is the logic.

No `from __future__ import annotations`: Dagster reads the resource annotations at import time.
"""

import dagster as dg

from orchestration.defs.resources import KafkaResource, SchemaRegistryResource, pipeline_settings
from orchestration.schema.workflow import drift


@dg.asset_check(
    asset="processed_data",
    name="output_schema_matches_repository",
    description="The latest version registered under processed-data's subject is schemas/processed-data-value.avsc.",
)
def output_schema_matches_repository(kafka: KafkaResource, registry: SchemaRegistryResource) -> dg.AssetCheckResult:
    found = drift(pipeline_settings(kafka, registry))
    return dg.AssetCheckResult(
        passed=found.matches,
        severity=dg.AssetCheckSeverity.WARN,
        description=found.describe(),
        metadata={
            "subject": dg.MetadataValue.text(found.subject),
            "latest_version": dg.MetadataValue.int(found.latest_version or 0),
        },
    )
