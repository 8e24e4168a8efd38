"""A lexicographic min-cost assignment with per-broker load bands, solved with HiGHS (`highspy`).

Both stages of the planner are the same kind of problem: give each *item* (a partition) `cardinality`
brokers out of those `allowed` for it, with at least `group_lower` and at most `group_upper` of them
in each group (rack), and measure per-broker *loads* (bytes on disk, replica counts, leader bytes-in):
each load is kept inside a band [lower, upper] by slack columns (`over`, `under`) and may record its
highest and lowest broker (`top`, `bottom`) so that a spread can be minimised. Goals are linear
objectives over pair costs and those slacks, taken strictly in order: each is minimised, then held
at its optimum (a row `objective <= optimum`) while the next one is.

Why HiGHS: the disk band weighs each replica by its partition's size, which no pure network
(min-cost flow) can express, so the model is a linear/integer program; HiGHS is the strongest
open-source LP/MIP solver (MIT licence, C++, maintained by the University of Edinburgh group, also
the engine behind SciPy's `linprog`/`milp`), its wheel is small and self-contained, its simplex is
deterministic, and it warm-starts after rows, columns or costs change, which the goal-by-goal solve
and column generation rely on. OR-Tools' CP-SAT would also do, but it is a far larger wheel pinned to
its own protobuf, which Dagster also pins; its min-cost flow cannot carry the byte-weighted rows.

Two ways to solve (`solve_exact`, `solve_relaxed`):
- exact: every allowed pair is a binary column; each goal is a MIP solved to zero gap. Used for
  small inputs (the property tests compare it with brute force).
- relaxed: the LP relaxation by column generation (start from the pairs that hold today plus a few
  cheap ones per group, add the pairs whose reduced cost is negative, repeat until none is). Its
  values are lower bounds of the integer goals. Items left fractional are few (a basic solution has
  at most as many as there are load rows); `round_relaxed` fixes every integral item but a small
  sample of paying ones and solves the rest exactly, with the bands shifted by the fixed load.
Two shortcuts for scale: the planner first cuts a problem whose groups never interact into one
problem per group (`independent_parts`), and `solve_relaxed` holds a goal that a known solution
already reaches within its allowance without minimising it (`reached`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import highspy
import numpy as np

INF = highspy.kHighsInf
INTEGRAL = 1e-6  # a column value this close to 0 or 1 counts as integral
RELATIVE_HOLD = 1e-6  # an optimum held for later goals may drift this much (relative), for the solvers' tolerances
ABSOLUTE_HOLD = 1e-5  # goals are in units near 1 (a broker's mean load); HiGHS rows may be off by 1e-6
MAX_PRICING_ROUNDS = 60
PRICED_PER_ITEM = 4
PRICING_TOLERANCE = 1e-6  # above HiGHS' dual feasibility tolerance (1e-7), or rounding noise keeps pricing going
PRIMAL, DUAL = 4, 1  # HiGHS' simplex_strategy values
REPAIR_SAMPLE = 20  # integral items solved again beside the fractional ones when rounding (`_paid_sample`)
REPAIR_PAIRS = 400  # ... as long as the repair MIP stays within this many pairs (items x brokers)


@dataclass(frozen=True)
class Load:
    """A per-broker load: `weights[item]` counts on each broker holding the item; `offset[broker]` is
    load from elsewhere (fixed items). `lower`/`upper` per broker (+-INF for none) form the band."""

    name: str
    weights: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    offset: np.ndarray
    spread: bool = False


@dataclass(frozen=True)
class Goal:
    """A linear objective: `pair_cost[item, broker]` for every pair used plus `slack[(load, kind)]` per
    unit of a slack (`over`, `under`, `top`, `bottom`; `bottom` usually with weight -1). `allowance`
    loosens the held optimum: `held = max(optimum, allowance)` (a tolerance the operator accepts)."""

    name: str
    pair_cost: np.ndarray | None = None
    slack: dict[tuple[str, str], float] = field(default_factory=dict)
    allowance: float = -INF


@dataclass
class Problem:
    cardinality: np.ndarray  # per item
    allowed: np.ndarray  # bool, items x brokers
    loads: list[Load]
    group_of: np.ndarray | None = None  # group index per broker
    group_lower: np.ndarray | None = None  # items x groups
    group_upper: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.allowed.shape  # type: ignore[return-value]


@dataclass(frozen=True)
class Solution:
    x: np.ndarray  # items x brokers, in [0, 1]
    goal_values: dict[str, float]
    integral: bool
    # per goal, what the solver proved no solution (holding the earlier goals) can beat: the MIP's dual
    # bound when exact, the LP optimum when relaxed
    goal_bounds: dict[str, float] = field(default_factory=dict)


class _Model:
    """The HiGHS model of a `Problem`: rows fixed at construction, pair columns added on demand."""

    def __init__(self, problem: Problem, integer: bool, goals: list[Goal], simplex: int = PRIMAL):
        self.problem = problem
        self.simplex = simplex
        self.integer = integer
        self.goals = goals
        self.highs = highspy.Highs()
        self.highs.setOptionValue("output_flag", False)
        self.highs.setOptionValue("random_seed", 0)
        self.highs.setOptionValue("simplex_strategy", simplex)
        self.highs.setOptionValue("threads", 1)
        self.highs.setOptionValue("mip_rel_gap", 0.0)
        self.highs.setOptionValue("mip_abs_gap", 1e-9)
        items, brokers = problem.shape
        self.column_of = np.full((items, brokers), -1, dtype=np.int64)
        self.pair_items = np.zeros(0, dtype=np.int64)  # the item and broker of each pair column, in order
        self.pair_brokers = np.zeros(0, dtype=np.int64)
        self.held_rows: list[int] = []  # one per goal already minimised
        self.current_goal: Goal | None = None
        self._add_rows_and_slacks()

    # --- structure -----------------------------------------------------------------------------
    def _add_rows_and_slacks(self) -> None:
        p = self.problem
        items, brokers = p.shape
        lower: list[float] = list(map(float, p.cardinality))
        upper: list[float] = list(map(float, p.cardinality))
        self.item_row = np.arange(items)
        self.group_row = None
        if p.group_of is not None:
            assert p.group_lower is not None and p.group_upper is not None
            groups = p.group_upper.shape[1]
            in_group = p.allowed.astype(np.int64) @ (p.group_of[:, None] == np.arange(groups)[None, :])
            needed = (p.group_lower > 0) | (p.group_upper < in_group)  # a row only where it can bind
            self.group_row = np.where(needed, len(lower) + np.cumsum(needed).reshape(needed.shape) - 1, -1)
            lower += p.group_lower[needed].astype(float).tolist()
            upper += p.group_upper[needed].astype(float).tolist()
        # per load: rows per broker (upper band, lower band, top, bottom), -1 when absent
        self.load_rows: dict[str, np.ndarray] = {}
        self.slack_columns: dict[tuple[str, str], np.ndarray] = {}
        slack_entries: list[tuple[int, int, float]] = []  # (slack column, row, coefficient)
        slack_count = 0
        for load in p.loads:
            rows = np.full((4, brokers), -1, dtype=np.int64)
            kinds: dict[str, list[tuple[int, int, float]]] = {"over": [], "under": [], "top": [], "bottom": []}
            for b in range(brokers):
                if load.upper[b] < INF:
                    rows[0, b] = len(lower)
                    lower.append(-INF)
                    upper.append(float(load.upper[b] - load.offset[b]))
                    kinds["over"].append((slack_count, rows[0, b], -1.0))
                    slack_count += 1
                if load.lower[b] > -INF:
                    rows[1, b] = len(lower)
                    lower.append(float(load.lower[b] - load.offset[b]))
                    upper.append(INF)
                    kinds["under"].append((slack_count, rows[1, b], 1.0))
                    slack_count += 1
            if load.spread:
                top, bottom = slack_count, slack_count + 1
                slack_count += 2
                for b in range(brokers):
                    rows[2, b] = len(lower)  # load + offset - top <= 0
                    lower.append(-INF)
                    upper.append(float(-load.offset[b]))
                    kinds["top"].append((top, rows[2, b], -1.0))
                    rows[3, b] = len(lower)  # load + offset - bottom >= 0
                    lower.append(float(-load.offset[b]))
                    upper.append(INF)
                    kinds["bottom"].append((bottom, rows[3, b], -1.0))
            self.load_rows[load.name] = rows
            for kind, entries in kinds.items():
                self.slack_columns[load.name, kind] = np.array(sorted({c for c, _, _ in entries}), dtype=np.int64)
                slack_entries += entries
        self.row_count = len(lower)
        self.highs.addRows(
            self.row_count, np.array(lower), np.array(upper), 0, np.zeros(1, np.int32), np.zeros(0, np.int32), []
        )
        # slack columns: 0..slack_count-1; `top`/`bottom` are free in sign (loads may be negative after offsets)
        free = set()
        for load in p.loads:
            if load.spread:
                free |= set(self.slack_columns[load.name, "top"]) | set(self.slack_columns[load.name, "bottom"])
        by_column: dict[int, list[tuple[int, float]]] = {}
        for column, row, value in slack_entries:
            by_column.setdefault(column, []).append((row, value))
        starts: list[int] = []
        indices: list[int] = []
        values: list[float] = []
        for column in range(slack_count):
            starts.append(len(indices))
            for row, value in by_column.get(column, []):
                indices.append(row)
                values.append(value)
        self.slack_count = slack_count
        if slack_count:
            self.highs.addCols(
                slack_count,
                np.zeros(slack_count),
                np.array([-INF if c in free else 0.0 for c in range(slack_count)]),
                np.full(slack_count, INF),
                len(indices),
                np.array(starts, np.int32),
                np.array(indices, np.int32),
                np.array(values, float),
            )

    def add_pairs(self, pairs: np.ndarray) -> None:
        """Add columns for (item, broker) pairs not yet in the model (rows: item, group, loads, held goals).

        Built as one sparse column block with numpy and passed in one `addCols` call: a Python loop per
        pair cost seconds at 10,000 partitions."""
        p = self.problem
        pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        pairs = pairs[self.column_of[pairs[:, 0], pairs[:, 1]] < 0]
        if len(pairs) == 0:
            return
        items, brokers = pairs[:, 0], pairs[:, 1]
        count = len(pairs)
        ones = np.ones((count, 1))
        row_blocks, value_blocks = [self.item_row[items][:, None]], [ones]
        if self.group_row is not None and p.group_of is not None:
            row_blocks.append(self.group_row[items, p.group_of[brokers]][:, None])
            value_blocks.append(ones)
        for load in p.loads:
            rows = self.load_rows[load.name][:, brokers].T  # count x 4, -1 where absent
            row_blocks.append(rows)
            value_blocks.append(np.repeat(load.weights[items].astype(float)[:, None], rows.shape[1], axis=1))
        for goal, row in zip(self.goals, self.held_rows, strict=False):
            if goal.pair_cost is not None:
                row_blocks.append(np.full((count, 1), row, dtype=np.int64))
                value_blocks.append(goal.pair_cost[items, brokers].astype(float)[:, None])
        rows, values = np.hstack(row_blocks), np.hstack(value_blocks)
        present = (rows >= 0) & (values != 0)  # rows ascend left to right: item, group, loads, held goals
        starts = np.concatenate(([0], np.cumsum(present.sum(axis=1))[:-1]))
        first = self.slack_count + len(self.pair_items)
        current = self.current_goal
        costs = np.zeros(count) if current is None or current.pair_cost is None else current.pair_cost[items, brokers]
        self.highs.addCols(
            count,
            np.asarray(costs, dtype=float),
            np.zeros(count),
            np.ones(count),
            int(present.sum()),
            starts.astype(np.int32),
            rows[present].astype(np.int32),
            values[present],
        )
        self.column_of[items, brokers] = np.arange(first, first + count)
        self.pair_items = np.concatenate((self.pair_items, items))
        self.pair_brokers = np.concatenate((self.pair_brokers, brokers))
        if self.integer:
            columns = np.arange(first, first + count, dtype=np.int32)
            self.highs.changeColsIntegrality(count, columns, np.full(count, 1, dtype=np.uint8))

    # --- goals -----------------------------------------------------------------------------------
    def goal_costs(self, goal: Goal) -> np.ndarray:
        costs = np.zeros(self.slack_count + len(self.pair_items))
        for key, weight in goal.slack.items():
            costs[self.slack_columns[key]] = weight
        if goal.pair_cost is not None:
            costs[self.slack_count :] = goal.pair_cost[self.pair_items, self.pair_brokers]
        return costs

    def set_goal(self, goal: Goal) -> None:
        self.current_goal = goal
        costs = self.goal_costs(goal)
        self.highs.changeColsCost(len(costs), np.arange(len(costs), dtype=np.int32), costs)

    def hold(self, goal: Goal, value: float) -> None:
        """Keep `goal` at most `value` from now on (a row over the goal's costs)."""
        costs = self.goal_costs(goal)
        nonzero = np.flatnonzero(costs)
        self.highs.addRow(-INF, value, len(nonzero), nonzero.astype(np.int32), costs[nonzero])
        self.held_rows.append(self.row_count)
        self.row_count += 1

    def dual_bound(self) -> float:
        """After `run`: the MIP's proven dual bound, or the LP's optimum."""
        info = self.highs.getInfo()
        return float(info.mip_dual_bound) if self.integer else float(info.objective_function_value)

    def run(self) -> float:
        self.highs.run()
        status = self.highs.getModelStatus()
        if status not in (highspy.HighsModelStatus.kOptimal, highspy.HighsModelStatus.kInfeasible):
            # Seen with HiGHS 1.16: the primal simplex gives up on a degenerate LP, or the MIP presolve
            # reduces a tiny model to nothing and postsolves to a point that breaks a row ("Solve error").
            # Redo it without presolve and with the other simplex.
            self.highs.setOptionValue("simplex_strategy", DUAL if self.simplex == PRIMAL else PRIMAL)
            self.highs.setOptionValue("presolve", "off")
            self.highs.clearSolver()
            self.highs.run()
            self.highs.setOptionValue("simplex_strategy", self.simplex)
            self.highs.setOptionValue("presolve", "choose")
            status = self.highs.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            raise RuntimeError(f"HiGHS ended with {self.highs.modelStatusToString(status)}")
        return float(self.highs.getInfo().objective_function_value)

    def x(self) -> np.ndarray:
        values = np.asarray(self.highs.getSolution().col_value)
        x = np.zeros(self.problem.shape)
        x[self.pair_items, self.pair_brokers] = values[self.slack_count :]
        return x

    # --- column generation -------------------------------------------------------------------------
    def reduced_costs(self, goal: Goal) -> np.ndarray:
        """Reduced cost of every pair (items x brokers) at the current duals: cost - column . duals."""
        p = self.problem
        duals = np.asarray(self.highs.getSolution().row_dual)
        items, brokers = p.shape
        reduced = np.zeros((items, brokers)) if goal.pair_cost is None else goal.pair_cost.astype(float).copy()
        reduced -= duals[self.item_row][:, None]
        if self.group_row is not None and p.group_of is not None:
            group_duals = np.where(self.group_row >= 0, duals[np.maximum(self.group_row, 0)], 0.0)
            reduced -= group_duals[:, p.group_of]
        for load in p.loads:
            rows = self.load_rows[load.name]
            per_broker = np.where(rows >= 0, duals[np.maximum(rows, 0)], 0.0).sum(axis=0)
            reduced -= np.outer(load.weights, per_broker)
        for held_goal, row in zip(self.goals, self.held_rows, strict=False):
            if held_goal.pair_cost is not None:
                reduced -= duals[row] * held_goal.pair_cost
        return np.where(p.allowed & (self.column_of < 0), reduced, INF)  # only pairs not yet in the model


def hold_value(goal: Goal, optimum: float) -> float:
    """What the later goals are solved under: `goal` at most this (its optimum, or allowance, plus the
    solvers' tolerance). A solution within it for every earlier goal is inside the region the later
    goals' optima (and bounds) were taken over."""
    return max(optimum, goal.allowance) + RELATIVE_HOLD * abs(optimum) + ABSOLUTE_HOLD


def solve_exact(
    problem: Problem, goals: list[Goal], hold: dict[str, float] | None = None, simplex: int = PRIMAL
) -> Solution:
    """Every goal in order, as a MIP over all allowed pairs. A goal in `hold` is held at max(optimum, given).
    `simplex`: HiGHS' strategy for the LPs (see `solve_relaxed`)."""
    model = _Model(problem, integer=True, goals=goals, simplex=simplex)
    model.add_pairs(np.argwhere(problem.allowed))
    bounds: dict[str, float] = {}
    values = _minimise_in_order(model, goals, hold or {}, bounds=bounds)
    return Solution(model.x(), values, integral=True, goal_bounds=bounds)


def solve_relaxed(
    problem: Problem,
    goals: list[Goal],
    start: np.ndarray,
    hold: dict[str, float] | None = None,
    simplex: int = PRIMAL,
    reached: dict[str, float] | None = None,
) -> Solution:
    """Every goal in order on the LP relaxation, by column generation from the pairs in `start` (bool mask).

    `reached`: goal -> a value some solution at hand reaches; a goal reached within its allowance is
    held at the allowance without being minimised (its value in the result is the reached one).

    `simplex`: HiGHS' primal or dual simplex. Measured at 10,000 partitions (`make bench-planner`): the
    placement LPs (band rows, start from today's pairs) solve 2-3x faster with the primal, 4x without
    racks; the leader LP (a min-max spread) 20x faster with the dual (1.7 s against 34 s)."""
    model = _Model(problem, integer=False, goals=goals, simplex=simplex)
    model.add_pairs(np.argwhere(start & problem.allowed))
    bounds: dict[str, float] = {}
    values = _minimise_in_order(model, goals, hold or {}, price=True, bounds=bounds, reached=reached)
    x = model.x()
    return Solution(x, values, integral=bool(np.all((x < INTEGRAL) | (x > 1 - INTEGRAL))), goal_bounds=bounds)


def _minimise_in_order(
    model: _Model,
    goals: list[Goal],
    hold: dict[str, float],
    price: bool = False,
    bounds: dict[str, float] | None = None,
    reached: dict[str, float] | None = None,
) -> dict[str, float]:
    values: dict[str, float] = {}
    for goal in goals:
        if reached and goal.name in reached and reached[goal.name] <= goal.allowance:
            # a known solution is within the allowance, so the held value max(optimum, allowance) is the
            # allowance whatever the optimum: no need to find it
            values[goal.name] = reached[goal.name]
            model.hold(goal, hold_value(goal, reached[goal.name]))
            continue
        model.set_goal(goal)
        value = model.run()
        for _ in range(MAX_PRICING_ROUNDS if price else 0):
            reduced = model.reduced_costs(goal)
            candidates = np.argwhere(reduced < -PRICING_TOLERANCE)
            if len(candidates) == 0:
                break
            # the most negative first, at most PRICED_PER_ITEM per item, so each round stays small
            order = np.lexsort((reduced[candidates[:, 0], candidates[:, 1]], candidates[:, 0]))
            candidates = candidates[order]
            first = np.searchsorted(candidates[:, 0], candidates[:, 0], side="left")
            rank = np.arange(len(candidates)) - first
            model.add_pairs(candidates[rank < PRICED_PER_ITEM])
            value = model.run()
        if bounds is not None:
            bounds[goal.name] = min(model.dual_bound(), value)
        if goal.name in hold:  # held at the given value (at least the optimum, or the model would be infeasible)
            value = max(value, hold[goal.name])
        values[goal.name] = value
        model.hold(goal, hold_value(goal, value))
    return values


def _paid_sample(goals: list[Goal], x: np.ndarray, fractional: np.ndarray, size: int) -> np.ndarray:
    """Up to `size` integral items whose pairs cost something under the first goal with pair costs (in
    the placement: partitions the LP copies), spread evenly over their costs.

    Why: the fractional items alone are few and often weigh almost nothing, so meeting a band exactly
    with them may take one more whole copy (measured at 10,000 partitions: 1.0% above the bound).
    Copies of assorted sizes beside them let the repair trade one copy for a similar one instead (0.56%);
    the MIP stays small (measured 0.2 s CPU for three racks of 10 brokers). Not beyond `REPAIR_PAIRS`:
    without racks (32 fractional partitions over 30 brokers) the sample made a MIP that ran past 10
    minutes at zero gap."""
    paid = next((g.pair_cost for g in goals if g.pair_cost is not None), None)
    if paid is None:
        return np.zeros(0, dtype=np.int64)
    cost = (paid * x).sum(axis=1)
    cost[fractional] = 0.0
    paying = np.flatnonzero(cost > 0)
    if len(paying) == 0:
        return paying
    paying = paying[np.argsort(cost[paying], kind="stable")]
    return paying[np.unique(np.linspace(0, len(paying) - 1, size).astype(np.int64))]


def fractional_items(x: np.ndarray) -> np.ndarray:
    """Items whose row of `x` is not all 0/1."""
    return np.flatnonzero(np.any((x > INTEGRAL) & (x < 1 - INTEGRAL), axis=1))


def round_relaxed(problem: Problem, goals: list[Goal], relaxed: Solution, simplex: int = PRIMAL) -> np.ndarray:
    """An integral assignment from a relaxed one: integral items keep their brokers; the fractional
    ones, with a sample of the integral items that pay (`_paid_sample`), are solved exactly, every goal
    in order, with the other items' loads as offsets. Returns 0/1 x."""
    x = np.rint(relaxed.x)
    rest = fractional_items(relaxed.x)
    if len(rest) == 0:
        return x
    sample = min(REPAIR_SAMPLE, REPAIR_PAIRS // max(x.shape[1], 1) - len(rest))
    if sample > 0:
        rest = np.union1d(rest, _paid_sample(goals, x, rest, sample))
    fixed = np.ones(len(x), dtype=bool)
    fixed[rest] = False
    loads = [
        Load(
            load.name,
            load.weights[rest],
            load.lower,
            load.upper,
            load.offset + load.weights[fixed] @ x[fixed],
            load.spread,
        )
        for load in problem.loads
    ]
    sub = Problem(
        cardinality=problem.cardinality[rest],
        allowed=problem.allowed[rest],
        loads=loads,
        group_of=problem.group_of,
        group_lower=None if problem.group_lower is None else problem.group_lower[rest],
        group_upper=None if problem.group_upper is None else problem.group_upper[rest],
    )
    sub_goals = [Goal(g.name, None if g.pair_cost is None else g.pair_cost[rest], g.slack, g.allowance) for g in goals]
    x[rest] = np.rint(solve_exact(sub, sub_goals, simplex=simplex).x)
    return x


def independent_parts(problem: Problem, goals: list[Goal]) -> list[tuple[np.ndarray, np.ndarray, Problem, list[Goal]]]:
    """The problem cut into independent subproblems, one per group, when it falls apart that way.

    It does when every item places a fixed number of brokers in each group (`group_lower ==
    group_upper` once tightened by the cardinality: RF 3 over three racks takes exactly one replica
    per rack), no load has a spread (`top`, `bottom`: a maximum over all brokers) and no goal has an
    allowance: then each group's brokers only ever see that group's placements, every goal is a sum
    of per-group terms, and minimising the sums in order is minimising each group's terms in order (a
    sum is at its least exactly when each term is, and the set of such solutions is the product of
    the groups' own). Smaller problems solve much faster (simplex time grows faster than the size:
    measured 115 s for one LP of 10,000 partitions over 30 brokers, 1.2 s for three of 10). Returns
    `[(items, brokers, subproblem, subgoals)]`, or the whole problem as its only part when it does not
    separate.
    """
    items, brokers = problem.shape
    whole = [(np.arange(items), np.arange(brokers), problem, goals)]
    if problem.group_of is None or problem.group_lower is None or problem.group_upper is None:
        return whole
    # what the cardinality implies: with three racks taking at most one replica each, RF 3 takes exactly one
    lower, upper = problem.group_lower, problem.group_upper
    cardinality = problem.cardinality[:, None]
    lower = np.maximum(lower, cardinality - (upper.sum(axis=1, keepdims=True) - upper))
    upper = np.minimum(upper, cardinality - (lower.sum(axis=1, keepdims=True) - lower))
    if not np.array_equal(lower, upper):
        return whole
    if any(load.spread for load in problem.loads) or any(goal.allowance > -INF for goal in goals):
        return whole
    parts = []
    for g in range(upper.shape[1]):
        in_items = np.flatnonzero(upper[:, g] > 0)
        in_brokers = np.flatnonzero(problem.group_of == g)
        if len(in_items) == 0:
            continue
        loads = [
            Load(
                load.name,
                load.weights[in_items],
                load.lower[in_brokers],
                load.upper[in_brokers],
                load.offset[in_brokers],
            )
            for load in problem.loads
        ]
        part = Problem(
            cardinality=upper[in_items, g],
            allowed=problem.allowed[np.ix_(in_items, in_brokers)],
            loads=loads,
        )
        pick = np.ix_(in_items, in_brokers)
        part_goals = [Goal(g.name, None if g.pair_cost is None else g.pair_cost[pick], g.slack) for g in goals]
        parts.append((in_items, in_brokers, part, part_goals))
    return parts
