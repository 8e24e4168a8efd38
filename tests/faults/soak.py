"""The soak (`make soak`): the pipeline for half an hour under a sustained rate, with the faults of a normal week.

    make soak                                  # 3 runs of 30 minutes: docs/soak/run-N/ each, docs/soak.md all
    make soak SOAK_RUNS=1 SOAK_MINUTES=4 SOAK_OUT=.kdp  # a quick check of the harness

Not collected by `make test` or `make faults` (the file name does not start with `test_`): `make soak` names it.
On the fault tests' own three-broker stack, `kdp stack` style, with `kdp stream --delivery exactly-once`:

* traffic at `KDP_SOAK_RATE` login events per second (5% malformed), all the time;
* the converter killed with SIGKILL every `KDP_SOAK_KILL_EVERY_S` (5 min) and started again under the same name,
  except for the `CALM_AFTER_RESTART_S` (10 min) after the broker restart: one converter process lives through
  the restart and that long past it, so what a restart leaves in a process shows within that process's life;
* the broker that coordinates the converter's group restarted, as a planned restart is run: gracefully stopped,
  started, waited for until its replicas are in sync, then a preferred-leader election gives it back its
  leaderships (`SoakPlan.broker_restart` says when: 17.5 min into the 30). The converter's transactions commit
  their offsets through that broker, so losing it is the harder case (librdkafka#5511, see
  `test_coordinator_left.py`), and the soak takes it every time;
* every `KDP_SOAK_SAMPLE_S` (1 min): the converter's resident memory, open file descriptors and threads (from
  /proc), the group's lag (end offsets minus committed offsets, read from outside the group), and the detail of
  `soak_detail` (the converter's counters and its Kafka clients' librdkafka statistics), printed as `[soak]`
  lines and tabled in the report; the raw statistics go to `KDP_SOAK_STATISTICS` (.kdp/soak-statistics.jsonl).

A life whose descriptors and threads jump after the broker restart with three live Kafka clients instead of two
holds a producer stuck by librdkafka#5511 (`test_coordinator_left.py` reproduces it).

Pass: the ledger is exact (nothing lost, no duplicate: exactly-once), and after warm-up RSS and descriptors grow
by no more than 5%. Warm-up: the first minute of every converter process's life (each kill starts a new one,
which loads its libraries and fills its client buffers again). Two checks: within each process's life, its last
sample against its first after warm-up (a leak within a process); and each life's median after warm-up against
the first life's (growth that survives restarts, such as a backlog). The largest sample is reported, not judged:
a fault may hold resources for a while (a producer replaced after the broker restart is held by its stuck call
for about 20 s, `streaming.delivery.exactly_once.StuckCalls`), and what matters is that they come back, which
the life spanning the restart shows by its last sample, 10 minutes later. (Until 2026-12-07 every sample was
judged against the first life's median: a per-minute sample that fell in such a window failed the run.)
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fault_cluster import FaultCluster
from fault_ledger import Ledger, account
from fault_pipeline import LivePipeline
from scenario_settings import scenario_settings
from soak_detail import Detail, read_detail

from kdp.devstack.ports import free_port_block

pytestmark = [pytest.mark.faults, pytest.mark.soak]

GROWTH_LIMIT = 0.05
WARM_UP_S = 60.0
"""Of every converter process's life: imports, the registry lookup, the clients' first buffers."""
DRAIN_S = 60.0
"""The soak's last minute: no fault, the converter catches up."""
CALM_AFTER_RESTART_S = 600.0
"""No kill this long after the broker restart (see the module docstring)."""


@dataclass(frozen=True)
class SoakPlan:
    minutes: float
    rate: int
    kill_every_s: float
    sample_every_s: float
    out: Path
    statistics: Path

    @classmethod
    def from_env(cls) -> SoakPlan:
        env = os.environ
        return cls(
            minutes=float(env.get("KDP_SOAK_MINUTES", "30")),
            rate=int(env.get("KDP_SOAK_RATE", "1000")),
            kill_every_s=float(env.get("KDP_SOAK_KILL_EVERY_S", "300")),
            sample_every_s=float(env.get("KDP_SOAK_SAMPLE_S", "60")),
            out=Path(env.get("KDP_SOAK_OUT", "docs")),
            statistics=Path(env.get("KDP_SOAK_STATISTICS", ".kdp/soak-statistics.jsonl")),
        )

    @property
    def seconds(self) -> float:
        return self.minutes * 60

    def kills(self) -> list[float]:
        """When the converter is killed: every `kill_every_s`, except in the drain and in the calm after the
        broker restart."""
        count = int((self.seconds - DRAIN_S) // self.kill_every_s)
        restart = self.broker_restart()
        every = (self.kill_every_s * (k + 1) for k in range(count))
        return [at for at in every if not restart <= at <= restart + CALM_AFTER_RESTART_S]

    def broker_restart(self) -> float:
        """Half an interval after a kill, so that the two faults are told apart: the latest such time that leaves
        the calm after it (`CALM_AFTER_RESTART_S`) before the drain; half-way in a soak too short for that."""
        latest = self.seconds - DRAIN_S - CALM_AFTER_RESTART_S
        intervals = math.floor(latest / self.kill_every_s - 0.5)
        return self.kill_every_s * (intervals + 0.5) if intervals >= 0 else self.seconds / 2


@dataclass(frozen=True)
class Sample:
    at_s: float
    """Seconds since the soak started."""
    pid: int
    age_s: float
    """Seconds since this converter process started."""
    rss_mb: float
    open_fds: int
    lag: int
    detail: Detail

    @property
    def text(self) -> str:
        return (
            f"minute {self.at_s / 60:.1f}, pid {self.pid} (age {self.age_s / 60:.1f} min): RSS {self.rss_mb:.1f} MB, "
            f"fds {self.open_fds}, lag {self.lag}; {self.detail.text}"
        )


@dataclass
class SoakRecord:
    samples: list[Sample] = field(default_factory=list)
    kills: list[tuple[float, float]] = field(default_factory=list)
    """(at_s, recovery_s): seconds until the restarted converter committed beyond the killed one."""
    broker_restart: tuple[float, float, int, int] | None = None
    """(at_s, seconds until in sync again, broker id, the id of the broker coordinating the group before): the
    same broker, the coordinator being the one restarted."""

    @property
    def restart_text(self) -> str:
        if self.broker_restart is None:
            return "none"
        at, took, broker, coordinator = self.broker_restart
        return (
            f"broker {broker} at {at / 60:.1f} min (the group's coordinator: broker {coordinator}), stopped, "
            f"started, back in sync and its leaderships given back in {took:.1f} s"
        )


def test_soak(cluster: FaultCluster, tmp_path: Path) -> None:
    plan = SoakPlan.from_env()
    plan.statistics.parent.mkdir(parents=True, exist_ok=True)
    plan.statistics.unlink(missing_ok=True)
    metrics_port = free_port_block(1)
    settings = scenario_settings(
        cluster.info.bootstrap, cluster.info.registry_url or "", "exactly-once", "soak",
        metrics_port=metrics_port, statistics_file=str(plan.statistics.resolve()),
    )  # fmt: skip
    cluster.create_topics([settings.source_topic, settings.output_topic, settings.dlq_topic])
    record = SoakRecord()
    kills = plan.kills()
    restart_at = plan.broker_restart()
    with LivePipeline(settings, tmp_path / "converter.log", plan.rate) as live:
        live.progress.wait_for_commit_beyond(0, timeout=120)
        began = time.monotonic()
        born = began
        next_sample = 0.0
        while (now := time.monotonic() - began) < plan.seconds:
            if now >= next_sample:
                pid = live.converter.process.pid
                sample = sample_converter(now, pid, time.monotonic() - born, live, metrics_port, plan.statistics)
                record.samples.append(sample)
                print(f"[soak] {sample.text}", flush=True)
                while next_sample <= now:  # one sample, not a burst, after a fault that held the loop
                    next_sample += plan.sample_every_s
            if kills and now >= kills[0]:
                kills.pop(0)
                committed = live.restart_converter(kill=True)
                born = time.monotonic()
                record.kills.append((now, live.progress.wait_for_commit_beyond(committed, timeout=180)))
            if record.broker_restart is None and now >= restart_at:
                coordinator = cluster.group_coordinator(settings.group_id)
                stopped = time.monotonic()
                cluster.stop_broker(coordinator)
                cluster.heal()
                cluster.wait_in_sync()
                cluster.elect_preferred_leaders()
                record.broker_restart = (now, time.monotonic() - stopped, coordinator, coordinator)
                print(f"[soak] broker restart: {record.restart_text}", flush=True)
            time.sleep(0.5)
        produced = live.finish(timeout=600)
        exits = list(live.restarts)

    ledger = account(settings)
    verdict = growth_verdict(record.samples)
    worst_recovery = max((recovery for _, recovery in record.kills), default=None)
    print(ledger.line(f"soak {plan.minutes:g} min at {plan.rate}/s (exactly-once)", worst_recovery,
                      kills=len(record.kills), converter_exits=exits, growth=verdict.text))  # fmt: skip
    _write_report(plan, record, ledger, verdict, exits, produced.rate)
    _write_summary(plan, record, ledger, verdict, exits)
    ledger.assert_nothing_lost(produced, "exactly-once")
    assert exits == [], "the converter exited on its own"
    assert verdict.passed, verdict.text


def sample_converter(
    at_s: float,
    pid: int,
    age_s: float,
    live: LivePipeline,
    metrics_port: int,
    statistics: Path,
    metrics_host: str = "127.0.0.1",
) -> Sample:
    committed = live.progress.committed()
    end = live.progress.end()
    lag = end - committed if committed >= 0 else -1
    detail = read_detail(pid, metrics_port, statistics, metrics_host)
    return Sample(at_s, pid, age_s, _rss_mb(pid), _open_fds(pid), lag, detail)


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


@dataclass(frozen=True)
class Verdict:
    passed: bool
    rss_baseline_mb: float
    rss_lives_mb: float
    """The largest median of one life after warm-up."""
    fds_baseline: float
    fds_lives: float
    rss_within_life: float
    """The largest growth of RSS within one process's life, from its first sample after warm-up to its last."""
    fds_within_life: float
    rss_max_mb: float
    """The largest sample after warm-up: reported, not judged (see the module docstring)."""
    fds_max: int

    @property
    def text(self) -> str:
        rss_lives = self.rss_lives_mb / self.rss_baseline_mb - 1
        fds_lives = self.fds_lives / self.fds_baseline - 1
        return (
            f"lives' medians: RSS {self.rss_baseline_mb:.1f} -> {self.rss_lives_mb:.1f} MB ({rss_lives:+.1%}), "
            f"fds {self.fds_baseline:.0f} -> {self.fds_lives:.0f} ({fds_lives:+.1%}); within one process's "
            f"life RSS {self.rss_within_life:+.1%}, fds {self.fds_within_life:+.1%} at most; "
            f"limit +{GROWTH_LIMIT:.0%}: {'pass' if self.passed else 'FAIL'} (largest samples, not judged: "
            f"RSS {self.rss_max_mb:.1f} MB, fds {self.fds_max})"
        )


def warm_samples(samples: Sequence[Sample]) -> list[Sample]:
    """The samples taken after their process's warm-up, whose memory and descriptors could be read."""
    return [s for s in samples if s.age_s >= WARM_UP_S and s.rss_mb == s.rss_mb and s.open_fds >= 0]


def growth_verdict(samples: list[Sample]) -> Verdict:
    """See the module docstring: baseline = the first life's median after warm-up; each life's median and its
    last sample against its first within 5%."""
    warm = warm_samples(samples)
    assert warm, "no sample after warm-up: the soak was too short"
    lives: dict[int, list[Sample]] = {}
    for s in warm:
        lives.setdefault(s.pid, []).append(s)
    baseline = lives[warm[0].pid]
    rss_base = statistics.median(s.rss_mb for s in baseline)
    fds_base = statistics.median(s.open_fds for s in baseline)
    rss_lives = max(statistics.median(s.rss_mb for s in life) for life in lives.values())
    fds_lives = max(statistics.median(s.open_fds for s in life) for life in lives.values())
    rss_life = max(life[-1].rss_mb / life[0].rss_mb - 1 for life in lives.values())
    fds_life = max(life[-1].open_fds / life[0].open_fds - 1 for life in lives.values())
    passed = (
        rss_lives <= rss_base * (1 + GROWTH_LIMIT)
        and fds_lives <= fds_base * (1 + GROWTH_LIMIT)
        and rss_life <= GROWTH_LIMIT
        and fds_life <= GROWTH_LIMIT
    )
    return Verdict(
        passed,
        rss_base,
        rss_lives,
        fds_base,
        fds_lives,
        rss_life,
        fds_life,
        max(s.rss_mb for s in warm),
        max(s.open_fds for s in warm),
    )


SAMPLES_HEADER = (
    "| minute | converter pid | process age, min | RSS, MB | open fds | threads | Kafka clients | lag, messages "
    "| producers replaced | transactions aborted |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def _write_report(
    plan: SoakPlan, record: SoakRecord, ledger: Ledger, verdict: Verdict, exits: list[int], produced_rate: float
) -> None:
    """The run's soak.md (the figures) and img/soak.png (lag, RSS and descriptors against time)."""
    image = plan.out / "img" / "soak.png"
    image.parent.mkdir(parents=True, exist_ok=True)
    _chart(record, image)
    rows = [
        f"| {s.at_s / 60:.1f} | {s.pid} | {s.age_s / 60:.1f} | {s.rss_mb:.1f} | {s.open_fds} | {s.detail.threads} "
        f"| {s.detail.kafka_clients} "
        f"| {s.lag} | {s.detail.producer_replacements} | {s.detail.transactions_aborted} |"
        for s in record.samples
    ]
    clients = [
        f"| {s.at_s / 60:.1f} | {s.detail.consumer.text if s.detail.consumer else '-'} "
        f"| {s.detail.producer.text if s.detail.producer else '-'} |"
        for s in record.samples
    ]
    kills = ", ".join(f"{at / 60:.1f} min ({recovery:.1f} s)" for at, recovery in record.kills) or "none"
    restart = record.restart_text
    lags = [s.lag for s in record.samples if s.lag >= 0]
    recoveries = [r for _, r in record.kills]
    duration = (
        f"{plan.minutes:g} min offered at {plan.rate} login events/s (5% malformed; the traffic delivered "
        f"{produced_rate:.0f}/s), `kdp stream --delivery exactly-once`"
    )
    accounted = (
        f"in {ledger.messages_in}, processed {ledger.processed}, dead letters {ledger.dead_letters}, "
        f"duplicates {ledger.duplicates}, lost {ledger.lost}"
    )
    recovery = f"max {max(recoveries):.1f} s, median {statistics.median(recoveries):.1f} s" if recoveries else "no kill"
    text = f"""# Soak: one run of `make soak`

Written by `tests/faults/soak.py` (`make soak`) on {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}; what it
does and its pass criteria are in that file's docstring. Load average at the end (2 cores, shared with other
work): {" / ".join(f"{x:.1f}" for x in os.getloadavg())}.

| | |
|---|---|
| duration | {duration} |
| cluster | 3 brokers (KRaft, combined roles), replication 3, min in-sync replicas 2; Apicurio registry |
| converter kills (SIGKILL), recovery | {len(record.kills)}: {kills} |
| broker restart | {restart} |
| ledger | {accounted} |
| converter exits on its own | {len(exits)} |
| kill recovery (until the next commit) | {recovery} |
| lag (sampled) | median {statistics.median(lags) if lags else 0:.0f}, max {max(lags, default=0)} messages |
| growth after warm-up | {verdict.text} |
| verdict | {"PASS" if verdict.passed and ledger.lost == 0 and ledger.duplicates == 0 and not exits else "FAIL"} |

![Lag, resident memory and open descriptors of the converter during the soak](img/soak.png)

## Samples

{SAMPLES_HEADER}
{chr(10).join(rows)}

## The converter's Kafka clients, sample by sample

From their latest librdkafka statistics (every 5 s; `tests/faults/soak_detail.py` says what each figure is; the
raw lines in `{plan.statistics}`): broker connections up of those known, connections made since the client
started, requests waiting to be sent (outbuf) and answered (waitresp), the producer's queue (msgq), the events
waiting for the application (replyq), bytes received and sent, and the transaction or group state.

| minute | consumer | producer |
|---|---|---|
{chr(10).join(clients)}
"""
    (plan.out / "soak.md").write_text(text)


def restart_life(record: SoakRecord) -> tuple[Sample, Sample] | None:
    """The first sample after warm-up and the last of the converter process that lived through the broker
    restart: whether what the restart left in it came back."""
    if record.broker_restart is None:
        return None
    at = record.broker_restart[0]
    spanning = [s for s in record.samples if s.at_s >= at and s.at_s - s.age_s <= at]
    if not spanning:
        return None
    life = [s for s in record.samples if s.pid == spanning[0].pid and s.age_s >= WARM_UP_S]
    return (life[0], life[-1]) if life else None


def _write_summary(plan: SoakPlan, record: SoakRecord, ledger: Ledger, verdict: Verdict, exits: list[int]) -> None:
    """soak.json beside the report: the run's figures, for `soak_runs.py` to table several runs."""
    spanning = restart_life(record)
    summary = {
        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": os.environ.get("KDP_SOAK_COMMIT", ""),
        "minutes": plan.minutes,
        "rate": plan.rate,
        "ledger": {"in": ledger.messages_in, "processed": ledger.processed, "dead_letters": ledger.dead_letters,
                   "duplicates": ledger.duplicates, "lost": ledger.lost},
        "kills": [[round(at, 1), round(recovery, 1)] for at, recovery in record.kills],
        "broker_restart": record.restart_text,
        "converter_exits": len(exits),
        "growth": verdict.text,
        "restart_life": None if spanning is None else {
            "pid": spanning[0].pid, "from_minute": round(spanning[0].at_s / 60, 1),
            "to_minute": round(spanning[1].at_s / 60, 1),
            "rss_mb": [round(spanning[0].rss_mb, 1), round(spanning[1].rss_mb, 1)],
            "fds": [spanning[0].open_fds, spanning[1].open_fds],
            "producers_replaced": spanning[1].detail.producer_replacements,
        },
        "passed": verdict.passed and ledger.lost == 0 and ledger.duplicates == 0 and not exits,
    }  # fmt: skip
    (plan.out / "soak.json").write_text(json.dumps(summary, indent=2) + "\n")


def plot_samples(samples: list[Sample], lag_axis: Any, memory_axis: Any) -> Any:
    """The samples' lag on `lag_axis`, RSS on `memory_axis` and descriptors on a twin of it (returned)."""
    minutes = [s.at_s / 60 for s in samples]
    lag_axis.plot(minutes, [max(s.lag, 0) for s in samples], marker="o", color="tab:blue")
    lag_axis.set_ylabel("lag, messages")
    memory_axis.plot(minutes, [s.rss_mb for s in samples], marker="o", color="tab:green", label="RSS, MB")
    memory_axis.set_ylabel("converter RSS, MB")
    fds_axis = memory_axis.twinx()
    fds_axis.plot(minutes, [s.open_fds for s in samples], marker="x", color="tab:purple", label="open fds")
    fds_axis.set_ylabel("open descriptors")
    memory_axis.set_xlabel("minutes since start")
    return fds_axis


def _chart(record: SoakRecord, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (lag_axis, memory_axis) = plt.subplots(2, 1, sharex=True, figsize=(9, 5.5), dpi=100)
    fds_axis = plot_samples(record.samples, lag_axis, memory_axis)
    for axis in (lag_axis, memory_axis):
        for at, _recovery in record.kills:
            axis.axvline(at / 60, color="grey", linestyle="--", linewidth=1)
        if record.broker_restart is not None:
            axis.axvline(record.broker_restart[0] / 60, color="tab:red", linestyle="-", linewidth=1)
    lag_axis.set_title("Soak: converter killed (grey dashed), broker restarted (red)")
    memory_axis.legend(loc="upper left")
    fds_axis.legend(loc="upper right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
