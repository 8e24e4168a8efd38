"""Provisioning area: the job that makes topics and value schemas match `topics.yaml`."""
