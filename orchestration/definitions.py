"""The one `Definitions` of the control plane, assembled from the areas under `orchestration/defs/`.

Each area (`defs/<area>/__init__.py`) exposes its own `defs`; this module merges them and binds
the resources every area shares. Loading this module reads no environment and opens no
connection: resources resolve their settings when a run or a tick uses them.
"""

import dagster as dg

from orchestration.defs import conversion, insights, provisioning, reassignment, replay, schema
from orchestration.defs.resources import KafkaResource, SchemaRegistryResource

defs = dg.Definitions.merge(
    provisioning.defs,
    conversion.defs,
    insights.defs,
    reassignment.defs,
    replay.defs,
    schema.defs,
    dg.Definitions(resources={"kafka": KafkaResource(), "registry": SchemaRegistryResource()}),
)
