"""Targets, ratios and verdicts of `make bench`: pure logic over a results dictionary."""

from __future__ import annotations

import pytest

from bench.targets import TARGETS, Verdict, ratios, target_values, verdicts

TARGET = {t.key: t for t in TARGETS}


def _subject(msg_per_s: float, cpu_us_per_msg: float, peak_rss_mb: float = 100.0) -> dict:
    return {"msg_per_s": msg_per_s, "cpu_us_per_msg": cpu_us_per_msg, "peak_rss_mb": peak_rss_mb}


THROUGHPUT = {
    "ours_alo": _subject(120_000, 8.0, peak_rss_mb=150.0),
    "ours_eos": _subject(60_000, 10.0, peak_rss_mb=180.0),
    "seed_design": _subject(20_000, 16.0),
    "stock_serializer": _subject(50_000, 20.0),
    "passthrough": _subject(200_000, 4.0),
}


def test_a_minimum_is_met_at_or_above_its_threshold() -> None:
    target = TARGET["alo_msg_per_s"]
    assert Verdict(target, 100_000).met is True
    assert Verdict(target, 120_000).gap == ""
    assert Verdict(target, 99_999).met is False


def test_a_missed_minimum_says_how_far_short_and_what_factor_it_needs() -> None:
    verdict = Verdict(TARGET["alo_msg_per_s"], 80_000)
    assert verdict.met is False
    assert verdict.gap == "20% short (needs 1.25x)"


def test_a_missed_maximum_says_how_far_over() -> None:
    verdict = Verdict(TARGET["latency_p99_ms_alo"], 65.0)
    assert verdict.met is False
    assert verdict.gap == "30% over (1.30x the limit)"
    assert Verdict(TARGET["latency_p99_ms_alo"], 50.0).met is True


def test_an_unmeasured_value_has_no_verdict() -> None:
    verdict = Verdict(TARGET["peak_rss_mb"], None)
    assert verdict.met is None
    assert verdict.gap == "not measured"
    assert verdict.as_dict()["shown"] == "-"


def test_ratios_compare_wall_throughput_and_cpu_per_message() -> None:
    computed = ratios(THROUGHPUT)
    assert computed["ours_over_seed"] == {"wall": 6.0, "cpu": 2.0}
    assert computed["ours_over_stock"] == {"wall": 2.4, "cpu": 2.5}
    assert computed["ours_over_passthrough"] == {"wall": 0.6, "cpu": 0.5}
    assert computed["eos_over_alo"] == {"wall": 0.5, "cpu": 0.8}


def test_a_ratio_whose_subject_failed_is_left_out() -> None:
    partial = {key: value for key, value in THROUGHPUT.items() if key != "seed_design"}
    assert "ours_over_seed" not in ratios(partial)


def test_targets_are_judged_on_the_right_figures() -> None:
    results = {
        "throughput": THROUGHPUT,
        "ratios": ratios(THROUGHPUT),
        "latency": {"at-least-once": {"latency_ms": {"p99": 42.0}}, "exactly-once": {"latency_ms": {"p99": 400.0}}},
    }
    values = target_values(results)
    assert values["alo_msg_per_s"] == 120_000
    assert values["latency_p99_ms_alo"] == 42.0  # the exactly-once latency is reported, not judged
    assert values["peak_rss_mb"] == 180.0  # the larger of the two modes
    judged = {v.target.key: v.met for v in verdicts(results)}
    assert judged == {
        "alo_msg_per_s": True,
        "eos_over_alo": False,
        "ours_over_seed": True,
        "ours_over_stock": True,
        "ours_over_passthrough": True,
        "latency_p99_ms_alo": True,
        "peak_rss_mb": True,
    }


@pytest.mark.parametrize("section", ["throughput", "latency", "ratios"])
def test_missing_sections_leave_targets_unmeasured_rather_than_failing(section: str) -> None:
    results = {"throughput": THROUGHPUT, "ratios": ratios(THROUGHPUT), "latency": {}}
    results.pop(section)
    assert all(v.met in (True, False, None) for v in verdicts(results))


@pytest.mark.parametrize("latency", [{"skipped": "--skip"}, {"error": "TimeoutError: no group"}])
def test_a_skipped_or_failed_latency_is_not_measured(latency: dict) -> None:
    results = {"throughput": THROUGHPUT, "ratios": ratios(THROUGHPUT), "latency": {"at-least-once": latency}}
    assert target_values(results)["latency_p99_ms_alo"] is None
