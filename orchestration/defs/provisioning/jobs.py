"""The `provision_topics` job: make the cluster and the registry match `topics.yaml`.

Three steps, each visible in the run view with its own metadata:
1. `plan_topic_changes` reads the declarations and the cluster and records the plan as a markdown
   table (or "no changes");
2. `apply_topic_changes` fails if the plan has errors (lowered partitions, a replication-factor
   change: nothing is applied then), else applies it and re-reads the cluster until it matches;
3. `register_value_schemas` checks each declared value schema against every version registered under
   its subject, sets the declared compatibility level on a subject that has none (a level set on the
   subject, an operator's, is kept) and registers the schema (`orchestration.schema.registry`).

Running it again changes nothing: the plan is empty, and an identical schema keeps its id and
version. `dry_run: true` plans, has the brokers validate the changes (validate_only requests) and
the registry test the schemas against every registered version, and changes nothing; like a real run,
it fails when the plan has errors or a schema is incompatible, so a green dry run means "this would
apply".

Run config (job level): `{"dry_run": false, "declarations_file": null}`; `declarations_file`
replaces the project's `topics.yaml` (a path), e.g. to try a change before committing it.
Topic names come from the KDP_* settings, as everywhere else.
"""

from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from orchestration.defs.resources import KafkaResource, SchemaRegistryResource
from orchestration.provisioning.apply import apply_plan, wait_until_converged
from orchestration.provisioning.declarations import TopicDeclaration, load_declarations
from orchestration.provisioning.live_state import ProvisioningError, read_live_state
from orchestration.provisioning.plan import Plan, plan_topics, render_markdown
from orchestration.schema.registry import SchemaIncompatibleError, register_value_schema, subject_level
from streaming.schema_registry import RegistryUnavailableError, load_schema


class ProvisioningConfig(dg.Config):
    dry_run: bool = False
    """Plan and validate only: no topic, config or schema is changed."""
    declarations_file: str | None = None
    """Topic declarations to use instead of orchestration/provisioning/topics.yaml."""


class PlanConfig(dg.Config):
    declarations_file: str | None = None


class ApplyConfig(dg.Config):
    dry_run: bool = False


@dataclass(frozen=True)
class TopicPlan:
    """What the steps hand on: the declarations read in step 1 and the plan made of them."""

    declarations: tuple[TopicDeclaration, ...]
    plan: Plan


@dg.op(description="Read topics.yaml and the cluster; record the plan that makes the cluster match topics.yaml.")
def plan_topic_changes(context: dg.OpExecutionContext, config: PlanConfig, kafka: KafkaResource) -> dg.Output:
    path = Path(config.declarations_file) if config.declarations_file else None
    declarations = tuple(load_declarations(kafka.settings(), path))
    admin = kafka.admin()
    plan = plan_topics(declarations, read_live_state(admin, [d.name for d in declarations]))
    markdown = render_markdown(plan)
    context.log.info("topic plan:\n%s", markdown)
    return dg.Output(
        TopicPlan(declarations, plan),
        metadata={
            "summary": _summary(plan),
            "plan": dg.MetadataValue.md(markdown),
            "changes": dg.MetadataValue.int(len(plan.actions)),
            "errors": dg.MetadataValue.int(len(plan.errors)),
            "brokers": dg.MetadataValue.int(plan.broker_count),
        },
    )


@dg.op(description="Apply the topic plan unless it has errors, then verify that the cluster matches it.")
def apply_topic_changes(
    context: dg.OpExecutionContext, config: ApplyConfig, kafka: KafkaResource, topic_plan: TopicPlan
) -> dg.Output:
    plan = topic_plan.plan
    if plan.errors:
        problems = "; ".join(f"{e.topic} {e.setting}: {e.message}" for e in plan.errors)
        raise dg.Failure(
            description=f"the topic plan has {len(plan.errors)} error(s), nothing was applied: {problems}",
            metadata={"plan": dg.MetadataValue.md(render_markdown(plan))},
        )
    if plan.is_empty:
        return dg.Output(topic_plan, metadata={"summary": "no changes"})
    admin = kafka.admin()
    try:
        apply_plan(admin, plan, validate_only=config.dry_run)
    except ProvisioningError as error:
        raise dg.Failure(description=str(error)) from None
    if config.dry_run:
        summary = f"dry run: the brokers accepted {len(plan.actions)} change(s); nothing was changed"
        return dg.Output(topic_plan, metadata={"summary": summary})
    after = wait_until_converged(admin, topic_plan.declarations)
    if not after.is_empty:
        raise dg.Failure(
            description="the cluster still differs from the declarations after applying the plan",
            metadata={"remaining": dg.MetadataValue.md(render_markdown(after))},
        )
    context.log.info("applied %d change(s); the cluster now matches the declarations", len(plan.actions))
    return dg.Output(
        topic_plan,
        metadata={
            "summary": f"applied {len(plan.actions)} change(s); verified",
            "applied": dg.MetadataValue.md(render_markdown(plan)),
        },
    )


@dg.op(
    description="Check each declared value schema against every registered version, set the declared "
    "compatibility on a subject that has none (an operator's level is kept), register the schema."
)
def register_value_schemas(
    context: dg.OpExecutionContext,
    config: ApplyConfig,
    registry: SchemaRegistryResource,
    topic_plan: TopicPlan,
) -> dg.Output:
    client = registry.client()
    rows = ["| Subject | Compatibility | Schema id | Version | Outcome |", "|---|---|---|---|---|"]
    new_versions = 0
    for declaration in topic_plan.declarations:
        if declaration.value_schema is None:
            continue
        subject, declared = declaration.value_subject, declaration.value_schema.compatibility
        try:
            own_level = subject_level(client, subject)
            report, registered = register_value_schema(
                client, subject, load_schema(declaration.value_schema.file), declared, execute=not config.dry_run
            )
        except (SchemaIncompatibleError, RegistryUnavailableError) as error:
            raise dg.Failure(description=str(error)) from None
        level = f"{own_level} (kept)" if own_level else declared
        if registered is None:
            outcome = (
                f"already registered as version {report.registered_as}"
                if report.registered_as is not None
                else "would be registered"
            )
            rows.append(f"| `{subject}` | {level} | — | — | dry run: {outcome} |")
            continue
        unchanged = report.registered_as == registered.version
        outcome = "unchanged" if unchanged else "registered a new version"
        new_versions += not unchanged
        context.log.info(
            "%s: schema id %s, version %s (%s)", subject, registered.schema_id, registered.version, outcome
        )
        rows.append(f"| `{subject}` | {level} | {registered.schema_id} | {registered.version} | {outcome} |")
    if config.dry_run:
        summary = "dry run: nothing registered"
    else:
        summary = f"{new_versions} new schema version(s)" if new_versions else "no changes"
    return dg.Output(None, metadata={"summary": summary, "schemas": dg.MetadataValue.md("\n".join(rows))})


def _summary(plan: Plan) -> str:
    if plan.is_empty:
        return "no changes"
    return f"{len(plan.actions)} change(s), {len(plan.errors)} error(s)"


@dg.config_mapping
def provisioning_run_config(config: ProvisioningConfig) -> dg.RunConfig:
    """One job-level config, handed to the steps that use each field."""
    apply = ApplyConfig(dry_run=config.dry_run)
    return dg.RunConfig(
        ops={
            "plan_topic_changes": PlanConfig(declarations_file=config.declarations_file),
            "apply_topic_changes": apply,
            "register_value_schemas": apply,
        }
    )


@dg.job(
    config=provisioning_run_config,
    # Three short steps, each needing the one before: one process, not a process per step (which costs
    # seconds of start-up each and buys no parallelism here).
    executor_def=dg.in_process_executor,
    description="Create and update the pipeline's topics from orchestration/provisioning/topics.yaml, "
    "then register their value schemas. Idempotent; `dry_run` changes nothing.",
    tags={"kdp/area": "provisioning"},
)
def provision_topics() -> None:
    register_value_schemas(apply_topic_changes(plan_topic_changes()))
