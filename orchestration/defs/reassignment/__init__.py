"""Reassignment area: plan, then explicitly execute, partition reassignments."""

import dagster as dg

from orchestration.defs.reassignment.jobs import execute_partition_reassignment, plan_partition_reassignment

defs = dg.Definitions(jobs=[plan_partition_reassignment, execute_partition_reassignment])
