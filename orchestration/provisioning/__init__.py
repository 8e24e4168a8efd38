"""Declarative topic provisioning: `topics.yaml` says what the cluster must have, the rest gets it there.

declarations (read and resolve `topics.yaml`) -> live_state (read the cluster) -> plan (pure diff)
-> apply (admin calls, then re-read until the cluster matches). The Dagster job that runs these
steps is in `orchestration/defs/provisioning/`; this package does not import Dagster.
"""
