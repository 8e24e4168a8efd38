"""Make sure the output schema is registered under its subject and rule, once, at start; nothing per message.

`ensure_value_schema(client, subject, schema_str)`:
1. sets the subject's compatibility level (default BACKWARD: consumers on the new schema can read every
   record already written), so the rule lives on the subject and not only in a global default;
2. when the subject has versions, asks the registry whether the schema is compatible with the latest one,
   and refuses with `SchemaIncompatibleError`, naming the subject and quoting the registry's reasons;
3. registers the schema (the registry returns the existing id when the same schema is already there)
   and returns a `RegisteredValueSchema` (subject, id, version, schema text) to build the encoder from.

The registry may still be starting when the converter starts: connection failures and 5xx answers are
retried with exponential back-off, each logged, until `deadline_s`, then `RegistryUnavailableError`.
Other refusals (401, 422 invalid schema, ...) are not retried: waiting would not change them. (The
confluent-kafka client also retries each request itself, `max.retries` times with its own back-off, so the
deadline is checked between attempts and may be overrun by one attempt.)

Works against Confluent Schema Registry and Apicurio Registry's Confluent-compatible API
(`/apis/ccompat/v7`). Apicurio answers a verbose compatibility test with a verdict but no reasons; then
the registration is attempted anyway, and the registry's refusal (409, with its own wording, e.g.
"Incompatible artifact: ... list of diff types: [b at /fields/1]") becomes the error's reason.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import fastavro
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
_SUBJECT_NOT_FOUND = 40401


@dataclass(frozen=True)
class RegisteredValueSchema:
    """A schema as the registry holds it under a subject: what an encoder and its readers agree on."""

    subject: str
    schema_id: int
    version: int
    schema_str: str


class SchemaIncompatibleError(RuntimeError):
    """The registry refuses the schema under the subject's compatibility rule."""

    def __init__(self, subject: str, level: str, messages: list[str]) -> None:
        self.subject = subject
        self.level = level
        self.messages = messages
        reasons = "; ".join(messages) or "the registry gave no details"
        super().__init__(
            f"schema for subject {subject!r} is not {level}-compatible with its latest version: {reasons}. "
            "Make the change compatible (e.g. give a new field a default) or register it under a new subject."
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
        raise ValueError(f"cannot read schema file {path}: {error}") from error
    except ValueError as error:  # json.JSONDecodeError and fastavro's SchemaParseException are ValueErrors
        raise ValueError(f"{path} is not a valid Avro schema: {error}") from error
    return text


def ensure_value_schema(
    client: SchemaRegistryClient,
    subject: str,
    schema_str: str,
    compatibility: str = "BACKWARD",
    *,
    deadline_s: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> RegisteredValueSchema:
    """Register `schema_str` (Avro) under `subject` with `compatibility`; see the module docstring."""
    if compatibility not in COMPATIBILITY_LEVELS:
        raise ValueError(f"compatibility {compatibility!r} is not one of {', '.join(COMPATIBILITY_LEVELS)}")
    schema = Schema(schema_str, "AVRO")
    return _retrying(lambda: _ensure(client, subject, schema, compatibility), deadline_s, sleep, clock)


def _ensure(client: SchemaRegistryClient, subject: str, schema: Schema, level: str) -> RegisteredValueSchema:
    try:
        client.set_compatibility(subject_name=subject, level=level)  # also valid before the subject's first version
    except SchemaRegistryError as error:
        # Apicurio answers 409 when a converter starting beside this one created the subject's rule first;
        # setting it again is then an update, which succeeds.
        if error.http_status_code != 409:
            raise
        client.set_compatibility(subject_name=subject, level=level)
    if _subject_exists(client, subject):
        problems = _incompatibilities(client, subject, schema)
        if problems:
            raise SchemaIncompatibleError(subject, level, problems)
        # problems == []: incompatible, but no reasons given; registering lets the registry state them (409).
    _register(client, subject, schema, level)
    found = client.lookup_schema(subject, schema)
    if found.schema_id is None or found.version is None:  # pragma: no cover - a registry breaking its API
        raise RuntimeError(f"the registry found the schema under {subject!r} but gave no id or version")
    registered = RegisteredValueSchema(subject, found.schema_id, found.version, found.schema.schema_str or "")
    log.info(
        "schema registered: subject %s, version %d, id %d, compatibility %s",
        subject, registered.version, registered.schema_id, level,
    )  # fmt: skip
    return registered


def _subject_exists(client: SchemaRegistryClient, subject: str) -> bool:
    try:
        client.get_latest_version(subject)
    except SchemaRegistryError as error:
        if error.http_status_code == 404:
            return False
        raise
    return True


def _register(client: SchemaRegistryClient, subject: str, schema: Schema, level: str) -> None:
    try:
        client.register_schema(subject, schema)
    except SchemaRegistryError as error:
        if error.http_status_code == 409:  # incompatible under the subject's rule
            raise SchemaIncompatibleError(subject, level, [error.error_message]) from error
        raise


def _incompatibilities(client: SchemaRegistryClient, subject: str, schema: Schema) -> list[str] | None:
    """None when `schema` is compatible with the subject's latest version, else the registry's reasons
    (an empty list when it gives none).

    The public `test_compatibility` returns only a boolean; the verbose answer (with the reasons) is asked
    for through the client's own REST session, so that its URL, authentication and TLS settings apply.
    """
    rest = getattr(client, "_rest_client", None)
    if rest is None:  # pragma: no cover - another client implementation: no reasons, but still a verdict
        return None if client.test_compatibility(subject, schema) else []
    answer: dict[str, Any] = rest.post(
        f"compatibility/subjects/{quote(subject, safe='')}/versions/latest?verbose=true",
        body=schema.to_dict(),
    )
    if answer.get("is_compatible", False):
        return None
    messages = answer.get("messages") or []
    return [str(message) for message in messages]


def _retryable(error: Exception) -> bool:
    if isinstance(error, SchemaRegistryError):
        return error.http_status_code >= 500 or error.http_status_code < 0
    return isinstance(error, httpx.TransportError | ConnectionError | TimeoutError)


def _retrying(
    action: Callable[[], T], deadline_s: float, sleep: Callable[[float], None], clock: Callable[[], float]
) -> T:
    """`action()`, retried while the registry is unreachable or failing (5xx), for up to `deadline_s`."""
    give_up_at = clock() + deadline_s
    delay = 0.5
    while True:
        try:
            return action()
        except Exception as error:
            if not _retryable(error):
                raise
            remaining = give_up_at - clock()
            if remaining <= 0:
                raise RegistryUnavailableError(
                    f"the schema registry did not answer usefully within {deadline_s:g} s "
                    f"(last error: {error}); is it running, and is KDP_REGISTRY_URL right?"
                ) from error
            wait = min(delay, remaining)
            log.warning(
                "schema registry unavailable (%s); retrying in %.1f s, giving up in %.0f s",
                error,
                wait,
                remaining,
            )
            sleep(wait)
            delay = min(delay * 2, 10.0)
