"""End-to-end latency at a fixed offered load: event produced -> processed record visible to readers.

Three processes, as in production: the generator (`kdp generate --rate R --duration S`) writes to a fresh
source topic; the converter (`kdp stream`, the real command, in its own group) converts; this process
reads the output topic with `isolation.level=read_committed`, so a record counts only once readers can see
it (for exactly-once, once its transaction has committed).

Clocks, all this machine's wall clock in milliseconds:
- *produced*: the source record's Kafka timestamp (CreateTime: set by the generator's producer when
  `produce()` is called), read back from the source topic afterwards;
- *visible*: when `poll()` handed the output record to this reader (one message per `poll()`, so no
  batching of ours inflates it);
- *processed_at*, a field of every output record: the converter's clock when it started the batch. It
  splits the total in two: produced -> batch start (the generator's linger, the broker, and the converter
  finishing its previous batch: it does not wait to fill one) and batch start -> visible (convert, produce,
  flush and commit, fetch).

Where the converter's batches spend their time comes from the converter itself: it runs with a metrics port,
and its stage histograms (poll, convert, produce, flush, commit per batch) are scraped once the output is read,
before it is stopped (`bench.stages`); `p99_held_by` names the stage of the batch's own work with the largest
p99.

Only processed records are timed (dead letters carry no `processed_at`); they are about 95 % of events.
The converter is started and its group is stable before the first event is produced, so no process start or
backlog is measured. The first `WARM_UP_S` of each run are reported apart (`warm_up_ms`) and left out of the
distributions: each run starts on fresh topics, and its first transactions are slow once (up to about a second
exactly-once; the figures are in docs/converter.md, "Latency and memory: what was tried"). At 10,000 msg/s a
stall once per run holds the run's p99, which is then not the steady state's.

Where the slowest records' time went (`tail_split`): a stall of a few hundred milliseconds, in the converter or
the broker, delays every record that arrives meanwhile, thousands at this load, so it can hold a run's p99
while the stage histograms, one sample per batch, do not show it at their p99.
"""

from __future__ import annotations

import io
import json
import math
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import fastavro
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from bench import runner, stages
from bench.kafka_admin import create_topics, end_offsets, register_output_schema, wait_for_stable_group
from streaming.loop.pipeline import PROCESSED_SCHEMA
from streaming.settings import Settings

PERCENTILES = (50.0, 99.0, 99.9)
IDLE_END_S = 3.0  # after the generator has finished, the output is complete once it is quiet this long
WARM_UP_S = 2.0
"""Records produced this long after a run's first record are its warm-up (see the module docstring)."""
TAIL_PERCENTILE = 99.0
TAIL_WINDOW_MS = 250
"""`tail_split` counts the windows of produce time, this wide, that the slowest records fall in."""


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (the smallest value with at least p % of the values at or below it)."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def distribution(values: Sequence[float]) -> dict[str, float]:
    """p50, p99, p99.9, mean and max of `values`, rounded to 0.1 ms."""
    ordered = sorted(values)
    summary = {f"p{p:g}": round(percentile(ordered, p), 1) for p in PERCENTILES}
    summary["mean"] = round(sum(ordered) / len(ordered), 1)
    summary["max"] = round(ordered[-1], 1)
    return summary


def tail_split(timings: Sequence[tuple[float, float, float]], p: float = TAIL_PERCENTILE) -> dict[str, float]:
    """Where the slowest records' time went. `timings`: per record (produced, batch start, visible), in ms.

    Over the records whose latency is at or above the `p`-th percentile (nearest rank): how many, the mean ms
    that passed before their batch started and after it, and the number of `TAIL_WINDOW_MS` windows of produce
    time they fall in. Few windows: a few stalls held them all; many: the tail is spread over the run.
    """
    if not timings:
        raise ValueError("no records")
    threshold = percentile(sorted(visible - produced for produced, _, visible in timings), p)
    slow = [(produced, start, visible) for produced, start, visible in timings if visible - produced >= threshold]
    first = min(produced for produced, _, _ in timings)
    return {
        "records": len(slow),
        "to_batch_mean_ms": round(sum(start - produced for produced, start, _ in slow) / len(slow), 1),
        "batch_to_visible_mean_ms": round(sum(visible - start for _, start, visible in slow) / len(slow), 1),
        "windows": len({int((produced - first) // TAIL_WINDOW_MS) for produced, _, _ in slow}),
    }


def summarise_runs(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Min, median and max over repeated runs of each statistic of `latency_ms` (p50, p99, p99.9, mean, max).

    One run's p99 moves a lot on a shared machine; the median of three is the figure to quote, and min and
    max show how far apart the runs were. With an even number of runs the median is the mean of the middle two.
    """
    if not runs:
        raise ValueError("no runs")
    summary = {}
    for statistic in runs[0]["latency_ms"]:
        values = sorted(run["latency_ms"][statistic] for run in runs)
        middle = len(values) // 2
        median = values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
        summary[statistic] = {"min": values[0], "median": round(median, 1), "max": values[-1]}
    return summary


def split_warm_up(
    timings: Sequence[tuple[float, float, float]], warm_up_s: float = WARM_UP_S
) -> tuple[list[tuple[float, float, float]], list[tuple[float, float, float]]]:
    """(after the warm-up, the warm-up): records by produce time, the warm-up being the first `warm_up_s` after
    the run's first produced record."""
    if not timings:
        return [], []
    end = min(produced for produced, _, _ in timings) + warm_up_s * 1000
    return [t for t in timings if t[0] >= end], [t for t in timings if t[0] < end]


def _without_logical_types(schema: Any) -> Any:
    """The schema with `logicalType` removed, so that timestamps decode as plain epoch milliseconds."""
    if isinstance(schema, dict):
        return {key: _without_logical_types(value) for key, value in schema.items() if key != "logicalType"}
    if isinstance(schema, list):
        return [_without_logical_types(item) for item in schema]
    return schema


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stage_summary(port: int) -> dict[str, Any]:
    """The converter's stage figures (`bench.stages`), or the reason they could not be read."""
    try:
        summary = stages.summarise_stages(stages.scrape(port))
    except OSError as error:
        return {"stages_error": f"{type(error).__name__}: {error}"}
    return {"stages_ms": summary, "p99_held_by": stages.holder(summary)}


def _source_timestamps(settings: Settings, topic: str) -> dict[tuple[int, int], int]:
    """CreateTime of every message of `topic`, by (partition, offset)."""
    ends = end_offsets(settings, topic)
    consumer = Consumer({**settings.kafka_config(), "group.id": "bench-latency-source", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p, (low, high) in ends.items() if high > low])
    remaining = {p: high for p, (low, high) in ends.items() if high > low}
    stamps: dict[tuple[int, int], int] = {}
    try:
        while remaining:
            for message in consumer.consume(10_000, 1.0):
                if message.error():
                    continue
                partition, offset = message.partition(), message.offset()
                assert partition is not None and offset is not None  # set on every consumed message
                stamps[(partition, offset)] = message.timestamp()[1]
                if offset + 1 >= remaining.get(partition, math.inf):
                    del remaining[partition]
    finally:
        consumer.close()
    return stamps


def _read_output(
    settings: Settings, topic: str, generator: subprocess.Popen[str], deadline: float
) -> list[tuple[float, bytes]]:
    """(visible time in ms, value) of every output record, until the generator is done and the output quiet."""
    consumer = Consumer(
        {
            **settings.kafka_config(),
            "group.id": "bench-latency-reader",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": 5,
        }
    )
    partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    received: list[tuple[float, bytes]] = []
    append, poll, now = received.append, consumer.poll, time.time
    last_seen = time.monotonic()
    try:
        while time.monotonic() < deadline:
            message = poll(0.1)
            if message is None:
                if generator.poll() is not None and time.monotonic() - last_seen > IDLE_END_S:
                    break
                continue
            value = message.value()
            if message.error() or value is None:
                continue
            append((now() * 1000, value))
            last_seen = time.monotonic()
    finally:
        consumer.close()
    return received


def measure_latency(
    settings: Settings,
    run_id: str,
    delivery: str,
    rate: int,
    seconds: float,
    logs: Path,
    partitions: int = 6,
    seed: int = 11,
    tag: str = "",
    extra_environment: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run generator, converter and reader for `seconds` at `rate` msg/s; latency distributions in ms.

    `tag` tells apart the topics, group and logs of repeated runs; `extra_environment` is laid over the
    converter's (e.g. `KDP_COMMIT_INTERVAL_MS` for the cadence table)."""
    mode = ("eos" if delivery == "exactly-once" else "alo") + (f"-{tag}" if tag else "")
    source = f"{run_id}-latency-{mode}-src"
    lane = runner.Lane.for_subject(run_id, f"latency-{mode}", source)
    create_topics(settings, [source, *lane.topics], partitions)
    register_output_schema(settings, lane.output)
    environment = {**lane.environment(delivery), **(extra_environment or {})}
    metrics_port = _free_port()
    converter_command = [
        sys.executable,
        "-m",
        "kdp",
        "stream",
        # No --instance: a static member does not leave its group when it stops, and the clean-up deletes it.
        "--log-every",
        "5",
        "--metrics-port",
        str(metrics_port),
    ]
    converter = runner.start(converter_command, environment, logs / f"latency-{mode}-converter.log")
    try:
        wait_for_stable_group(settings, lane.group, members=1)
        generator_command = [sys.executable, "-m", "kdp", "generate", "--topic", source, "--rate", str(rate)]
        generator_command += ["--duration", str(seconds), "--seed", str(seed), "--malformed-rate", "0.05"]
        generator_command += ["--progress-every", "0"]
        generator = runner.start(generator_command, environment, logs / f"latency-{mode}-generator.log")
        received = _read_output(settings, lane.output, generator, deadline=time.monotonic() + seconds + 120)
        generator_output, _ = generator.communicate(timeout=60)
        stage_figures = _stage_summary(metrics_port)
    finally:
        converter.send_signal(signal.SIGTERM)
        try:
            converter.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            converter.kill()
            converter.communicate()
    generated = json.loads(generator_output.strip().splitlines()[-1]) if generator_output.strip() else {}
    produced_at = _source_timestamps(settings, source)
    schema = fastavro.parse_schema(_without_logical_types(json.loads(PROCESSED_SCHEMA.read_text())))
    timings = []
    for visible_ms, value in received:
        record = cast(dict[str, Any], fastavro.schemaless_reader(io.BytesIO(value[5:]), schema))
        source_ms = produced_at.get((record["source_partition"], record["source_offset"]))
        if source_ms is not None:
            timings.append((float(source_ms), float(record["processed_at"]), visible_ms))
    steady, warm_up = split_warm_up(timings)
    if not steady:
        raise RuntimeError(f"latency {delivery}: no processed record after the warm-up was read; see {logs}")
    return {
        "delivery": delivery,
        "offered_msg_per_s": rate,
        "seconds": seconds,
        "produced": generated.get("produced"),
        "achieved_msg_per_s": generated.get("rate_per_s"),
        "timed_records": len(steady),
        "warm_up_s": WARM_UP_S,
        "warm_up_ms": distribution([visible - produced for produced, _, visible in warm_up]) if warm_up else None,
        "latency_ms": distribution([visible - produced for produced, _, visible in steady]),
        "produced_to_batch_start_ms": distribution([start - produced for produced, start, _ in steady]),
        "batch_start_to_visible_ms": distribution([visible - start for _, start, visible in steady]),
        "tail": tail_split(steady),
        **stage_figures,
        "topics": {"source": source, "output": lane.output},
        "commands": {"converter": " ".join(converter_command[1:]), "generator": " ".join(generator_command[1:])},
    }


def measure_latency_repeated(
    settings: Settings,
    run_id: str,
    delivery: str,
    rate: int,
    seconds: float,
    logs: Path,
    partitions: int = 6,
    repetitions: int = 3,
    tag: str = "",
    extra_environment: dict[str, str] | None = None,
) -> dict[str, Any]:
    """`measure_latency` `repetitions` times, one after the other (fresh topics and group each time).

    Returns the first run's fields (offered load, commands, the split of the first run), every run's
    distribution under `runs`, `over_runs` (`summarise_runs`): min / median / max of each statistic, and
    `stages_over_runs`: each stage's figures as a median over the runs, with the stage that holds the p99.
    """
    runs = [
        measure_latency(
            settings,
            run_id,
            delivery,
            rate,
            seconds,
            logs,
            partitions,
            tag=f"{tag}r{index}" if tag else f"r{index}",
            extra_environment=extra_environment,
        )  # fmt: skip
        for index in range(1, repetitions + 1)
    ]
    return {
        **runs[0],
        "repetitions": repetitions,
        "runs": [
            {
                key: run.get(key)
                for key in ("achieved_msg_per_s", "timed_records", "latency_ms", "warm_up_ms", "tail", "p99_held_by")
            }
            for run in runs
        ],
        "over_runs": summarise_runs(runs),
        **_stages_over_runs(runs),
    }


def _stages_over_runs(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    measured = [run["stages_ms"] for run in runs if run.get("stages_ms")]
    if not measured:
        return {}
    summary = stages.median_over_runs(measured)
    return {"stages_over_runs": summary, "p99_held_by_over_runs": stages.holder(summary)}
