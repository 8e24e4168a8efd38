"""The partition-reassignment planner: a pure, deterministic function from an assignment to a plan.

Why not Kafka's own `kafka-reassign-partitions --generate`: it ignores where replicas are today (it
lays every topic out afresh from a random broker), so adding one broker typically moves most of the
cluster's data. This planner keeps replicas where they are unless a goal requires moving them.

Goals, strictly in this order (an earlier goal is never traded for a later one):
1. every partition's replicas sit on distinct target brokers, with the requested replication factor;
2. rack awareness: each partition's replicas are spread as evenly as possible over the racks, hence
   over min(RF, number of racks) distinct racks;
3. replica balance: the brokers' replica counts (all topics together) are as even as possible,
   max - min <= 1 whenever racks allow it;
4. the fewest replica moves (a move = a replica placed on a broker that did not hold it before: each
   one copies a whole partition over the network);
5. preferred-leader balance (leader = first replica): leader counts per broker as even as possible,
   max - min <= 1 whenever the replica sets allow it, changing as few leaders as possible. Reordering
   replicas moves no data, so this never costs a move.

Leader balance comes after moves on purpose: it is reached by reordering alone, and never buys a
partition copy. With one replication factor across the plan, balanced replicas always admit
max - min <= 1 leaders (the property tests check it). With mixed factors they may not: ten
single-replica partitions on one broker lead there whatever the order; such a plan reports its
`leaders_after` spread rather than copying data to fix it.

Goals 1-4 are one min-cost flow (`min_cost_flow.py`): partition -> (partition, rack) -> broker ->
sink, where the cost of an arc encodes the goals as lexicographic weights: a second replica of a
partition in the same rack costs RACK, each replica beyond a broker's fair share costs BALANCE
(growing with the overload, so the flow prefers even counts), and a replica on a broker that did not
hold it costs 1. RACK dominates any sum of BALANCE costs, and BALANCE dominates any number of moves,
so the flow's optimum is the lexicographic optimum. Goal 5 is a second, smaller flow over the chosen
replica sets.

`Plan.lower_bound` is a move count no plan with the same broker balance can beat (see
`move_lower_bound`); comparing it with `Plan.moves` shows how far from ideal a plan is (no gap in the
common cases of adding brokers, removing brokers and raising the replication factor, as the tests
show). Cost, measured on a 2-core machine for 2,000 partitions of RF 3 going from 12 to 16 brokers:
about 1 s without racks, about 10 s with three racks (the flow then needs ~50 Dijkstra rounds).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from orchestration.reassignment import plan_json
from orchestration.reassignment.min_cost_flow import FlowNetwork

Partition = tuple[str, int]
Assignment = Mapping[Partition, Sequence[int]]


@dataclass(frozen=True)
class Plan:
    """A proposed assignment and what it costs. `current` and `proposed` cover the same partitions."""

    current: dict[Partition, tuple[int, ...]]
    proposed: dict[Partition, tuple[int, ...]]
    brokers: tuple[int, ...]
    moves: int
    lower_bound: int
    replicas_before: dict[int, int]
    replicas_after: dict[int, int]
    leaders_before: dict[int, int]
    leaders_after: dict[int, int]

    @property
    def changed(self) -> dict[Partition, tuple[int, ...]]:
        """Partitions whose replica list changes (a new order alone counts: it moves the preferred leader)."""
        return {tp: replicas for tp, replicas in self.proposed.items() if replicas != self.current[tp]}

    @property
    def moves_by_partition(self) -> dict[Partition, tuple[int, ...]]:
        """For each partition that gains replicas, the brokers that must copy it."""
        gained = {tp: tuple(b for b in replicas if b not in self.current[tp]) for tp, replicas in self.proposed.items()}
        return {tp: brokers for tp, brokers in gained.items() if brokers}

    def to_json(self) -> str:
        """The changed partitions as Kafka's reassignment JSON (for `kafka-reassign-partitions --execute`)."""
        return plan_json.reassignment_json(self.changed)

    def rollback_json(self) -> str:
        """The current assignment of the changed partitions: executing it undoes the plan."""
        return plan_json.reassignment_json({tp: self.current[tp] for tp in self.changed})

    def summary(self) -> dict[str, object]:
        """Figures for logs and Dagster metadata."""
        return {
            "partitions": len(self.proposed),
            "changed_partitions": len(self.changed),
            "moves": self.moves,
            "lower_bound": self.lower_bound,
            "replicas_before": self.replicas_before,
            "replicas_after": self.replicas_after,
            "leaders_before": self.leaders_before,
            "leaders_after": self.leaders_after,
        }


def plan_reassignment(
    current: Assignment,
    brokers: Sequence[int],
    racks: Mapping[int, str] | None = None,
    replication_factor: int | None = None,
) -> Plan:
    """Plan the move of `current` onto `brokers` (see the module docstring for the goals and their order).

    `current` maps (topic, partition) to its replicas, preferred leader first; brokers that hold
    replicas but are not in `brokers` are being removed. `racks` maps broker -> rack and must cover
    every target broker (or be None: no rack awareness). `replication_factor` None keeps each
    partition's current count; a number sets it for all partitions (raising or lowering it).
    Raises ValueError when the request cannot be met (e.g. more replicas than brokers).
    """
    targets = _validate(current, brokers, racks, replication_factor)
    partitions = sorted(current)
    old = {tp: tuple(current[tp]) for tp in partitions}
    wanted = {tp: replication_factor or len(old[tp]) for tp in partitions}

    replica_sets = _place_replicas(old, wanted, targets, racks)
    proposed = _order_replicas(old, replica_sets, targets)

    replicas_after = _replica_counts(proposed.values(), targets)
    lower_bound = move_lower_bound(old, wanted, targets, {b: replicas_after[b] for b in targets})
    return plan_from_proposal(old, proposed, targets, lower_bound=lower_bound)


def plan_from_proposal(
    current: Assignment, proposed: Assignment, brokers: Sequence[int], lower_bound: int | None = None
) -> Plan:
    """The `Plan` of an assignment proposed elsewhere (a reviewed JSON file, Kafka's `--generate`).

    Covers the partitions of `proposed`; `current` must hold each of them. Without a known
    `lower_bound` the plan's own move count stands in for it.
    """
    partitions = sorted(proposed)
    old = {tp: tuple(current[tp]) for tp in partitions}
    new = {tp: tuple(proposed[tp]) for tp in partitions}
    targets = tuple(sorted(set(brokers)))
    moves = sum(len(set(new[tp]) - set(old[tp])) for tp in partitions)
    everyone = sorted(set(targets).union(*old.values()))  # removed brokers show up with 0 after
    return Plan(
        current=old,
        proposed=new,
        brokers=targets,
        moves=moves,
        lower_bound=moves if lower_bound is None else lower_bound,
        replicas_before=_replica_counts(old.values(), everyone),
        replicas_after=_replica_counts(new.values(), everyone),
        leaders_before=_leader_counts(old.values(), everyone),
        leaders_after=_leader_counts(new.values(), everyone),
    )


def move_lower_bound(
    current: Mapping[Partition, Sequence[int]],
    wanted: Mapping[Partition, int],
    targets: Sequence[int],
    replicas_after: Mapping[int, int],
) -> int:
    """The fewest moves any plan with this broker balance needs (rack constraints aside).

    Three independent bounds, the largest wins:
    - replicas that must be created: per partition, the replicas it lacks on target brokers (those
      on removed brokers, plus the growth of its replication factor);
    - replicas that must arrive: a broker ending with f replicas and holding c of them today receives
      at least f - c. When the plan is balanced, any balanced outcome would do, so the bound takes the
      cheapest one (fair shares topped up first on brokers that already hold enough); otherwise it
      uses the plan's own counts;
    - replicas that must leave (when no partition shrinks): those on removed brokers, plus what
      brokers above their fair share must shed; each leaves a partition short of one replica.
    A gap between `Plan.moves` and this bound comes from rack constraints or from an outcome where
    the two kinds of moves cannot coincide.
    """
    must_create = sum(max(0, wanted[tp] - len(set(replicas) & set(targets))) for tp, replicas in current.items())
    held = _replica_counts(current.values(), targets)
    counts = list(replicas_after.values())
    if max(counts) - min(counts) <= 1:
        floor, extra = divmod(sum(wanted.values()), len(targets))
        already_above = sum(1 for b in targets if held[b] > floor)
        must_arrive = sum(max(0, floor - held[b]) for b in targets) + max(0, extra - already_above)
    else:
        must_arrive = sum(max(0, replicas_after[b] - held[b]) for b in targets)
    return max(must_create, must_arrive, _must_leave(current, wanted, targets, held, replicas_after))


def _must_leave(
    current: Mapping[Partition, Sequence[int]],
    wanted: Mapping[Partition, int],
    targets: Sequence[int],
    held: Mapping[int, int],
    replicas_after: Mapping[int, int],
) -> int:
    """Replicas that must leave their broker: all on removed brokers, plus the surplus of brokers
    above their share. Each is a move when no partition shrinks (its partition must regain it)."""
    if any(wanted[tp] < len(replicas) for tp, replicas in current.items()):
        return 0
    on_removed = sum(1 for replicas in current.values() for b in replicas if b not in targets)
    counts = list(replicas_after.values())
    if max(counts) - min(counts) <= 1:
        floor, extra = divmod(sum(wanted.values()), len(targets))
        fullest = sorted((held[b] for b in targets), reverse=True)
        surplus = sum(max(0, h - floor - 1) for h in fullest[:extra]) + sum(max(0, h - floor) for h in fullest[extra:])
    else:
        surplus = sum(max(0, held[b] - replicas_after[b]) for b in targets)
    return on_removed + surplus


def _validate(
    current: Assignment,
    brokers: Sequence[int],
    racks: Mapping[int, str] | None,
    replication_factor: int | None,
) -> tuple[int, ...]:
    targets = tuple(sorted(set(brokers)))
    if len(targets) != len(brokers):
        raise ValueError(f"target brokers {list(brokers)} contain duplicates")
    if not targets:
        raise ValueError("no target brokers")
    if replication_factor is not None and not 1 <= replication_factor <= len(targets):
        raise ValueError(f"replication factor {replication_factor} needs 1 to {len(targets)} brokers")
    for tp, replicas in current.items():
        if len(set(replicas)) != len(replicas):
            raise ValueError(f"{tp} lists a broker twice: {list(replicas)}")
        if replication_factor is None and not 1 <= len(replicas) <= len(targets):
            raise ValueError(f"{tp} has {len(replicas)} replicas but there are {len(targets)} target brokers")
    if racks is not None:
        missing = [b for b in targets if b not in racks]
        if missing:
            raise ValueError(f"brokers {missing} have no rack: give every target broker a rack, or racks=None")
    return targets


def _place_replicas(
    old: Mapping[Partition, tuple[int, ...]],
    wanted: Mapping[Partition, int],
    targets: tuple[int, ...],
    racks: Mapping[int, str] | None,
) -> dict[Partition, set[int]]:
    """Goals 1-4: which brokers hold each partition (one min-cost flow; module docstring)."""
    rack_of = {b: (racks[b] if racks is not None else str(b)) for b in targets}
    rack_names = sorted(set(rack_of.values()))
    total = sum(wanted.values())
    move = 1
    balance = total + 1  # more than any number of moves
    fair_share, _ = divmod(total, len(targets))
    most_per_broker = len(old)
    balance_arcs = most_per_broker - fair_share
    # More than any total of balance costs (and so of balance and move costs together).
    rack = balance * len(targets) * balance_arcs * (balance_arcs + 1) // 2 + balance
    if racks is None:
        rack = 0  # no racks: each broker is its own rack, and distinct brokers are enforced by capacity

    net = FlowNetwork()
    source, sink = net.add_node(), net.add_node()
    broker_node, fair_arc = _brokers_to_sink(net, sink, targets, fair_share, balance_arcs, balance)

    placement_arcs: dict[Partition, dict[int, int]] = {}
    free_rack_arc: dict[tuple[Partition, str], int] = {}
    source_arc = {}
    for tp in sorted(old):
        partition_node = net.add_node()
        source_arc[tp] = net.add_arc(source, partition_node, wanted[tp], 0)
        placement_arcs[tp] = {}
        for rack_name in rack_names:
            rack_brokers = [b for b in targets if rack_of[b] == rack_name]
            rack_node = net.add_node()
            for nth in range(min(wanted[tp], len(rack_brokers))):
                arc = net.add_arc(partition_node, rack_node, 1, nth * rack)
                if nth == 0:
                    free_rack_arc[tp, rack_name] = arc
            for b in rack_brokers:
                placement_arcs[tp][b] = net.add_arc(rack_node, broker_node[b], 1, 0 if b in old[tp] else move)

    # Replicas that can stay at no cost are routed first (see FlowNetwork.preload): it leaves the
    # solver only the units that must move, and makes it keep the earliest replicas (the leader).
    for tp in sorted(old):
        kept = 0
        for b in old[tp]:
            if b not in broker_node or kept == wanted[tp] or b not in fair_arc:
                continue
            path = [source_arc[tp], free_rack_arc[tp, rack_of[b]], placement_arcs[tp][b], fair_arc[b]]
            if all(net.residual(arc) > 0 for arc in path):
                net.preload(path)
                kept += 1

    net.solve(source, sink, total)
    return {tp: {b for b, arc in arcs.items() if net.flow(arc)} for tp, arcs in placement_arcs.items()}


def _order_replicas(
    old: Mapping[Partition, tuple[int, ...]],
    replica_sets: Mapping[Partition, set[int]],
    targets: tuple[int, ...],
) -> dict[Partition, tuple[int, ...]]:
    """Goal 5: choose each partition's preferred leader (a flow), then order its replicas.

    Leader first; then the replicas it keeps, in their current order; then the new ones by broker id.
    """
    partitions = sorted(replica_sets)
    fair_share = len(partitions) // len(targets)
    excess_arcs = len(partitions) - fair_share
    balance = len(partitions) + 1  # more than any number of leader changes

    net = FlowNetwork()
    source, sink = net.add_node(), net.add_node()
    broker_node, fair_arc = _brokers_to_sink(net, sink, targets, fair_share, excess_arcs, balance)
    leader_arcs: dict[Partition, dict[int, int]] = {}
    for tp in partitions:
        partition_node = net.add_node()
        source_arc = net.add_arc(source, partition_node, 1, 0)
        leader_arcs[tp] = {}
        current_leader = old[tp][0] if old[tp] else None
        for b in sorted(replica_sets[tp]):
            leader_arcs[tp][b] = net.add_arc(partition_node, broker_node[b], 1, 0 if b == current_leader else 1)
        if current_leader in replica_sets[tp] and current_leader in fair_arc:
            path = [source_arc, leader_arcs[tp][current_leader], fair_arc[current_leader]]
            if net.residual(path[-1]) > 0:
                net.preload(path)
    net.solve(source, sink, len(partitions))

    ordered = {}
    for tp in partitions:
        leader = next(b for b, arc in leader_arcs[tp].items() if net.flow(arc))
        kept = [b for b in old[tp] if b in replica_sets[tp] and b != leader]
        added = sorted(replica_sets[tp] - set(old[tp]) - {leader})
        ordered[tp] = (leader, *kept, *added)
    return ordered


def _replica_counts(assignments: Iterable[Sequence[int]], targets: Sequence[int]) -> dict[int, int]:
    counts = Counter(b for replicas in assignments for b in replicas)
    return {b: counts[b] for b in sorted(set(targets) | set(counts))}


def _leader_counts(assignments: Iterable[Sequence[int]], targets: Sequence[int]) -> dict[int, int]:
    counts = Counter(replicas[0] for replicas in assignments if replicas)
    return {b: counts[b] for b in sorted(set(targets) | set(counts))}


def _brokers_to_sink(
    net: FlowNetwork, sink: int, targets: Sequence[int], fair_share: int, excess_arcs: int, balance: int
) -> tuple[dict[int, int], dict[int, int]]:
    """A node per broker, draining to `sink`: `fair_share` units free, then one unit per arc at a cost
    rising by `balance` each, so the cheapest flow fills brokers evenly. Returns (node, fair-share arc)."""
    broker_node = {b: net.add_node() for b in targets}
    fair_arc = {}
    for b in targets:
        if fair_share:
            fair_arc[b] = net.add_arc(broker_node[b], sink, fair_share, 0)
        for excess in range(1, excess_arcs + 1):
            net.add_arc(broker_node[b], sink, 1, excess * balance)
    return broker_node, fair_arc
