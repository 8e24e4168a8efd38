"""`kdp demo`: the whole pipeline once, end to end, told in a few lines (`make demo` runs it).

Steps, each reported in one line with what it did and how long it took:

1. the stack: the local Kafka and registry (`kdp stack up`), or the cluster named by `KDP_BOOTSTRAP`;
2. provisioning: the Dagster job `provision_topics`, launched with `dg launch` (recorded in `DAGSTER_HOME`,
   so the run shows in the UI of `make dev`);
3. generation: `--count` login events into the source topic, a share of them malformed or irregular;
4. conversion: the converter in the group, until it has caught up;
5. a few processed records and dead letters, decoded through the registry (`kdp tail`);

then a summary (events, records, dead letters by reason, throughput) and what to run next.

Generation and conversion show a progress bar (tqdm) measured on Kafka itself: the source topic's end
offsets for generation, the converter group's committed offsets for conversion. So the bars count what
is durable and committed, and need nothing from the inside of the producing or converting loops.

Quiet by default: logs at WARNING, the Dagster run's output kept in a file (printed when it fails).
`kdp -v demo` (`make demo V=1`) shows every log line and the Dagster output as it comes.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from tqdm import tqdm

from streaming.settings import Settings
from streaming.shutdown import Shutdown

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = 2
CALL_TIMEOUT = 10.0


def add_demo_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the pipeline end to end on the local stack and summarise what it did",
        description="Start (or find) the stack, provision it with Dagster, generate events, convert them "
        "until caught up, show a few records and dead letters, and summarise. `kdp -v demo` shows all logs.",
    )
    parser.add_argument("--count", type=int, default=200_000, help="events to generate (default 200000)")
    parser.add_argument("--rate", type=float, default=50_000, help="events per second (default 50000)")
    parser.add_argument("--malformed-rate", type=float, default=0.05, help="share of malformed events (0.05)")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the events (default 7)")
    parser.set_defaults(handler=run_demo)


@dataclass
class Outcome:
    """What the steps measured, for the summary."""

    generated: int = 0
    generated_s: float = 0.0
    malformed: int = 0
    without_device_type: int = 0
    backlog: int = 0
    consumed: int = 0
    processed: int = 0
    dead_lettered: int = 0
    reasons: dict[str, int] | None = None
    converted_s: float = 0.0
    delivery: str = ""


def run_demo(args: argparse.Namespace) -> int:
    verbose = bool(args.verbose)
    if not verbose:
        logging.getLogger().setLevel(logging.WARNING)
    started = time.monotonic()
    print("kdp demo: the pipeline end to end" + ("" if verbose else " (kdp -v demo, or make demo V=1, shows all logs)"))
    if not _stack_step():
        return 1
    settings = Settings.from_env()
    if not _provision_step(verbose):
        return 1
    outcome = Outcome(delivery=settings.delivery)
    if not _generate_step(settings, args, outcome):
        return 1
    _convert_step(settings, outcome)
    _samples_step(settings)
    _summary(settings, outcome, time.monotonic() - started)
    return 0


# -- steps ------------------------------------------------------------------------------------------------


def _step(name: str, result: str, seconds: float, ok: bool = True) -> None:
    print(f"{'✓' if ok else '✗'} {name:<13}{result}  ({seconds:.1f} s)", flush=True)


def _stack_step() -> bool:
    """Find or start the stack; point the rest of the demo (and the Dagster run) at it."""
    started = time.monotonic()
    if os.environ.get("KDP_BOOTSTRAP"):
        settings = Settings.from_env()
        # The Dagster run's resources require both addresses; the registry's may be left at its default here.
        os.environ.setdefault("KDP_REGISTRY_URL", settings.registry_url)
        _step("stack", f"Kafka {settings.bootstrap}, registry {settings.registry_url} (from KDP_BOOTSTRAP)", 0.0)
        return True
    from kdp.devstack.config import StackConfig
    from kdp.devstack.errors import StackError
    from kdp.devstack.stack import LocalStack

    try:
        info = LocalStack(StackConfig.from_env()).up()
    except StackError as error:
        _step("stack", f"could not start the local stack: {error}", time.monotonic() - started, ok=False)
        return False
    os.environ.update(info.environment())
    _step("stack", f"Kafka {info.bootstrap}, registry {info.registry_url}", time.monotonic() - started)
    return True


def _provision_step(verbose: bool) -> bool:
    """`dg launch --job provision_topics`, its output in a file unless verbose."""
    started = time.monotonic()
    command = [str(Path(sys.executable).parent / "dg"), "launch", "--job", "provision_topics"]
    home = os.environ.get("DAGSTER_HOME")
    log_file = Path(home) / "demo-provision.log" if home else ROOT / ".kdp" / "demo-provision.log"
    if verbose:
        result = subprocess.run(command, cwd=ROOT, check=False)
    else:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("w", encoding="utf-8") as output:
            result = subprocess.run(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, check=False)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        _step("provisioning", f"the Dagster job provision_topics failed (exit {result.returncode})", seconds, False)
        if not verbose:
            print(log_file.read_text(encoding="utf-8", errors="replace")[-4000:], file=sys.stderr)
        return False
    where = f"recorded in {home}" if home else "in a temporary Dagster instance"
    _step("provisioning", f"topics and schemas in place: Dagster run of provision_topics, {where}", seconds)
    return True


def _generate_step(settings: Settings, args: argparse.Namespace, outcome: Outcome) -> bool:
    from streaming.generator.events import MALFORMED_KINDS, EventFactory, Irregularity, IrregularityRates
    from streaming.generator.producer import generate

    topic = settings.source_topic
    factory = EventFactory(args.seed, IrregularityRates.with_malformed(args.malformed_rate))
    with _Offsets(settings) as offsets:
        first = offsets.end_total(topic)
        with (
            Shutdown("stopping and flushing", "abandoning the flush").on_signals() as shutdown,
            _progress("generating", args.count, lambda: offsets.end_total(topic) - first),
        ):
            summary = generate(
                settings.kafka_config(),
                topic,
                factory,
                rate=args.rate,
                count=args.count,
                progress_every_s=0,
                stop=shutdown.stop,
                abandon=shutdown.abandon,
            )
    outcome.generated, outcome.generated_s = summary.delivered, summary.elapsed_s
    outcome.malformed = sum(summary.by_kind.get(kind.value, 0) for kind in MALFORMED_KINDS)
    outcome.without_device_type = summary.by_kind.get(Irregularity.MISSING_DEVICE_TYPE.value, 0)
    result = f"{summary.delivered:,} events into {topic} ({_irregular(outcome)}), {summary.rate:,.0f} msg/s"
    _step("generation", result if summary.ok else f"{result}; FAILED: {summary.errors}", summary.elapsed_s, summary.ok)
    return summary.ok


def _convert_step(settings: Settings, outcome: Outcome) -> None:
    from streaming.loop.pipeline import open_converter

    with _Offsets(settings) as offsets:
        first = offsets.committed_total(settings.source_topic)
        lag = offsets.end_total(settings.source_topic) - first
        outcome.backlog = max(0, lag - outcome.generated)
        converter = open_converter(settings, log_every=3600.0)
        converter.subscribe()
        with (
            Shutdown("finishing the current batch, then stopping", "still finishing the batch").on_signals() as stop,
            _progress("converting", lag, lambda: offsets.committed_total(settings.source_topic) - first),
        ):
            try:
                summary = converter.run(stop.stop, until_caught_up=True)
            finally:
                converter.close()
    outcome.consumed, outcome.processed, outcome.dead_lettered = (
        summary.consumed,
        summary.processed,
        summary.dead_lettered,
    )
    outcome.reasons, outcome.converted_s = dict(summary.insights.reasons), summary.elapsed
    rate = summary.consumed / summary.elapsed if summary.elapsed else 0.0
    result = (
        f"{summary.processed:,} records into {settings.output_topic}, {summary.dead_lettered:,} dead letters "
        f"into {settings.dlq_topic} ({settings.delivery}), {rate:,.0f} msg/s"
    )
    if outcome.backlog:
        result += f"; {outcome.backlog:,} of the {summary.consumed:,} messages were there before this demo"
    _step("conversion", result, summary.elapsed)


def _samples_step(settings: Settings) -> None:
    from streaming.cli.tail import add_tail_parser

    tail = argparse.ArgumentParser(prog="kdp")
    add_tail_parser(tail.add_subparsers())  # `kdp tail`'s own defaults, without importing the whole `kdp` parser
    for topic, title in (
        (settings.output_topic, "processed records, decoded through the registry"),
        (settings.dlq_topic, "dead letters, with their reasons"),
    ):
        print(f"  {topic}: {title}:", flush=True)
        args = tail.parse_args(["tail", topic, "-n", str(SAMPLES)])
        args.handler(args)


def _summary(settings: Settings, outcome: Outcome, seconds: float) -> None:
    reasons = sorted((outcome.reasons or {}).items(), key=lambda item: -item[1])
    width = max((len(reason) for reason, _ in reasons), default=0)
    conversion_rate = outcome.consumed / outcome.converted_s if outcome.converted_s else 0.0
    generation_rate = outcome.generated / outcome.generated_s if outcome.generated_s else 0.0
    next_steps = [
        ("make dev", "the Dagster UI on http://localhost:3000: assets, runs, the conversion sensor"),
        (f".venv/bin/kdp tail {settings.output_topic} -n 5", "the newest records, decoded through the registry"),
        (".venv/bin/kdp replay --dry-run", "what replaying the dead letters would convert, by reason"),
        (".venv/bin/kdp stack down", "stop the local stack (it stays up after the demo)"),
    ]
    width_next = max(len(command) for command, _ in next_steps)
    lines = [
        "",
        f"Summary ({seconds:.0f} s in all)",
        f"  events generated   {outcome.generated:>9,}  ({_irregular(outcome)})",
        f"  records converted  {outcome.processed:>9,}  on {settings.output_topic}",
        f"  dead letters       {outcome.dead_lettered:>9,}  on {settings.dlq_topic}, by reason:",
        *(f"    {reason:<{width}}  {count:>9,}" for reason, count in reasons),
        f"  throughput         generation {generation_rate:,.0f} msg/s, conversion {conversion_rate:,.0f} msg/s "
        f"({settings.delivery}, {outcome.consumed:,} messages"
        + (f", {outcome.backlog:,} of them from before)" if outcome.backlog else ")"),
        "",
        "Next",
        *(f"  {command:<{width_next}}  {what}" for command, what in next_steps),
    ]
    print("\n".join(lines), flush=True)


def _irregular(outcome: Outcome) -> str:
    return f"{outcome.malformed:,} malformed, {outcome.without_device_type:,} without device_type"


# -- progress measured on Kafka ---------------------------------------------------------------------------


class _Offsets:
    """Short, bounded reads of end offsets and the converter group's commits (no group membership)."""

    def __init__(self, settings: Settings) -> None:
        self._consumer = Consumer(
            {**settings.kafka_config(), "group.id": settings.group_id, "enable.auto.commit": False}
        )
        self._partitions: dict[str, list[TopicPartition]] = {}

    def __enter__(self) -> _Offsets:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._consumer.close()

    def _of(self, topic: str) -> list[TopicPartition]:
        if topic not in self._partitions:
            metadata = self._consumer.list_topics(topic, timeout=CALL_TIMEOUT).topics[topic]
            self._partitions[topic] = [TopicPartition(topic, p) for p in sorted(metadata.partitions)]
        return self._partitions[topic]

    def end_total(self, topic: str) -> int:
        return sum(self._consumer.get_watermark_offsets(tp, timeout=CALL_TIMEOUT)[1] for tp in self._of(topic))

    def committed_total(self, topic: str) -> int:
        """The group's committed offsets, summed; a partition never committed counts from its low watermark."""
        total = 0
        for tp in self._consumer.committed(self._of(topic), timeout=CALL_TIMEOUT):
            total += tp.offset if tp.offset >= 0 else self._consumer.get_watermark_offsets(tp, CALL_TIMEOUT)[0]
        return total


@contextmanager
def _progress(label: str, total: int, done: Callable[[], int], every_s: float = 0.5) -> Iterator[None]:
    """A bar of `total` that a background thread moves to `done()` every `every_s`, and to the end on exit."""
    bar = tqdm(total=total, desc=f"  {label}", unit="msg", unit_scale=True, file=sys.stdout, mininterval=every_s)
    finished = threading.Event()

    def follow() -> None:
        while not finished.wait(every_s):
            try:
                bar.update(max(0, min(total, done()) - bar.n))
            except Exception:  # a slow or failed read only delays the bar; the step reports the truth
                continue

    follower = threading.Thread(target=follow, name=f"progress-{label}", daemon=True)
    follower.start()
    try:
        yield
    finally:
        finished.set()
        follower.join()
        try:
            bar.update(max(0, min(total, done()) - bar.n))
        finally:
            bar.close()
