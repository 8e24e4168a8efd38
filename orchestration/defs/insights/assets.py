"""Hourly insight assets over `processed-data`, one partition per UTC hour of event time.

One multi-asset reads the hour once (`window_reader.read_window`) and materializes seven assets from it:

    processed_data (the topic, conversion area) -> login_window -> device_type_distribution, top_locales,
                                                                   app_version_adoption, unique_users_devices,
                                                                   events_per_minute, dead_letter_rate

`login_window` is the hour's totals and what was read to get them (offsets per partition); the others are
views of the same tally. Reading once keeps them consistent with each other and costs one pass over Kafka;
the price is that they are always materialized together (`can_subset=False`). Rows go to DuckDB
(`insights.store`), replaced per partition, so a re-run or a backfill of an hour is idempotent. The two
checks that judge the read itself run here, on the read's own evidence (see `checks`).

The hour is one of event time: its records are those whose `event_time` is in it and that were processed
before the hour's end plus the slack. A record processed later than that (late, or very old: the partitions
start in 2026, events may date back to 2000) is counted once, visibly, as a *late record* of the hour it was
processed in: `login_window` shows how many, the oldest event time among them and the largest delay. Dead
letters are counted by the hour they failed in. The reasoning, and which part of the log an hour reads, are
in `orchestration.insights.placement`.

No `from __future__ import annotations` here: Dagster reads the config and resource parameter types of
the decorated functions at import time, and string annotations make it refuse them.
"""

import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import dagster as dg

from orchestration.defs.insights.checks import (
    COUNTS_CONSISTENT,
    DEAD_LETTER_RATE_BELOW_THRESHOLD,
    DEFAULT_MAX_DEAD_LETTER_RATE,
    counts_consistency,
    dead_letter_rate_check,
)
from orchestration.defs.resources import (
    InsightsStorageResource,
    KafkaResource,
    SchemaRegistryResource,
    pipeline_settings,
)
from orchestration.insights import aggregates, charts, store
from orchestration.insights.aggregates import MINUTE_MS
from orchestration.insights.placement import DEFAULT_SLACK_MS
from orchestration.insights.window_reader import WindowScan, read_window

GROUP = "insights"
HOURLY = dg.HourlyPartitionsDefinition(start_date="2026-11-01-00:00", timezone="UTC")

PROCESSED_DATA = "processed_data"
"""The upstream of every insight, owned by the conversion area; named by key so the areas stay independent."""


LOGIN_WINDOW = dg.AssetKey("login_window")
DEVICE_TYPE_DISTRIBUTION = dg.AssetKey("device_type_distribution")
TOP_LOCALES = dg.AssetKey("top_locales")
APP_VERSION_ADOPTION = dg.AssetKey("app_version_adoption")
UNIQUE_USERS_DEVICES = dg.AssetKey("unique_users_devices")
EVENTS_PER_MINUTE = dg.AssetKey("events_per_minute")
DEAD_LETTER_RATE = dg.AssetKey("dead_letter_rate")


def _hourly_specs() -> list[dg.AssetSpec]:
    """The specs of `hourly_insights`, made where they are used: an `AssetSpec` at module level would be
    loaded as an asset of its own beside the multi-asset (the definitions are loaded from the `defs` folder)."""

    def spec(key: dg.AssetKey, description: str, deps: Sequence[dg.AssetKey | str]) -> dg.AssetSpec:
        return dg.AssetSpec(key, description=description, deps=deps, group_name=GROUP, kinds={"duckdb"})

    return [
        spec(
            LOGIN_WINDOW,
            "Totals of the hour's logins (by event time) and dead letters (by failure time), the late records "
            "that arrived in the hour (events whose own hour had closed), and the offsets read per partition to "
            "count them.",
            [PROCESSED_DATA],
        ),
        spec(DEVICE_TYPE_DISTRIBUTION, "Logins per device type.", [LOGIN_WINDOW]),
        spec(TOP_LOCALES, "The locales with the most logins.", [LOGIN_WINDOW]),
        spec(
            APP_VERSION_ADOPTION,
            "Logins per app version, and devices on each version at their latest login.",
            [LOGIN_WINDOW],
        ),
        spec(
            UNIQUE_USERS_DEVICES,
            "Distinct users and devices that logged in: exact up to 131,072 each, estimated beyond (about 0.4 % "
            "error).",
            [LOGIN_WINDOW],
        ),
        spec(EVENTS_PER_MINUTE, "Logins per minute of event time, quiet minutes included.", [LOGIN_WINDOW]),
        spec(DEAD_LETTER_RATE, "Dead letters of the hour, by reason, and their share.", [LOGIN_WINDOW]),
    ]


class InsightsConfig(dg.Config):
    slack_minutes: int = DEFAULT_SLACK_MS // MINUTE_MS
    """How long after its hour's end a record may be processed and still be counted in its hour; later, it is
    a late record of the hour it was processed in. Keep it the same for every hour (a change between runs can
    count a record twice or not at all), and keep the schedule's minute after it plus the log-order margin
    (5 min), so that that part of the log exists when the hour is read."""
    max_dead_letter_rate: float = DEFAULT_MAX_DEAD_LETTER_RATE
    top_locales: int = 10


@dg.multi_asset(
    specs=_hourly_specs(),
    check_specs=[COUNTS_CONSISTENT, DEAD_LETTER_RATE_BELOW_THRESHOLD],
    partitions_def=HOURLY,
    can_subset=False,
)
def hourly_insights(
    context: dg.AssetExecutionContext,
    config: InsightsConfig,
    kafka: KafkaResource,
    registry: SchemaRegistryResource,
    insights_storage: InsightsStorageResource,
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    window = context.partition_time_window
    start_ms, end_ms = int(window.start.timestamp() * 1000), int(window.end.timestamp() * 1000)
    settings = pipeline_settings(kafka, registry)
    scan = read_window(settings, registry.client(), start_ms, end_ms, slack_ms=config.slack_minutes * MINUTE_MS)
    tally = scan.tally
    context.log.info(
        f"{context.partition_key}: {tally.records} records, {tally.late_records} late records and "
        f"{tally.dead_letter_total} dead letters, {scan.scanned} records read from {settings.output_topic}"
    )

    database = insights_storage.database(context)
    store.save_window(database, context.partition_key, scan, int(time.time() * 1000))
    minutes = aggregates.events_per_minute(tally)
    devices = aggregates.device_type_distribution(tally)
    chart = charts.render_window_chart(
        minutes,
        devices,
        f"logins {context.partition_key} UTC",
        store.chart_path(database, context.partition_key),
    )
    chart_md = dg.MetadataValue.md(charts.markdown_image(chart, f"logins {context.partition_key}"))

    yield dg.MaterializeResult(asset_key=LOGIN_WINDOW, metadata=_login_window_metadata(scan, database, chart))
    yield dg.MaterializeResult(
        asset_key=DEVICE_TYPE_DISTRIBUTION,
        metadata={
            "device_types": dg.MetadataValue.int(len(devices)),
            "distribution": dg.MetadataValue.md(_shares_table("device type", devices)),
        },
    )
    locales = aggregates.top_locales(tally, config.top_locales)
    yield dg.MaterializeResult(
        asset_key=TOP_LOCALES,
        metadata={
            "locales_seen": dg.MetadataValue.int(len(tally.locales)),
            "top_locales": dg.MetadataValue.md(_shares_table("locale", locales)),
        },
    )
    adoption = aggregates.app_version_adoption(tally)
    yield dg.MaterializeResult(
        asset_key=APP_VERSION_ADOPTION,
        metadata={
            "versions": dg.MetadataValue.int(len(adoption)),
            "adoption": dg.MetadataValue.md(
                _md_table(
                    ["app version", "logins", "share of logins", "devices", "share of devices"],
                    [[v.app_version, v.logins, _pct(v.login_share), v.devices, _pct(v.device_share)] for v in adoption],
                )
            ),
        },
    )
    uniques = aggregates.unique_users_devices(tally)
    yield dg.MaterializeResult(
        asset_key=UNIQUE_USERS_DEVICES,
        metadata={
            "unique_users": dg.MetadataValue.int(uniques.users),
            "unique_devices": dg.MetadataValue.int(uniques.devices),
            "records": dg.MetadataValue.int(uniques.records),
            "exact": dg.MetadataValue.bool(tally.users.exact and tally.devices.exact),
        },
    )
    busiest = max(minutes, key=lambda m: m.count)
    yield dg.MaterializeResult(
        asset_key=EVENTS_PER_MINUTE,
        metadata={
            "peak_per_minute": dg.MetadataValue.int(busiest.count),
            "peak_minute": dg.MetadataValue.timestamp(busiest.minute_start_ms / 1000),
            "quiet_minutes": dg.MetadataValue.int(sum(1 for m in minutes if m.count == 0)),
            "chart": chart_md,
            "chart_path": dg.MetadataValue.path(str(chart)),
        },
    )
    rate = aggregates.dead_letter_rate(tally)
    yield dg.MaterializeResult(
        asset_key=DEAD_LETTER_RATE,
        metadata={
            "dead_letters": dg.MetadataValue.int(rate.dead_letters),
            "dead_letter_rate": dg.MetadataValue.float(rate.rate),
            "by_reason": dg.MetadataValue.md(_shares_table("reason", rate.by_reason, share_label="share of messages")),
        },
    )
    yield counts_consistency(scan)
    yield dead_letter_rate_check(tally, config.max_dead_letter_rate)


def _login_window_metadata(scan: WindowScan, database: Path, chart: Path) -> dict[str, dg.MetadataValue]:
    tally = scan.tally
    offsets = _md_table(
        ["topic", "partition", "offsets read", "messages", "in window", "late", "undecodable"],
        [
            [
                p.offsets.topic,
                p.offsets.partition,
                f"[{p.offsets.start}, {p.offsets.end})",
                p.scanned,
                p.counted,
                p.late,
                p.undecodable,
            ]
            for p in [*scan.records, *scan.dead_letters]
        ],
    )
    metadata: dict[str, dg.MetadataValue] = {
        "records": dg.MetadataValue.int(tally.records),
        "dead_letters": dg.MetadataValue.int(tally.dead_letter_total),
        "late_records": dg.MetadataValue.int(tally.late_records),
        "records_scanned": dg.MetadataValue.int(scan.scanned),
        "undecodable": dg.MetadataValue.int(scan.undecodable),
        "offsets": dg.MetadataValue.md(offsets),
        "database": dg.MetadataValue.path(str(database)),
        "chart_path": dg.MetadataValue.path(str(chart)),
    }
    if tally.newest_event_ms is not None:
        metadata["newest_event_time"] = dg.MetadataValue.timestamp(tally.newest_event_ms / 1000)
    if tally.oldest_late_event_ms is not None and tally.max_late_delay_ms is not None:
        metadata["oldest_late_event_time"] = dg.MetadataValue.timestamp(tally.oldest_late_event_ms / 1000)
        metadata["max_late_delay_hours"] = dg.MetadataValue.float(round(tally.max_late_delay_ms / 3_600_000, 2))
    return metadata


def _pct(share: float) -> str:
    return f"{share:.1%}"


def _shares_table(label: str, shares: Sequence[aggregates.Share], share_label: str = "share") -> str:
    return _md_table([label, "count", share_label], [[s.value, s.count, _pct(s.share)] for s in shares])


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table; `|` in values is escaped so a strange device type cannot break the layout."""

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    if not rows:
        lines.append("| " + " | ".join(["-"] * len(headers)) + " |")
    return "\n".join(lines)
