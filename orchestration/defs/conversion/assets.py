"""The source stream as an external asset: Dagster observes `user-login`, it does not produce it.

The conversion sensor records the topic's end offsets, the converter group's lag and the
throughput between ticks as observations of this asset (see Dagster's "observing streaming
processes" pattern).
"""

import dagster as dg

user_login = dg.AssetSpec(
    "user_login",
    description="Raw JSON login events on the Kafka topic `user-login` (KDP_SOURCE_TOPIC), written by "
    "the generator. Observed by the conversion sensor: end offsets, converter lag, throughput.",
    group_name="streams",
    kinds={"kafka"},
)
