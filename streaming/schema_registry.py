"""Looking the output schema up in the registry, once, at start: what a converter may do with the registry.

The data plane reads the registry and never writes it. `lookup_value_schema(client, subject, schema_str)`
asks whether `schema_str` is registered under `subject` and returns its `RegisteredValueSchema` (subject,
id, version, the registered text to build the encoder from). When it is not, `SchemaNotRegisteredError`
names the subject and the command that registers it: registering a schema and choosing a subject's
compatibility level belong to the control plane (the Dagster job `provision_topics` and `kdp schema
register`, in `orchestration.schema`), so that an operator's level is never reset by a converter starting,
and converters need only read rights on the registry.

The registry may still be starting when the converter starts: connection failures and 5xx answers are
retried with exponential back-off, each logged, until `deadline_s`, then `RegistryUnavailableError`.
Other refusals (401, 422 invalid schema, ...) are not retried: waiting would not change them. (The
confluent-kafka client also retries each request itself, `max.retries` times with its own back-off, so the
deadline is checked between attempts and may be overrun by one attempt.) `retrying` is shared with the
control plane's registry calls.

Works against Confluent Schema Registry and Apicurio Registry's Confluent-compatible API
(`/apis/ccompat/v7`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import fastavro
import tenacity
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from streaming.settings import ServiceUnreachableError

try:  # the HTTP client confluent-kafka uses: httpx2 where installed, else httpx
    import httpx2 as httpx
except ImportError:  # pragma: no cover - depends on the environment
    import httpx  # type: ignore[no-redef]

log = logging.getLogger(__name__)

T = TypeVar("T")

COMPATIBILITY_LEVELS = (
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
    "NONE",
)
REGISTER_COMMAND = "kdp schema register --execute"
"""What registers the repository's output schema (the Dagster job `provision_topics` does too)."""
NOT_FOUND = 404


@dataclass(frozen=True)
class RegisteredValueSchema:
    """A schema as the registry holds it under a subject: what an encoder and its readers agree on."""

    subject: str
    schema_id: int
    version: int
    schema_str: str


class SchemaNotRegisteredError(RuntimeError):
    """The schema a converter would write is not registered under its subject; the converter must not start."""

    def __init__(self, subject: str, schema_file: str | Path | None = None) -> None:
        self.subject = subject
        what = f"the output schema {schema_file}" if schema_file else "the output schema"
        super().__init__(
            f"{what} is not registered under subject {subject!r}: register it with `{REGISTER_COMMAND}` "
            "(or the Dagster job provision_topics), then start again"
        )


class RegistryUnavailableError(ServiceUnreachableError):
    """The registry did not answer usefully before the deadline."""


def load_schema(path: str | Path) -> str:
    """The text of the Avro schema file at `path`, checked to be a valid schema (errors name the file)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        fastavro.parse_schema(json.loads(text))
    except OSError as error:
        raise ValueError(f"cannot read schema file {path}: {error.strerror or error}") from error
    except ValueError as error:  # json.JSONDecodeError and fastavro's SchemaParseException are ValueErrors
        raise ValueError(f"{path} is not a valid Avro schema: {error}") from error
    return text


def lookup_value_schema(
    client: SchemaRegistryClient,
    subject: str,
    schema_str: str,
    *,
    schema_file: str | Path | None = None,
    deadline_s: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> RegisteredValueSchema:
    """`schema_str` (Avro) as registered under `subject`; `SchemaNotRegisteredError` when it is not.

    Reads only: no registration, no compatibility setting. `schema_file` names the schema in the error.
    """
    schema = Schema(schema_str, "AVRO")

    def lookup() -> RegisteredValueSchema:
        try:
            found = client.lookup_schema(subject, schema)
        except SchemaRegistryError as error:
            if error.http_status_code == NOT_FOUND:  # no such subject (40401), or not under it (40403)
                raise SchemaNotRegisteredError(subject, schema_file) from None
            raise
        if found.schema_id is None or found.version is None:  # pragma: no cover - a registry breaking its API
            raise RuntimeError(f"the registry found the schema under {subject!r} but gave no id or version")
        return RegisteredValueSchema(subject, found.schema_id, found.version, found.schema.schema_str or "")

    registered = retrying(lookup, deadline_s, sleep, clock)
    log.info("output schema: subject %s, version %d, id %d", subject, registered.version, registered.schema_id)
    return registered


def _retryable(error: BaseException) -> bool:
    if isinstance(error, SchemaRegistryError):
        return error.http_status_code >= 500 or error.http_status_code < 0
    return isinstance(error, httpx.TransportError | ConnectionError | TimeoutError)


def retrying(
    action: Callable[[], T],
    deadline_s: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """`action()`, retried while the registry is unreachable or failing (5xx), for up to `deadline_s`: waits of
    0.5 s doubling up to 10 s, the last one cut to end at the deadline; then `RegistryUnavailableError`."""
    give_up_at = clock() + deadline_s
    back_off = tenacity.wait_exponential(multiplier=0.5, max=10.0)

    def wait(state: tenacity.RetryCallState) -> float:
        return max(0.0, min(back_off(state), give_up_at - clock()))

    def warn(state: tenacity.RetryCallState) -> None:
        log.warning(
            "schema registry unavailable (%s); retrying in %.1f s, giving up in %.0f s",
            state.outcome.exception() if state.outcome else None,
            state.upcoming_sleep,
            give_up_at - clock(),
        )

    retryer = tenacity.Retrying(
        retry=tenacity.retry_if_exception(_retryable),
        wait=wait,
        stop=lambda _: clock() >= give_up_at,
        sleep=sleep,
        before_sleep=warn,
    )
    try:
        return retryer(action)
    except tenacity.RetryError as gave_up:
        error = gave_up.last_attempt.exception()
        raise RegistryUnavailableError(
            f"the schema registry did not answer usefully within {deadline_s:g} s "
            f"(last error: {error}); is it running, and is KDP_REGISTRY_URL right?"
        ) from error
