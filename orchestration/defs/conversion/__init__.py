"""Conversion area: the observed source stream, the converted output stream, and the sensor-driven
micro-batch runs that write it."""

import dagster as dg

from orchestration.defs.conversion.assets import processed_data, user_login
from orchestration.defs.conversion.jobs import convert_ranges
from orchestration.defs.conversion.sensors import conversion_sensor

defs = dg.Definitions(assets=[user_login, processed_data], jobs=[convert_ranges], sensors=[conversion_sensor])
