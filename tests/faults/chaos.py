"""The chaos run (`make chaos`): half an hour of exactly-once at 1,000 events/s under a seeded, random schedule of
faults, in random order and overlapping.

    make chaos                                   # 30 minutes, a new seed; docs/chaos.md and docs/img/chaos.png
    make chaos CHAOS_SEED=1234                   # the same schedule again, to replay a failure
    make chaos CHAOS_MINUTES=13 CHAOS_OUT=.kdp   # a quick check of the harness

Not collected by `make test` or `make faults` (the file name does not start with `test_`). Needs root, for the
network namespace. The stack is the fault tests' three brokers and registry, listening on the host's end of a
veth pair; the converter (`kdp stream --delivery exactly-once`) runs in the namespace, so that a partition cuts
it off alone while the traffic and the ledger reach the cluster. The faults (`chaos_schedule.py`, every kind at
least once): the converter killed (SIGKILL), a broker killed (SIGKILL) and started again, a broker restarted as
planned (stopped, started, in sync, its leaderships given back), the converter's network cut, the registry
stopped, a partition reassignment of the source and output topics through `orchestration.reassignment`
(every replica list rotated: new preferred leaders, elected), and a new compatible version of the output contract
(`tests/contract_variants.py`: an optional field from a new input key) registered through
`orchestration.schema.workflow`, as `kdp schema register --execute` does. Faults on the cluster's processes take
turns; the others strike whenever they are due, so faults overlap.

Each fault's recovery is measured from its healing (or its stroke, for the instant ones) until the converter
group commits beyond where it stood then. Pass: the ledger exact (nothing lost, no duplicate), no converter exit
of its own, every fault recovered within `RECOVERY_LIMIT_S`, and the converter's memory and descriptors bounded
by its clients' buffers and back within 5% of where they started once the faults are over (`chaos_verdict.py`
says how, and why not as in the soak).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from chaos_schedule import Fault, overlaps, schedule
from chaos_verdict import MemoryVerdict, Span, memory_verdict
from confluent_kafka.admin import AdminClient
from contract_variants import with_new_input_key
from fault_cluster import FaultCluster
from fault_ledger import GroupProgress, Ledger, account
from fault_pipeline import LivePipeline
from network_namespace import NetworkNamespace, network_namespace
from scenario_settings import scenario_settings
from soak import Sample, plot_samples, sample_converter

from kdp.devstack.ports import config_on_free_ports, free_port_block
from kdp.devstack.stack import LocalStack
from orchestration.reassignment.executor import execute, kafka_python_admin
from orchestration.reassignment.planner import plan_from_proposal
from orchestration.schema.contract import load_contract
from orchestration.schema.workflow import register
from streaming.delivery.kafka_clients import consumer_config, producer_config
from streaming.settings import Settings

pytestmark = [pytest.mark.faults, pytest.mark.chaos]

BROKERS = 3
RECOVERY_LIMIT_S = 240.0


@dataclass(frozen=True)
class ChaosPlan:
    seed: int
    minutes: float
    rate: int
    faults: int
    out: Path
    statistics: Path

    @classmethod
    def from_env(cls) -> ChaosPlan:
        env = os.environ
        minutes = float(env.get("KDP_CHAOS_MINUTES", "30"))
        return cls(
            seed=int(env.get("KDP_CHAOS_SEED") or secrets.randbelow(2**31)),
            minutes=minutes,
            rate=int(env.get("KDP_CHAOS_RATE", "1000")),
            faults=int(env.get("KDP_CHAOS_FAULTS") or max(7, round(minutes / 2))),
            out=Path(env.get("KDP_CHAOS_OUT", "docs")),
            statistics=Path(env.get("KDP_CHAOS_STATISTICS", ".kdp/chaos-statistics.jsonl")),
        )


@dataclass
class Outcome:
    """What became of one fault: when it struck and was healed (seconds since the start), and its recovery."""

    fault: Fault
    struck_s: float = 0.0
    healed_s: float = 0.0
    recovery_s: float | None = None
    note: str = ""

    @property
    def recovered_s(self) -> float:
        return self.healed_s + (self.recovery_s or 0.0)

    @property
    def span(self) -> Span:
        return Span(self.struck_s, None if self.recovery_s is None else self.recovered_s)


@dataclass
class ChaosRecord:
    samples: list[Sample] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)


@pytest.fixture(scope="module")
def namespace() -> Iterator[NetworkNamespace]:
    with network_namespace(on_unavailable=pytest.fail) as created:
        yield created


@pytest.fixture(scope="module")
def chaos_cluster(namespace: NetworkNamespace, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultCluster]:
    """Three brokers and the registry on the host's end of the namespace's link."""
    home = tmp_path_factory.mktemp("chaos") / "kdp-home"
    local = LocalStack(config_on_free_ports(home, BROKERS, {**os.environ, "KDP_STACK_HOST": namespace.host_address}))
    cluster = None
    try:
        cluster = FaultCluster(local, local.up(brokers=BROKERS))
        yield cluster
    finally:
        namespace.heal()
        if cluster is not None:
            cluster.thaw_brokers()
        local.down(purge=os.environ.get("KDP_FAULTS_KEEP_HOME") != "1")


class Faults:
    """Inflicts and heals each kind of fault; `run` does one fault and measures its recovery."""

    def __init__(
        self,
        cluster: FaultCluster,
        namespace: NetworkNamespace,
        live: LivePipeline,
        settings: Settings,
        workdir: Path,
        began: float,
    ) -> None:
        self.cluster, self.namespace, self.live, self.settings = cluster, namespace, live, settings
        self.workdir = workdir
        self.began = began
        """When the run started (`time.monotonic()`): outcomes are in seconds since."""
        self.cluster_processes = threading.Lock()
        """Broker and registry faults take turns: one broker out at a time, and no heal cuts another short."""
        self.network = threading.Lock()

    def run(self, fault: Fault, outcome: Outcome) -> None:
        progress = GroupProgress(self.settings)
        try:
            outcome.struck_s = time.monotonic() - self.began
            self._inflict(fault, outcome)
            outcome.healed_s = time.monotonic() - self.began
            outcome.recovery_s = progress.wait_for_commit_beyond(progress.committed(), timeout=RECOVERY_LIMIT_S)
        except Exception as error:  # noqa: BLE001 - recorded, and the run fails on it
            outcome.note = f"{type(error).__name__}: {error}"
            traceback.print_exc()
        finally:
            progress.close()
        print(f"[chaos] {fault.text}: recovered in {outcome.recovery_s} s {outcome.note}", flush=True)

    def _inflict(self, fault: Fault, outcome: Outcome) -> None:
        if fault.kind == "converter kill":
            self.live.restart_converter(kill=True)
        elif fault.kind in ("broker kill", "broker restart", "registry outage"):
            with self.cluster_processes:
                outcome.struck_s = time.monotonic() - self.began  # its turn came
                try:
                    self._take_down(fault, outcome)
                    time.sleep(fault.hold_s)
                finally:
                    self.cluster.heal()
                if fault.kind != "registry outage":
                    self.cluster.wait_in_sync()
                    self.cluster.elect_preferred_leaders()
        elif fault.kind == "network partition":
            with self.network:
                outcome.struck_s = time.monotonic() - self.began
                self.namespace.cut()
                try:
                    time.sleep(fault.hold_s)
                finally:
                    self.namespace.heal()
        elif fault.kind == "reassignment":
            outcome.note = self._reassign()
        elif fault.kind == "schema registration":
            schema, rules = with_new_input_key(self.workdir)
            _, registered = register(self.settings, load_contract(schema, rules, native=False), execute=True)
            outcome.note = f"version {registered.version}" if registered else "already registered"
        else:
            raise ValueError(f"no such fault: {fault.kind}")

    def _take_down(self, fault: Fault, outcome: Outcome) -> None:
        """A graceful stop that had to end in SIGKILL (the process ignored SIGTERM for 60 s) is noted, not fatal:
        the process is down either way, which is the fault."""
        try:
            if fault.kind == "broker kill":
                self.cluster.kill_broker(fault.broker or 1)
            elif fault.kind == "broker restart":
                self.cluster.stop_broker(fault.broker or 1)
            else:
                self.cluster.stop_registry()
        except AssertionError as slow:
            outcome.note = str(slow)

    def _reassign(self) -> str:
        """Every replica list of the source and output topics rotated by one: the preferred leaders move. Tried
        again, as an operator would run the job again, while the cluster refuses it (a broker being out)."""
        deadline = time.monotonic() + RECOVERY_LIMIT_S
        refusals: list[str] = []
        while True:
            try:
                return self._rotate_replicas() + (
                    f", after {len(refusals)} refusal(s): {refusals[0]}" if refusals else ""
                )
            except Exception as error:  # noqa: BLE001 - whatever the cluster says, the operator tries again
                refusals.append(f"{type(error).__name__}: {error}")
                if time.monotonic() > deadline:
                    raise
                time.sleep(5)

    def _rotate_replicas(self) -> str:
        admin = AdminClient({"bootstrap.servers": self.settings.bootstrap})
        topics = [self.settings.source_topic, self.settings.output_topic]
        described = admin.list_topics(timeout=30).topics
        current = {(t, p): tuple(described[t].partitions[p].replicas) for t in topics for p in described[t].partitions}
        proposed = {tp: replicas[1:] + replicas[:1] for tp, replicas in current.items()}
        plan = plan_from_proposal(current, proposed, sorted(self.cluster_brokers()))
        python_admin = kafka_python_admin(self.settings)
        try:
            report = execute(python_admin, plan, timeout_s=RECOVERY_LIMIT_S)
        finally:
            python_admin.close()
        return f"{len(plan.changed)} partitions in {report.seconds:.1f} s"

    def cluster_brokers(self) -> list[int]:
        return [node.node_id for node in self.cluster.nodes]


def test_chaos(namespace: NetworkNamespace, chaos_cluster: FaultCluster, tmp_path: Path) -> None:
    plan = ChaosPlan.from_env()
    print(f"[chaos] seed {plan.seed} (replay: make chaos CHAOS_SEED={plan.seed})", flush=True)
    plan.statistics.parent.mkdir(parents=True, exist_ok=True)
    plan.statistics.unlink(missing_ok=True)
    metrics_port = free_port_block(1)
    cluster = chaos_cluster
    settings = scenario_settings(
        cluster.info.bootstrap, cluster.info.registry_url or "", "exactly-once", "chaos",
        metrics_port=metrics_port, statistics_file=str(plan.statistics.resolve()),
    )  # fmt: skip
    cluster.create_topics([settings.source_topic, settings.output_topic, settings.dlq_topic])
    faults = schedule(plan.seed, plan.minutes * 60, [n.node_id for n in cluster.nodes], plan.faults)
    for fault in faults:
        print(f"[chaos] planned: {fault.text}", flush=True)
    record = ChaosRecord()
    with LivePipeline(settings, tmp_path / "converter.log", plan.rate, prefix=namespace.exec_prefix) as live:
        live.progress.wait_for_commit_beyond(0, timeout=120)
        began = time.monotonic()
        inflict = Faults(cluster, namespace, live, settings, tmp_path, began)
        pending = list(faults)
        threads: list[threading.Thread] = []
        next_sample = 0.0
        while (now := time.monotonic() - began) < plan.minutes * 60:
            while pending and now >= pending[0].at_s:
                outcome = Outcome(pending.pop(0))
                record.outcomes.append(outcome)
                thread = threading.Thread(target=inflict.run, args=(outcome.fault, outcome), daemon=True)
                thread.start()
                threads.append(thread)
            if now >= next_sample:
                pid = live.converter.process.pid
                sample = sample_converter(
                    now, pid, _age_s(pid), live, metrics_port, plan.statistics, namespace.inside_address
                )
                record.samples.append(sample)
                print(f"[chaos] {sample.text}", flush=True)
                while next_sample <= now:
                    next_sample += 60.0
            time.sleep(0.5)
        for thread in threads:
            thread.join(RECOVERY_LIMIT_S * 2)
        namespace.heal()  # whatever a fault that failed half-way left down, before the ledger is read
        cluster.heal()
        produced = live.finish(timeout=600)
        exits = list(live.restarts)

    ledger = account(settings)
    verdict = memory_verdict(record.samples, [o.span for o in record.outcomes], _client_buffers_mb(settings))
    unrecovered = [o for o in record.outcomes if o.recovery_s is None or o.recovery_s > RECOVERY_LIMIT_S]
    passed = ledger.lost == 0 and ledger.duplicates == 0 and not exits and not unrecovered and verdict.passed
    worst = max((o.recovery_s for o in record.outcomes if o.recovery_s is not None), default=None)
    print(ledger.line(f"chaos {plan.minutes:g} min at {plan.rate}/s, seed {plan.seed} (exactly-once)", worst,
                      faults=len(record.outcomes), converter_exits=exits, growth=verdict.text))  # fmt: skip
    _write_report(plan, record, ledger, verdict, exits, produced.rate, passed)
    ledger.assert_nothing_lost(produced, "exactly-once")
    assert not exits, f"the converter exited on its own: {exits}"
    assert not unrecovered, "not recovered: " + "; ".join(f"{o.fault.text} ({o.note})" for o in unrecovered)
    assert verdict.passed, verdict.text


def _client_buffers_mb(settings: Settings) -> float:
    """What the converter's Kafka clients may buffer at most: prefetched input and unacknowledged output."""
    kilobytes = int(str(consumer_config(settings)["queued.max.messages.kbytes"])) + int(
        str(producer_config(settings)["queue.buffering.max.kbytes"])
    )
    return kilobytes * 1024 / 1e6


def _age_s(pid: int) -> float:
    """Seconds since process `pid` started, from /proc (the converter is restarted by kills and by its supervisor)."""
    try:
        started_ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, IndexError, ValueError):
        return 0.0
    return uptime - started_ticks / os.sysconf("SC_CLK_TCK")


def _write_report(
    plan: ChaosPlan,
    record: ChaosRecord,
    ledger: Ledger,
    verdict: MemoryVerdict,
    exits: list[int],
    rate: float,
    passed: bool,
) -> None:
    """docs/chaos.md (the run) and docs/img/chaos.png (the faults against lag, memory and descriptors)."""
    image = plan.out / "img" / "chaos.png"
    image.parent.mkdir(parents=True, exist_ok=True)
    _chart(record, image)
    spans = {o.fault: (o.struck_s, o.recovered_s) for o in record.outcomes}
    met = overlaps([o.fault for o in record.outcomes], spans)
    rows = [
        f"| {o.fault.kind} | {o.fault.broker if o.fault.broker is not None else '-'} | {o.struck_s / 60:.1f} "
        f"| {o.healed_s - o.struck_s:.1f} | {'-' if o.recovery_s is None else f'{o.recovery_s:.1f}'} "
        f"| {', '.join(f'{other.kind} ({other.at_s / 60:.1f})' for other in met[o.fault]) or '-'} | {o.note or '-'} |"
        for o in record.outcomes
    ]
    settled = {s.at_s for s in verdict.settled}
    samples = [
        f"| {s.at_s / 60:.1f} | {s.pid} | {s.age_s / 60:.1f} | {s.rss_mb:.1f} | {s.open_fds} "
        f"| {s.detail.kafka_clients} | {s.lag} | {s.detail.producer_replacements} | {s.detail.transactions_aborted} "
        f"| {'yes' if s.at_s in settled else '-'} |"
        for s in record.samples
    ]
    text = f"""# Chaos: figures of the last `make chaos`

Written by `tests/faults/chaos.py` (`make chaos`) on {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}; what it
does and its pass criteria are in that file's docstring. Replay this schedule with `make chaos CHAOS_SEED={plan.seed}`.
Load average at the end (2 cores, shared with other work): {" / ".join(f"{x:.1f}" for x in os.getloadavg())}.

| | |
|---|---|
| seed | {plan.seed} |
| run | {plan.minutes:g} min offered at {plan.rate} login events/s (5% malformed; delivered {rate:.0f}/s), `kdp stream --delivery exactly-once` in a network namespace |
| cluster | 3 brokers (KRaft, combined roles), replication 3, min in-sync replicas 2; Apicurio registry |
| faults | {len(record.outcomes)}; slowest recovery {max((o.recovery_s or 0 for o in record.outcomes), default=0):.1f} s (limit {RECOVERY_LIMIT_S:.0f} s) |
| ledger | in {ledger.messages_in}, processed {ledger.processed}, dead letters {ledger.dead_letters}, duplicates {ledger.duplicates}, lost {ledger.lost} |
| converter exits on its own | {len(exits)} |
| memory and descriptors | {verdict.text} |
| verdict | {"PASS" if passed else "FAIL"} |

![The faults against the converter's lag, resident memory and open descriptors](img/chaos.png)

## The faults, as they struck

Held: from the stroke to the healing (for a broker fault, until the broker was back in sync and leading again).
Recovery: from the healing until the converter group committed beyond where it stood then. Overlapping: the
faults whose span (stroke to recovery) met this one's.

| fault | broker | at, min | held, s | recovery, s | overlapping | note |
|---|---:|---:|---:|---:|---|---|
{chr(10).join(rows)}

## Samples

Settled: taken 3 minutes or more after every fault struck before it recovered; these are judged against the
baseline (the first process's samples before the first fault).

| minute | converter pid | process age, min | RSS, MB | open fds | Kafka clients | lag, messages | producers replaced | transactions aborted | settled |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|
{chr(10).join(samples)}
"""  # noqa: E501
    (plan.out / "chaos.md").write_text(text)


def _chart(record: ChaosRecord, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = sorted({o.fault.kind for o in record.outcomes})
    figure, (faults_axis, lag_axis, memory_axis) = plt.subplots(
        3, 1, sharex=True, figsize=(10, 7.5), dpi=100, gridspec_kw={"height_ratios": [1.3, 1, 1]}
    )
    for row, kind in enumerate(kinds):
        for o in (o for o in record.outcomes if o.fault.kind == kind):
            held = max(o.healed_s - o.struck_s, 0.15 * 60)
            faults_axis.broken_barh([(o.struck_s / 60, held / 60)], (row - 0.35, 0.7), color="tab:red")
            faults_axis.broken_barh(
                [((o.struck_s + held) / 60, (o.recovery_s or 0) / 60)], (row - 0.35, 0.7), color="tab:orange"
            )
    faults_axis.set_yticks(range(len(kinds)), kinds)
    faults_axis.set_title("Chaos: each fault held (red), then until the converter committed again (orange)")
    fds_axis = plot_samples(record.samples, lag_axis, memory_axis)
    memory_axis.legend(loc="upper left")
    fds_axis.legend(loc="upper right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
