"""Reassignment area: plan, then explicitly execute, partition reassignments."""
