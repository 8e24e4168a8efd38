"""The insights area: hourly partitioned assets computed from processed-data, their checks and schedule, and
the daily report that rolls them up, with its own schedule.
"""
