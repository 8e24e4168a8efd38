"""One `convert_ranges` Dagster run in a process of its own, for a fault test to kill half-way.

    python fault_dagster_run.py TOPIC:PARTITION:START-END

Settings come from the `KDP_*` environment, as in a Dagster deployment; the run uses an ephemeral
instance (no DAGSTER_HOME). Prints the op's output as JSON and exits 0 when the run succeeds.
"""

from __future__ import annotations

import json
import sys

import dagster as dg

from orchestration.defs.conversion.jobs import convert_ranges, run_config_for
from orchestration.defs.resources import KafkaResource, SchemaRegistryResource
from streaming.offset_ranges import OffsetRange


def main(range_key: str) -> int:
    result = convert_ranges.execute_in_process(
        run_config=run_config_for([OffsetRange.parse(range_key)]),
        resources={"kafka": KafkaResource(), "registry": SchemaRegistryResource()},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    if not result.success:
        return 1
    print(json.dumps(result.output_for_node("convert_offset_ranges")), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
