"""A small, deterministic min-cost flow solver: the optimisation engine of the reassignment planner.

Why a flow: "put every replica somewhere valid, keep racks spread and brokers balanced, and move as
little data as possible" is a transportation problem. Written as a network whose arc costs encode
those goals, a min-cost flow is *provably* the best placement, where a greedy mover is only best in
the cases someone thought of.

Contract:
- Arc costs are non-negative integers (Python ints, so weights may be as large as needed to make one
  goal strictly dominate another).
- `preload(path)` may push one unit along a path of zero-cost arcs before solving. Such a flow costs
  nothing, so it is a min-cost flow of its value, and successive shortest paths can continue from it
  with zero potentials. Planners use it to route the cheap, obvious units (replicas that stay where
  they are) up front, so the solver only searches for the few units that must move.
- `solve(source, sink, amount)` raises `InfeasibleFlow` when the network cannot carry `amount`.
- Same network built in the same order -> same flow: ties are broken by node and arc number.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence


class InfeasibleFlow(ValueError):
    """The network cannot carry the requested amount (some constraint cannot be met)."""


class FlowNetwork:
    """A directed network; arc `a` and its residual twin are `a` and `a ^ 1`."""

    def __init__(self) -> None:
        self._adjacent: list[list[int]] = []
        self._head: list[int] = []
        self._residual: list[int] = []
        self._cost: list[int] = []

    def add_node(self) -> int:
        self._adjacent.append([])
        return len(self._adjacent) - 1

    def add_arc(self, tail: int, head: int, capacity: int, cost: int) -> int:
        """Add an arc and return its id (for `flow` and `preload`)."""
        if capacity < 0 or cost < 0:
            raise ValueError(f"arc {tail}->{head}: capacity and cost must be non-negative")
        arc = len(self._head)
        for node, to, residual, unit_cost in ((tail, head, capacity, cost), (head, tail, 0, -cost)):
            self._adjacent[node].append(len(self._head))
            self._head.append(to)
            self._residual.append(residual)
            self._cost.append(unit_cost)
        return arc

    def flow(self, arc: int) -> int:
        """Units currently carried by `arc`."""
        return self._residual[arc ^ 1]

    def preload(self, path: Sequence[int]) -> None:
        """Push one unit along `path` (consecutive arc ids), which must be free and have spare capacity."""
        if any(self._cost[arc] != 0 or self._residual[arc] < 1 for arc in path):
            raise ValueError("preload only takes zero-cost arcs with spare capacity")
        for arc in path:
            self._residual[arc] -= 1
            self._residual[arc ^ 1] += 1

    def residual(self, arc: int) -> int:
        return self._residual[arc]

    def solve(self, source: int, sink: int, amount: int) -> int:
        """Raise the `source`->`sink` flow to `amount` units at least total cost; return the added cost.

        Primal-dual: Dijkstra on reduced costs (Johnson potentials) finds the cost of a cheapest
        residual path; then every path of that cost is augmented at once (a blocking flow on the arcs
        of zero reduced cost, as in Dinic's algorithm). The planner's costs take few distinct values,
        so a handful of Dijkstra runs place thousands of replicas.
        """
        potential = [0] * len(self._adjacent)
        sent = sum(self.flow(arc) for arc in self._adjacent[source] if arc % 2 == 0)
        added_cost = 0
        while sent < amount:
            distance = self._shortest_distances(source, potential)
            if distance[sink] is None:
                raise InfeasibleFlow(f"only {sent} of {amount} units can be routed")
            for node, dist in enumerate(distance):
                if dist is not None:  # unreachable nodes stay unreachable: their potential no longer matters
                    potential[node] += dist
            units, cost = self._augment_cheapest_paths(source, sink, potential, amount - sent)
            sent += units
            added_cost += cost
        return added_cost

    def _reduced_cost(self, arc: int, potential: list[int]) -> int:
        return self._cost[arc] + potential[self._head[arc ^ 1]] - potential[self._head[arc]]

    def _shortest_distances(self, source: int, potential: list[int]) -> list[int | None]:
        distance: list[int | None] = [None] * len(self._adjacent)
        distance[source] = 0
        queue = [(0, source)]
        while queue:
            dist, node = heapq.heappop(queue)
            if dist != distance[node]:
                continue
            for arc in self._adjacent[node]:
                if self._residual[arc] <= 0:
                    continue
                head = self._head[arc]
                candidate = dist + self._reduced_cost(arc, potential)
                best = distance[head]
                if best is None or candidate < best:
                    distance[head] = candidate
                    heapq.heappush(queue, (candidate, head))
        return distance

    def _augment_cheapest_paths(self, source: int, sink: int, potential: list[int], limit: int) -> tuple[int, int]:
        """Augment up to `limit` units along arcs of zero reduced cost; return (units, cost)."""
        units_sent = cost = 0
        while units_sent < limit:
            level = self._levels(source, potential)
            if level[sink] is None:
                break
            next_arc = [0] * len(self._adjacent)
            while units_sent < limit:
                path = self._admissible_path(source, sink, potential, level, next_arc)
                if path is None:
                    break
                units = min(limit - units_sent, *(self._residual[arc] for arc in path))
                for arc in path:
                    self._residual[arc] -= units
                    self._residual[arc ^ 1] += units
                    cost += units * self._cost[arc]
                units_sent += units
        return units_sent, cost

    def _levels(self, source: int, potential: list[int]) -> list[int | None]:
        """Breadth-first levels over residual arcs of zero reduced cost."""
        level: list[int | None] = [None] * len(self._adjacent)
        level[source] = 0
        frontier = [source]
        while frontier:
            following = []
            for node in frontier:
                for arc in self._adjacent[node]:
                    head = self._head[arc]
                    if level[head] is None and self._residual[arc] > 0 and self._reduced_cost(arc, potential) == 0:
                        level[head] = level[node] + 1  # type: ignore[operator]
                        following.append(head)
            frontier = following
        return level

    def _admissible_path(
        self, source: int, sink: int, potential: list[int], level: list[int | None], next_arc: list[int]
    ) -> list[int] | None:
        """One source-sink path going up the levels (iterative DFS; `next_arc` skips dead ends for good)."""
        path: list[int] = []
        node = source
        while node != sink:
            arcs = self._adjacent[node]
            while next_arc[node] < len(arcs):
                arc = arcs[next_arc[node]]
                head = self._head[arc]
                if (
                    self._residual[arc] > 0
                    and level[head] == level[node] + 1  # type: ignore[operator]
                    and self._reduced_cost(arc, potential) == 0
                ):
                    break
                next_arc[node] += 1
            else:
                if node == source:
                    return None
                level[node] = None  # dead end: never enter it again in this phase
                arc = path.pop()
                node = self._head[arc ^ 1]
                next_arc[node] += 1
                continue
            path.append(arc)
            node = self._head[arc]
        return path
