"""Provisioning area: the job that makes topics and value schemas match `topics.yaml`."""

import dagster as dg

from orchestration.defs.provisioning.jobs import provision_topics

defs = dg.Definitions(jobs=[provision_topics])
