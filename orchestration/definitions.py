"""The one `Definitions` of the control plane, assembled from the areas under `orchestration/defs/`.

Each area (`defs/<area>/__init__.py`) exposes its own `defs`; this module merges them and binds the
resources every area shares to the `KDP_*` variables of `streaming/settings.py` through `dg.EnvVar`
(`orchestration.defs.resources.environment_bound`): loading checks which variables are set, uses none of their
values, and opens no connection. Dagster resolves the values when a run or a tick starts.
"""

import dagster as dg

from orchestration.defs import conversion, insights, provisioning, reassignment, replay, schema
from orchestration.defs.resources import KafkaResource, SchemaRegistryResource, environment_bound

defs = dg.Definitions.merge(
    provisioning.defs,
    conversion.defs,
    insights.defs,
    reassignment.defs,
    replay.defs,
    schema.defs,
    dg.Definitions(
        resources={
            "kafka": environment_bound(KafkaResource),
            "registry": environment_bound(SchemaRegistryResource),
        }
    ),
)
