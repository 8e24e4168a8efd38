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
  at most as many as there are load rows); `round_relaxed` fixes every integral item and solves the
  rest exactly, with the bands shifted by the fixed load.
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

    def __init__(self, problem: Problem, integer: bool, goals: list[Goal]):
        self.problem = problem
        self.integer = integer
        self.goals = goals
        self.highs = highspy.Highs()
        self.highs.setOptionValue("output_flag", False)
        self.highs.setOptionValue("random_seed", 0)
        self.highs.setOptionValue("simplex_strategy", 4)  # primal: measured 3x faster than dual on these LPs
        self.highs.setOptionValue("threads", 1)
        self.highs.setOptionValue("mip_rel_gap", 0.0)
        self.highs.setOptionValue("mip_abs_gap", 1e-9)
        items, brokers = problem.shape
        self.column_of = np.full((items, brokers), -1, dtype=np.int64)
        self.pairs: list[tuple[int, int]] = []
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
            self.group_row = np.full((items, groups), -1, dtype=np.int64)
            for i in range(items):
                for g in range(groups):
                    in_group = int(p.allowed[i, p.group_of == g].sum())
                    if p.group_lower[i, g] > 0 or p.group_upper[i, g] < in_group:
                        self.group_row[i, g] = len(lower)
                        lower.append(float(p.group_lower[i, g]))
                        upper.append(float(p.group_upper[i, g]))
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
        """Add columns for (item, broker) pairs not yet in the model (rows: item, group, loads, held goals)."""
        p = self.problem
        pairs = np.array([pair for pair in map(tuple, pairs) if self.column_of[pair] < 0], dtype=np.int64)
        if len(pairs) == 0:
            return
        starts: list[int] = []
        indices: list[int] = []
        values: list[float] = []
        for i, b in pairs:
            starts.append(len(indices))
            entries = [(int(self.item_row[i]), 1.0)]
            if self.group_row is not None and p.group_of is not None:
                row = self.group_row[i, p.group_of[b]]
                if row >= 0:
                    entries.append((int(row), 1.0))
            for load in p.loads:
                weight = float(load.weights[i])
                if weight:
                    entries += [(int(r), weight) for r in self.load_rows[load.name][:, b] if r >= 0]
            for goal, row in zip(self.goals, self.held_rows, strict=False):
                if goal.pair_cost is not None and goal.pair_cost[i, b]:
                    entries.append((row, float(goal.pair_cost[i, b])))
            for row, value in sorted(entries):
                indices.append(row)
                values.append(value)
        first = self.slack_count + len(self.pairs)
        count = len(pairs)
        current = self.current_goal
        costs = (
            np.zeros(count)
            if current is None or current.pair_cost is None
            else current.pair_cost[pairs[:, 0], pairs[:, 1]]
        )
        self.highs.addCols(
            count,
            np.asarray(costs, dtype=float),
            np.zeros(count),
            np.ones(count),
            len(indices),
            np.array(starts, np.int32),
            np.array(indices, np.int32),
            np.array(values, float),
        )
        for k, (i, b) in enumerate(pairs):
            self.column_of[i, b] = first + k
            self.pairs.append((int(i), int(b)))
        if self.integer:
            columns = np.arange(first, first + count, dtype=np.int32)
            self.highs.changeColsIntegrality(count, columns, np.full(count, 1, dtype=np.uint8))

    # --- goals -----------------------------------------------------------------------------------
    def goal_costs(self, goal: Goal) -> np.ndarray:
        costs = np.zeros(self.slack_count + len(self.pairs))
        for key, weight in goal.slack.items():
            costs[self.slack_columns[key]] = weight
        if goal.pair_cost is not None and self.pairs:
            items, brokers = np.array(self.pairs).T
            costs[self.slack_count :] = goal.pair_cost[items, brokers]
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
            # Seen with HiGHS 1.16: the primal simplex (faster here) gives up on a degenerate LP, or the MIP
            # presolve reduces a tiny model to nothing and postsolves to a point that breaks a row ("Solve
            # error"). Redo it without presolve and with the default simplex.
            self.highs.setOptionValue("simplex_strategy", 1)
            self.highs.setOptionValue("presolve", "off")
            self.highs.clearSolver()
            self.highs.run()
            self.highs.setOptionValue("simplex_strategy", 4)
            self.highs.setOptionValue("presolve", "choose")
            status = self.highs.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            raise RuntimeError(f"HiGHS ended with {self.highs.modelStatusToString(status)}")
        return float(self.highs.getInfo().objective_function_value)

    def x(self) -> np.ndarray:
        values = np.asarray(self.highs.getSolution().col_value)
        x = np.zeros(self.problem.shape)
        if self.pairs:
            items, brokers = np.array(self.pairs).T
            x[items, brokers] = values[self.slack_count :]
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


def _hold_value(goal: Goal, optimum: float) -> float:
    return max(optimum, goal.allowance) + RELATIVE_HOLD * abs(optimum) + ABSOLUTE_HOLD


def solve_exact(problem: Problem, goals: list[Goal], hold: dict[str, float] | None = None) -> Solution:
    """Every goal in order, as a MIP over all allowed pairs. A goal in `hold` is held at max(optimum, given)."""
    model = _Model(problem, integer=True, goals=goals)
    model.add_pairs(np.argwhere(problem.allowed))
    bounds: dict[str, float] = {}
    values = _minimise_in_order(model, goals, hold or {}, bounds=bounds)
    return Solution(model.x(), values, integral=True, goal_bounds=bounds)


def solve_relaxed(
    problem: Problem, goals: list[Goal], start: np.ndarray, hold: dict[str, float] | None = None
) -> Solution:
    """Every goal in order on the LP relaxation, by column generation from the pairs in `start` (bool mask)."""
    model = _Model(problem, integer=False, goals=goals)
    model.add_pairs(np.argwhere(start & problem.allowed))
    bounds: dict[str, float] = {}
    values = _minimise_in_order(model, goals, hold or {}, price=True, bounds=bounds)
    x = model.x()
    return Solution(x, values, integral=bool(np.all((x < INTEGRAL) | (x > 1 - INTEGRAL))), goal_bounds=bounds)


def _minimise_in_order(
    model: _Model,
    goals: list[Goal],
    hold: dict[str, float],
    price: bool = False,
    bounds: dict[str, float] | None = None,
) -> dict[str, float]:
    values: dict[str, float] = {}
    for goal in goals:
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
        model.hold(goal, _hold_value(goal, value))
    return values


def fractional_items(x: np.ndarray) -> np.ndarray:
    """Items whose row of `x` is not all 0/1."""
    return np.flatnonzero(np.any((x > INTEGRAL) & (x < 1 - INTEGRAL), axis=1))


def round_relaxed(problem: Problem, goals: list[Goal], relaxed: Solution) -> np.ndarray:
    """An integral assignment from a relaxed one: integral items keep their brokers; the others are
    solved exactly, every goal in order, with the fixed items' loads as offsets. Returns 0/1 x."""
    x = np.rint(relaxed.x)
    rest = fractional_items(relaxed.x)
    if len(rest) == 0:
        return x
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
    x[rest] = np.rint(solve_exact(sub, sub_goals).x)
    return x
