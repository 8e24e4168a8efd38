"""What only Apicurio Registry's own API tells (`/apis/registry/v3`), where its Confluent-compatible API cannot.

- Whether a subject has a compatibility level of its own. Apicurio's `GET /config/{subject}` answers the
  global level when the subject has none, whatever `defaultToGlobal` says (Confluent answers 404 40408), so
  a level an operator set on the subject cannot be told from the default there. Its own API lists the
  subject's rules: `GET .../artifacts/{subject}/rules/COMPATIBILITY` is 404 when the subject has none.
- The reasons an incompatible schema would be refused. Its compatibility test answers a bare verdict even
  with `verbose=true`; creating a version with `dryRun=true` runs the subject's rules, stores nothing, and
  answers their violations ("Incompatible artifact: ... list of diff types: [c at /fields/2]").

Both requests go through the Confluent client's own HTTP session, so its TLS and basic-authentication
settings apply. Subjects live in Apicurio's default group (where the Confluent API puts them).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from confluent_kafka.schema_registry import SchemaRegistryClient

CONFLUENT_API = "/apis/ccompat/"
NATIVE_API = "/apis/registry/v3"
NOT_FOUND = 404


def is_apicurio(client: SchemaRegistryClient) -> bool:
    """Whether the client talks to Apicurio's Confluent-compatible API (its URL path says so)."""
    return CONFLUENT_API in _base_url(client)


def subject_rule(client: SchemaRegistryClient, subject: str) -> str | None:
    """The compatibility level set on `subject` itself, or None when it has none (the global level applies)."""
    response = _session(client).get(f"{_artifact_url(client, subject)}/rules/COMPATIBILITY")
    if response.status_code == NOT_FOUND:
        return None
    response.raise_for_status()
    level = response.json().get("config")
    return str(level) if level else None


def dry_run_reasons(client: SchemaRegistryClient, subject: str, schema_str: str) -> list[str]:
    """The registry's reasons for refusing `schema_str` as `subject`'s next version; [] when it would accept
    it. Stores nothing (`dryRun=true`)."""
    body = {"content": {"content": schema_str, "contentType": "application/json"}}
    response = _session(client).post(
        f"{_artifact_url(client, subject)}/versions",
        params={"dryRun": "true"},
        content=json.dumps(body),
        headers={"Content-Type": "application/json"},
    )
    if response.is_success:
        return []
    answer: dict[str, Any] = response.json() if response.content else {}
    if answer.get("name") != "RuleViolationException":
        response.raise_for_status()
    return [str(answer.get("title") or answer.get("detail") or response.text)]


def _base_url(client: SchemaRegistryClient) -> str:
    rest = client._rest_client  # the client's own session: its URL, TLS and authentication
    return str(rest.base_urls[0])


def _session(client: SchemaRegistryClient) -> Any:
    return client._rest_client.session


def _artifact_url(client: SchemaRegistryClient, subject: str) -> str:
    root = _base_url(client).split(CONFLUENT_API, 1)[0]
    return f"{root}{NATIVE_API}/groups/default/artifacts/{quote(subject, safe='')}"
