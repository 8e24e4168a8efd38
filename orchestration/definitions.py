"""The one `Definitions` of the control plane: everything under `orchestration/defs/`, found the `dg` way.

`dg.load_from_defs_folder` imports every module of `orchestration/defs/` and collects the Dagster objects it
finds there (assets, checks, jobs, sensors, schedules), so a file made with `dg scaffold defs` is loaded without
being listed anywhere. The project it loads is described by `orchestration/dg.toml`, which ships in the package:
an installed wheel loads the same definitions as a checkout.

The resources every area shares are bound here to the `KDP_*` variables of `streaming/settings.py` through
`dg.EnvVar` (`orchestration.defs.resources.environment_bound`): loading checks which variables are set, uses
none of their values, and opens no connection. Dagster resolves the values when a run or a tick starts.
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg

from orchestration.defs.resources import (
    InsightsStorageResource,
    KafkaResource,
    SchemaRegistryResource,
    environment_bound,
)


def control_plane(resources: Mapping[str, Any]) -> dg.Definitions:
    """Every definition of `orchestration/defs/`, with `resources` bound to them: the keys `kafka` and
    `registry` (a `KafkaResource` and a `SchemaRegistryResource`), and `insights_storage` (an
    `InsightsStorageResource`; bound to the environment when not given)."""
    return dg.Definitions.merge(
        dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
        dg.Definitions(resources={"insights_storage": environment_bound(InsightsStorageResource), **resources}),
    )


defs = control_plane({"kafka": environment_bound(KafkaResource), "registry": environment_bound(SchemaRegistryResource)})
