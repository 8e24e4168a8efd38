"""The control plane's registry operations on a value subject: its level, checks, registration, drift.

Only the control plane writes the registry (provisioning and `kdp schema register`); converters only look
their schema up (`streaming.schema_registry`).

- `subject_level`: the level set on the subject itself, None when it has none (Confluent: `GET
  /config/{subject}` 404; Apicurio answers the global level there, so its own API is asked,
  `orchestration.schema.apicurio`).
- `ensure_subject_level`: sets `default` (BACKWARD_TRANSITIVE) on a subject that has no level of its own, and
  keeps an operator's level as it is.
- `check_compatibility`: the proposed schema against **every** registered version, one request per version
  (`POST /compatibility/subjects/{s}/versions/{v}?verbose=true`), under the subject's level, with the
  registry's reasons (Confluent's verbose messages; from Apicurio, which gives none there, the reasons its
  dry-run registration states). A schema passes only when every version agrees: that is the promise
  BACKWARD_TRANSITIVE makes (a reader on the newest schema reads everything on the topic), and a
  non-transitive level, which only looks at the latest version, is not allowed to hide an older one.
- `register_value_schema`: level, check, then registration (idempotent: the same schema keeps its version).
- `drift`: whether the subject's latest version is the repository's schema.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from orchestration.schema import apicurio
from streaming.schema_registry import COMPATIBILITY_LEVELS, RegisteredValueSchema, retrying

log = logging.getLogger(__name__)

DEFAULT_COMPATIBILITY = "BACKWARD_TRANSITIVE"
"""The level provisioning sets on a subject that has none: new readers read every record on the topic."""
NOT_FOUND = 404
CONFLICT = 409


class SchemaIncompatibleError(RuntimeError):
    """The proposed schema is incompatible with registered versions; the message quotes the registry."""

    def __init__(self, report: CompatibilityReport, message: str | None = None) -> None:
        self.report = report
        super().__init__(message or report.refusal())


@dataclass(frozen=True)
class VersionVerdict:
    """The registry's verdict on the proposed schema against one registered version."""

    version: int
    compatible: bool
    messages: tuple[str, ...] = ()


@dataclass(frozen=True)
class CompatibilityReport:
    """The proposed schema against every registered version of `subject` (`check_compatibility`)."""

    subject: str
    level: str
    """The level the registry applies: the subject's own, else the global one."""
    level_is_subjects: bool
    verdicts: tuple[VersionVerdict, ...]
    registered_as: int | None
    """The version that already holds exactly this schema, if any."""
    reasons: tuple[str, ...] = ()
    """The registry's reasons when some version is incompatible (empty when it gave none)."""

    @property
    def compatible(self) -> bool:
        return all(v.compatible for v in self.verdicts)

    @property
    def incompatible_versions(self) -> list[int]:
        return [v.version for v in self.verdicts if not v.compatible]

    def refusal(self) -> str:
        """One line: which versions refuse the schema, under which level, and the registry's reasons."""
        versions = ", ".join(str(v) for v in self.incompatible_versions)
        reasons = "; ".join(self.reasons) or "the registry gave no details"
        return (
            f"the schema is not {self.level}-compatible with version(s) {versions} of subject {self.subject!r}: "
            f"{reasons}. Make the change compatible (e.g. give a new field a default) or use a new subject"
        )

    def describe(self) -> list[str]:
        """The report as lines for a person: level, then one line per version."""
        source = "set on the subject" if self.level_is_subjects else "the registry's global level"
        lines = [f"subject {self.subject}: compatibility {self.level} ({source})"]
        if not self.verdicts:
            lines.append("no registered version: the schema would be the subject's first")
        for verdict in self.verdicts:
            outcome = "compatible" if verdict.compatible else "INCOMPATIBLE"
            detail = f": {'; '.join(verdict.messages)}" if verdict.messages else ""
            same = " (this very schema)" if verdict.version == self.registered_as else ""
            lines.append(f"  version {verdict.version}: {outcome}{same}{detail}")
        if self.verdicts and not self.compatible and self.reasons:
            lines.append(f"registry's reasons: {'; '.join(self.reasons)}")
        return lines


@dataclass(frozen=True)
class LevelOutcome:
    level: str
    kept: bool
    """True when the subject already had a level of its own (an operator's), left as it was."""


@dataclass(frozen=True)
class Drift:
    """The subject's latest registered version against the repository's schema."""

    subject: str
    latest_version: int | None
    latest_id: int | None
    matches: bool

    def describe(self) -> str:
        if self.latest_version is None:
            return f"subject {self.subject!r} has no registered version; the repository's schema is not registered"
        if self.matches:
            return f"subject {self.subject!r}: latest version {self.latest_version} is the repository's schema"
        return (
            f"subject {self.subject!r}: latest version {self.latest_version} (id {self.latest_id}) differs from "
            "the repository's schema"
        )


def subject_level(client: SchemaRegistryClient, subject: str) -> str | None:
    """The compatibility level set on `subject` itself; None when it has none (the global level applies)."""
    if apicurio.is_apicurio(client):
        return retrying(lambda: apicurio.subject_rule(client, subject))
    try:
        answer: dict[str, Any] = retrying(
            lambda: _rest(client).get(f"config/{_quoted(subject)}", {"defaultToGlobal": "false"})
        )
    except SchemaRegistryError as error:
        if error.http_status_code == NOT_FOUND:
            return None
        raise
    level = answer.get("compatibilityLevel") or answer.get("compatibility")
    return str(level) if level else None


def effective_level(client: SchemaRegistryClient, subject: str) -> tuple[str, bool]:
    """(the level the registry applies to `subject`, whether it is the subject's own)."""
    own = subject_level(client, subject)
    if own is not None:
        return own, True
    answer: dict[str, Any] = retrying(lambda: _rest(client).get("config"))
    return str(answer.get("compatibilityLevel") or "NONE"), False


def ensure_subject_level(
    client: SchemaRegistryClient, subject: str, default: str = DEFAULT_COMPATIBILITY
) -> LevelOutcome:
    """Set `default` on `subject` unless it has a level of its own, which is kept."""
    if default not in COMPATIBILITY_LEVELS:
        raise ValueError(f"compatibility {default!r} is not one of {', '.join(COMPATIBILITY_LEVELS)}")
    own = subject_level(client, subject)
    if own is not None:
        if own != default:
            log.info("subject %s keeps its own compatibility %s (the default is %s)", subject, own, default)
        return LevelOutcome(own, kept=True)

    def set_level() -> None:
        try:
            client.set_compatibility(subject_name=subject, level=default)
        except SchemaRegistryError as error:
            # Apicurio answers 409 when another control-plane run created the subject's rule first: again, as
            # an update, it succeeds.
            if error.http_status_code != CONFLICT:
                raise
            client.set_compatibility(subject_name=subject, level=default)

    retrying(set_level)
    log.info("subject %s: compatibility set to %s", subject, default)
    return LevelOutcome(default, kept=False)


def check_compatibility(client: SchemaRegistryClient, subject: str, schema_str: str) -> CompatibilityReport:
    """`schema_str` against every version registered under `subject`; see the module docstring."""
    schema = Schema(schema_str, "AVRO")
    level, own = effective_level(client, subject)
    versions = _versions(client, subject)
    verdicts = tuple(_verdict(client, subject, version, schema) for version in versions)
    registered_as = _registered_version(client, subject, schema) if versions else None
    reasons: tuple[str, ...] = ()
    if not all(v.compatible for v in verdicts):
        reasons = tuple(dict.fromkeys(m for v in verdicts for m in v.messages))
        if not reasons and apicurio.is_apicurio(client):
            reasons = tuple(retrying(lambda: apicurio.dry_run_reasons(client, subject, schema_str)))
    return CompatibilityReport(subject, level, own, verdicts, registered_as, reasons)


def register_value_schema(
    client: SchemaRegistryClient,
    subject: str,
    schema_str: str,
    default_level: str = DEFAULT_COMPATIBILITY,
    *,
    execute: bool = True,
) -> tuple[CompatibilityReport, RegisteredValueSchema | None]:
    """Check `schema_str` against every version of `subject`, then (when `execute`) set the subject's level if
    it has none and register the schema. Raises `SchemaIncompatibleError` (nothing changed) when a version
    refuses it. Returns the report and the registration (None in a dry run)."""
    report = check_compatibility(client, subject, schema_str)
    if not report.compatible:
        raise SchemaIncompatibleError(report)
    if not execute:
        return report, None
    ensure_subject_level(client, subject, default_level)
    schema = Schema(schema_str, "AVRO")

    def register() -> RegisteredValueSchema:
        try:
            client.register_schema(subject, schema)
        except SchemaRegistryError as error:
            if error.http_status_code == CONFLICT:  # a version registered since the check refuses it
                message = f"the registry refused the schema under subject {subject!r}: {error.error_message}"
                raise SchemaIncompatibleError(report, message) from error
            raise
        found = client.lookup_schema(subject, schema)
        if found.schema_id is None or found.version is None:  # pragma: no cover - a registry breaking its API
            raise RuntimeError(f"the registry found the schema under {subject!r} but gave no id or version")
        return RegisteredValueSchema(subject, found.schema_id, found.version, found.schema.schema_str or "")

    registered = retrying(register)
    log.info("schema registered: subject %s, version %d, id %d", subject, registered.version, registered.schema_id)
    return report, registered


def drift(client: SchemaRegistryClient, subject: str, schema_str: str) -> Drift:
    """Whether `subject`'s latest version is `schema_str` (compared as JSON: layout and key order aside)."""
    try:
        latest = retrying(lambda: client.get_latest_version(subject))
    except SchemaRegistryError as error:
        if error.http_status_code == NOT_FOUND:
            return Drift(subject, None, None, matches=False)
        raise
    registered = json.loads(latest.schema.schema_str or "null")
    return Drift(subject, latest.version, latest.schema_id, matches=registered == json.loads(schema_str))


def _versions(client: SchemaRegistryClient, subject: str) -> list[int]:
    try:
        return sorted(retrying(lambda: client.get_versions(subject)))
    except SchemaRegistryError as error:
        if error.http_status_code == NOT_FOUND:
            return []
        raise


def _verdict(client: SchemaRegistryClient, subject: str, version: int, schema: Schema) -> VersionVerdict:
    answer: dict[str, Any] = retrying(
        lambda: _rest(client).post(
            f"compatibility/subjects/{_quoted(subject)}/versions/{version}?verbose=true", body=schema.to_dict()
        )
    )
    messages = tuple(str(m) for m in answer.get("messages") or ())
    return VersionVerdict(version, bool(answer.get("is_compatible", False)), messages)


def _registered_version(client: SchemaRegistryClient, subject: str, schema: Schema) -> int | None:
    try:
        return retrying(lambda: client.lookup_schema(subject, schema)).version
    except SchemaRegistryError as error:
        if error.http_status_code == NOT_FOUND:
            return None
        raise


def _rest(client: SchemaRegistryClient) -> Any:
    """The client's REST session (its URL, authentication and TLS): for the answers its public methods drop
    (`verbose` reasons, a subject level without the global fallback)."""
    return client._rest_client


def _quoted(subject: str) -> str:
    return quote(subject, safe="")
