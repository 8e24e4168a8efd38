"""The partition-reassignment planner: a pure, deterministic function from an assignment and its load to a plan.

Why not Kafka's own `kafka-reassign-partitions --generate`: it ignores where replicas are today (it
lays every topic out afresh from a random broker) and knows nothing of sizes, so adding one broker
typically copies most of the cluster's data and can still leave one broker with the biggest
partitions. This planner keeps replicas where they are unless a goal requires moving them, and counts
what a move costs in bytes.

Goals, strictly in this order (an earlier goal is never traded for a later one):
1. every partition's replicas sit on distinct target brokers, with the requested replication factor
   (hard);
2. rack awareness (hard): each partition's replicas are spread as evenly as the racks allow, hence
   over min(RF, number of racks) distinct racks;
3. disk: no broker above its `disk_limits` entry (bytes), then every broker's bytes within
   `tolerance` of the mean (e.g. 10%: between 0.9 and 1.1 times the mean). What cannot be met is
   minimised (the total excess outside the band), never refused;
4. replica-count balance: every broker between floor and ceiling of the mean count (max - min <= 1
   whenever the goals above allow it);
5. the fewest bytes copied (a copy = a replica placed on a broker that did not hold it; each one
   copies the whole partition), then the fewest replica copies (which breaks ties among empty
   partitions);
6. leadership: the preferred leaders' load (bytes-in per second when given, else the count of
   partitions) as even as possible (max - min), accepting a spread of `tolerance` x the mean when
   bytes-in is given, then the fewest leader changes.

Leadership comes last, after bytes, although an operator might rank it before: it is reached by
reordering replicas, which copies nothing, so the only way to rank it higher would be to buy copies
for leadership, and a copy of a large partition costs far more than a leader imbalance that the next
plan (or a partition's own replica set) can fix. With one replication factor, balanced replica sets
always admit a leader spread of at most one partition (the property tests check it); with mixed
factors they may not, and the plan reports its `leaders_after`.

Without `sizes`, every partition weighs one byte: bytes are replicas, goal 3 is the same as goal 4
(and is skipped), and the plan is the replica-count plan of the previous planner.

How: goals 1-5 are one integer program, goal 6 a second smaller one over the chosen replica sets,
both solved goal by goal with HiGHS (`assignment_model`, whose docstring says why that solver). Small
inputs (at most `EXACT_PAIRS` partition-broker pairs) are solved exactly; larger ones through the LP
relaxation by column generation, with the few partitions it leaves fractional solved exactly after.

Where the time goes at scale (10,000 partitions, RF 3, 30 brokers in 3 racks, `make bench-planner`;
profiled 2026-12-01): building the models in Python is well under a second (numpy, one `addCols`);
everything else is HiGHS' simplex. Two choices take it from 158 s to about 4 s of CPU (and a third,
rounding with a sample of copies beside the fractional partitions, `round_relaxed`, narrows the gap):
- when each rack takes a fixed share of every partition (RF = number of racks, the usual layout),
  goals 1-5 fall apart into one problem per rack (`independent_parts`, exact: the goals are sums over
  brokers and a rack's brokers only see that rack's replicas): three LPs of 10,000 x 10 instead of one
  of 10,000 x 30, 115 s -> 1.2 s. Other layouts (RF 2 over 3 racks, no racks) stay one problem and
  are still slow at this size (about 26 s per placement LP without racks, measured at load 5);
- the leader LP (a min-max spread over all brokers, hence never split) runs the dual simplex: 1.7 s
  against 34 s with the primal, which stays the faster one for the placement LPs; and when a greedy
  choice of leaders is within the bytes-in tolerance already, the spread is held at the tolerance
  without being minimised (what the lexicographic rule holds it at anyway), 0.35 s for the rest.
Not taken: a min-cost flow (OR-Tools) cannot carry the byte-weighted disk rows; restricting columns
to over/under-loaded brokers by hand is what column generation already does with a proof (pricing
every pair), and at this size it adds no column after the start (today's pairs plus each rack's
least-loaded broker); time limits are not needed at these times, so every goal is still solved to
optimality of its LP.

`Plan.lower_bound` (bytes): no assignment that meets goals 1-4 at least as well as the plan copies
fewer bytes. When solved exactly it is HiGHS' proven dual bound of the bytes goal (zero MIP gap: the
plan's own bytes). Through the LP path it is the LP relaxation's optimum: no assignment, even a
fractional one, at least as balanced as the plan copies fewer bytes; the gap `bytes_copied -
lower_bound` is what rounding cost at most. Without sizes the LP of goals 1-5 has an integral optimum
(its matrix is totally unimodular: two laminar families of rows), so the bound is the optimum itself.
Measured at scale in `bench/planner.py` (`make bench-planner`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from orchestration.reassignment import plan_json
from orchestration.reassignment.assignment_model import (
    DUAL,
    INF,
    Goal,
    Load,
    Problem,
    hold_value,
    independent_parts,
    round_relaxed,
    solve_exact,
    solve_relaxed,
)

Partition = tuple[str, int]
Assignment = Mapping[Partition, Sequence[int]]

EXACT_PAIRS = 3_000  # partitions x brokers up to which every goal is solved as an exact MIP
DEFAULT_TOLERANCE = 0.10


@dataclass(frozen=True)
class Plan:
    """A proposed assignment and what it costs. `current` and `proposed` cover the same partitions.

    Bytes are the partitions' `sizes` (1 per partition when none were given); `lower_bound` is in bytes.
    """

    current: dict[Partition, tuple[int, ...]]
    proposed: dict[Partition, tuple[int, ...]]
    brokers: tuple[int, ...]
    sizes: dict[Partition, int]
    moves: int
    bytes_copied: int
    lower_bound: int
    replicas_before: dict[int, int]
    replicas_after: dict[int, int]
    leaders_before: dict[int, int]
    leaders_after: dict[int, int]
    bytes_before: dict[int, int]
    bytes_after: dict[int, int]
    tolerance: float = DEFAULT_TOLERANCE

    @property
    def changed(self) -> dict[Partition, tuple[int, ...]]:
        """Partitions whose replica list changes (a new order alone counts: it moves the preferred leader)."""
        return {tp: replicas for tp, replicas in self.proposed.items() if replicas != self.current[tp]}

    @property
    def moves_by_partition(self) -> dict[Partition, tuple[int, ...]]:
        """For each partition that gains replicas, the brokers that must copy it."""
        gained = {tp: tuple(b for b in replicas if b not in self.current[tp]) for tp, replicas in self.proposed.items()}
        return {tp: brokers for tp, brokers in gained.items() if brokers}

    def disk_band(self) -> tuple[float, float]:
        """The tolerance band around the mean bytes per target broker after the plan."""
        mean = sum(self.bytes_after[b] for b in self.brokers) / len(self.brokers)
        return mean * (1 - self.tolerance), mean * (1 + self.tolerance)

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
            "bytes_copied": self.bytes_copied,
            "lower_bound": self.lower_bound,
            "replicas_before": self.replicas_before,
            "replicas_after": self.replicas_after,
            "leaders_before": self.leaders_before,
            "leaders_after": self.leaders_after,
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
        }


def plan_reassignment(
    current: Assignment,
    brokers: Sequence[int],
    racks: Mapping[int, str] | None = None,
    replication_factor: int | None = None,
    *,
    sizes: Mapping[Partition, int] | None = None,
    bytes_in: Mapping[Partition, float] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    disk_limits: Mapping[int, int] | None = None,
    exact_pairs: int = EXACT_PAIRS,
) -> Plan:
    """Plan the move of `current` onto `brokers` (see the module docstring for the goals and their order).

    `current` maps (topic, partition) to its replicas, preferred leader first; brokers that hold
    replicas but are not in `brokers` are drained. A broker in `brokers` without replicas is a new one.
    `racks` maps broker -> rack and must cover every target broker (or be None: no rack awareness).
    `replication_factor` None keeps each partition's current count; a number sets it for all.
    `sizes`: bytes of one replica of each partition (DescribeLogDirs); missing partitions weigh 0.
    `bytes_in`: bytes per second produced to each partition, for leadership; None balances leader counts.
    `tolerance`: the disk band (and the accepted leader bytes-in spread) as a fraction of the mean.
    `disk_limits`: broker -> most bytes it may hold after the plan ("keep this disk under X%").
    `exact_pairs`: up to this many partition x broker pairs, solve exactly (tests lower it to force the LP path).
    Raises ValueError when the request cannot be met (e.g. more replicas than brokers).
    """
    targets = _validate(current, brokers, racks, replication_factor, tolerance)
    partitions = sorted(current)
    old = {tp: tuple(current[tp]) for tp in partitions}
    weighed = sizes is not None
    size = {tp: int(sizes.get(tp, 0)) if sizes is not None else 1 for tp in partitions}
    wanted = np.array([replication_factor or len(old[tp]) for tp in partitions])
    held = np.array([[b in old[tp] for b in targets] for tp in partitions], dtype=bool).reshape(len(partitions), -1)
    size_vector = np.array([size[tp] for tp in partitions], dtype=float)

    leads = np.array([[old[tp][:1] == (b,) for b in targets] for tp in partitions], dtype=bool).reshape(held.shape)
    problem, goals = _placement_problem(
        held, size_vector, wanted, targets, racks, tolerance, disk_limits, weighed, leaders_held=leads
    )
    x, bound = _solve_placement(problem, goals, held, exact_pairs)
    replica_sets = {tp: {targets[b] for b in np.flatnonzero(x[i] > 0.5)} for i, tp in enumerate(partitions)}

    leader_weight = np.array([float(bytes_in.get(tp, 0.0)) for tp in partitions]) if bytes_in else None
    leaders = _choose_leaders(old, replica_sets, partitions, targets, leader_weight, tolerance, exact_pairs)
    proposed = {}
    for tp in partitions:
        leader = leaders[tp]
        kept = [b for b in old[tp] if b in replica_sets[tp] and b != leader]
        added = sorted(replica_sets[tp] - set(old[tp]) - {leader})
        proposed[tp] = (leader, *kept, *added)
    unit = _unit(size_vector, wanted, len(targets))
    lower_bound = max(int(np.ceil(bound * unit - 1e-6 * unit)), 0)  # the LP's float noise is far below a byte
    return plan_from_proposal(old, proposed, targets, sizes=size, lower_bound=lower_bound, tolerance=tolerance)


def plan_from_proposal(
    current: Assignment,
    proposed: Assignment,
    brokers: Sequence[int],
    *,
    sizes: Mapping[Partition, int] | None = None,
    lower_bound: int | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Plan:
    """The `Plan` of an assignment proposed elsewhere (a reviewed JSON file, Kafka's `--generate`).

    Covers the partitions of `proposed`; `current` must hold each of them. Without a known
    `lower_bound` the plan's own bytes copied stand in for it.
    """
    partitions = sorted(proposed)
    old = {tp: tuple(current[tp]) for tp in partitions}
    new = {tp: tuple(proposed[tp]) for tp in partitions}
    size = {tp: int(sizes.get(tp, 0)) if sizes is not None else 1 for tp in partitions}
    targets = tuple(sorted(set(brokers)))
    moves = sum(len(set(new[tp]) - set(old[tp])) for tp in partitions)
    copied = _bytes_copied(old, new, size)
    everyone = sorted(set(targets).union(*old.values()))  # drained brokers show up with 0 after
    return Plan(
        current=old,
        proposed=new,
        brokers=targets,
        sizes=size,
        moves=moves,
        bytes_copied=copied,
        lower_bound=copied if lower_bound is None else lower_bound,
        replicas_before=_replica_counts(old.values(), everyone),
        replicas_after=_replica_counts(new.values(), everyone),
        leaders_before=_leader_counts(old.values(), everyone),
        leaders_after=_leader_counts(new.values(), everyone),
        bytes_before=_bytes_per_broker(old, size, everyone),
        bytes_after=_bytes_per_broker(new, size, everyone),
        tolerance=tolerance,
    )


def rack_bounds(rack_sizes: Sequence[int], replicas: int) -> tuple[list[int], list[int]]:
    """The fewest and most replicas of one partition per rack for the most even spread.

    The level L is the smallest with sum(min(size, L)) >= replicas; each rack then holds between
    min(size, L - 1) and min(size, L). With L = 1 that is at most one per rack (RF distinct racks);
    with L >= 2 every rack holds at least one (all racks used).
    """
    level = 0
    while sum(min(size, level) for size in rack_sizes) < replicas:
        level += 1
    return [min(size, max(level - 1, 0)) for size in rack_sizes], [min(size, level) for size in rack_sizes]


# --- goals 1-5: which brokers hold each partition -------------------------------------------------


def _unit(size_vector: np.ndarray, wanted: np.ndarray, broker_count: int) -> float:
    """Bytes are measured in units of the mean bytes per broker, which keeps the solver's numbers near 1."""
    total = float(size_vector @ wanted)
    return total / broker_count if total > 0 else 1.0


def _placement_problem(
    held: np.ndarray,
    size_vector: np.ndarray,
    wanted: np.ndarray,
    targets: tuple[int, ...],
    racks: Mapping[int, str] | None,
    tolerance: float,
    disk_limits: Mapping[int, int] | None,
    weighed: bool,
    leaders_held: np.ndarray | None = None,
) -> tuple[Problem, list[Goal]]:
    items, brokers = len(wanted), len(targets)
    unit = _unit(size_vector, wanted, brokers)
    disk = size_vector / unit
    none, zeros = np.full(brokers, -INF), np.zeros(brokers)
    loads, goals = [], []
    if disk_limits:
        limits = np.array([disk_limits.get(b, INF) for b in targets], dtype=float) / unit
        loads.append(Load("limit", disk, none, np.where(np.isfinite(limits), limits, INF), zeros))
        goals.append(Goal("disk_limit", slack={("limit", "over"): 1.0}))
    if weighed and np.any(disk != disk[0]):  # equal sizes: the disk goal is the count goal
        loads.append(Load("disk", disk, np.full(brokers, 1 - tolerance), np.full(brokers, 1 + tolerance), zeros))
        goals.append(Goal("disk_balance", slack={("disk", "over"): 1.0, ("disk", "under"): 1.0}))
    floor, extra = divmod(int(wanted.sum()), brokers)
    ceiling = floor + (1 if extra else 0)
    loads.append(Load("count", np.ones(items), np.full(brokers, float(floor)), np.full(brokers, float(ceiling)), zeros))
    goals.append(Goal("count_balance", slack={("count", "over"): 1.0, ("count", "under"): 1.0}))
    copied = ~held
    goals.append(Goal("bytes_copied", pair_cost=copied * disk[:, None]))
    # then keep each partition's current leader where possible (a tie-break inside the integer count of
    # copies: the weights of all leader terms together stay below one copy)
    not_leader = np.ones_like(held, dtype=float)
    if leaders_held is not None:
        not_leader[leaders_held] = 0.0
    goals.append(Goal("replicas_copied", pair_cost=copied + not_leader / (float(wanted.sum()) + 1.0)))

    group_of = group_lower = group_upper = None
    if racks is not None:
        names = sorted({racks[b] for b in targets})
        group_of = np.array([names.index(racks[b]) for b in targets])
        rack_sizes = [int((group_of == g).sum()) for g in range(len(names))]
        bounds = {rf: rack_bounds(rack_sizes, int(rf)) for rf in set(wanted.tolist())}
        group_lower = np.array([bounds[rf][0] for rf in wanted.tolist()]).reshape(items, len(names))
        group_upper = np.array([bounds[rf][1] for rf in wanted.tolist()]).reshape(items, len(names))
    problem = Problem(
        cardinality=wanted,
        allowed=np.ones((items, brokers), dtype=bool),
        loads=loads,
        group_of=group_of,
        group_lower=group_lower,
        group_upper=group_upper,
    )
    return problem, goals


def _solve_placement(
    problem: Problem, goals: list[Goal], held: np.ndarray, exact_pairs: int
) -> tuple[np.ndarray, float]:
    """The 0/1 placement and a lower bound of bytes copied (in units) for plans at least as balanced.

    Racks that take a fixed number of each partition's replicas (RF = number of racks) are solved
    one by one (`independent_parts`); their bounds add up."""
    x = np.zeros(problem.shape)
    bound = 0.0
    for items, brokers, part, part_goals in independent_parts(problem, goals):
        part_x, part_bound = _solve_part(part, part_goals, held[np.ix_(items, brokers)], exact_pairs)
        x[np.ix_(items, brokers)] = part_x
        bound += part_bound
    return x, bound


def _solve_part(problem: Problem, goals: list[Goal], held: np.ndarray, exact_pairs: int) -> tuple[np.ndarray, float]:
    balance_goals = [g for g in goals if g.name not in ("bytes_copied", "replicas_copied")]
    if problem.allowed.size <= exact_pairs:
        # solved to proven optimality: the MIP's dual bound on bytes (balance goals held at the plan's own
        # values) is the bound, far tighter than the LP when a few partitions are large
        exact = solve_exact(problem, goals)
        return exact.x, exact.goal_bounds["bytes_copied"]
    start = _starting_pairs(problem, held)
    relaxed = solve_relaxed(problem, goals, start)
    x = round_relaxed(problem, goals, relaxed)
    achieved = _goal_values(problem, goals, x)
    if all(achieved[g.name] <= hold_value(g, relaxed.goal_values[g.name]) for g in balance_goals):
        # every balance goal within what the LP held while minimising bytes: its bound covers this plan
        return x, relaxed.goal_values["bytes_copied"]
    bound_goals = [g for g in goals if g.name != "replicas_copied"]
    hold = {g.name: achieved[g.name] for g in balance_goals}
    bound = solve_relaxed(problem, bound_goals, start | (x > 0.5), hold=hold).goal_values["bytes_copied"]
    return x, bound


def _starting_pairs(problem: Problem, held: np.ndarray) -> np.ndarray:
    """Pairs to start column generation from: what is held today, plus in each rack (or overall) the
    brokers with the least load today, as many as a partition may place there (so the LP is feasible)."""
    items, brokers = problem.shape
    start = held.copy()
    today = held.sum(axis=0) if not problem.loads else problem.loads[0].weights @ held
    order = np.argsort(today, kind="stable")
    if problem.group_of is None:
        most = int(problem.cardinality.max())
        start[:, order[:most]] = True
        return start
    assert problem.group_upper is not None
    for g in range(problem.group_upper.shape[1]):
        in_group = [b for b in order if problem.group_of[b] == g]
        most = int(problem.group_upper[:, g].max())
        start[:, in_group[:most]] = True
    return start


def _goal_values(problem: Problem, goals: list[Goal], x: np.ndarray) -> dict[str, float]:
    """Each goal's value at the 0/1 assignment `x` (the slacks at their least)."""
    values = {}
    loads = {load.name: load.offset + load.weights @ x for load in problem.loads}
    by_name = {load.name: load for load in problem.loads}
    for goal in goals:
        value = 0.0 if goal.pair_cost is None else float((goal.pair_cost * x).sum())
        for (name, kind), weight in goal.slack.items():
            load, level = by_name[name], loads[name]
            if kind == "over":
                value += weight * float(np.maximum(level - load.upper, 0).sum())
            elif kind == "under":
                value += weight * float(np.maximum(load.lower - level, 0).sum())
            elif kind == "top":
                value += weight * float(level.max())
            else:
                value += weight * float(level.min())
        values[goal.name] = value
    return values


# --- goal 6: the preferred leader of each partition -------------------------------------------------


def _choose_leaders(
    old: Mapping[Partition, tuple[int, ...]],
    replica_sets: Mapping[Partition, set[int]],
    partitions: list[Partition],
    targets: tuple[int, ...],
    bytes_in: np.ndarray | None,
    tolerance: float,
    exact_pairs: int,
) -> dict[Partition, int]:
    items, brokers = len(partitions), len(targets)
    allowed = np.array([[b in replica_sets[tp] for b in targets] for tp in partitions], dtype=bool)
    allowed = allowed.reshape(items, brokers)
    weights = np.ones(items) if bytes_in is None else bytes_in
    mean = float(weights.sum()) / brokers
    unit = mean if bytes_in is not None and mean > 0 else 1.0
    load = Load("leaders", weights / unit, np.full(brokers, -INF), np.full(brokers, INF), np.zeros(brokers), True)
    current_leader = np.array([[old[tp][:1] == (b,) for b in targets] for tp in partitions], dtype=bool)
    current_leader = current_leader.reshape(items, brokers)
    allowance = tolerance if bytes_in is not None else -INF  # in units of the mean
    goals = [
        Goal("leader_spread", slack={("leaders", "top"): 1.0, ("leaders", "bottom"): -1.0}, allowance=allowance),
        Goal("leader_changes", pair_cost=(~current_leader).astype(float)),
    ]
    problem = Problem(cardinality=np.ones(items, dtype=int), allowed=allowed, loads=[load])
    if allowed.sum() <= exact_pairs // 3:
        x = solve_exact(problem, goals).x
    else:
        reached = {}
        if bytes_in is not None:  # a spread within the tolerance is all goal 6 asks before leader changes
            reached["leader_spread"] = _greedy_leader_spread(allowed, weights / unit, current_leader, allowance)
        relaxed = solve_relaxed(problem, goals, allowed, simplex=DUAL, reached=reached)
        x = round_relaxed(problem, goals, relaxed, simplex=DUAL)
    return {tp: targets[int(np.argmax(x[i]))] for i, tp in enumerate(partitions)}


def _greedy_leader_spread(allowed: np.ndarray, weights: np.ndarray, current: np.ndarray, allowance: float) -> float:
    """The leader spread (max - min of leader load) of a quick integral choice, for `reached`.

    Today's leaders stay where they still hold a replica; the others go, heaviest first, to their least
    loaded replica; then one leadership at a time moves off the most loaded broker or onto the least
    loaded one, the move that narrows the spread most, until the spread is within `allowance` or no
    single move narrows it. When it gets within, the leader LP need not minimise the spread (1.5 s of
    the 1.8 s it takes at 10,000 partitions); when not, it does, as before.
    """
    items, brokers = allowed.shape
    leader = np.where((current & allowed).any(axis=1), np.argmax(current & allowed, axis=1), -1)
    load = np.bincount(leader[leader >= 0], weights[leader >= 0], minlength=brokers).astype(float)
    for i in sorted(np.flatnonzero(leader < 0), key=lambda i: (-weights[i], i)):
        options = np.flatnonzero(allowed[i])
        leader[i] = options[np.argmin(load[options])]
        load[leader[i]] += weights[i]
    pairs = np.argwhere(allowed)  # (item, broker) a leadership may move to
    for _ in range(min(items, 50 * brokers)):  # each move is one leader change: a bounded number of tries
        top, bottom = int(np.argmax(load)), int(np.argmin(load))
        spread = load[top] - load[bottom]
        if spread <= allowance:
            break
        now = leader[pairs[:, 0]]
        moves = pairs[((now == top) | (pairs[:, 1] == bottom)) & (now != pairs[:, 1])]
        if len(moves) == 0:
            break
        after = np.tile(load, (len(moves), 1))
        rows = np.arange(len(moves))
        after[rows, leader[moves[:, 0]]] -= weights[moves[:, 0]]
        after[rows, moves[:, 1]] += weights[moves[:, 0]]
        spreads = after.max(axis=1) - after.min(axis=1)
        best = int(np.argmin(spreads))
        if spreads[best] >= spread:
            break
        load = after[best]
        leader[moves[best, 0]] = moves[best, 1]
    return float(load.max() - load.min())


# --- validation and counting ------------------------------------------------------------------------


def _validate(
    current: Assignment,
    brokers: Sequence[int],
    racks: Mapping[int, str] | None,
    replication_factor: int | None,
    tolerance: float,
) -> tuple[int, ...]:
    targets = tuple(sorted(set(brokers)))
    if len(targets) != len(brokers):
        raise ValueError(f"target brokers {list(brokers)} contain duplicates")
    if not targets:
        raise ValueError("no target brokers")
    if not 0 <= tolerance < 1:
        raise ValueError(f"tolerance {tolerance} must be a fraction of the mean in [0, 1)")
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


def _bytes_copied(
    old: Mapping[Partition, tuple[int, ...]], new: Mapping[Partition, tuple[int, ...]], size: Mapping[Partition, int]
) -> int:
    return sum(size[tp] * len(set(new[tp]) - set(old[tp])) for tp in new)


def _replica_counts(assignments: Iterable[Sequence[int]], targets: Sequence[int]) -> dict[int, int]:
    counts = Counter(b for replicas in assignments for b in replicas)
    return {b: counts[b] for b in sorted(set(targets) | set(counts))}


def _leader_counts(assignments: Iterable[Sequence[int]], targets: Sequence[int]) -> dict[int, int]:
    counts = Counter(replicas[0] for replicas in assignments if replicas)
    return {b: counts[b] for b in sorted(set(targets) | set(counts))}


def _bytes_per_broker(
    assignment: Mapping[Partition, Sequence[int]], size: Mapping[Partition, int], targets: Sequence[int]
) -> dict[int, int]:
    totals: Counter[int] = Counter()
    for tp, replicas in assignment.items():
        for b in replicas:
            totals[b] += size[tp]
    return {b: totals[b] for b in sorted(set(targets) | set(totals))}
