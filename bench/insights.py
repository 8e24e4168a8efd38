"""`python -m bench.insights` (and a step of `make bench`): what the hourly insights cost, beside the converter.

The run writes two hours of processed records to a fresh processed-data topic of its own (6 partitions, the
project's schema registered under its subject, Kafka timestamp = `processed_at`, as the converter writes),
earlier hour first so that processing times grow along each partition:

- hour A (three hours ago): `--records` records (default 2,000,000) of `--users` distinct users and as many
  devices (default 100,000), one in 1,000 a late record (its event 5 hours before it was processed) and one
  in 10,000 a very old one (2001); and `--dead-letters` dead letters failed in the hour (one per 1,000
  records by default);
- hour B (five hours ago): `--many-users` records (default 2,000,000, as many as hour A so that the two
  reads differ only in their distinct users), each of a user and device of its own.

Then, each in a fresh process (so that each peak RSS is its own): `read_window` of hour A, the figure asked
for, CPU per record scanned (`time.process_time`, all threads, librdkafka's included) and wall time; the
same read of hour B; and the Dagster asset `hourly_insights` materialized for hour A (wall time of
`dg.materialize`, with its checks). Peak RSS is `VmHWM` at the end of the read (`bench.memory`), beside
the RSS before it (imports and the consumer, `VmRSS`): with distinct ids counted by a bounded sketch the two
hours' peaks must not differ by the 1.9 M extra distinct users (exact sets took about 100 bytes each).

The converter's CPU per message in the same run: `make bench` passes its at-least-once figure; on its own,
this module fills a backlog of `--converter-events` generator events and runs the converter over it once
(`bench.converter_subject`, as `make bench` does).

Writes `<out-dir>/insights.json` and the insights section of `--results-md` (replacing it in place; the
rest of the file is `make bench`'s), and prints the section. Everything created is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from confluent_kafka.schema_registry import SchemaRegistryClient

from bench import environment, runner
from bench.backlog import fill_backlog
from bench.kafka_admin import create_topics, delete_run_artifacts
from bench.memory import peak_rss_bytes, status_field_bytes
from orchestration.schema.registry import register_value_schema
from streaming.conversion.encoding import WireFormatEncoder
from streaming.delivery.dead_letter import dead_letter_headers
from streaming.records import Rejection
from streaming.settings import Settings
from streaming.topics import value_subject

BENCH = Path(__file__).resolve().parent
SCHEMA_TEXT = (BENCH.parent / "schemas" / "processed-data-value.avsc").read_text()
HOUR_MS = 3_600_000
YEAR_2001 = 978_307_200_000
TARGET_US = 2.0
GOAL_US = 1.0
SECTION_START = "<!-- insights: written by python -m bench.insights -->"
SECTION_END = "<!-- /insights -->"
DEVICE_TYPES = ("android", "ios", "ios", "android", "unknown")
LOCALES = ("CA", "TX", "NY", "FL", "WA", "PR", "IL", "OH", "GA", "NC")
VERSIONS = ("2.3.0", "2.4.0", "2.4.1", "2.10.0", "3.0.0-beta")


def hour_start(hours_ago: int) -> int:
    start = (datetime.now(UTC) - timedelta(hours=hours_ago)).replace(minute=0, second=0, microsecond=0)
    return int(start.timestamp() * 1000)


def partition_key(start_ms: int) -> str:
    return datetime.fromtimestamp(start_ms / 1000, tz=UTC).strftime("%Y-%m-%d-%H:00")


def _producer(settings: Settings) -> Producer:
    return Producer(
        {**settings.kafka_config(), "linger.ms": 20, "batch.size": 1_000_000, "compression.type": "lz4", "acks": "all"}
    )


def _produce(producer: Producer, topic: str, value: bytes, timestamp: int, **extra: Any) -> None:
    while True:
        try:
            producer.produce(topic, value, timestamp=timestamp, **extra)
            return
        except BufferError:
            producer.poll(0.05)


def write_hour(
    settings: Settings, topic: str, encoder: WireFormatEncoder, start_ms: int, records: int, users: int, seed: int
) -> dict[str, int]:
    """`records` records of `users` distinct users (and devices) in the hour at `start_ms`, in processing
    order; one in 1,000 late, one in 10,000 very old (both processed in the hour, so counted as late)."""
    rng = random.Random(seed)
    producer = _producer(settings)
    late = 0
    on_time_users: set[int] = set()  # only while users < records (at most `users` entries)
    on_time_devices: set[int] = set()
    step = HOUR_MS / records
    for i in range(records):
        event = start_ms + int(i * step)
        processed = event + 2000 + (i % 1000)
        if i % 10_000 == 9_999:
            event, late = YEAR_2001 + i, late + 1
        elif i % 1000 == 999:
            event, late = processed - 5 * HOUR_MS, late + 1
        user = rng.randrange(users) if users < records else i
        if users < records and event >= start_ms:
            on_time_users.add(user)
            if i % 50:
                on_time_devices.add(user)
        record: dict[str, Any] = {
            "user_id": f"{seed:08x}-0000-4000-8000-{user:012x}",
            "device_id": None if i % 50 == 0 else f"{seed:08x}-1111-4000-8000-{user:012x}",
            "device_type": DEVICE_TYPES[i % 5],
            "locale": LOCALES[(i // 7) % 10],
            "ip": "203.0.113.7",
            "ip_version": 4,
            "ip_class": "RESERVED",
            "app_version": VERSIONS[(user + i // 100_000) % 5],
            "app_version_major": 2,
            "app_version_minor": 4,
            "app_version_patch": 0,
            "event_time": event,
            "processed_at": processed,
            "source_topic": "user-login",
            "source_partition": i % 6,
            "source_offset": i,
        }
        _produce(producer, topic, encoder.encode(record), processed, key=record["user_id"].encode())
        if i % 10_000 == 0:
            producer.poll(0)
    if producer.flush(120):
        raise RuntimeError(f"{topic}: records not delivered")
    if users >= records:  # one user and device per record; every 50th record has no device, every 1000th is late
        late_with_device = sum(1 for i in range(999, records, 1000) if i % 50)
        without_device = len(range(0, records, 50))
        return {"records": records, "users": records - late, "devices": records - without_device - late_with_device}
    return {"records": records, "users": len(on_time_users), "devices": len(on_time_devices)}


def write_dead_letters(settings: Settings, topic: str, start_ms: int, count: int) -> None:
    producer = _producer(settings)
    for i in range(count):
        failed = start_ms + i * (HOUR_MS // max(count, 1))
        headers = dead_letter_headers(
            Rejection("invalid_json", "bench"), "user-login", 0, i, failed, failed_at_ms=failed
        )
        _produce(producer, topic, b"{not json", failed, headers=list(headers))
    if producer.flush(60):
        raise RuntimeError(f"{topic}: dead letters not delivered")


def _child(command: list[str], extra_env: dict[str, str], timeout: float = 1800.0) -> dict[str, Any]:
    """Run `python -m bench.insights <command>` in a fresh process; its last stdout line is its JSON report."""
    completed = subprocess.run(
        [sys.executable, "-m", "bench.insights", *command],
        cwd=runner.REPOSITORY,
        env={**os.environ, **extra_env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"bench.insights {command[0]} failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


class _Message:
    """What the record visitors read of a consumed message, for feeding them without a broker."""

    __slots__ = ("_offset", "_value")

    def __init__(self, offset: int, value: bytes) -> None:
        self._offset, self._value = offset, value

    def error(self) -> None:
        return None

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return self._value


def tally_alone(records: int, users: int) -> dict[str, Any]:
    """In this process: `records` records of `users` distinct users and devices fed to the record visitor
    without Kafka, a batch of 1,000 at a time (built, visited, dropped), so that the peak RSS above the
    start is the tally's own memory."""
    from orchestration.insights.avro_layout import LayoutCache
    from orchestration.insights.placement import Window
    from orchestration.insights.record_tally import record_visitor

    class Registry:
        def get_schema(self, schema_id: int) -> Any:
            return type("Registered", (), {"schema_str": SCHEMA_TEXT})()

    start_ms = hour_start(3)
    encoder = WireFormatEncoder(1, SCHEMA_TEXT)
    visitor = record_visitor(Window(start_ms, start_ms + HOUR_MS), LayoutCache(Registry()))
    template = {
        "device_type": "ios",
        "locale": "CA",
        "ip": "203.0.113.7",
        "ip_version": 4,
        "ip_class": "RESERVED",
        "app_version_major": 2,
        "app_version_minor": 4,
        "app_version_patch": 0,
        "source_topic": "user-login",
        "source_partition": 0,
    }
    rss_start = status_field_bytes(Path("/proc/self/status").read_text(), "VmRSS") or 0
    visiting = 0.0
    for first in range(0, records, 1000):
        batch = []
        for i in range(first, min(first + 1000, records)):
            user = i % users
            event = start_ms + i * HOUR_MS // records
            record = {
                **template,
                "user_id": f"00000001-0000-4000-8000-{user:012x}",
                "device_id": f"00000001-1111-4000-8000-{user:012x}",
                "app_version": VERSIONS[user % 5],
                "event_time": event,
                "processed_at": event + 1000,
                "source_offset": i,
            }
            batch.append(_Message(i, encoder.encode(record)))
        started = time.process_time()
        visitor.visit_batch(batch, {0: records})  # type: ignore[arg-type]
        visiting += time.process_time() - started
    tally, _ = visitor.finish()
    return {
        "records": tally.records,
        "users": tally.users.estimate(),
        "tally_peak_mb": round(((peak_rss_bytes() or 0) - rss_start) / 2**20, 1),
        "visit_us_per_record": round(visiting / records * 1e6, 3),
    }


def read_hour(start_ms: int) -> dict[str, Any]:
    """In this process: `read_window` of the hour at `start_ms` over the topics of `KDP_*`, measured."""
    from confluent_kafka.schema_registry import SchemaRegistryClient

    from orchestration.insights import aggregates
    from orchestration.insights.record_tally import native_available
    from orchestration.insights.window_reader import read_window

    settings = Settings.from_env()
    registry = SchemaRegistryClient(settings.registry_config())
    rss_before = status_field_bytes(Path("/proc/self/status").read_text(), "VmRSS")
    cpu, wall = time.process_time(), time.monotonic()
    scan = read_window(settings, registry, start_ms, start_ms + HOUR_MS)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    uniques = aggregates.unique_users_devices(scan.tally)
    return {
        "native": native_available(),
        "scanned": scan.scanned,
        "records": scan.tally.records,
        "late": scan.tally.late_records,
        "undecodable": scan.undecodable,
        "dead_letters": scan.tally.dead_letter_total,
        "users": uniques.users,
        "devices": uniques.devices,
        "users_exact": scan.tally.users.exact,
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        "cpu_us_per_record": round(cpu / scan.scanned * 1e6, 3) if scan.scanned else None,
        "rss_before_mb": round((rss_before or 0) / 2**20, 1),
        "peak_rss_mb": round((peak_rss_bytes() or 0) / 2**20, 1),
    }


def materialize_hour(start_ms: int) -> dict[str, Any]:
    """In this process: the Dagster asset `hourly_insights` for the hour at `start_ms`, timed, with its checks."""
    import dagster as dg

    from orchestration.defs.insights.assets import PROCESSED_DATA, hourly_insights
    from orchestration.defs.resources import (
        InsightsStorageResource,
        KafkaResource,
        SchemaRegistryResource,
        environment_bound,
    )

    # Bound to this process's KDP_* variables (the run's topics), as the project's definitions bind them.
    resources = {
        "kafka": environment_bound(KafkaResource),
        "registry": environment_bound(SchemaRegistryResource),
        "insights_storage": environment_bound(InsightsStorageResource),
    }
    with dg.instance_for_test() as instance:
        wall = time.monotonic()
        result = dg.materialize(
            [dg.AssetSpec(PROCESSED_DATA), hourly_insights],
            partition_key=partition_key(start_ms),
            resources=resources,
            instance=instance,
        )
        wall = time.monotonic() - wall
        checks = {evaluation.check_name: evaluation.passed for evaluation in result.get_asset_check_evaluations()}
    return {"success": result.success, "wall_s": round(wall, 3), "checks": checks}


def converter_figure(settings: Settings, run_id: str, events: int, logs: Path) -> dict[str, Any]:
    """Our at-least-once converter over a fresh backlog of `events`, as `make bench` measures it."""
    backlog = f"{run_id}-backlog"
    fill_backlog(settings, backlog, events)
    lane = runner.Lane.for_subject(run_id, "converter", backlog)
    create_topics(settings, lane.topics, 6)
    command = runner.python_module("bench.converter_subject", "--instance", "alo")
    return runner.run(command, lane.environment(), logs / "converter.log", 900).as_dict()


def measure(
    settings: Settings,
    run_id: str,
    converter: dict[str, Any] | None,
    records: int = 2_000_000,
    users: int = 100_000,
    many_users: int = 2_000_000,
    dead_letters: int | None = None,
) -> dict[str, Any]:
    """Write the two hours, read them and materialize hour A; see the module docstring. `dead_letters`: one
    per 1,000 records of hour A by default."""
    dead_letters = max(1, records // 1000) if dead_letters is None else dead_letters
    processed, dlq = f"{run_id}-insights-processed", f"{run_id}-insights-dlq"
    create_topics(settings, [processed, dlq], 6)
    _, registered = register_value_schema(
        SchemaRegistryClient(settings.registry_config()), value_subject(processed), SCHEMA_TEXT
    )
    assert registered is not None  # executed, not a dry run
    encoder = WireFormatEncoder(registered.schema_id, registered.schema_str)
    hour_a, hour_b = hour_start(3), hour_start(5)
    started = time.monotonic()
    written_b = write_hour(settings, processed, encoder, hour_b, many_users, many_users, seed=2)
    written_a = write_hour(settings, processed, encoder, hour_a, records, users, seed=1)
    write_dead_letters(settings, dlq, hour_a, dead_letters)
    write_s = time.monotonic() - started
    # The cluster and registry are stated, as every deployment states them (the resources bind both always).
    env = {
        "KDP_BOOTSTRAP": settings.bootstrap,
        "KDP_REGISTRY_URL": settings.registry_url,
        "KDP_OUTPUT_TOPIC": processed,
        "KDP_DLQ_TOPIC": dlq,
        "KDP_INSIGHTS_DB": f"/tmp/{run_id}-insights.duckdb",
    }
    read_a = _child(["read", str(hour_a)], env)
    read_b = _child(["read", str(hour_b)], env)
    alone = {str(n): _child(["tally", str(many_users), str(n)], {}) for n in (users, many_users)}
    asset = _child(["asset", str(hour_a)], env)
    Path(env["KDP_INSIGHTS_DB"]).unlink(missing_ok=True)
    converter_us = None if converter is None else converter.get("cpu_us_per_msg")
    insights_us = read_a["cpu_us_per_record"]
    return {
        "hour_a": {"partition": partition_key(hour_a), "written": written_a, "dead_letters": dead_letters, **read_a},
        "hour_b": {"partition": partition_key(hour_b), "written": written_b, **read_b},
        "asset": asset,
        "tally_alone": alone,
        "write_s": round(write_s, 1),
        "converter_cpu_us_per_msg": converter_us,
        "insights_to_converter": round(insights_us / converter_us, 3) if insights_us and converter_us else None,
        "target_us": TARGET_US,
        "goal_us": GOAL_US,
        "met": bool(insights_us is not None and insights_us <= TARGET_US),
    }


def section(results: dict[str, Any] | None) -> list[str]:
    """The insights section of RESULTS.md (Markdown lines)."""
    lines = [SECTION_START, "## Hourly insights", ""]
    if not results or "error" in results or "skipped" in results:
        why = (results or {}).get("error") or (results or {}).get("skipped") or "not measured"
        return [*lines, f"Not measured: {why}", SECTION_END]
    a, b, asset = results["hour_a"], results["hour_b"], results["asset"]
    converter = results["converter_cpu_us_per_msg"]
    verdict = "met" if results["met"] else "missed"
    lines += [
        f"One hour of {a['scanned']:,} processed records ({a['records']:,} on time, {a['late']:,} late, "
        f"{a['dead_letters']:,} dead letters), read by `read_window` "
        f"({'native kernel' if a['native'] else 'pure-Python visitor'}): "
        f"**{a['cpu_us_per_record']} µs of CPU per record** (target ≤ {results['target_us']} µs: {verdict}; "
        f"goal {results['goal_us']} µs), all threads of the process included, "
        f"{a['wall_s']} s wall. The converter, same run: {converter} µs of CPU per message, so an hour's insights "
        f"cost {results['insights_to_converter']}x what converting it cost.",
        "",
        "| hour | records read | distinct users: true | counted | distinct devices: true | counted | CPU µs/record "
        "| wall s | RSS before read MB | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, hour in (("A", a), ("B", b)):
        counts = []
        for kind in ("users", "devices"):
            true, counted = hour["written"][kind], hour[kind]
            counts.append(f"{true:,} | {counted:,} ({(counted - true) / true:+.2%})" if true else f"0 | {counted:,}")
        lines.append(
            f"| {name} {hour['partition']} | {hour['scanned']:,} | {counts[0]} | {counts[1]} "
            f"| {hour['cpu_us_per_record']} | {hour['wall_s']} | {hour['rss_before_mb']} | {hour['peak_rss_mb']} |"
        )
    checks = ", ".join(f"{name} {'passed' if ok else 'FAILED'}" for name, ok in sorted(asset["checks"].items()))
    lines += [
        "",
        f"The Dagster asset `hourly_insights` for hour A: {asset['wall_s']} s wall "
        f"({'succeeded' if asset['success'] else 'FAILED'}; checks: {checks}).",
        f"Peak RSS of the read at {b['written']['users']:,} distinct users vs {a['written']['users']:,}: "
        f"{b['peak_rss_mb'] - a['peak_rss_mb']:+.1f} MB (exact sets would have needed about "
        f"{(b['written']['users'] - a['written']['users']) * 200 / 2**20:.0f} MB more for users and devices, "
        "at about 100 bytes an id). The tally alone, fed the same number of records without Kafka (its peak RSS "
        "above its start, and the CPU of `visit_batch`, messages with Python methods): "
        + ", ".join(
            f"{int(n):,} distinct users {t['tally_peak_mb']} MB above its start "
            f"({t['visit_us_per_record']} µs of CPU per record in `visit_batch`)"
            for n, t in sorted(results.get("tally_alone", {}).items(), key=lambda item: int(item[0]))
        )
        + ". Distinct users and devices are counted by a bottom-k sketch (`orchestration/insights/sketch.py`): "
        "exact up to 131,072 per hour, relative standard error about 0.4 % beyond.",
        f"Records written at {(a['written']['records'] + b['written']['records']) / results['write_s']:,.0f} "
        "records/s by the harness (not measured further).",
        SECTION_END,
    ]
    return lines


def replace_section(markdown: str, lines: list[str]) -> str:
    """`markdown` with its insights section replaced by `lines` (appended when it has none)."""
    text = "\n".join(lines)
    if SECTION_START in markdown and SECTION_END in markdown:
        before, _, rest = markdown.partition(SECTION_START)
        _, _, after = rest.partition(SECTION_END)
        return before + text + after
    return markdown.rstrip("\n") + "\n\n" + text + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.insights", description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=2_000_000, help="records of hour A (default 2,000,000)")
    parser.add_argument("--users", type=int, default=100_000, help="distinct users of hour A (default 100,000)")
    parser.add_argument("--many-users", type=int, default=2_000_000, help="records = users of hour B (2,000,000)")
    parser.add_argument("--dead-letters", type=int, help="dead letters of hour A (default: 1 per 1,000 records)")
    parser.add_argument("--converter-events", type=int, default=1_000_000, help="converter backlog (1,000,000)")
    parser.add_argument("--out-dir", type=Path, default=BENCH / "out", help="where insights.json goes")
    parser.add_argument("--results-md", type=Path, default=BENCH / "RESULTS.md", help="the Markdown report")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["read"], ["asset"], ["tally"]):  # a measured child process (see `_child`)
        if argv[0] == "tally":
            print(json.dumps(tally_alone(int(argv[1]), int(argv[2]))))
        else:
            start_ms = int(argv[1])
            print(json.dumps(read_hour(start_ms) if argv[0] == "read" else materialize_hour(start_ms)))
        return 0
    args = parse_args(argv)
    settings = Settings.from_env()
    run_id = f"bench-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    logs = args.out_dir / "logs" / run_id
    load_start = environment.load_average()
    try:
        print(f"{run_id}: converter over {args.converter_events:,} events ...", file=sys.stderr, flush=True)
        converter = converter_figure(settings, run_id, args.converter_events, logs)
        print(f"{run_id}: insights ...", file=sys.stderr, flush=True)
        results = measure(settings, run_id, converter, args.records, args.users, args.many_users, args.dead_letters)
    finally:
        problems = delete_run_artifacts(settings, run_id)
        if problems:
            print("clean-up: " + "; ".join(problems), file=sys.stderr)
    results["load_average"] = {"start": load_start, "end": environment.load_average()}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "insights.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = section(results)
    existing = args.results_md.read_text() if args.results_md.exists() else ""
    args.results_md.write_text(replace_section(existing, lines))
    print("\n".join(lines))
    return 0 if results["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
