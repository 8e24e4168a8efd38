"""The results three ways: `results.json` (machine-readable), a printed table, and `bench/RESULTS.md`.

All three are rendered from the one results dictionary that `bench.run` assembles, so they cannot
disagree. A section that could not be measured holds `{"skipped": reason}` or `{"error": message}`
and is shown as such rather than left out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import insights
from bench.latency import TAIL_PERCENTILE, TAIL_WINDOW_MS, WARM_UP_S
from bench.peers import PEERS
from bench.stages import SLOW_BATCH_S
from bench.targets import OURS_ALO, OURS_EOS, PASSTHROUGH, PEER_CPU_RATIO, RATIOS, SEED, STOCK

SUBJECT_LABELS = {
    OURS_ALO: "ours, at-least-once",
    OURS_EOS: "ours, exactly-once",
    SEED: "(a) seed design",
    STOCK: "(b) stock AvroSerializer",
    PASSTHROUGH: "(c) pass-through",
    **{peer.key: peer.label for peer in PEERS},
}
RATIO_LABELS = {
    "ours_over_seed": "ours / seed design",
    "ours_over_stock": "ours / stock AvroSerializer",
    "ours_over_passthrough": "ours / pass-through",
    **{f"ours_over_{peer.key}": f"ours / {peer.label[4:]}" for peer in PEERS},
    "eos_over_alo": "exactly-once / at-least-once",
}


def write_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


def _number(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _rows(headers: list[str], rows: list[list[str]], markdown: bool) -> list[str]:
    if markdown:
        lines = [
            "| " + " | ".join(headers) + " |",
            "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|",
        ]
        return lines + ["| " + " | ".join(row) + " |" for row in rows]
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return [line(headers), line(["-" * w for w in widths])] + [line(row) for row in rows]


def _problem(section: Any) -> str | None:
    if isinstance(section, dict):
        if "skipped" in section:
            return f"skipped: {section['skipped']}"
        if "error" in section:
            return f"error: {section['error']}"
    return None


def throughput_table(results: dict[str, Any], markdown: bool = False) -> list[str]:
    headers = ["subject", "msg/s", "MB/s", "CPU µs/msg", "of it loop thread", "peak RSS MB", "seconds", "consumed"]
    headers += ["output", "DLQ", "load"]
    rows = []
    for key, label in SUBJECT_LABELS.items():
        s = results.get("throughput", {}).get(key)
        if not s:
            continue
        if _problem(s):
            rows.append([label, _problem(s) or "", *[""] * 9])
            continue
        rows.append([
            label, _number(s["msg_per_s"]), _number(s["mb_per_s"], 1), _number(s["cpu_us_per_msg"], 2),
            _number(s.get("thread_cpu_us_per_msg"), 2), _number(s["peak_rss_mb"], 0), _number(s["seconds"], 2),
            _number(s["consumed"]), _number(s.get("processed")), _number(s.get("dead_lettered")),
            _number(s.get("load_1m"), 1),
        ])  # fmt: skip
    perf = results.get("kafka_perf", {})
    if _problem(perf):
        rows.append(["(d) Kafka perf tools", _problem(perf) or "", *[""] * 9])
    else:
        for key, label in (
            ("producer", "(d) Kafka ProducerPerformance"),
            ("consumer", "(d) Kafka ConsumerPerformance"),
        ):
            if p := perf.get(key):
                figures = [_number(p["msg_per_s"]), _number(p["mb_per_s"], 1), *["-"] * 4, _number(p["records"])]
                rows.append([label, *figures, "-", "-", _number(perf.get("load_1m"), 1)])
    return _rows(headers, rows, markdown)


def ratio_table(results: dict[str, Any], markdown: bool = False) -> list[str]:
    rows = []
    for key in RATIOS:
        r = results.get("ratios", {}).get(key)
        if r:
            rows.append([RATIO_LABELS[key], _number(r["wall"], 2) + "x", _number(r["cpu"], 2) + "x"])
    return _rows(["ratio", "by msg/s", "by CPU per message"], rows, markdown)


def pairs_table(results: dict[str, Any], markdown: bool = False) -> list[str]:
    """Ours at-least-once against the pass-through, pair by pair, and the medians the targets are judged on."""
    pairs = results.get("pairs", {})
    rows = []
    for n, p in enumerate(pairs.get("runs", []), start=1):
        if p is None:
            rows.append([str(n), "failed", "-", "-", "-", "-"])
            continue
        rows.append(
            [
                str(n),
                _number(p["wall"], 2) + "x",
                _number(p["ours_cpu_us_per_msg"], 2),
                _number(p["passthrough_cpu_us_per_msg"], 2),
                _number(p["cpu_over_passthrough"], 2) + "x",
                _number(p["eos_over_alo"], 2) + "x" if "eos_over_alo" in p else "-",
            ]
        )
    if median := pairs.get("median"):
        eos = median.get("eos_over_alo")
        rows.append(
            [
                "median",
                _number(median["wall"], 2) + "x",
                "",
                "",
                _number(median["cpu_over_passthrough"], 2) + "x",
                "-" if eos is None else _number(eos, 2) + "x",
            ]
        )
    headers = [
        "pair",
        "msg/s ours / pass-through",
        "ours CPU µs/msg",
        "pass-through CPU µs/msg",
        "CPU ours / pass-through",
        "msg/s exactly-once / at-least-once",
    ]
    return _rows(headers, rows, markdown)


def _spread(summary: dict[str, float] | None) -> str:
    """`min / median / max` of one statistic over repeated runs."""
    if not summary:
        return "-"
    return f"{summary['min']:,.1f} / {summary['median']:,.1f} / {summary['max']:,.1f}"


def latency_table(results: dict[str, Any], markdown: bool = False) -> list[str]:
    rows = []
    for mode, data in results.get("latency", {}).items():
        if _problem(data):
            rows.append([mode, _problem(data) or "", *[""] * 8])
            continue
        single = {key: {"min": v, "median": v, "max": v} for key, v in data["latency_ms"].items()}
        over = data.get("over_runs") or single  # results of one run, from before repetitions
        before, after = data["produced_to_batch_start_ms"], data["batch_start_to_visible_ms"]
        rows.append([
            mode, str(data.get("repetitions", 1)), _number(data["achieved_msg_per_s"]), _spread(over["p50"]),
            _spread(over["p99"]), _spread(over["p99.9"]), _spread(over["max"]),
            f"{before['p50']:.0f} / {before['p99']:.0f}; {after['p50']:.0f} / {after['p99']:.0f}",
            _warm_up_maxima(data),
            _number(data.get("load_1m"), 1),
        ])  # fmt: skip
    headers = ["delivery", "runs", "msg/s", "p50 ms", "p99 ms", "p99.9 ms", "max ms"]
    headers += ["run 1: to batch p50/p99; batch to visible p50/p99", "warm-up max ms, per run", "load"]
    return _rows(headers, rows, markdown)


def _warm_up_maxima(data: dict[str, Any]) -> str:
    """The largest latency of each run's warm-up (`bench.latency.WARM_UP_S`), '-' where not measured."""
    runs = data.get("runs") or [data]
    return " / ".join(_number((run.get("warm_up_ms") or {}).get("max")) for run in runs)


def tail_table(results: dict[str, Any], markdown: bool = False) -> list[str]:
    """Per mode and run, after the warm-up: where the slowest 1 % of records spent their time
    (`bench.latency.tail_split`)."""
    rows = []
    for mode, data in results.get("latency", {}).items():
        if _problem(data):
            continue
        for number, run in enumerate(data.get("runs") or [data], start=1):
            tail = run.get("tail")
            if not tail:
                continue
            rows.append([
                mode, str(number), _number(run["latency_ms"]["p99"], 1), _number(tail["records"]),
                _number(tail["to_batch_mean_ms"], 1), _number(tail["batch_to_visible_mean_ms"], 1),
                _number(tail["windows"]),
            ])  # fmt: skip
    if not rows:
        return ["not measured"]
    headers = ["delivery", "run", "p99 ms", "records at or over it", "mean to batch ms", "mean batch to visible ms"]
    headers += [f"{TAIL_WINDOW_MS} ms windows they fall in"]
    return _rows(headers, rows, markdown)


def stage_table(results: dict[str, Any], markdown: bool = False) -> list[str]:
    """Per mode and stage of a batch, the latency runs' medians (`bench.stages`), and which stage holds the p99."""
    rows = []
    for mode, data in results.get("latency", {}).items():
        if _problem(data) or not data.get("stages_over_runs"):
            continue
        held = data.get("p99_held_by_over_runs")
        for stage, figures in data["stages_over_runs"].items():
            rows.append([
                mode, stage, _number(figures.get("batches")), _number(figures.get("mean_ms"), 2),
                _number(figures.get("p50_ms"), 2), _number(figures.get("p99_ms"), 2), _number(figures.get("slow")),
                "holds the p99" if stage == held else "",
            ])  # fmt: skip
    if not rows:
        return ["not measured"]
    headers = ["delivery", "stage", "batches", "mean ms", "p50 ms", "p99 ms", f"over {SLOW_BATCH_S * 1000:g} ms", ""]
    return _rows(headers, rows, markdown)


def cadence_table(results: dict[str, Any], markdown: bool = False) -> list[str]:
    section = results.get("cadence", {})
    if not section:
        return ["not measured"]
    if "pending" in section:
        return [f"**Pending**: {section['pending']}." if markdown else f"pending: {section['pending']}"]
    if _problem(section):
        return [_problem(section) or ""]
    rows = []
    for row in section.get("rows", []):
        rows.append([
            str(row["commit_interval_ms"]),
            _number(row.get("msg_per_s")) if not row.get("throughput_error") else f"error: {row['throughput_error']}",
            _number(row.get("cpu_us_per_msg"), 2),
            _spread(row.get("latency_p50_ms")),
            _spread(row.get("latency_p99_ms")) if not row.get("latency_error") else f"error: {row['latency_error']}",
        ])  # fmt: skip
    return _rows(["KDP_COMMIT_INTERVAL_MS", "msg/s", "CPU µs/msg", "p50 ms", "p99 ms"], rows, markdown)


def peers_text(results: dict[str, Any]) -> list[str]:
    """Per peer: versions, where it ran, and where its job differs from ours."""
    lines = []
    for peer in PEERS:
        data = results.get("throughput", {}).get(peer.key)
        if not data:
            continue
        versions = data.get("details", {}).get("versions") or {}
        shown = ", ".join(f"{name} {version}" for name, version in versions.items()) or "versions unknown"
        where = data.get("environment", {})
        built = f", built in this run in {where['venv_build_s']:.0f} s" if where.get("venv_build_s") else ""
        lines.append(
            f"- **{peer.label}** (`{peer.module.replace('.', '/')}.py`; {shown}; ran in {where.get('venv', '?')}"
            f"{built}). Same validation (our `streaming.conversion.transform.transform`); differs from ours in: "
            + "; ".join(peer.differences)
            + "."
        )
    return lines


def scaling_table(results: dict[str, Any], markdown: bool = False) -> list[str]:
    scaling = results.get("scaling", [])
    if _problem(scaling):
        return [_problem(scaling) or ""]
    base = scaling[0]["msg_per_s"] if scaling and scaling[0].get("msg_per_s") else None
    rows = [
        [
            str(s["processes"]),
            _number(s["msg_per_s"]),
            _number(s["msg_per_s"] / base, 2) + "x" if base else "-",
            _number(s["cpu_us_per_msg"], 2),
            _number(s["seconds"], 2),
            " / ".join(_number(p["consumed"]) for p in s["per_process"]),
            _number(s.get("load_1m"), 1),
        ]  # fmt: skip
        for s in scaling
    ]
    headers = ["processes", "msg/s", "vs 1", "CPU µs/msg", "seconds", "consumed per process", "load"]
    return _rows(headers, rows, markdown)


def target_table(results: dict[str, Any], markdown: bool = False) -> list[str]:
    rows = []
    for t in results.get("targets", []):
        verdict = "n/a" if t["met"] is None else ("met" if t["met"] else "MISSED")
        rows.append([t["label"], t["target"], t["shown"], verdict, t["gap"]])
    return _rows(["target", "wanted", "measured", "verdict", "gap"], rows, markdown)


def profile_table(rows: list[dict[str, Any]], markdown: bool = True) -> list[str]:
    return _rows(
        ["function", "calls", "own s", "cumulative s", "own µs/msg", "cumulative µs/msg"],
        [
            [
                f"`{r['function']}`" if markdown else r["function"],
                _number(r["calls"]),
                _number(r["self_s"], 3),
                _number(r["cumulative_s"], 3),
                _number(r["self_us_per_msg"], 2),
                _number(r["cumulative_us_per_msg"], 2),
            ]  # fmt: skip
            for r in rows
        ],
        markdown,
    )


def print_table(results: dict[str, Any]) -> None:
    backlog = results.get("backlog", {})
    load = results.get("load_average", {})
    print(
        f"\nThroughput over {backlog.get('count', 0):,} events on {backlog.get('topic')} "
        f"({backlog.get('partitions')} partitions); load average {load.get('start')} -> {load.get('end')}"
    )
    for title, lines in (
        ("", throughput_table(results)),
        ("Ratios", ratio_table(results)),
        ("Ours and the pass-through, side by side", pairs_table(results)),
        ("Latency (ms, min / median / max over runs)", latency_table(results)),
        ("The slowest records, per run", tail_table(results)),
        ("Latency: stages of a batch (ms, median over runs)", stage_table(results)),
        ("Exactly-once cadence", cadence_table(results)),
        ("Scaling (at-least-once, one group)", scaling_table(results)),
        ("Targets", target_table(results)),
    ):
        if title:
            print(f"\n{title}")
        print("\n".join(lines))
    for t in results.get("targets", []):
        if t.get("limits"):
            print(f"\n* {t['label']}: {t['limits']}")


def markdown(results: dict[str, Any]) -> str:
    env, backlog, options = results["environment"], results.get("backlog", {}), results["options"]
    load = results["load_average"]
    out = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`python -m bench.run`); do not edit by hand. The machine is shared, so every "
        "figure is one run's, and the CPU per message (all threads of a process over its measured interval) "
        "is steadier than msg/s. Method: `bench/__init__.py` and the docstrings of `bench/*.py`.",
        "",
        "## Machine and run",
        "",
        f"- {env['nproc']} cores ({env['cpu_model']}), {env['memory_gib']} GiB, Linux {env['kernel']}",
        f"- Python {env['python']}, librdkafka {env['librdkafka']}, "
        + ", ".join(f"{name} {version}" for name, version in env["packages"].items())
        + f"; Kafka {env['kafka_local_stack']} (local stack, one node) at {env['bootstrap']}",
        f"- code {env['code_revision']}, run `{results['run_id']}` at {results['started_at']}, "
        f"{results['duration_s']:.0f} s in all",
        f"- load average (1, 5, 15 min): {load['start']} at start, {load['end']} at end; the broker and "
        "other work share the cores (each step's 1-minute load at its start is in its table's *load* column)",
        f"- command: `{results['commands']['run']}`",
        "",
        "## Throughput",
        "",
        f"Backlog: {backlog.get('count', 0):,} generator events (seed {backlog.get('seed')}, malformed rate "
        f"{backlog.get('malformed_rate')}, plus about 5% without device_type) on a fresh "
        f"{backlog.get('partitions')}-partition topic; kinds: {backlog.get('by_kind')}. "
        "Each subject is its own process, in its own consumer group, writing its own output topics; timed from the "
        "first consume that returned messages to the end of the last commit. MB are 10^6 bytes of source payload. "
        "CPU µs/msg counts every thread of the process over that interval; *of it loop thread* is the subject's "
        "Python thread alone. *load*: the 1-minute load average when the step started (2 cores).",
        "",
        *throughput_table(results, markdown=True),
        "",
        "Commands (each with `KDP_SOURCE_TOPIC` = the backlog and its own `KDP_OUTPUT_TOPIC`, `KDP_DLQ_TOPIC`, "
        "`KDP_GROUP_ID`; other settings at their defaults):",
        "",
        *[
            f"- {SUBJECT_LABELS.get(k, k)}: `{v['command']}`"
            for k, v in results.get("throughput", {}).items()
            if "command" in v
        ],
        *[f"- {line}" for line in results.get("kafka_perf", {}).get("commands", [])],
        "",
        "## Peers",
        "",
        "The same job written as each library's docs show it, at-least-once, on the same backlog, timed the same way "
        f"(first message -> last commit), over its first {options.get('peer_events', 0):,} messages (the peers run "
        "at a few thousand msg/s; CPU per message does not depend on the count). Ratios ours / peer are in the next "
        f"section; the target is ours >= {PEER_CPU_RATIO:g}x each peer by CPU per message.",
        "",
        *(peers_text(results) or ["not measured"]),
        "",
        "## Ratios",
        "",
        *ratio_table(results, markdown=True),
        "",
        f"Ours at-least-once, the pass-through and ours exactly-once, {options.get('pairs', 1)} times side by side "
        "(pair 1 is the throughput table's; the others ran back to back, in alternating order). The two "
        "pass-through targets and exactly-once / at-least-once are judged on the medians.",
        "",
        *(pairs_table(results, markdown=True) if results.get("pairs") else ["not measured"]),
        "",
        "## End-to-end latency",
        "",
        f"Offered load {options['latency_rate']:,} msg/s for {options['latency_seconds']:g} s per run, "
        f"{options.get('latency_repetitions', 1)} runs per mode, one after the other, each on fresh topics; every "
        "figure is min / median / max over the runs (quote the median). `kdp generate` -> source topic -> `kdp stream` "
        "-> output topic -> a `read_committed` reader in the harness. Latency = time the reader got the record - the "
        "source record's CreateTime. The first run is split at the record's `processed_at` (the converter's clock at "
        "batch start): *to batch* = produced -> batch start, *batch to visible* = the rest. The records produced in "
        f"a run's first {WARM_UP_S:g} s are its warm-up, left out of every figure but the warm-up column (each run's "
        "largest latency): a run starts on fresh topics, and its first transactions are slow once "
        "(`bench/latency.py`).",
        "",
        *latency_table(results, markdown=True),
        "",
        f"Where the slowest records waited, per run (after the warm-up): the records at or over the run's p"
        f"{TAIL_PERCENTILE:g}, their mean time before and after their batch started, and how many {TAIL_WINDOW_MS} ms "
        "windows of produce time they fall in. One stall of a few hundred ms holds every record that arrives while "
        "it lasts, thousands at this load: few windows mean a few stalls hold the p99, many mean it is spread.",
        "",
        *tail_table(results, markdown=True),
        "",
        "Per batch, where the converter's time goes (its `kdp_batch_stage_seconds` histograms, scraped after each run; "
        "median over the runs; p50 and p99 estimated within the histogram's buckets). *poll* is the wait for the "
        "batch's first message (mostly idle time at this load); *flush* waits for the outputs' acknowledgements; "
        "*commit* is the offset commit (at-least-once: handed over asynchronously; exactly-once: the transaction's "
        "commit, once per transaction). The stage of the batch's own work with the largest p99 holds the tail. "
        f"*over {SLOW_BATCH_S * 1000:g} ms* counts the batches (transactions, for exactly-once flush and commit) "
        "that took longer: the stalls of the table above.",
        "",
        *stage_table(results, markdown=True),
        "",
        "## Exactly-once cadence: latency against throughput",
        "",
        f"Our exactly-once converter with `KDP_COMMIT_INTERVAL_MS` set to each value (`default`: unset): msg/s and "
        f"CPU over the whole backlog, and latency at {options['latency_rate']:,} msg/s "
        f"({options.get('cadence_seconds', 0):g} s per run, min / median / max over "
        f"{options.get('latency_repetitions', 1)} runs).",
        "",
        *cadence_table(results, markdown=True),
        "",
        "## Scaling",
        "",
        "1, 2, 3 converter processes started together in one group on the same backlog (6 partitions), "
        "at-least-once; msg/s = all messages / (first consume of any process -> last commit of any).",
        "",
        *scaling_table(results, markdown=True),
        "",
        "## Memory",
        "",
        _memory_text(results),
        "",
        "## Targets",
        "",
        *target_table(results, markdown=True),
        "",
    ]
    for t in results.get("targets", []):
        if t.get("limits"):
            out += [f"- **{t['label']}**: {t['limits']}", ""]
    out += ["## CPU profile of the converter", "", _profile_text(results), ""]
    out += insights.section(results.get("insights"))
    errors = results.get("errors", {})
    if errors:
        out += ["", "## Sections that failed", ""] + [f"- {name}: {message}" for name, message in errors.items()]
    return "\n".join(out).rstrip() + "\n"


def _memory_text(results: dict[str, Any]) -> str:
    memory = results.get("memory", {})
    if _problem(memory) or not memory:
        return _problem(memory) or "not measured"
    parts = [f"{SUBJECT_LABELS[k]}: {v:,.0f} MB" for k, v in memory.get("peak_rss_mb", {}).items() if v is not None]
    return f"Peak RSS over the whole backlog: {'; '.join(parts)}. Method: {memory.get('method')}."


def _profile_text(results: dict[str, Any]) -> str:
    profile = results.get("profile", {})
    if _problem(profile) or not profile:
        return _problem(profile) or "not measured"
    lines = [
        f"cProfile over {profile['messages']:,} messages at-least-once (`{profile.get('command', '')}`); "
        f"{profile['profiled_seconds']:.2f} s of the converter thread's time was profiled. cProfile slows small "
        "Python functions down: read the shares, not the absolute times. librdkafka's own threads are not in it.",
        "",
        "Top by cumulative time:",
        "",
        *profile_table(profile["by_cumulative"]),
        "",
        "Top by own (self) time:",
        "",
        *profile_table(profile["by_self"]),
    ]
    return "\n".join(lines)
