"""One `convert_ranges` Dagster run in a process of its own, for a fault test to kill half-way.

    python fault_dagster_run.py TOPIC:PARTITION:START-END

Settings come from the `KDP_*` environment, as in a Dagster deployment; the run uses an ephemeral
instance (no DAGSTER_HOME). Prints the run's counts (its materialization's metadata) as JSON and exits 0
when the run succeeds.
"""

from __future__ import annotations

import json
import sys

import dagster as dg

from orchestration.definitions import defs
from orchestration.defs.conversion.jobs import run_config_for
from orchestration.defs.resources import KafkaResource, SchemaRegistryResource, environment_bound
from streaming.offset_ranges import OffsetRange


def main(range_key: str) -> int:
    result = defs.resolve_job_def("convert_ranges").execute_in_process(
        run_config=run_config_for([OffsetRange.parse(range_key)]),
        resources={"kafka": environment_bound(KafkaResource), "registry": environment_bound(SchemaRegistryResource)},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    if not result.success:
        return 1
    [materialization] = result.asset_materializations_for_node("processed_data")
    counts = ("consumed", "processed", "dead_lettered", "redone_batches")
    print(json.dumps({name: materialization.metadata[name].value for name in counts}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
