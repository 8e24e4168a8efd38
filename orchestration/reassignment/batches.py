"""How a plan is carried out: in batches, largest gain first, and how long the copying takes (pure).

Gain of one partition's change: how much it alone, applied to today's assignment, reduces the disk
imbalance (the sum over brokers of |bytes - mean|). Executing the biggest gains first means a plan
stopped half-way has already done most of its good. Changes that copy nothing (a new leader order)
go last. A batch holds partitions until it would copy more than `batch_bytes` (at least one each).

Copy time under a replication throttle: Kafka applies the rate per broker, to what it sends as a
leader and to what it receives as a follower, so the estimate is the busiest broker's bytes (sent
or received) divided by the rate. Senders are the current leaders (the first current replica).
"""

from __future__ import annotations

from collections import Counter

from orchestration.reassignment.planner import Partition, Plan


def gains(plan: Plan) -> dict[Partition, int]:
    """Bytes of imbalance (sum of |bytes - mean| over target brokers) each change removes on its own."""
    before = {b: plan.bytes_before.get(b, 0) for b in sorted(set(plan.bytes_before) | set(plan.brokers))}
    mean = sum(before[b] for b in plan.brokers) / len(plan.brokers)

    def deviation(bytes_on: dict[int, int], b: int) -> float:
        target = mean if b in plan.brokers else 0.0  # a drained broker should hold nothing
        return abs(bytes_on[b] - target)

    result = {}
    for tp, replicas in plan.changed.items():
        size = plan.sizes[tp]
        touched = set(replicas) ^ set(plan.current[tp])
        after = dict(before)
        for b in touched:
            after[b] = after[b] + (size if b in replicas else -size)
        result[tp] = round(sum(deviation(before, b) - deviation(after, b) for b in touched))
    return result


def execution_order(plan: Plan) -> list[Partition]:
    """Changed partitions, largest gain first, then largest copy, then by name (deterministic)."""
    gain = gains(plan)
    copied = {tp: plan.sizes[tp] * len(set(plan.proposed[tp]) - set(plan.current[tp])) for tp in plan.changed}
    return sorted(plan.changed, key=lambda tp: (copied[tp] == 0, -gain[tp], -copied[tp], tp))


def batches(plan: Plan, batch_bytes: int) -> list[list[Partition]]:
    """`execution_order` cut into batches copying at most `batch_bytes` each (a bigger partition alone)."""
    if batch_bytes <= 0:
        raise ValueError(f"batch size must be a positive number of bytes, got {batch_bytes}")
    result: list[list[Partition]] = []
    current: list[Partition] = []
    in_batch = 0
    for tp in execution_order(plan):
        copy = plan.sizes[tp] * len(set(plan.proposed[tp]) - set(plan.current[tp]))
        if current and in_batch + copy > batch_bytes:
            result.append(current)
            current, in_batch = [], 0
        current.append(tp)
        in_batch += copy
    if current:
        result.append(current)
    return result


def copy_seconds(plan: Plan, throttle_bytes_per_second: int) -> float:
    """Estimated time to copy the plan's bytes under the per-broker replication throttle."""
    if throttle_bytes_per_second <= 0:
        raise ValueError(f"throttle must be a positive byte rate, got {throttle_bytes_per_second}")
    sent: Counter[int] = Counter()
    received: Counter[int] = Counter()
    for tp, added in plan.moves_by_partition.items():
        size = plan.sizes[tp]
        sent[plan.current[tp][0]] += size * len(added)
        for b in added:
            received[b] += size
    busiest = max([*sent.values(), *received.values(), 0])
    return busiest / throttle_bytes_per_second
