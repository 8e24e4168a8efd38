"""`python -m bench.run` (`make bench`): every benchmark of the converter, side by side, in one run.

Steps, in order (each subject a separate process on the same backlog, with its own group and topics):
1. fill a fresh 6-partition backlog with `--events` generator events (`bench.backlog`);
2. throughput of our converter at-least-once and exactly-once (`bench.converter_subject`), then of the
   baselines: (a) the seed's design, (b) the stock AvroSerializer, (c) pass-through (`bench.baselines`),
   (d) Kafka's own perf tools (`bench.kafka_perf`), and the peers: (e) Quix Streams, (f) Arroyo
   (`bench.peers`; a peer's own venv is built on first use, once per machine); then `--pairs` - 1 more runs of
   ours at-least-once, the pass-through and ours exactly-once back to back, in alternating order, so that the
   two pass-through targets and exactly-once / at-least-once are judged on medians of side-by-side ratios
   (`bench.targets.summarise_pairs`);
3. end-to-end latency at `--latency-rate` for `--latency-seconds`, both modes, `--latency-repetitions`
   times each (`bench.latency`), and the exactly-once cadence table (`bench.cadence`);
4. scaling over 1, 2, 3 processes (`bench.scaling`);
5. a CPU profile over `--profile-events` messages (`bench.profile`);
6. the hourly insights over `--insights-records` records, beside our at-least-once converter's CPU per
   message of step 2 (`bench.insights`; about 4 minutes, most of it writing the 4 M records it reads);
then ratios, target verdicts and their explanations (`bench.targets`, `bench.analysis`), written to
`<out-dir>/results.json` and `--results-md` and printed (`bench.report`). Peak memory comes with every
subject's report (`bench.memory`).

Budget with the defaults on a 2-core machine: about 12 minutes (the latency runs take 2 x 3 x 20 s plus
set-up; each 1M-message subject of ours 10-30 s; each peer reads `--peer-events` (200,000) of the backlog, as
the peers run at a few thousand msg/s, in one to two minutes), plus the cadence table once
the converter reads `KDP_COMMIT_INTERVAL_MS` (per value: one backlog pass and 3 x 10 s of latency), plus
building the Quix Streams venv the first time (about 2 minutes). `--events`, `--latency-seconds`, `--peers`
and `--skip` shrink it (the smoke test runs it with 5,000 events and the Arroyo peer only). A step that
fails is recorded under `errors` and the run goes on; everything the run created on the cluster (topics,
groups, schema subjects, all prefixed with the run id) is deleted at the end unless `--keep-topics`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import analysis, cadence, environment, insights, report, runner
from bench.backlog import fill_backlog
from bench.kafka_admin import create_topics, delete_run_artifacts, register_output_schema
from bench.kafka_perf import KafkaPerfTools, KafkaPerfUnavailable, write_payload_file
from bench.latency import measure_latency_repeated
from bench.peers import PEERS, Peer
from bench.peers.environments import bench_cache
from bench.profile import summarise
from bench.scaling import measure_scaling
from bench.targets import OURS_ALO, OURS_EOS, PASSTHROUGH, SEED, STOCK, pair, ratios, summarise_pairs, verdicts
from streaming.settings import Settings

STEPS = ("pairs", "kafka-perf", "peers", "latency", "cadence", "scaling", "profile", "insights")
BENCH = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="backlog size (default 1,000,000)")
    parser.add_argument("--partitions", type=int, default=6, help="partitions of the backlog (default 6)")
    parser.add_argument("--latency-rate", type=int, default=10_000, help="offered load in msg/s (default 10,000)")
    parser.add_argument("--latency-seconds", type=float, default=20.0, help="per run (default 20)")
    parser.add_argument("--latency-repetitions", type=int, default=3, help="runs per latency figure (default 3)")
    parser.add_argument(
        "--pairs", type=int, default=3, help="side-by-side runs of ours and the pass-through (default 3)"
    )
    parser.add_argument("--peers", default=",".join(p.key for p in PEERS), help="peers to run (default all)")
    parser.add_argument(
        "--peer-events", type=int, default=200_000, help="messages of the backlog each peer reads (default 200,000)"
    )
    parser.add_argument(
        "--cadences", default="default,20,100,500", help=f"{cadence.VARIABLE} values of the exactly-once table"
    )
    parser.add_argument("--cadence-seconds", type=float, default=10.0, help="per latency run of the cadence table")
    parser.add_argument("--scaling", default="1,2,3", help="process counts (default 1,2,3)")
    parser.add_argument("--profile-events", type=int, default=200_000, help="messages profiled (default 200,000)")
    parser.add_argument(
        "--insights-records", type=int, default=2_000_000, help="records of the insights' hour (default 2,000,000)"
    )
    parser.add_argument(
        "--insights-users", type=int, default=100_000, help="distinct users of that hour (default 100,000)"
    )
    parser.add_argument(
        "--insights-many-users",
        type=int,
        default=2_000_000,
        help="records and distinct users of the insights' second hour, for its peak RSS (default 2,000,000)",
    )
    parser.add_argument("--skip", default="", help=f"comma-separated steps to leave out: {', '.join(STEPS)}")
    parser.add_argument("--out-dir", type=Path, default=BENCH / "out", help="results.json, logs, profile")
    parser.add_argument("--results-md", type=Path, default=BENCH / "RESULTS.md", help="the Markdown report")
    parser.add_argument("--subject-timeout", type=float, default=600.0, help="seconds one subject may take")
    parser.add_argument("--keep-topics", action="store_true", help="leave the run's topics, groups and subjects")
    args = parser.parse_args(argv)
    args.skip = {step.strip() for step in args.skip.split(",") if step.strip()}
    if unknown := args.skip - set(STEPS):
        parser.error(f"--skip: unknown steps {', '.join(sorted(unknown))}; choose from {', '.join(STEPS)}")
    args.scaling = [int(n) for n in args.scaling.split(",") if n.strip()]
    known = {p.key: p for p in PEERS}
    names = [name.strip() for name in args.peers.split(",") if name.strip()]
    if unknown_peers := [name for name in names if name not in known]:
        parser.error(f"--peers: unknown {', '.join(unknown_peers)}; choose from {', '.join(known)}")
    args.peers = [known[name] for name in names]
    try:
        args.cadences = cadence.parse_values(args.cadences)
    except ValueError as error:
        parser.error(str(error))
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    if args.latency_repetitions < 1:
        parser.error("--latency-repetitions must be at least 1")
    return args


class Run:
    """One benchmark run: its id (the prefix of everything it creates), settings, results and logs."""

    def __init__(self, args: argparse.Namespace, argv: list[str]) -> None:
        self.args = args
        self.settings = Settings.from_env()
        self.run_id = f"bench-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        self.logs = args.out_dir / "logs" / self.run_id
        self.started = time.monotonic()
        self.results: dict[str, Any] = {
            "run_id": self.run_id,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "options": {
                "events": args.events,
                "partitions": args.partitions,
                "latency_rate": args.latency_rate,
                "latency_seconds": args.latency_seconds,
                "latency_repetitions": args.latency_repetitions,
                "pairs": args.pairs,
                "peers": [p.key for p in args.peers],
                "peer_events": args.peer_events,
                "cadences": args.cadences,
                "cadence_seconds": args.cadence_seconds,
                "scaling": args.scaling,
                "profile_events": args.profile_events,
                "insights_records": args.insights_records,
                "insights_users": args.insights_users,
                "insights_many_users": args.insights_many_users,
                "skipped": sorted(args.skip),
            },
            "commands": {"run": shlex.join(["python", "-m", "bench.run", *argv])},
            "environment": environment.describe(runner.REPOSITORY, self.settings.bootstrap),
            "load_average": {"start": environment.load_average()},
            "throughput": {},
            "errors": {},
        }

    def step(self, name: str, measure: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
        """`measure(*args)` with the 1-minute load average at its start (`load_1m`: how busy the machine was);
        a failure is recorded under `errors` and returned as `{"error": ...}`."""
        load = environment.load_average()[0]
        print(f"[{time.monotonic() - self.started:6.0f}s] {name} (load {load}) ...", file=sys.stderr, flush=True)
        try:
            return {**measure(*args), "load_1m": load}
        except Exception as error:  # noqa: BLE001 - one failed step must not lose the others' figures
            message = f"{type(error).__name__}: {error}"
            self.results["errors"][name] = message
            (self.logs / "errors.log").parent.mkdir(parents=True, exist_ok=True)
            with (self.logs / "errors.log").open("a") as log:
                log.write(f"--- {name}\n{traceback.format_exc()}\n")
            print(f"  failed: {message.splitlines()[0]}", file=sys.stderr, flush=True)
            return {"error": message.splitlines()[0]}

    def subject(
        self,
        key: str,
        module: str,
        args: list[str],
        delivery: str = "at-least-once",
        extra_environment: dict[str, str] | None = None,
        python: str | None = None,
    ) -> dict[str, Any]:
        """Run one throughput subject on the backlog, in its own lane (with `python`, default the harness's)."""
        lane = runner.Lane.for_subject(self.run_id, key, self.backlog_topic)
        create_topics(self.settings, lane.topics, self.args.partitions)
        register_output_schema(self.settings, lane.output)
        command = [python or sys.executable, "-m", module, *args]
        environment = {**lane.environment(delivery), **(extra_environment or {})}
        result = runner.run(command, environment, self.logs / f"{key}.log", self.args.subject_timeout)
        mode = "KDP_DELIVERY=exactly-once " if delivery == "exactly-once" else ""
        mode += "".join(f"{name}={value} " for name, value in (extra_environment or {}).items())
        shown = "python" if python is None else f"<{key} venv>/bin/python"
        return {**result.as_dict(), "command": f"{mode}{shown} -m {module} {' '.join(args)}".strip()}

    def peer(self, peer: Peer) -> dict[str, Any]:
        """Run one peer over the backlog, building its own venv first if it has one and it is not built yet."""
        started = time.monotonic()
        built_before = peer.environment.is_built(bench_cache())
        python = peer.environment.python() if peer.environment.own_venv else None
        environment = {
            "venv": str(Path(python).parent.parent) if python else "the project's venv",
            "venv_build_s": None if built_before else round(time.monotonic() - started, 1),
        }
        expect = min(self.args.peer_events, self.results["backlog"]["count"])
        result = self.subject(peer.key, peer.module, ["--expect", str(expect)], python=python)
        return {**result, "environment": environment}

    @property
    def backlog_topic(self) -> str:
        return f"{self.run_id}-backlog"

    def cadence_throughput(self, key: str, extra_environment: dict[str, str]) -> dict[str, Any]:
        """Our exactly-once converter over the backlog with `extra_environment`; a failure is its report."""
        return self.step(
            key, self.subject, key, "bench.converter_subject", ["--instance", key], "exactly-once", extra_environment
        )

    def kafka_perf(self) -> dict[str, Any]:
        try:
            tools = KafkaPerfTools(self.settings)
        except KafkaPerfUnavailable as error:
            return {"skipped": str(error)}
        payloads = write_payload_file(self.args.out_dir / "payloads.txt")
        topic = f"{self.run_id}-perf-producer"
        create_topics(self.settings, [topic], self.args.partitions)
        events = self.args.events
        producer = tools.produce(topic, events, payloads)
        consumer = tools.consume(self.backlog_topic, events, f"{self.run_id}-perf-consumer")
        return {
            "producer": producer,
            "consumer": consumer,
            "java": tools.java,
            "commands": [
                f"(d) Kafka ProducerPerformance: `--topic <fresh> --num-records {events} --throughput -1 "
                "--payload-file <10,000 generator events> --command-property acks=all enable.idempotence=true "
                "linger.ms=5 batch.size=1000000 compression.type=lz4`",
                f"(d) Kafka ConsumerPerformance: `--topic <backlog> --num-records {events} --group <fresh>`",
            ],
        }

    def profile(self) -> dict[str, Any]:
        stats = (self.logs / "converter.prof").resolve()
        stats.parent.mkdir(parents=True, exist_ok=True)
        # Subjects run in the repository: a path inside it is shown relative, as one would type it.
        shown = stats.relative_to(runner.REPOSITORY) if stats.is_relative_to(runner.REPOSITORY) else stats
        messages = str(min(self.args.profile_events, self.args.events))
        subject = self.subject(
            "profile", "bench.converter_subject", ["--profile", str(shown), "--max-messages", messages]
        )
        return {
            **summarise(stats, subject["consumed"]),
            "command": subject["command"],
            "msg_per_s": subject["msg_per_s"],
        }

    def measure(self) -> None:
        args, results, settings = self.args, self.results, self.settings
        print(f"[{0:6.0f}s] backlog of {args.events:,} events ...", file=sys.stderr, flush=True)
        backlog = fill_backlog(settings, self.backlog_topic, args.events, partitions=args.partitions)
        results["backlog"] = backlog.as_dict()
        expect = str(backlog.count)
        subjects = [
            (OURS_ALO, "bench.converter_subject", ["--instance", "alo"], "at-least-once"),
            (OURS_EOS, "bench.converter_subject", ["--instance", "eos"], "exactly-once"),
            (SEED, "bench.baselines.seed_design", ["--expect", expect], "at-least-once"),
            (STOCK, "bench.baselines.stock_serializer", ["--instance", "stock"], "at-least-once"),
            (PASSTHROUGH, "bench.baselines.passthrough", ["--expect", expect], "at-least-once"),
        ]
        for key, module, extra, delivery in subjects:
            results["throughput"][key] = self.step(key, self.subject, key, module, extra, delivery)
        throughput = results["throughput"]
        pairs = [pair(throughput[OURS_ALO], throughput[PASSTHROUGH], throughput[OURS_EOS])]
        if "pairs" not in args.skip:
            for n in range(2, args.pairs + 1):
                order = [subjects[0], subjects[1], subjects[-1]]
                order = order if n % 2 else order[::-1]
                side_by_side = {
                    key: self.step(f"pair {n}: {key}", self.subject, f"{key}-{n}", module, extra, delivery)
                    for key, module, extra, delivery in order
                }
                pairs.append(pair(side_by_side[OURS_ALO], side_by_side[PASSTHROUGH], side_by_side[OURS_EOS]))
        results["pairs"] = summarise_pairs(pairs)
        if "peers" not in args.skip:
            for peer in args.peers:
                results["throughput"][peer.key] = self.step(peer.key, self.peer, peer)
        results["memory"] = {
            "method": "VmHWM (the kernel's peak resident set size) from /proc/self/status at each subject's end",
            "peak_rss_mb": {k: results["throughput"][k].get("peak_rss_mb") for k in (OURS_ALO, OURS_EOS)},
        }
        skipped = {"skipped": "--skip"}
        results["kafka_perf"] = skipped if "kafka-perf" in args.skip else self.step("kafka-perf", self.kafka_perf)
        results["latency"] = {
            delivery: skipped
            if "latency" in args.skip
            else self.step(
                f"latency {delivery} x{args.latency_repetitions}",
                measure_latency_repeated,
                settings,
                self.run_id,
                delivery,
                args.latency_rate,
                args.latency_seconds,
                self.logs,
                args.partitions,
                args.latency_repetitions,
            )
            for delivery in ("at-least-once", "exactly-once")
        }
        results["cadence"] = (
            skipped
            if "cadence" in args.skip
            else self.step(
                "cadence",
                cadence.measure_cadence,
                settings,
                self.run_id,
                args.cadences,
                self.cadence_throughput,
                args.latency_rate,
                args.cadence_seconds,
                args.latency_repetitions,
                self.logs,
                args.partitions,
            )
        )
        if "scaling" in args.skip:
            results["scaling"] = skipped
        else:
            runs = [
                self.step(
                    f"scaling {n}",
                    measure_scaling,
                    settings,
                    self.run_id,
                    self.backlog_topic,
                    n,
                    self.logs,
                    args.subject_timeout,
                    args.partitions,
                )
                for n in args.scaling
            ]
            results["scaling"] = [r for r in runs if "error" not in r]
        results["profile"] = skipped if "profile" in args.skip else self.step("profile", self.profile)
        results["insights"] = (
            skipped
            if "insights" in args.skip
            else self.step(
                "insights",
                insights.measure,
                settings,
                self.run_id,
                results["throughput"][OURS_ALO],
                args.insights_records,
                args.insights_users,
                args.insights_many_users,
            )
        )

    def conclude(self) -> None:
        results = self.results
        results["load_average"]["end"] = environment.load_average()
        measured = {k: v for k, v in results["throughput"].items() if "error" not in v}
        results["ratios"] = ratios(measured)
        results["targets"] = [{**v.as_dict(), "limits": analysis.explain(v, results)} for v in verdicts(results)]
        results["duration_s"] = round(time.monotonic() - self.started, 1)
        results["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    run = Run(args, argv)
    print(f"benchmark run {run.run_id}: logs in {run.logs}", file=sys.stderr, flush=True)
    try:
        run.measure()
    except Exception as error:
        run.results["errors"]["run"] = f"{type(error).__name__}: {error}"
        raise
    finally:
        run.conclude()
        if not args.keep_topics:
            problems = delete_run_artifacts(run.settings, run.run_id)
            if problems:
                run.results["errors"]["clean-up"] = "; ".join(problems)
        report.write_json(run.results, args.out_dir / "results.json")
        args.results_md.parent.mkdir(parents=True, exist_ok=True)
        args.results_md.write_text(report.markdown(run.results))
        report.print_table(run.results)
        print(f"\nwrote {args.out_dir / 'results.json'} and {args.results_md} in {run.results['duration_s']:.0f} s")
    return 1 if run.results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
