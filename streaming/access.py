"""Refused by the cluster: authorization and authentication failures, found early and said in one line.

librdkafka reports a missing ACL in several ways, most of them late or vague: a produce or a fetch fails with
`TOPIC_AUTHORIZATION_FAILED` (naming no topic), `init_transactions` with `TRANSACTIONAL_ID_AUTHORIZATION_FAILED`,
and a consumer whose group is refused just waits (`committed()` ends in `_TIMED_OUT` after the request timeout,
the coordinator lookup's refusal is never surfaced). A wrong password shows only in the error callback, served
by `poll()`, while every call waits for its timeout.

So an operation states what it needs before it changes anything (`Need`), and `check_access` asks the cluster
through the Admin API, which answers at once: the operations the principal may do on each topic and group
(`include_authorized_operations`, KIP-430), and an authentication failure through the error callback. A
refusal raises `AccessDenied` naming the principal, the resource and the missing operation. For what a probe
cannot see ahead (a transactional id, whose only check is to use it), `denials_named` turns the call's
refusal into the same error. `refusal_line` gives the one line for any of them, for `kdp` and Dagster runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import AclOperation, AdminClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from streaming.settings import Settings

TOPIC, GROUP, TRANSACTIONAL_ID, CLUSTER = "topic", "group", "transactional id", "cluster"
PROBE_TIMEOUT_S = 10.0
"""How long `check_access` waits for the cluster: well under the 15 s a person waits for a refusal."""

AUTHORIZATION_FAILURES = {
    KafkaError.TOPIC_AUTHORIZATION_FAILED: TOPIC,
    KafkaError.GROUP_AUTHORIZATION_FAILED: GROUP,
    KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED: TRANSACTIONAL_ID,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED: CLUSTER,
}
"""The broker's authorization errors and the kind of resource each refers to."""
AUTHENTICATION_FAILURES = frozenset({KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED})
REGISTRY_REFUSALS = {
    401: "could not log in (check KDP_REGISTRY_USER and KDP_REGISTRY_PASSWORD)",
    403: "has no registry role that allows this request (converters only read: provisioning registers schemas)",
}


@dataclass(frozen=True)
class Need:
    """Operations (Kafka's names: READ, WRITE, DESCRIBE, ...) an operation needs on one topic or group."""

    kind: str
    name: str
    operations: tuple[str, ...]


def topic(name: str, *operations: str) -> Need:
    return Need(TOPIC, name, operations)


def group(name: str, *operations: str) -> Need:
    return Need(GROUP, name, operations)


class AccessDenied(Exception):
    """The cluster refused `principal` an `operation` on a resource (`kind` `name`), or refused its login."""

    def __init__(self, principal: str, kind: str, name: str | None, operation: str, detail: str = "") -> None:
        self.principal, self.kind, self.name, self.operation, self.detail = principal, kind, name, operation, detail
        what = f"{kind} {name!r}" if name else ("the cluster" if kind == CLUSTER else f"a {kind}")
        message = f"principal {principal!r} is not authorized to {operation} {what}"
        super().__init__(f"{message} ({detail})" if detail else message)


class AuthenticationFailed(Exception):
    """The cluster refused the login itself (wrong password, unknown user, wrong mechanism)."""

    def __init__(self, principal: str, mechanism: str | None, detail: str) -> None:
        self.principal = principal
        super().__init__(
            f"principal {principal!r} could not log in ({mechanism or 'no SASL mechanism'}): {detail}; "
            "check KDP_SASL_USERNAME and KDP_SASL_PASSWORD"
        )


def principal_of(settings: Settings) -> str:
    """Who the cluster sees: the SASL user, or ANONYMOUS without one."""
    return settings.sasl_username or "ANONYMOUS"


def check_access(settings: Settings, needs: Sequence[Need], timeout: float = PROBE_TIMEOUT_S) -> None:
    """Raise `AccessDenied` (or `AuthenticationFailed`) unless the principal of `settings` may do every operation
    of `needs`. Asks only; reads, writes and commits nothing.

    Does nothing for a cluster without authentication (no SASL user): there, a missing resource is for the
    operation's own checks to report. A topic the principal may describe but that does not exist passes too.
    """
    if not settings.sasl_username or not needs:
        return
    errors: list[KafkaError] = []
    config: dict[str, Any] = {**settings.kafka_config(), "error_cb": errors.append, "log_level": 0}
    admin = AdminClient(config)
    topics = sorted({need.name for need in needs if need.kind == TOPIC})
    groups = sorted({need.name for need in needs if need.kind == GROUP})
    futures: dict[tuple[str, str], Future[Any]] = {}
    if topics:
        described = admin.describe_topics(
            TopicCollection(topics), request_timeout=timeout, include_authorized_operations=True
        )
        futures |= {(TOPIC, name): future for name, future in described.items()}
    if groups:
        described = admin.describe_consumer_groups(groups, request_timeout=timeout, include_authorized_operations=True)
        futures |= {(GROUP, name): future for name, future in described.items()}
    _wait(admin, futures.values(), errors, settings, timeout)
    allowed = {key: _authorized(future) for key, future in futures.items()}
    for need in needs:
        granted = allowed.get((need.kind, need.name))
        if granted is None:
            continue  # not found: the operation says so in its own words
        for operation in need.operations:
            if operation not in granted:
                raise AccessDenied(principal_of(settings), need.kind, need.name, operation)


@contextmanager
def denials_named(settings: Settings, kind: str, name: str, operation: str) -> Iterator[None]:
    """Within the block, a refusal of the cluster (also one wrapped in another exception) becomes `AccessDenied`
    naming this resource and operation, or `AuthenticationFailed`."""
    try:
        yield
    except Exception as error:
        refused = denial(error, settings)
        if refused is None:
            raise
        if isinstance(refused, AccessDenied) and refused.kind == kind:
            refused = AccessDenied(refused.principal, kind, name, operation, refused.detail)
        raise refused from None


def denial(error: BaseException | KafkaError, settings: Settings) -> AccessDenied | AuthenticationFailed | None:
    """The refusal `error` stands for, if it is one: a `KafkaError`, a `KafkaException`, or an exception caused
    by one (the delivery wraps a fatal producer error). None for every other error."""
    kafka_error = error if isinstance(error, KafkaError) else _kafka_error_in(error)
    if kafka_error is None:
        return None
    code = kafka_error.code()
    if code in AUTHENTICATION_FAILURES:
        return AuthenticationFailed(principal_of(settings), settings.sasl_mechanism, kafka_error.str())
    kind = AUTHORIZATION_FAILURES.get(code)
    if kind is None:
        return None
    return AccessDenied(principal_of(settings), kind, None, "ALTER" if kind == CLUSTER else "use", kafka_error.name())


def refusal_line(error: BaseException, settings: Settings | None = None) -> str | None:
    """One line for a refusal of the cluster or of the schema registry (None when `error` is something else)."""
    if isinstance(error, AccessDenied | AuthenticationFailed):
        return f"refused: {error}"
    if isinstance(error, SchemaRegistryError) and error.http_status_code in REGISTRY_REFUSALS:
        user = (settings or Settings.from_env()).registry_user or "anonymous"
        why = REGISTRY_REFUSALS[error.http_status_code]
        return f"refused by the schema registry: {user!r} {why} (HTTP {error.http_status_code}: {error.error_message})"
    if _kafka_error_in(error) is None:
        return None
    refused = denial(error, settings or Settings.from_env())
    return f"refused: {refused}" if refused is not None else None


def _kafka_error_in(error: BaseException) -> KafkaError | None:
    """The KafkaError carried by `error` or by the exceptions it was raised from."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, KafkaException) and seen.args and isinstance(seen.args[0], KafkaError):
            return seen.args[0]
        seen = seen.__cause__ or seen.__context__
    return None


def _wait(
    admin: AdminClient, futures: Iterable[Future[Any]], errors: list[KafkaError], settings: Settings, timeout: float
) -> None:
    """Wait for `futures`, serving the error callback: a failed login ends the wait at once."""
    pending = list(futures)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        admin.poll(0.1)
        for error in errors:
            refused = denial(error, settings)
            if isinstance(refused, AuthenticationFailed):
                raise refused
        pending = [future for future in pending if not future.done()]


def _authorized(future: Future[Any]) -> set[str] | None:
    """The operations allowed on one described resource: none when even DESCRIBE is refused; None when the
    resource does not exist or the cluster did not answer in time."""
    try:
        described = future.result(timeout=0)
    except KafkaException as error:
        return set() if error.args[0].code() in AUTHORIZATION_FAILURES else None
    except TimeoutError:
        return None
    operations: list[AclOperation] | None = described.authorized_operations
    return {operation.name for operation in operations} if operations is not None else None
