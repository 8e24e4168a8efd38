"""Targets, ratios and verdicts of `make bench`: pure logic over a results dictionary."""

from __future__ import annotations

import pytest

from bench.latency import summarise_runs
from bench.targets import TARGETS, Verdict, pair, ratios, summarise_pairs, target_values, verdicts

TARGET = {t.key: t for t in TARGETS}


def _subject(msg_per_s: float, cpu_us_per_msg: float, peak_rss_mb: float = 100.0) -> dict:
    return {"msg_per_s": msg_per_s, "cpu_us_per_msg": cpu_us_per_msg, "peak_rss_mb": peak_rss_mb}


THROUGHPUT = {
    "ours_alo": _subject(120_000, 8.0, peak_rss_mb=150.0),
    "ours_eos": _subject(60_000, 10.0, peak_rss_mb=180.0),
    "seed_design": _subject(20_000, 16.0),
    "stock_serializer": _subject(50_000, 20.0),
    "passthrough": _subject(200_000, 4.0),
    "quixstreams": _subject(15_000, 60.0),
    "arroyo": _subject(20_000, 12.0),
}


def _latency(*p99s: float) -> dict:
    """A repeated latency measurement whose runs had these p99s (other statistics alike)."""
    runs = [{"latency_ms": {"p50": p99 / 2, "p99": p99}} for p99 in p99s]
    return {"latency_ms": runs[0]["latency_ms"], "runs": runs, "over_runs": summarise_runs(runs)}


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
    verdict = Verdict(TARGET["latency_p99_ms_alo"], 52.0)
    assert verdict.met is False
    assert verdict.gap == "30% over (1.30x the limit)"
    assert Verdict(TARGET["latency_p99_ms_alo"], 40.0).met is True


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
    assert computed["ours_over_quixstreams"] == {"wall": 8.0, "cpu": 7.5}  # 120k / 15k, 60 µs / 8 µs
    assert computed["ours_over_arroyo"] == {"wall": 6.0, "cpu": 1.5}


def test_a_ratio_whose_subject_failed_is_left_out() -> None:
    partial = {key: value for key, value in THROUGHPUT.items() if key != "seed_design"}
    assert "ours_over_seed" not in ratios(partial)


def test_targets_are_judged_on_the_right_figures() -> None:
    results = {
        "throughput": THROUGHPUT,
        "ratios": ratios(THROUGHPUT),
        "latency": {"at-least-once": _latency(25.0, 45.0, 20.0), "exactly-once": _latency(120.0, 90.0, 95.0)},
    }
    values = target_values(results)
    assert values["alo_msg_per_s"] == 120_000
    assert values["cpu_over_passthrough"] == 2.0  # 8 µs / 4 µs
    assert values["latency_p99_ms_alo"] == 25.0  # the median of three runs, not the first or the worst
    assert values["latency_p99_ms_eos"] == 95.0
    assert values["ours_over_quixstreams_cpu"] == 7.5
    assert values["ours_over_arroyo_cpu"] == 1.5
    assert values["peak_rss_mb"] == 180.0  # the larger of the two modes
    judged = {v.target.key: v.met for v in verdicts(results)}
    assert judged == {
        "alo_msg_per_s": True,
        "cpu_over_passthrough": False,  # at most 1.5x: 2x is over
        "ours_over_passthrough": False,  # 0.6x of the wanted 0.95x
        "eos_over_alo": False,
        "ours_over_stock": True,
        "ours_over_quixstreams_cpu": False,  # 7.5x of the wanted 10x
        "ours_over_arroyo_cpu": False,
        "latency_p99_ms_alo": True,
        "latency_p99_ms_eos": True,
        "peak_rss_mb": True,
    }


def test_the_retired_seed_target_is_reported_as_a_ratio_but_not_judged() -> None:
    assert "ours_over_seed" in ratios(THROUGHPUT)
    assert "ours_over_seed" not in TARGET


@pytest.mark.parametrize("section", ["throughput", "latency", "ratios"])
def test_missing_sections_leave_targets_unmeasured_rather_than_failing(section: str) -> None:
    results = {"throughput": THROUGHPUT, "ratios": ratios(THROUGHPUT), "latency": {}}
    results.pop(section)
    assert all(v.met in (True, False, None) for v in verdicts(results))


@pytest.mark.parametrize("latency", [{"skipped": "--skip"}, {"error": "TimeoutError: no group"}])
def test_a_skipped_or_failed_latency_is_not_measured(latency: dict) -> None:
    results = {"throughput": THROUGHPUT, "ratios": ratios(THROUGHPUT), "latency": {"at-least-once": latency}}
    assert target_values(results)["latency_p99_ms_alo"] is None


def test_a_pair_gives_both_pass_through_ratios_the_way_their_targets_are_stated() -> None:
    measured = pair(THROUGHPUT["ours_alo"], THROUGHPUT["passthrough"])
    assert measured is not None
    assert (measured["wall"], measured["cpu_over_passthrough"]) == (0.6, 2.0)  # 120k / 200k; 8 µs / 4 µs
    assert pair(THROUGHPUT["ours_alo"], {"error": "TimeoutError"}) is None


def test_the_pass_through_targets_are_judged_on_the_median_of_the_pairs() -> None:
    def run(msg_per_s: float, cpu: float) -> dict[str, float] | None:
        return pair(_subject(msg_per_s, cpu), _subject(100_000, 4.0))

    pairs = summarise_pairs([run(60_000, 10.0), None, run(95_000, 6.0), run(80_000, 7.2)])
    assert pairs["measured"] == 3
    assert pairs["median"] == {"wall": 0.8, "cpu_over_passthrough": 1.8}
    results = {"throughput": THROUGHPUT, "ratios": ratios(THROUGHPUT), "pairs": pairs}
    values = target_values(results)
    assert (values["ours_over_passthrough"], values["cpu_over_passthrough"]) == (0.8, 1.8)  # not pair 1's 0.6, 2.5
    assert summarise_pairs([None])["median"] == {"wall": None, "cpu_over_passthrough": None}


def test_exactly_once_over_at_least_once_is_judged_on_the_median_of_the_pairs_that_ran_it() -> None:
    ours, passthrough = _subject(100_000, 5.0), _subject(110_000, 3.0)
    pairs = summarise_pairs(
        [
            pair(ours, passthrough, _subject(70_000, 5.2)),
            pair(ours, passthrough, _subject(95_000, 5.1)),
            pair(ours, passthrough, {"error": "TimeoutError"}),  # exactly-once failed: the pair has no eos ratio
            pair(ours, passthrough, _subject(92_000, 5.3)),
        ]
    )
    assert pairs["median"]["eos_over_alo"] == 0.92  # of 0.7, 0.95, 0.92
    values = target_values({"throughput": THROUGHPUT, "ratios": ratios(THROUGHPUT), "pairs": pairs})
    assert values["eos_over_alo"] == 0.92  # not the throughput table's single 0.5
