"""The conversion job: materialize `processed_data` over exactly the offset ranges of its run config.

The conversion sensor requests one run per pending range (`run_config_for`); the same job can be launched
by hand from the UI or with `dg launch --job convert_ranges --config-json '<run_config_for(...) as JSON>'`.
"""

import dagster as dg

from orchestration.defs.conversion.assets import processed_data
from streaming.offset_ranges import OffsetRange

convert_ranges = dg.define_asset_job(
    "convert_ranges",
    selection=[processed_data],
    description="Convert explicit offset ranges of user-login (requested by the conversion sensor).",
    tags={"kdp/area": "conversion"},
)


def run_config_for(ranges: list[OffsetRange]) -> dict:
    """The run config that converts `ranges`: offsets only, never payloads."""
    return {"ops": {processed_data.op.name: {"config": {"ranges": [r.key for r in ranges]}}}}
