"""The schema evolution workflow's operations, as `kdp schema` and the Dagster schema jobs both run them.

In the order an operator runs them (schemas/README.md, "Evolving the schema"):

1. `check(settings, proposed)`: the proposed contract against every version registered under the output
   subject (`orchestration.schema.registry.check_compatibility`). Reads only.
2. `preview(settings, proposed)`: the proposed contract beside the current one over the source topic's
   recent messages (`orchestration.schema.preview`). Reads only.
3. `register(settings, proposed, execute=False)`: the check again, then, with `execute`, the registration (the
   subject's level set first when it has none). A dry run by default.

`drift(settings)`: whether the subject's latest version is the repository's schema (the Dagster asset check).
Errors that stop an operation before it changes anything: `ContractError` (a file), `PreviewError` (the
topic), `SchemaIncompatibleError` (the registry's reasons), `RegistryUnavailableError`.
"""

from __future__ import annotations

from confluent_kafka.schema_registry import SchemaRegistryClient

from orchestration.schema import registry
from orchestration.schema.contract import BuildConversion, Contract, load_contract, reference_conversion
from orchestration.schema.preview import DEFAULT_LAST, PreviewReport, preview_contracts
from orchestration.schema.registry import CompatibilityReport, Drift
from streaming.schema_registry import RegisteredValueSchema
from streaming.settings import Settings
from streaming.topics import value_subject


def output_subject(settings: Settings) -> str:
    return value_subject(settings.output_topic)


def check(settings: Settings, proposed: Contract) -> CompatibilityReport:
    """`proposed` against every registered version of the output subject, with the registry's reasons."""
    return registry.check_compatibility(_client(settings), output_subject(settings), proposed.schema_str)


def preview(
    settings: Settings,
    proposed: Contract,
    current: Contract | None = None,
    *,
    last: int = DEFAULT_LAST,
    topic: str | None = None,
    build: BuildConversion = reference_conversion,
) -> PreviewReport:
    """`proposed` beside `current` (default: the repository's contract) over the source topic's last `last`
    messages per partition. Writes nothing anywhere."""
    return preview_contracts(settings, current or load_contract(), proposed, last=last, topic=topic, build=build)


def register(
    settings: Settings, proposed: Contract, *, execute: bool = False
) -> tuple[CompatibilityReport, RegisteredValueSchema | None]:
    """Check, then register `proposed`'s schema under the output subject when `execute` (else a dry run).
    Raises `SchemaIncompatibleError`, having changed nothing, when a registered version refuses it."""
    return registry.register_value_schema(
        _client(settings), output_subject(settings), proposed.schema_str, execute=execute
    )


def drift(settings: Settings, repository: Contract | None = None) -> Drift:
    """The output subject's latest version against the repository's schema."""
    schema_str = (repository or load_contract()).schema_str
    return registry.drift(_client(settings), output_subject(settings), schema_str)


def _client(settings: Settings) -> SchemaRegistryClient:
    return SchemaRegistryClient(settings.registry_config())
