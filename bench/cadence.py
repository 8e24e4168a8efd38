"""The exactly-once cadence trade-off: latency against throughput for a few `KDP_COMMIT_INTERVAL_MS` values.

Exactly-once output becomes visible to `read_committed` readers only when its transaction commits, so how
often the converter commits (`KDP_COMMIT_INTERVAL_MS`, a setting of the converter core) trades latency for
throughput: each commit costs a few round trips to the transaction coordinator. For each value the
harness measures, with that value in the converter's environment,
- throughput: our exactly-once converter over the whole backlog (`bench.converter_subject`), msg/s and CPU;
- latency: `bench.latency` at the offered load, repeated, p99 as min / median / max.
A value `default` leaves the variable unset (the converter's documented default).

The table is measured only once the converter reads the setting, i.e. once `KDP_COMMIT_INTERVAL_MS` is in
`streaming.settings.ENV_NAMES` (the single list of names the code reads); until then the results say it is
pending, rather than measuring a setting that nothing reads.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.latency import measure_latency_repeated
from streaming.settings import ENV_NAMES, Settings

VARIABLE = "KDP_COMMIT_INTERVAL_MS"
DEFAULT = "default"


def supported(env_names: dict[str, str] | None = None) -> bool:
    """Whether the converter reads `KDP_COMMIT_INTERVAL_MS` (it is one of the names settings read)."""
    return VARIABLE in (ENV_NAMES if env_names is None else env_names)


def parse_values(text: str) -> list[str]:
    """`"default,20,100"` -> `["default", "20", "100"]`; ValueError naming the bad entry otherwise."""
    values = [item.strip() for item in text.split(",") if item.strip()]
    for value in values:
        if value != DEFAULT and not (value.isdigit() and int(value) > 0):
            raise ValueError(f"--cadences: {value!r} is neither {DEFAULT!r} nor a positive number of milliseconds")
    return values


def environment_for(value: str) -> dict[str, str]:
    """The converter's extra environment for one cadence value (nothing for `default`)."""
    return {} if value == DEFAULT else {VARIABLE: value}


def row(value: str, throughput: dict[str, Any], latency: dict[str, Any]) -> dict[str, Any]:
    """One line of the table from a throughput subject's report and a repeated latency measurement."""
    return {
        "commit_interval_ms": value,
        "msg_per_s": throughput.get("msg_per_s"),
        "cpu_us_per_msg": throughput.get("cpu_us_per_msg"),
        "throughput_error": throughput.get("error"),
        "latency_p99_ms": latency.get("over_runs", {}).get("p99"),
        "latency_p50_ms": latency.get("over_runs", {}).get("p50"),
        "latency_error": latency.get("error"),
    }


def measure_cadence(
    settings: Settings,
    run_id: str,
    values: list[str],
    throughput_subject: Callable[[str, dict[str, str]], dict[str, Any]],
    rate: int,
    seconds: float,
    repetitions: int,
    logs: Path,
    partitions: int = 6,
) -> dict[str, Any]:
    """The table, or `{"pending": reason}` while the converter does not read the setting.

    `throughput_subject(key, environment)` runs our exactly-once converter over the backlog with that extra
    environment and returns its report (the harness's `Run.subject`)."""
    if not supported():
        return {
            "pending": f"{VARIABLE} is not a setting of the converter yet (not in streaming.settings.ENV_NAMES); "
            "the table is measured once it is"
        }
    rows = []
    for value in values:
        extra = environment_for(value)
        throughput = throughput_subject(f"cadence-{value}", extra)
        try:
            latency = measure_latency_repeated(
                settings, run_id, "exactly-once", rate, seconds, logs, partitions,
                repetitions=repetitions, tag=f"c{value}", extra_environment=extra,
            )  # fmt: skip
        except Exception as error:  # noqa: BLE001 - one failed value must not lose the others
            latency = {"error": f"{type(error).__name__}: {error}".splitlines()[0]}
        rows.append(row(value, throughput, latency))
    return {"variable": VARIABLE, "offered_msg_per_s": rate, "seconds": seconds, "repetitions": repetitions} | {
        "rows": rows
    }
