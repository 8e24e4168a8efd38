"""`python -m bench.planner` (`make bench-planner`): how long the reassignment planner takes at a real cluster's scale.

The case: `--partitions` partitions (default 10,000) at RF 3 over 27 brokers in three racks, with
log-normal sizes (median 500 MB, a long tail of large partitions: a few hundred GB at most) and
bytes-in in proportion to size, laid out rack-aware at random; then `--added` brokers (default 3,
one per rack) join empty, making 30. The planner balances disk within `--tolerance` (10%), replica
counts and leaders by bytes-in, copying the fewest bytes. Printed: the wall time of
`plan_reassignment` (no Kafka involved; one process, the machine's load average beside it, since the
machine is shared), bytes copied, the LP lower bound and the gap between them, and the disk spread
before and after. `--repeat` runs (default 3) give the median wall and CPU time (the plan is the same each
time: the planner is deterministic); the figures also go to `--results-md` (default `bench/PLANNER.md`).
Nothing here is asserted: the test suite never times anything.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from orchestration.reassignment.planner import plan_reassignment

GB = 10**9


def skewed_cluster(partitions: int, old_brokers: int, racks: int, seed: int):  # type: ignore[no-untyped-def]
    """A rack-aware RF 3 layout at random with log-normal sizes; brokers are 1..old_brokers."""
    rng = np.random.default_rng(seed)
    rack_of = {b: f"rack-{(b - 1) % racks}" for b in range(1, old_brokers + 1)}
    by_rack = [[b for b, r in rack_of.items() if r == f"rack-{k}"] for k in range(racks)]
    current, sizes, bytes_in = {}, {}, {}
    for p in range(partitions):
        tp = (f"topic-{p % 50}", p // 50)
        current[tp] = [int(rng.choice(brokers)) for brokers in by_rack]
        rng.shuffle(current[tp])
        sizes[tp] = int(min(rng.lognormal(np.log(0.5 * GB), 1.2), 300 * GB))
        bytes_in[tp] = sizes[tp] / 86_400  # a day's retention
    return current, sizes, bytes_in, rack_of


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.planner", description=__doc__.splitlines()[0])
    parser.add_argument("--partitions", type=int, default=10_000)
    parser.add_argument("--brokers", type=int, default=27, help="brokers holding the data today")
    parser.add_argument("--added", type=int, default=3, help="empty brokers joining")
    parser.add_argument("--tolerance", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="runs; the median time is reported")
    parser.add_argument("--results-md", type=Path, default=Path(__file__).resolve().parent / "PLANNER.md")
    args = parser.parse_args()

    current, sizes, bytes_in, racks = skewed_cluster(args.partitions, args.brokers, 3, args.seed)
    targets = list(range(1, args.brokers + args.added + 1))
    racks |= {b: f"rack-{(b - 1) % 3}" for b in targets}
    walls, cpus, loads, proposals = [], [], [], []
    for _ in range(max(args.repeat, 1)):
        loads.append(os.getloadavg()[0])
        started, cpu_started = time.perf_counter(), time.process_time()
        plan = plan_reassignment(current, targets, racks, sizes=sizes, bytes_in=bytes_in, tolerance=args.tolerance)
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu_started)
        proposals.append(plan.proposed)
    seconds, cpu = statistics.median(walls), statistics.median(cpus)

    def spread(values: dict[int, int]) -> str:
        mean = sum(values[b] for b in targets) / len(targets)
        low, high = min(values[b] for b in targets), max(values[b] for b in targets)
        return f"{(low / mean - 1) * 100:+.1f}% .. {(high / mean - 1) * 100:+.1f}% of the mean"

    gap = plan.bytes_copied - plan.lower_bound
    counts = [plan.replicas_after[b] for b in targets]
    leader_in = dict.fromkeys(targets, 0.0)
    for tp, replicas in plan.proposed.items():
        leader_in[replicas[0]] += bytes_in[tp]
    mean_in = sum(leader_in.values()) / len(targets)
    lines = [
        f"planner: {args.partitions:,} partitions RF 3, {args.brokers} + {args.added} brokers in 3 racks",
        f"  time        {seconds:.1f} s wall, {cpu:.1f} s CPU, median of {len(walls)}"
        f" (walls {', '.join(f'{w:.1f}' for w in walls)} s; load {', '.join(f'{x:.1f}' for x in loads)};"
        f" {os.cpu_count()} cores)",
        f"  copied      {plan.bytes_copied / GB:,.1f} GB in {plan.moves} replica copies",
        f"  lower bound {plan.lower_bound / GB:,.1f} GB; gap {gap / GB:,.2f} GB ({gap / max(plan.lower_bound, 1):.3%})",
        f"  disk before {spread(plan.bytes_before)}",
        f"  disk after  {spread(plan.bytes_after)} (tolerance +-{args.tolerance:.0%})",
        f"  replicas    {min(counts)} .. {max(counts)} per broker",
        f"  leader in   {min(leader_in.values()) / mean_in - 1:+.1%} .. {max(leader_in.values()) / mean_in - 1:+.1%}",
        f"  same plan   {'in every run' if all(p == proposals[0] for p in proposals) else 'NOT in every run'}",
    ]
    print("\n".join(lines))
    stamp = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    command = f"python -m bench.planner --partitions {args.partitions} --repeat {args.repeat}"
    args.results_md.write_text(
        f"# Reassignment planner at scale\n\nWritten by `make bench-planner` (`{command}`) at {stamp};"
        " do not edit by hand. Method: `bench/planner.py`.\n\n```\n" + "\n".join(lines) + "\n```\n"
    )


if __name__ == "__main__":
    main()
