"""The insights section of bench/RESULTS.md: written from a run's figures, replaced in place on the next run."""

from bench.insights import SECTION_END, SECTION_START, replace_section, section


def figures(cpu_us: float) -> dict:
    hour = {
        "partition": "2026-12-07-02:00",
        "scanned": 1_001_000,
        "records": 1_000_000,
        "late": 1000,
        "dead_letters": 1000,
        "native": True,
        "users": 100_000,
        "devices": 98_000,
        "users_exact": True,
        "cpu_us_per_record": cpu_us,
        "wall_s": 3.2,
        "rss_before_mb": 60.0,
        "peak_rss_mb": 140.0,
        "written": {"records": 1_001_000, "users": 100_000, "devices": 98_000},
    }
    many = {
        **hour,
        "users": 2_010_000,
        "users_exact": False,
        "written": {"records": 2, "users": 2_000_000, "devices": 0},
    }
    return {
        "hour_a": hour,
        "hour_b": many,
        "asset": {"success": True, "wall_s": 9.0, "checks": {"counts_consistent_with_offsets": True}},
        "write_s": 60.0,
        "converter_cpu_us_per_msg": 9.0,
        "insights_to_converter": round(cpu_us / 9.0, 3),
        "target_us": 2.0,
        "goal_us": 1.0,
        "met": cpu_us <= 2.0,
    }


def test_the_section_states_the_figures_and_the_verdict() -> None:
    text = "\n".join(section(figures(1.5)))
    assert "**1.5 µs of CPU per record** (target ≤ 2.0 µs: met" in text
    assert "9.0 µs of CPU per message" in text
    assert "| 2,000,000 | 2,010,000 (+0.50%) |" in text
    assert "counts_consistent_with_offsets passed" in text
    assert "missed" in "\n".join(section(figures(2.5)))
    assert "Not measured: boom" in "\n".join(section({"error": "boom"}))


def test_the_section_is_replaced_in_place_and_appended_when_missing() -> None:
    first = replace_section("# Benchmark results\n\n## Memory\n", section(figures(1.5)))
    assert first.startswith("# Benchmark results\n\n## Memory\n") and first.count(SECTION_START) == 1
    second = replace_section(first + "\n## After\n", section(figures(1.7)))
    assert second.count(SECTION_START) == second.count(SECTION_END) == 1
    assert "1.7 µs" in second and "1.5 µs" not in second and second.endswith("## After\n")
