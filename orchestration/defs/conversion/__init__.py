"""Conversion area: the observed source stream, the converted output stream, and the sensor-driven
micro-batch runs that write it."""
