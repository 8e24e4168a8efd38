"""The exactly-once cadence table of `make bench`: its values, its environment, its rows, and when it is pending."""

from __future__ import annotations

import pytest

from bench import cadence
from bench.latency import summarise_runs


def test_values_are_default_or_positive_milliseconds() -> None:
    assert cadence.parse_values("default, 20,100 ,") == ["default", "20", "100"]
    for bad in ("0", "-5", "fast", "1.5"):
        with pytest.raises(ValueError, match=repr(bad)):
            cadence.parse_values(f"default,{bad}")


def test_default_leaves_the_variable_unset() -> None:
    assert cadence.environment_for("default") == {}
    assert cadence.environment_for("250") == {"KDP_COMMIT_INTERVAL_MS": "250"}


def test_the_table_is_pending_until_the_converter_reads_the_setting() -> None:
    assert cadence.supported({"KDP_BATCH_SIZE": "batch_size", "KDP_COMMIT_INTERVAL_MS": "commit_interval_ms"})
    assert not cadence.supported({"KDP_BATCH_SIZE": "batch_size"})


def test_pending_is_reported_without_measuring_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cadence, "ENV_NAMES", {"KDP_BATCH_SIZE": "batch_size"})

    def must_not_run(key: str, environment: dict[str, str]) -> dict:
        raise AssertionError("nothing is measured while the setting is not read")

    result = cadence.measure_cadence(None, "run", ["default"], must_not_run, 10_000, 1.0, 3, None)  # type: ignore[arg-type]
    assert "KDP_COMMIT_INTERVAL_MS" in result["pending"]


def test_a_row_joins_throughput_and_the_spread_of_latency_over_runs() -> None:
    runs = [{"latency_ms": {"p50": p / 2, "p99": p}} for p in (80.0, 60.0, 70.0)]
    row = cadence.row("100", {"msg_per_s": 95_000.0, "cpu_us_per_msg": 9.6}, {"over_runs": summarise_runs(runs)})
    assert row["commit_interval_ms"] == "100"
    assert row["msg_per_s"] == 95_000.0 and row["cpu_us_per_msg"] == 9.6
    assert row["latency_p99_ms"] == {"min": 60.0, "median": 70.0, "max": 80.0}
    assert row["throughput_error"] is None and row["latency_error"] is None
