"""The schema workflow's jobs, `kdp schema check | preview | register` launchable from Dagster with typed config.

Each is one op calling `orchestration.schema.workflow`. Config: the proposed `schema_file` (default: the
repository's) and `rules_file`; `preview_schema` also `last` (messages per partition) and `topic`;
`register_schema` `execute` (false: a dry run, as on the command line). A bad input (a file, a missing topic,
an incompatible schema with the registry's reasons) fails the run with that one line, having changed nothing.
The op's metadata carries the report.

No `from __future__ import annotations`: Dagster reads the config annotations at import time.
"""

import dagster as dg

from orchestration.defs.resources import KafkaResource, SchemaRegistryResource, pipeline_settings
from orchestration.schema import workflow
from orchestration.schema.contract import Contract, ContractError, load_contract
from orchestration.schema.preview import DEFAULT_LAST, PreviewError
from orchestration.schema.registry import SchemaIncompatibleError
from streaming.loop.pipeline import PROCESSED_SCHEMA
from streaming.schema_registry import RegistryUnavailableError
from streaming.settings import Settings

AREA_TAGS = {"kdp/area": "schema"}
REFUSALS = (ContractError, PreviewError, SchemaIncompatibleError, RegistryUnavailableError)


class ProposedSchema(dg.Config):
    schema_file: str = str(PROCESSED_SCHEMA)
    """The proposed .avsc (default: the repository's)."""
    rules_file: str | None = None
    """The proposed conversion rules (default: the repository's)."""

    def contract(self, settings: Settings) -> Contract:
        """The proposed contract, checked as the converters `settings` describe would check it."""
        return load_contract(self.schema_file, self.rules_file, native=settings.native_fast_path)


class PreviewConfig(ProposedSchema):
    last: int = DEFAULT_LAST
    """Messages per source partition, the most recent ones."""
    topic: str | None = None
    """The topic to read (default: the source topic)."""


class RegisterConfig(ProposedSchema):
    execute: bool = False
    """Register; false: only check and say what would happen."""


def _report(lines: list[str]) -> dg.MetadataValue:
    return dg.MetadataValue.md("\n".join(f"- {line}" for line in lines))


@dg.op(description="The proposed schema against every registered version of the output subject.")
def check_schema_op(
    context: dg.OpExecutionContext, config: ProposedSchema, kafka: KafkaResource, registry: SchemaRegistryResource
) -> dg.Output:
    try:
        settings = pipeline_settings(kafka, registry)
        report = workflow.check(settings, config.contract(settings))
    except REFUSALS as error:
        raise dg.Failure(description=str(error)) from None
    context.log.info("\n".join(report.describe()))
    if not report.compatible:
        raise dg.Failure(description=report.refusal(), metadata={"report": _report(report.describe())})
    return dg.Output(None, metadata={"report": _report(report.describe()), "versions": len(report.verdicts)})


@dg.op(description="The proposed contract beside the current one on the source topic's recent messages; no writes.")
def preview_schema_op(
    context: dg.OpExecutionContext, config: PreviewConfig, kafka: KafkaResource, registry: SchemaRegistryResource
) -> dg.Output:
    try:
        settings = pipeline_settings(kafka, registry)
        report = workflow.preview(settings, config.contract(settings), last=config.last, topic=config.topic)
    except REFUSALS as error:
        raise dg.Failure(description=str(error)) from None
    context.log.info("\n".join(report.describe()))
    return dg.Output(
        None,
        metadata={
            "report": _report(report.describe()),
            "messages": report.messages,
            "changed_records": report.changed_records,
            "new_refusals": dg.MetadataValue.json(dict(report.new_refusals)),
            "readers_agree": report.readers_agree,
        },
    )


@dg.op(description="Check, then register the proposed schema under the output subject (a dry run unless execute).")
def register_schema_op(
    context: dg.OpExecutionContext, config: RegisterConfig, kafka: KafkaResource, registry: SchemaRegistryResource
) -> dg.Output:
    try:
        settings = pipeline_settings(kafka, registry)
        report, registered = workflow.register(settings, config.contract(settings), execute=config.execute)
    except REFUSALS as error:
        raise dg.Failure(description=str(error)) from None
    outcome = (
        f"registered as version {registered.version} (id {registered.schema_id})"
        if registered
        else "dry run: nothing registered"
    )
    context.log.info(outcome)
    return dg.Output(None, metadata={"summary": outcome, "report": _report(report.describe())})


@dg.job(description="Check a proposed output schema against every registered version.", tags=AREA_TAGS)
def check_schema() -> None:
    check_schema_op()


@dg.job(description="Preview a proposed output schema and rules on recent source messages.", tags=AREA_TAGS)
def preview_schema() -> None:
    preview_schema_op()


@dg.job(description="Register a proposed output schema after checking it (dry run unless execute).", tags=AREA_TAGS)
def register_schema() -> None:
    register_schema_op()
