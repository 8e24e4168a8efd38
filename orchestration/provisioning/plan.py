"""The provisioning planner: a pure function from declared topics and the live cluster to a plan.

Contract: `plan_topics(declarations, live)` returns a `Plan` whose `actions` bring the cluster to
the declarations, and whose `errors` list what the declarations ask for but provisioning must not
do. A plan with errors is never applied (not even in part): fixing the declarations, or running
the partition-reassignment job, comes first. An empty plan (`plan.is_empty`) means "nothing to do";
planning again after applying a plan gives an empty plan, which is how the job verifies its work.

What becomes what:
- a missing topic -> `CreateTopic` with the declared partitions, replication factor and configs;
- fewer partitions than declared -> `AddPartitions` (Kafka only ever adds: keys written from then
  on may hash to another partition than before);
- more partitions than declared -> an error (Kafka cannot remove partitions; never attempted);
- another replication factor -> an error: it moves replicas between brokers, a reassignment;
- a declared config whose value differs, or that is only inherited from a broker default ->
  `AlterConfigs` with exactly those keys. An inherited value counts as different even when equal,
  because it would silently change with the broker's default: the declaration pins it on the topic;
- topic-level overrides the declarations do not mention are left alone and listed as `unmanaged`.

No I/O, no clock: the function is tested with hand-built `LiveState` values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from orchestration.provisioning.declarations import (
    MIN_INSYNC_REPLICAS,
    DesiredTopic,
    TopicDeclaration,
    resolve,
)
from orchestration.provisioning.live_state import LiveState, LiveTopic

REASSIGNMENT_HINT = "run the partition-reassignment job (orchestration/defs/reassignment), which moves replicas"


@dataclass(frozen=True)
class CreateTopic:
    topic: str
    partitions: int
    replication_factor: int
    configs: dict[str, str]


@dataclass(frozen=True)
class AddPartitions:
    topic: str
    current: int
    target: int


@dataclass(frozen=True)
class ConfigChange:
    key: str
    current: str | None
    current_is_default: bool
    desired: str


@dataclass(frozen=True)
class AlterConfigs:
    topic: str
    changes: tuple[ConfigChange, ...]


Action = CreateTopic | AddPartitions | AlterConfigs


@dataclass(frozen=True)
class PlanError:
    """A declared state provisioning refuses to reach; `setting` is the declaration key at fault."""

    topic: str
    setting: str
    message: str


@dataclass(frozen=True)
class UnmanagedConfig:
    topic: str
    key: str
    value: str | None


@dataclass(frozen=True)
class Plan:
    broker_count: int
    desired: tuple[DesiredTopic, ...]
    actions: tuple[Action, ...]
    errors: tuple[PlanError, ...]
    unmanaged: tuple[UnmanagedConfig, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.actions and not self.errors


def plan_topics(declarations: Iterable[TopicDeclaration], live: LiveState) -> Plan:
    """The actions and errors that take `live` to `declarations` (see the module docstring)."""
    desired = tuple(resolve(declaration, live.broker_count) for declaration in declarations)
    actions: list[Action] = []
    errors: list[PlanError] = []
    unmanaged: list[UnmanagedConfig] = []
    for topic in desired:
        errors.extend(_impossible(topic, live.broker_count))
        current = live.topics.get(topic.name)
        if current is None:
            actions.append(CreateTopic(topic.name, topic.partitions, topic.replication_factor, dict(topic.configs)))
            continue
        if topic.partitions > current.partitions:
            actions.append(AddPartitions(topic.name, current.partitions, topic.partitions))
        errors.extend(_refused(topic, current))
        changes = tuple(_config_changes(topic, current))
        if changes:
            actions.append(AlterConfigs(topic.name, changes))
        unmanaged.extend(
            UnmanagedConfig(topic.name, key, config.value)
            for key, config in sorted(current.configs.items())
            if not config.is_default and key not in topic.configs
        )
    return Plan(live.broker_count, desired, tuple(actions), tuple(errors), tuple(unmanaged))


def _impossible(topic: DesiredTopic, broker_count: int) -> Iterable[PlanError]:
    if topic.replication_factor > broker_count:
        yield PlanError(
            topic.name,
            "replication_factor",
            f"declared {topic.replication_factor} but the cluster has {broker_count} broker(s); "
            "declare `auto` or at most the number of brokers",
        )
    min_isr = topic.configs.get(MIN_INSYNC_REPLICAS)
    if min_isr is not None and min_isr.isdigit() and int(min_isr) > topic.replication_factor:
        yield PlanError(
            topic.name,
            MIN_INSYNC_REPLICAS,
            f"{min_isr} exceeds the replication factor {topic.replication_factor}: "
            "producers with acks=all could never write; declare `auto`",
        )


def _refused(topic: DesiredTopic, current: LiveTopic) -> Iterable[PlanError]:
    """What an existing topic cannot get by provisioning: fewer partitions, another replication factor."""
    if topic.partitions < current.partitions:
        yield PlanError(
            topic.name,
            "partitions",
            f"declared {topic.partitions} but the topic has {current.partitions}: Kafka cannot remove "
            f"partitions; declare {current.partitions}, or recreate the topic (its data is lost)",
        )
    if current.replication_factors != {topic.replication_factor}:
        yield PlanError(
            topic.name,
            "replication_factor",
            f"declared {topic.replication_factor} but the topic's partitions have "
            f"{_replicas(current)}: provisioning does not move data; {REASSIGNMENT_HINT}",
        )


def _config_changes(topic: DesiredTopic, current: LiveTopic) -> Iterable[ConfigChange]:
    for key, value in sorted(topic.configs.items()):
        live = current.configs.get(key)
        if live is None:
            yield ConfigChange(key, None, True, value)
        elif live.value != value or live.is_default:
            yield ConfigChange(key, live.value, live.is_default, value)


def _replicas(topic: LiveTopic) -> str:
    counts = sorted(topic.replication_factors)
    if len(counts) == 1:
        return f"{counts[0]} replica(s)"
    return f"{' or '.join(map(str, counts))} replicas (a reassignment in progress?)"


def render_markdown(plan: Plan) -> str:
    """The plan for people: a summary line, the changes, the errors and the unmanaged overrides."""
    lines: list[str] = []
    where = f"{len(plan.desired)} declared topic(s) on {plan.broker_count} broker(s)"
    if plan.is_empty:
        lines.append(f"**No changes**: the cluster matches the declarations ({where}).")
    else:
        lines.append(f"**{len(plan.actions)} change(s), {len(plan.errors)} error(s)** for {where}.")
    if plan.actions:
        lines += ["", "| Topic | Change | Setting | Now | Declared |", "|---|---|---|---|---|"]
        for action in plan.actions:
            lines += [_row(*cells) for cells in _action_rows(action)]
    if plan.errors:
        lines += [
            "",
            "**Errors: nothing is applied until they are fixed.**",
            "",
            "| Topic | Setting | Problem |",
        ]
        lines += ["|---|---|---|"] + [_row(f"`{e.topic}`", e.setting, e.message) for e in plan.errors]
    if plan.unmanaged:
        lines += ["", "Topic-level overrides not in the declarations (left as they are):", ""]
        lines += ["| Topic | Setting | Value |", "|---|---|---|"]
        lines += [_row(f"`{u.topic}`", u.key, u.value or "") for u in plan.unmanaged]
    lines += [
        "",
        "Declared state:",
        "",
        "| Topic | Partitions | Replication factor | Configs |",
        "|---|---|---|---|",
    ]
    lines += [
        _row(f"`{t.name}`", str(t.partitions), str(t.replication_factor), _configs(t.configs)) for t in plan.desired
    ]
    return "\n".join(lines)


def _action_rows(action: Action) -> list[tuple[str, str, str, str, str]]:
    topic = f"`{action.topic}`"
    if isinstance(action, CreateTopic):
        created = (
            f"{action.partitions} partitions, replication factor {action.replication_factor}, "
            f"{len(action.configs)} configs as declared below"
        )
        return [(topic, "create topic", "all", "—", created)]
    if isinstance(action, AddPartitions):
        return [(topic, "add partitions", "partitions", str(action.current), str(action.target))]
    return [
        (
            topic,
            "alter config",
            change.key,
            (change.current or "—") + (" (inherited)" if change.current_is_default else ""),
            change.desired,
        )
        for change in action.changes
    ]


def _configs(configs: Mapping[str, str]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(configs.items()))


def _row(*cells: str) -> str:
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"
