"""The asset checks of the insights: what must hold for an hour's numbers to be trusted.

- `counts_consistent_with_offsets` (on `login_window`): no partition delivered more messages than the
  offsets it read nor counted more than it delivered, no record failed to decode, each partition's counted
  records (on time and late) add up to the window's totals, and every breakdown (device type, locale,
  version, minute) sums to the on-time total. Its metadata shows the late records beside them.
- `dead_letter_rate_below_threshold` (on `dead_letter_rate`): dead letters / all messages of the hour stays
  at or under a configured rate (10 % by default).
- `newest_record_is_recent` (on the external `processed_data`): the newest record on the topic was
  delivered (its Kafka timestamp: processing or append time) at most a configured age ago, i.e. the
  converter is producing.

The first two are evaluated by the insights asset on the window it has just read (`check_specs`), because
that read is the evidence; recomputing it in a separate step would mean reading the hour twice. The
functions that decide are pure, so their failing paths are tested with synthetic windows. The freshness
check asks Kafka on its own, so it can run without materializing anything.
Asset keys are named here by their strings, since `assets` imports this module; Dagster refuses a check
whose asset is missing from the definitions, so a typo cannot go unnoticed.

No `from __future__ import annotations` here: Dagster reads the config and resource parameter types of
the decorated functions at import time, and string annotations make it refuse them.
"""

import time

import dagster as dg

from orchestration.defs.resources import KafkaResource
from orchestration.insights import aggregates
from orchestration.insights.aggregates import WindowTally
from orchestration.insights.window_reader import WindowScan, newest_timestamp_ms

COUNTS_CONSISTENT = dg.AssetCheckSpec(
    "counts_consistent_with_offsets",
    asset="login_window",
    description="Records scanned per partition fit the offsets read; nothing undecodable; all breakdowns sum "
    "to the window's total.",
)
DEAD_LETTER_RATE_BELOW_THRESHOLD = dg.AssetCheckSpec(
    "dead_letter_rate_below_threshold",
    asset="dead_letter_rate",
    description="Dead letters are at most the configured share of the hour's messages.",
)
DEFAULT_MAX_DEAD_LETTER_RATE = 0.10
DEFAULT_MAX_AGE_MINUTES = 15.0


def counts_consistency(scan: WindowScan) -> dg.AssetCheckResult:
    """Pass when the scan's counts agree with the offsets read and each other; list each disagreement."""
    tally = scan.tally
    problems: list[str] = []
    for part in [*scan.records, *scan.dead_letters]:
        where = f"{part.offsets.topic}/{part.offsets.partition}"
        if part.scanned > part.span:
            problems.append(
                f"{where}: {part.scanned} messages delivered from {part.span} offsets "
                f"[{part.offsets.start}, {part.offsets.end})"
            )
        if part.counted + part.late > part.scanned:
            problems.append(f"{where}: {part.counted} counted and {part.late} late of {part.scanned} delivered")
    if scan.undecodable:
        problems.append(f"{scan.undecodable} records could not be decoded")
    counted_records = sum(part.counted for part in scan.records)
    if counted_records != tally.records:
        problems.append(f"partitions counted {counted_records} records, the window totals {tally.records}")
    counted_late = sum(part.late for part in scan.records)
    if counted_late != tally.late_records:
        problems.append(f"partitions counted {counted_late} late records, the window totals {tally.late_records}")
    counted_dead = sum(part.counted for part in scan.dead_letters)
    if counted_dead != tally.dead_letter_total:
        problems.append(f"partitions counted {counted_dead} dead letters, the window totals {tally.dead_letter_total}")
    totals = aggregates.breakdown_totals(tally)
    for breakdown, total in totals.items():
        if total != tally.records:
            problems.append(f"{breakdown} sum to {total}, not {tally.records}")
    return dg.AssetCheckResult(
        check_name=COUNTS_CONSISTENT.name,
        asset_key=COUNTS_CONSISTENT.asset_key,
        passed=not problems,
        description="; ".join(problems) or None,
        metadata={
            "records": dg.MetadataValue.int(tally.records),
            "late_records": dg.MetadataValue.int(tally.late_records),
            "scanned": dg.MetadataValue.int(scan.scanned),
            "offsets_read": dg.MetadataValue.int(sum(part.span for part in scan.records)),
            "undecodable": dg.MetadataValue.int(scan.undecodable),
            "breakdown_totals": dg.MetadataValue.json(totals),
        },
    )


def dead_letter_rate_check(tally: WindowTally, max_rate: float) -> dg.AssetCheckResult:
    """Pass when dead letters / (records + dead letters) <= `max_rate`; an hour with no messages passes."""
    rate = aggregates.dead_letter_rate(tally)
    passed = rate.rate <= max_rate
    reasons = ", ".join(f"{s.value} {s.count}" for s in rate.by_reason[:5])
    return dg.AssetCheckResult(
        check_name=DEAD_LETTER_RATE_BELOW_THRESHOLD.name,
        asset_key=DEAD_LETTER_RATE_BELOW_THRESHOLD.asset_key,
        passed=passed,
        description=None if passed else f"dead-letter rate {rate.rate:.2%} exceeds {max_rate:.2%} ({reasons})",
        metadata={
            "dead_letter_rate": dg.MetadataValue.float(rate.rate),
            "max_dead_letter_rate": dg.MetadataValue.float(float(max_rate)),
            "dead_letters": dg.MetadataValue.int(rate.dead_letters),
            "records": dg.MetadataValue.int(rate.records),
        },
    )


def freshness_result(newest_ms: int | None, now_ms: int, max_age_minutes: float) -> dg.AssetCheckResult:
    """Pass when the newest record is at most `max_age_minutes` old at `now_ms`; an empty topic fails."""
    if newest_ms is None:
        return dg.AssetCheckResult(passed=False, description="processed-data holds no records")
    age_minutes = (now_ms - newest_ms) / 60_000
    passed = age_minutes <= max_age_minutes
    return dg.AssetCheckResult(
        passed=passed,
        description=None if passed else f"newest record is {age_minutes:.1f} min old (limit {max_age_minutes} min)",
        metadata={
            "newest_record_time": dg.MetadataValue.timestamp(newest_ms / 1000),
            "age_minutes": dg.MetadataValue.float(round(age_minutes, 2)),
            "max_age_minutes": dg.MetadataValue.float(float(max_age_minutes)),
        },
    )


class FreshnessConfig(dg.Config):
    max_age_minutes: float = DEFAULT_MAX_AGE_MINUTES
    """The newest record may have been delivered this long ago; allow for a quiet source."""


@dg.asset_check(
    asset="processed_data",
    name="newest_record_is_recent",
    description="The newest record on processed-data was delivered at most max_age_minutes ago.",
)
def processed_data_freshness(config: FreshnessConfig, kafka: KafkaResource) -> dg.AssetCheckResult:
    settings = kafka.settings()
    newest = newest_timestamp_ms(settings, settings.output_topic)
    return freshness_result(newest, int(time.time() * 1000), config.max_age_minutes)
