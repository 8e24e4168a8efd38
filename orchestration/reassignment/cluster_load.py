"""The load the planner weighs: partition sizes (DescribeLogDirs), disks, and bytes-in per partition.

A thin adapter, like `cluster_state`: kafka-python's admin client asks every broker for its log
directories (DescribeLogDirs, which librdkafka does not offer) and this reshapes the answer into
plain dicts for `plan_reassignment(sizes=..., disk_limits=...)`.

- A partition's size is the largest size any of its replicas reports (a replica still catching up
  reports less; future replicas of an ongoing move are left out). That is what a new copy will cost.
- A broker's disk is the sum over its log directories of `total_bytes` (Kafka 3.3+, KIP-827; -1 when
  the broker does not say); `disk_limits_under` turns "keep these disks under X%" into bytes.
- Bytes-in per partition: from a JSON file `{"topic:partition": bytes_per_second}` the operator
  supplies (e.g. exported from their metrics), or sampled here as the growth of the end offsets over
  an interval times the mean record size on disk (size / (end - start offset)): an estimate, good
  enough to spread leaders, and no metrics reporter needed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

Partition = tuple[str, int]


@dataclass(frozen=True)
class LogDirs:
    """`sizes`: bytes per partition (largest replica); `replica_sizes`: per (partition, broker);
    `disk_total`: broker -> total bytes of its log directories (absent when unknown)."""

    sizes: dict[Partition, int]
    replica_sizes: dict[tuple[Partition, int], int]
    disk_total: dict[int, int]


def read_log_dirs(admin, topics: Iterable[str]) -> LogDirs:  # type: ignore[no-untyped-def]
    """DescribeLogDirs for `topics` on every broker (kafka-python `KafkaAdminClient`)."""
    answers = admin.describe_log_dirs(sorted(topics))
    return parse_log_dirs(answers)


def parse_log_dirs(answers: list[dict]) -> LogDirs:
    """The pure part of `read_log_dirs`: kafka-python's answer (a list per broker) to `LogDirs`."""
    replica_sizes: dict[tuple[Partition, int], int] = {}
    disk_total: dict[int, int] = {}
    for answer in answers:
        broker = int(answer["broker"])
        total = 0
        for log_dir in answer["log_dirs"]:
            if log_dir.get("error_code", 0):
                raise RuntimeError(f"broker {broker} could not describe log dir {log_dir.get('log_dir')}")
            total = total + log_dir["total_bytes"] if log_dir.get("total_bytes", -1) >= 0 and total >= 0 else -1
            for topic in log_dir["topics"]:
                for partition in topic["partitions"]:
                    if partition.get("is_future_key"):
                        continue
                    key = ((topic["name"], int(partition["partition_index"])), broker)
                    replica_sizes[key] = replica_sizes.get(key, 0) + int(partition["partition_size"])
        if total > 0:
            disk_total[broker] = total
    sizes: dict[Partition, int] = {}
    for (tp, _broker), size in replica_sizes.items():
        sizes[tp] = max(sizes.get(tp, 0), size)
    return LogDirs(dict(sorted(sizes.items())), replica_sizes, dict(sorted(disk_total.items())))


def disk_limits_under(disk_total: Mapping[int, int], fraction: float, brokers: Iterable[int]) -> dict[int, int]:
    """ "Keep these brokers' disks under `fraction`" as bytes per broker; a broker of unknown size is refused."""
    if not 0 < fraction <= 1:
        raise ValueError(f"disk fraction {fraction} must be in (0, 1]")
    unknown = [b for b in brokers if b not in disk_total]
    if unknown:
        raise ValueError(f"brokers {unknown} do not report their disk size (DescribeLogDirs total_bytes)")
    return {b: int(disk_total[b] * fraction) for b in brokers}


def read_bytes_in_file(path: Path) -> dict[Partition, float]:
    """`{"topic:partition": bytes_per_second, ...}` from a JSON file. Raises ValueError naming a bad entry."""
    document = json.loads(path.read_text())
    if not isinstance(document, dict):
        raise ValueError(f"{path}: expected an object of 'topic:partition' -> bytes per second")
    rates: dict[Partition, float] = {}
    for key, value in document.items():
        topic, _, partition = str(key).rpartition(":")
        if not topic or not partition.isdigit() or not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{path}: bad entry {key!r}: {value!r} (want 'topic:partition': bytes per second >= 0)")
        rates[topic, int(partition)] = float(value)
    return rates


def sample_bytes_in(
    consumer_config: Mapping[str, object], sizes: Mapping[Partition, int], interval_s: float = 10.0
) -> dict[Partition, float]:
    """Bytes per second into each partition of `sizes`, from its end offset twice `interval_s` apart
    times its mean record size on disk. A partition without records counts 0."""
    consumer = Consumer({**consumer_config, "group.id": "kdp-reassignment-sampler", "enable.auto.commit": False})
    try:
        partitions = sorted(sizes)

        def ends() -> dict[Partition, tuple[int, int]]:
            return {
                tp: consumer.get_watermark_offsets(TopicPartition(*tp), timeout=10, cached=False) for tp in partitions
            }

        first, started = ends(), time.monotonic()
        time.sleep(interval_s)
        second, elapsed = ends(), time.monotonic() - started
    finally:
        consumer.close()
    rates = {}
    for tp in partitions:
        low, high = second[tp]
        records = high - low
        mean_record = sizes[tp] / records if records > 0 else 0.0
        rates[tp] = max(0, high - first[tp][1]) * mean_record / elapsed
    return rates
