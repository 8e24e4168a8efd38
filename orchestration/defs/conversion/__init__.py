"""Conversion area: the sensor-driven micro-batch converter and the observed source stream."""

import dagster as dg

from orchestration.defs.conversion.assets import user_login
from orchestration.defs.conversion.jobs import convert_ranges
from orchestration.defs.conversion.sensors import conversion_sensor

defs = dg.Definitions(assets=[user_login], jobs=[convert_ranges], sensors=[conversion_sensor])
