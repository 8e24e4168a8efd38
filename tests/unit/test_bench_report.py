"""Rendering the results of `make bench` (table, Markdown) and explaining missed targets from the figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import analysis, report
from bench.latency import summarise_runs
from bench.targets import TARGETS, Verdict, pair, ratios, summarise_pairs, verdicts

TARGET = {t.key: t for t in TARGETS}


def _subject(msg_per_s: float, cpu: float, **extra: object) -> dict:
    return {
        "msg_per_s": msg_per_s,
        "mb_per_s": msg_per_s * 211 / 1e6,
        "cpu_us_per_msg": cpu,
        "peak_rss_mb": 140.0,
        "seconds": 1_000_000 / msg_per_s,
        "consumed": 1_000_000,
        "processed": 962_000,
        "dead_lettered": 38_000,
        "command": "python -m bench.something",
        **extra,
    }


def _latency(before_p50: float, after_p50: float) -> dict:
    def spread(p50: float) -> dict:
        return {"p50": p50, "p99": p50 * 2, "p99.9": p50 * 3, "mean": p50, "max": p50 * 4}

    return {
        "offered_msg_per_s": 10_000,
        "achieved_msg_per_s": 9_990.0,
        "latency_ms": spread(before_p50 + after_p50),
        "produced_to_batch_start_ms": spread(before_p50),
        "batch_start_to_visible_ms": spread(after_p50),
    }


@pytest.fixture
def results() -> dict:
    throughput = {
        "ours_alo": _subject(80_000, 10.0, thread_cpu_us_per_msg=8.0, details={"batch_size": 5000, "batches": 200}),
        "ours_eos": _subject(70_000, 11.0, details={"batch_size": 5000, "batches": 200}),
        "seed_design": _subject(90_000, 9.5),
        "stock_serializer": _subject(50_000, 18.0),
        "passthrough": _subject(160_000, 2.5),
        "quixstreams": _subject(15_000, 60.0, details={"versions": {"quixstreams": "3.28.1"}}),
        "arroyo": _subject(20_000, 15.0, details={"versions": {"sentry-arroyo": "2.48.0"}}),
    }
    throughput["quixstreams"]["environment"] = {"venv": "/cache/bench/venvs/quixstreams-abc", "venv_build_s": 100.0}
    throughput["arroyo"]["environment"] = {"venv": "the project's venv", "venv_build_s": None}
    row = {
        "function": "streaming/conversion/transform.py:122(transform)",
        "calls": 200_000,
        "self_s": 0.5,
        "cumulative_s": 2.0,
    }
    row |= {"self_us_per_msg": 2.5, "cumulative_us_per_msg": 10.0}
    results = {
        "run_id": "bench-test",
        "started_at": "2026-01-01T00:00:00+00:00",
        "duration_s": 300.0,
        "options": {"latency_rate": 10_000, "latency_seconds": 30.0},
        "commands": {"run": "python -m bench.run"},
        "environment": {
            "nproc": 2,
            "cpu_model": "a CPU",
            "memory_gib": 23.5,
            "kernel": "6",
            "python": "3.11.7",
            "librdkafka": "2.16.0",
            "packages": {"confluent-kafka": "2.16.1"},
            "kafka_local_stack": "4.3.1",
            "bootstrap": "localhost:9092",
            "code_revision": "abc1234",
        },
        "load_average": {"start": [3.0, 2.0, 1.0], "end": [4.0, 3.0, 2.0]},
        "backlog": {"count": 1_000_000, "topic": "bench-test-backlog", "partitions": 6, "seed": 7},
        "throughput": throughput,
        "kafka_perf": {"skipped": "--skip"},
        "ratios": ratios(throughput),
        "latency": {"at-least-once": _latency(270.0, 45.0), "exactly-once": {"error": "TimeoutError: no group"}},
        "cadence": {"pending": "KDP_COMMIT_INTERVAL_MS is not a setting of the converter yet"},
        "scaling": [
            {
                "processes": 1,
                "msg_per_s": 80_000.0,
                "cpu_us_per_msg": 10.0,
                "seconds": 12.5,
                "per_process": [{"consumed": 1}],
            },
        ],
        "memory": {"method": "VmHWM", "peak_rss_mb": {"ours_alo": 140.0, "ours_eos": 141.0}},
        "profile": {"messages": 200_000, "profiled_seconds": 5.0, "by_cumulative": [row], "by_self": [row]},
        "errors": {"latency exactly-once": "TimeoutError: no group"},
    }
    results["targets"] = [{**v.as_dict(), "limits": analysis.explain(v, results)} for v in verdicts(results)]
    return results


def test_the_markdown_has_every_section_and_says_what_was_skipped_or_failed(results: dict) -> None:
    text = report.markdown(results)
    for heading in ("Machine and run", "Throughput", "Ratios", "End-to-end latency", "Scaling", "Memory", "Targets"):
        assert f"## {heading}" in text
    assert "## CPU profile of the converter" in text
    assert "| (d) Kafka perf tools | skipped: --skip |" in text
    assert "| exactly-once | error: TimeoutError: no group |" in text
    assert "| at-least-once throughput, one process | >= 100,000 msg/s | 80,000 msg/s | MISSED | 20% short" in text
    assert "`streaming/conversion/transform.py:122(transform)`" in text


def test_the_printed_table_and_the_json_carry_the_same_figures(results: dict, tmp_path: Path, capsys) -> None:
    report.print_table(results)
    printed = capsys.readouterr().out
    assert "ours, at-least-once" in printed and "80,000" in printed
    report.write_json(results, tmp_path / "out" / "results.json")
    assert json.loads((tmp_path / "out" / "results.json").read_text())["throughput"]["ours_alo"]["msg_per_s"] == 80_000


def test_a_missed_throughput_is_explained_in_cpu_per_message_and_cores(results: dict) -> None:
    text = analysis.explain(Verdict(TARGET["alo_msg_per_s"], 80_000), results)
    assert "10.0 µs of CPU per message" in text
    assert "8.0 µs of it in the converter's Python thread" in text
    assert "tops out near 125,000 msg/s" in text  # 1 / 8 µs
    assert "pass-through spends 2.5 µs" in text
    assert "1.00 cores" in text  # 10 µs x 100,000 msg/s
    assert "transform.py:122(transform) 10%" in text


def test_peers_have_rows_ratios_versions_and_their_differences(results: dict) -> None:
    text = report.markdown(results)
    assert "| (e) Quix Streams | 15,000 |" in text and "| (f) Arroyo | 20,000 |" in text
    assert "| ours / Quix Streams | 5.33x | 6.00x |" in text  # 80k / 15k by msg/s, 60 / 10 µs by CPU
    assert "quixstreams 3.28.1; ran in /cache/bench/venvs/quixstreams-abc, built in this run in 100 s" in text
    assert "sentry-arroyo 2.48.0; ran in the project's venv)" in text
    assert "the value is cloned (pickled) for the second branch" in text
    assert "| ours >= 10x each peer by CPU per message: Arroyo | >= 10.00x | 1.50x | MISSED | 85% short" in text


def test_a_peer_that_costs_less_than_ten_times_ours_is_explained_in_cpu_per_message(results: dict) -> None:
    text = analysis.explain(Verdict(TARGET["ours_over_arroyo_cpu"], 1.5), results)
    assert text.startswith("Arroyo spends 15.0 µs of CPU per message, ours 10.0: 10x needs ours at or under 1.5 µs.")
    assert "row (b) at 18.0 µs" in text


def test_cpu_over_the_pass_through_says_how_much_must_go(results: dict) -> None:
    text = analysis.explain(Verdict(TARGET["cpu_over_passthrough"], 4.0), results)
    assert "needs ours at or under 3.8 µs, 6.2 µs less than now" in text  # 1.5 x 2.5 µs


def test_latency_is_shown_as_min_median_max_over_runs_and_a_pending_cadence_says_so(results: dict) -> None:
    runs = [{"latency_ms": {"p50": p, "p99": 2 * p, "p99.9": 3 * p, "mean": p, "max": 4 * p}} for p in (10, 30, 20)]
    results["latency"]["at-least-once"] |= {"repetitions": 3, "runs": runs, "over_runs": summarise_runs(runs)}
    text = report.markdown(results)
    assert "| at-least-once | 3 | 9,990 | 10.0 / 20.0 / 30.0 | 20.0 / 40.0 / 60.0 |" in text
    assert "**Pending**: KDP_COMMIT_INTERVAL_MS is not a setting of the converter yet." in text


def test_a_measured_cadence_table_has_a_row_per_value(results: dict) -> None:
    spread = {"min": 40.0, "median": 50.0, "max": 70.0}
    row = {"commit_interval_ms": "100", "msg_per_s": 90_000.0, "cpu_us_per_msg": 9.5, "latency_p99_ms": spread}
    results["cadence"] = {"rows": [row | {"latency_p50_ms": spread}]}
    assert "| 100 | 90,000 | 9.50 | 40.0 / 50.0 / 70.0 | 40.0 / 50.0 / 70.0 |" in report.markdown(results)


def test_a_latency_dominated_by_the_wait_before_the_batch_says_so(results: dict) -> None:
    text = analysis.explain(Verdict(TARGET["latency_p99_ms_alo"], 630.0), results)
    assert "Of a median 315 ms" in text
    assert "Most of it is spent before the batch starts" in text
    assert "linger (5 ms)" in text  # the generator's own setting, not a number written into the sentence


def test_pairs_are_shown_one_by_one_with_the_medians_judged(results: dict) -> None:
    ours, passthrough = {"msg_per_s": 100.0, "cpu_us_per_msg": 8.0}, {"msg_per_s": 125.0, "cpu_us_per_msg": 4.0}
    results["options"]["pairs"] = 2
    results["pairs"] = summarise_pairs([pair(ours, passthrough), None])
    text = report.markdown(results)
    assert "| 1 | 0.80x | 8.00 | 4.00 | 2.00x |" in text
    assert "| 2 | failed | - | - | - |" in text
    assert "| median | 0.80x |  |  | 2.00x |" in text


def test_a_met_target_needs_no_explanation(results: dict) -> None:
    assert analysis.explain(Verdict(TARGET["peak_rss_mb"], 141.0), results) == ""


def test_the_stage_table_says_which_stage_holds_the_p99_and_the_explanation_names_it(results: dict) -> None:
    stages = {
        "poll": {"batches": 900, "mean_ms": 2.0, "p50_ms": 0.1, "p99_ms": 19.0},
        "convert": {"batches": 900, "mean_ms": 0.3, "p50_ms": 0.2, "p99_ms": 2.1},
        "flush": {"batches": 900, "mean_ms": 2.8, "p50_ms": 1.2, "p99_ms": 36.3, "slow": 3},
    }
    results["latency"]["at-least-once"] |= {"stages_over_runs": stages, "p99_held_by_over_runs": "flush"}
    text = report.markdown(results)
    assert "| at-least-once | flush | 900 | 2.80 | 1.20 | 36.30 | 3 | holds the p99 |" in text
    assert "| at-least-once | poll | 900 | 2.00 | 0.10 | 19.00 | - |  |" in text  # results from before the count
    explanation = analysis.explain(Verdict(TARGET["latency_p99_ms_alo"], 630.0), results)
    assert "flush has the largest p99: 36.3 ms per batch" in explanation


def test_without_stage_figures_the_stage_table_says_not_measured(results: dict) -> None:
    assert report.stage_table(results, markdown=True) == ["not measured"]


def test_each_runs_warm_up_and_slowest_records_are_reported(results: dict) -> None:
    latency = results["latency"]["at-least-once"]
    tails = [
        {"records": 1_800, "to_batch_mean_ms": 40.0, "batch_to_visible_mean_ms": 120.5, "windows": 3},
        {"records": 1_790, "to_batch_mean_ms": 9.0, "batch_to_visible_mean_ms": 11.0, "windows": 61},
    ]
    latency["runs"] = [
        {"latency_ms": {"p99": 180.0}, "warm_up_ms": {"max": 498.7}, "tail": tails[0]},
        {"latency_ms": {"p99": 30.0}, "warm_up_ms": None, "tail": tails[1]},
    ]
    text = report.markdown(results)
    assert "| 499 / - |" in text  # the warm-up column: each run's largest, '-' where a run had none
    assert "| at-least-once | 1 | 180.0 | 1,800 | 40.0 | 120.5 | 3 |" in text
    assert "| at-least-once | 2 | 30.0 | 1,790 | 9.0 | 11.0 | 61 |" in text


def test_the_latency_explanation_says_where_the_slowest_records_waited(results: dict) -> None:
    results["latency"]["exactly-once"] = results["latency"]["at-least-once"] | {
        "runs": [
            {"latency_ms": {"p99": 180.0}, "warm_up_ms": {"max": 498.7}, "tail": {
                "records": 1_800, "to_batch_mean_ms": 40.0, "batch_to_visible_mean_ms": 120.5, "windows": 3}},
            {"latency_ms": {"p99": 90.0}, "warm_up_ms": {"max": 210.0}, "tail": {
                "records": 1_790, "to_batch_mean_ms": 9.0, "batch_to_visible_mean_ms": 11.0, "windows": 61}},
        ],
    }  # fmt: skip
    explanation = analysis.explain(Verdict(TARGET["latency_p99_ms_eos"], 135.0), results)
    assert "fall in 3 / 61 windows of 250 ms" in explanation
    assert "(180 ms) they waited 40 ms on average before their batch started and 120 ms after" in explanation
    assert "latencies up to 499 / 210 ms" in explanation
