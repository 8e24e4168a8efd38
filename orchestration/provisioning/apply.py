"""Carrying out a plan on the cluster, and checking that the cluster then matches the declarations.

Contract: `apply_plan(admin, plan)` performs every action of an error-free plan with the admin API
(create_topics, create_partitions, incremental_alter_configs), waits for each result within a
timeout, and raises `ProvisioningError` listing every action that failed, each naming its topic
and settings with the broker's reason. Actions on different topics are independent: one failure
does not stop the others, and running the job again retries only what is still missing.
`validate_only=True` sends the same requests for the brokers to check without changing anything
(the job's dry run).

`wait_until_converged` re-reads the cluster until planning gives an empty plan: the metadata of a
new topic or partition can take a moment to reach every broker, so one read right after the
change could report a difference that is already on its way (seen on 3 brokers: describe_configs
answering UNKNOWN_TOPIC_OR_PART for a topic the metadata already listed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Future

import tenacity
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from orchestration.provisioning.declarations import TopicDeclaration
from orchestration.provisioning.live_state import CALL_TIMEOUT, ProvisioningError, read_live_state
from orchestration.provisioning.plan import AddPartitions, AlterConfigs, CreateTopic, Plan, plan_topics


def apply_plan(admin: AdminClient, plan: Plan, *, validate_only: bool = False, timeout: float = CALL_TIMEOUT) -> None:
    """Perform `plan.actions` (or only have them validated); raise on any failure, naming each."""
    if plan.errors:
        raise ProvisioningError(f"refusing to apply a plan with {len(plan.errors)} error(s)")
    creates = [a for a in plan.actions if isinstance(a, CreateTopic)]
    additions = [a for a in plan.actions if isinstance(a, AddPartitions)]
    alterations = [a for a in plan.actions if isinstance(a, AlterConfigs)]
    calls = {"operation_timeout": timeout, "request_timeout": timeout, "validate_only": validate_only}
    failures: list[str] = []
    if creates:
        futures = admin.create_topics(
            [NewTopic(a.topic, a.partitions, a.replication_factor, config=dict(a.configs)) for a in creates],
            **calls,
        )
        described = {a.topic: f"create with {_create_settings(a)}" for a in creates}
        failures += _failures(futures, described, timeout)
    if additions:
        futures = admin.create_partitions([NewPartitions(a.topic, a.target) for a in additions], **calls)
        described = {a.topic: f"raise partitions from {a.current} to {a.target}" for a in additions}
        failures += _failures(futures, described, timeout)
    if alterations:
        resources = [
            ConfigResource(
                ResourceType.TOPIC,
                a.topic,
                incremental_configs=[
                    ConfigEntry(c.key, c.desired, incremental_operation=AlterConfigOpType.SET) for c in a.changes
                ],
            )
            for a in alterations
        ]
        by_resource = admin.incremental_alter_configs(resources, request_timeout=timeout, validate_only=validate_only)
        described = {a.topic: "set " + ", ".join(f"{c.key}={c.desired}" for c in a.changes) for a in alterations}
        futures = {resource.name: future for resource, future in by_resource.items()}
        failures += _failures(futures, described, timeout)
    if failures:
        verb = "validation" if validate_only else "provisioning"
        raise ProvisioningError(f"{verb} failed for {len(failures)} action(s): " + "; ".join(failures))


def wait_until_converged(
    admin: AdminClient, declarations: Sequence[TopicDeclaration], timeout: float = CALL_TIMEOUT
) -> Plan:
    """Plan against fresh reads until the plan is empty (or has errors, or `timeout` passes).

    A read may also fail for a while: the broker that answers describe_configs may not know a
    topic that the metadata already lists. Such a read is retried too; after `timeout` its error
    is raised.
    """
    names = [declaration.name for declaration in declarations]
    polling = tenacity.Retrying(
        # a read that fails, or a plan with work left and no errors (errors do not go away by waiting)
        retry=tenacity.retry_if_exception_type(ProvisioningError)
        | tenacity.retry_if_result(lambda plan: not (plan.is_empty or plan.errors)),
        stop=tenacity.stop_after_delay(timeout),
        wait=tenacity.wait_fixed(0.5),
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
    )
    return polling(lambda: plan_topics(declarations, read_live_state(admin, names)))


def _failures(futures: Mapping[str, Future], described: Mapping[str, str], timeout: float) -> list[str]:
    """The failed actions among `futures` (topic -> future), each named by topic and settings."""
    failures = []
    for topic, future in futures.items():
        try:
            future.result(timeout=timeout)
        except Exception as error:  # KafkaException from the broker, TimeoutError from the future
            failures.append(f"topic {topic!r}: {described[topic]}: {_reason(error)}")
    return failures


def _reason(error: Exception) -> str:
    if isinstance(error, KafkaException) and isinstance(error.args[0], KafkaError):
        kafka_error: KafkaError = error.args[0]
        return f"{kafka_error.name()}: {kafka_error.str()}"
    if isinstance(error, TimeoutError):
        return "no answer from the cluster in time"
    return f"{type(error).__name__}: {error}"


def _create_settings(action: CreateTopic) -> str:
    configs = "".join(f", {key}={value}" for key, value in sorted(action.configs.items()))
    return f"partitions={action.partitions}, replication_factor={action.replication_factor}{configs}"
