"""Micro-benchmark of the converter's CPU hot path, without Kafka: the reference path and the fused one, step by step.

Usage (from the repository root; pin to one core for steadier figures):

    taskset -c 1 .venv/bin/python -m bench.hot_path [--events 200000] [--repeat 5] [--malformed-rate 0.05]
    taskset -c 1 .venv/bin/python -m bench.hot_path --profile   # cProfile of both paths, top functions

(As a module: run as a script, `bench/` would shadow the standard library's `profile`, which cProfile imports.)

Events come from the project's own generator (`streaming.generator.events.EventFactory`), by default as the bench
backlog has them (`bench/backlog.py`: seed 7, 5 % malformed, about 5 % more without `device_type`). Every
step runs `--repeat` times over the same events in this one process, the steps interleaved run by run;
the median is reported, so the rows compare like with like.

The two paths are the two implementations of `streaming.conversion.convert.Convert`:
- reference: `streaming.conversion.transform.transform`, then `WireFormatEncoder.encode` (the generated writer);
- fused: one function generated from the schema, which hands anything unusual to the reference.
Steps show where each spends: a bare Python call (the floor of any per-record function), the typed JSON
decode, the encoders alone (fastavro as the reference the generated writer replaced), and the fused
function cut after each of its stages (cumulative; the rest up to "usual only: fused convert" is the
generated Avro encoding and the `Converted` it returns). "usual" rows time only the messages that become records,
"dead letters" only the others.

The "batch" rows are the converter's real per-batch path, which the per-message rows above understate:
`confluent_kafka.Message`s in batches of 5,000 (runs of 500 of six partitions), the fused `convert_batch`
(cut in the same stages; its floor is the loop calling the message's accessors), the router around it
(dead letters, tallies, offsets) and the fast send into a producer without a broker (`produce()` only
queues: its cost in the loop thread is all of it). What is missing against a real run is `consume()`,
the flush and the commit, which the pass-through baseline pays too.

Two clocks: CPU time of this thread (what a message costs; steadier when other processes compete for the
cores) and wall time. On an idle, pinned core they agree.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import fastavro
from confluent_kafka import Message, Producer

from streaming.conversion import fast_path, native_path
from streaming.conversion.convert import Convert, ConvertBatch, Converted, reference_converter
from streaming.conversion.encoding import WireFormatEncoder, wire_header
from streaming.conversion.rules import codegen
from streaming.conversion.transform import MIN_EVENT_TIME_MS, REFERENCE, transform
from streaming.delivery.contract import ProducerDelivery
from streaming.generator.events import EventFactory, IrregularityRates
from streaming.loop.router import BatchRouter
from streaming.records import Reason, Rejection

BATCH_SIZE = 5000  # the converter's default (KDP_BATCH_SIZE)
RUN = 500  # messages of one partition in a row
NOWHERE = {"bootstrap.servers": "127.0.0.1:9", "log_level": 0}  # a producer that never connects
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "processed-data-value.avsc"
NOW_MS = 1_720_576_830_000
TOPIC = "user-login"


def over(convert: Convert, values: list[bytes | None]) -> Callable[[], int]:
    """A run of `convert` over `values`, as the converter's batch loop calls it."""

    def run() -> int:
        for offset, value in enumerate(values):
            convert(value, TOPIC, 0, offset, NOW_MS, MIN_EVENT_TIME_MS)
        return len(values)

    return run


#: Where the fused function is cut to time it in stages: after the line containing each marker, it returns.
#: (Markers in the generated engine, `streaming/conversion/rules/generated_fast_path.py`, for the repository's
#: declaration;
#: a marker not found drops its row, never the run.)
FUSED_STAGES = (
    ("type, size and ASCII checks", "value.isascii():"),
    ("+ typed JSON decode", "e = decode_event(value)"),
    ("+ UUIDs, device type memo, state", "in CODES"),
    ("+ IP address (inet_pton, class)", "V4_BY_FIRST_OCTET[packed[0]]"),
    ("+ app version memo", "_app_version_patch = p"),
    ("+ event time window", ">= oldest_ms:"),
)


def generated(encoder: WireFormatEncoder, source: str, label: str) -> tuple[Convert, Convert, ConvertBatch]:
    """(usual, convert, convert_batch) of the generated engine `source` (the repository's declaration)."""
    names: dict = {}
    exec(compile(source, label, "exec"), names)  # noqa: S102 - bench only: the generator's own code, cut
    return names["build"](wire_header(encoder.schema_id), reference_converter(encoder), REFERENCE)  # type: ignore[no-any-return]


def fused_up_to(encoder: WireFormatEncoder, marker: str) -> Convert | None:
    """The fused function returning None right after the line with `marker`: what it costs up to there."""
    source = codegen.engine_source(REFERENCE.rules)
    lines = source.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("def convert("))
    at = next((i for i, line in enumerate(lines) if i > start and marker in line), None)
    if at is None:
        return None
    nested = lines[at].rstrip().endswith(":")
    indent = len(lines[at + 1 if nested else at]) - len(lines[at + 1 if nested else at].lstrip())
    cut = [*lines[: at + 1], " " * indent + "return None", *lines[at + 1 :]]
    return generated(encoder, "\n".join(cut), f"<fused up to {marker}>")[1]


def batch_up_to(encoder: WireFormatEncoder, marker: str) -> ConvertBatch | None:
    """The fused `convert_batch` going on to the next message right after the line with `marker`."""
    source = codegen.engine_source(REFERENCE.rules)
    lines = source.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("def convert_batch"))
    at = next((i for i, line in enumerate(lines) if i > start and marker in line), None)
    if at is None:
        return None
    nested = lines[at].rstrip().endswith(":")
    indent = len(lines[at + 1 if nested else at]) - len(lines[at + 1 if nested else at].lstrip())
    cut = [*lines[: at + 1], " " * indent + "continue", *lines[at + 1 :]]
    return generated(encoder, "\n".join(cut), f"<fused batch up to {marker}>")[2]


def as_batches(values: list[bytes | None]) -> list[list[Message]]:
    """`values` as the converter consumes them: `confluent_kafka.Message`s in batches of `BATCH_SIZE`, in runs
    of `RUN` messages of one of six partitions (what `Consumer.consume` hands over from a fetch)."""
    messages = [
        Message(topic=TOPIC, partition=(i // RUN) % 6, offset=i, key=b"key", value=value, timestamp=(1, NOW_MS))
        for i, value in enumerate(values)
    ]
    return [messages[i : i + BATCH_SIZE] for i in range(0, len(messages), BATCH_SIZE)]


ROUTE_ROW = "ROUTER route (convert_batch, dead letters, tallies)"


def batch_steps(values: list[bytes | None], encoder: WireFormatEncoder) -> list[tuple[str, Callable[[], int]]]:
    """The converter's real per-batch path, minus Kafka: batch conversion, the router, the fast send."""
    convert = fast_path.fused_converter(encoder)
    convert_batch: ConvertBatch = convert.convert_batch  # type: ignore[attr-defined]
    batches = as_batches(values)
    usual = as_batches([v for v in values if isinstance(convert(v, TOPIC, 0, 0, NOW_MS, 0), Converted)])
    router = BatchRouter(convert, "processed", "dlq")
    routed = [router.route(batch, NOW_MS, MIN_EVENT_TIME_MS) for batch in batches]
    delivery = ProducerDelivery()
    # No broker: produce() only queues (its cost in the loop thread is all there is to it); purged after.
    delivery.producer = Producer({**NOWHERE, "queue.buffering.max.messages": 10_000_000})

    def each(batches: list[list[Message]], run: Callable[[list[Message]], object]) -> Callable[[], int]:
        def timed() -> int:
            for batch in batches:
                run(batch)
            return sum(map(len, batches))

        return timed

    def at_bench_clock(convert_batch: ConvertBatch) -> Callable[[list[Message]], object]:
        return lambda batch: convert_batch(batch, NOW_MS, MIN_EVENT_TIME_MS)

    def accessors(batch: list[Message]) -> None:
        for message in batch:
            message.value(), message.topic(), message.partition(), message.offset()

    def send() -> int:
        for batch in routed:
            delivery.send(batch.outputs)
        delivery.producer.purge()
        return sum(batch.consumed for batch in routed)

    native_rows = []
    if native_path.available():  # the same rows through the native kernel (`streaming.conversion.native_path`)
        native = fast_path.converter_for(encoder, native=True)
        native_batch: ConvertBatch = native.convert_batch  # type: ignore[attr-defined]
        native_router = BatchRouter(native, "processed", "dlq")
        native_rows = [
            ("batch, usual only: NATIVE convert_batch", each(usual, at_bench_clock(native_batch))),
            ("NATIVE convert_batch", each(batches, at_bench_clock(native_batch))),
            ("ROUTER route, native", each(batches, lambda b: native_router.route(b, NOW_MS, 0))),
        ]

    return [
        ("batch floor: a loop calling the 4 accessors", each(batches, accessors)),
        *(
            (f"batch, usual only: {stage}", each(usual, at_bench_clock(cut)))
            for stage, marker in FUSED_STAGES
            if (cut := batch_up_to(encoder, marker)) is not None
        ),
        ("batch, usual only: fused convert_batch", each(usual, lambda b: convert_batch(b, NOW_MS, MIN_EVENT_TIME_MS))),
        ("FUSED convert_batch", each(batches, lambda b: convert_batch(b, NOW_MS, MIN_EVENT_TIME_MS))),
        (ROUTE_ROW, each(batches, lambda b: router.route(b, NOW_MS, 0))),
        *native_rows,
        ("DELIVERY send (produce, no broker)", send),
    ]


def steps(values: list[bytes | None], encoder: WireFormatEncoder) -> list[tuple[str, Callable[[], int]]]:
    reference, fused = reference_converter(encoder), fast_path.fused_converter(encoder)
    outcomes = [fused(value, TOPIC, 0, offset, NOW_MS, MIN_EVENT_TIME_MS) for offset, value in enumerate(values)]
    usual = [value for value, outcome in zip(values, outcomes, strict=True) if isinstance(outcome, Converted)]
    dead = [value for value, outcome in zip(values, outcomes, strict=True) if not isinstance(outcome, Converted)]
    records = [transform(value, TOPIC, 0, offset, NOW_MS) for offset, value in enumerate(usual)]
    generated, parsed = encoder.encode, encoder.parsed_schema
    with_fastavro = WireFormatEncoder(encoder.schema_id, encoder.schema, mode="fastavro").encode

    rejection = Rejection(Reason.EMPTY, "a bare call")
    decode_event = REFERENCE.decode_event

    def call_only(
        value: bytes | None, topic: str, partition: int, offset: int, now_ms: int, oldest_ms: int
    ) -> Converted | Rejection:
        return rejection

    def decode_only() -> int:
        for value in usual:
            decode_event(value)  # type: ignore[arg-type]  # one that became a record has a value
        return len(usual)

    def transform_only() -> int:
        for offset, value in enumerate(values):
            transform(value, TOPIC, 0, offset, NOW_MS, oldest_ms=MIN_EVENT_TIME_MS)
        return len(values)

    def encode_with(encode: Callable[[dict], bytes]) -> Callable[[], int]:
        def run() -> int:
            for record in records:
                encode(record)  # type: ignore[arg-type]
            return len(records)

        return run

    def schemaless_writer_reused_buffer() -> int:
        buffer, write = io.BytesIO(), fastavro.schemaless_writer
        for record in records:
            buffer.seek(0)
            buffer.truncate()
            write(buffer, parsed, record)
            buffer.getvalue()
        return len(records)

    return [
        ("floor: a bare Python call per message", over(call_only, values)),
        ("usual: typed JSON decode (msgspec) alone", decode_only),
        ("reference: transform", transform_only),
        ("reference: encode, generated writer", encode_with(generated)),
        ("reference: encode, fastavro mode", encode_with(with_fastavro)),
        ("reference: fastavro.schemaless_writer, reused buf", schemaless_writer_reused_buffer),
        ("REFERENCE convert (transform + encode)", over(reference, values)),
        *(
            (f"fused, usual only: {stage}", over(cut, usual))
            for stage, marker in FUSED_STAGES
            if (cut := fused_up_to(encoder, marker)) is not None
        ),
        ("FUSED convert", over(fused, values)),
        ("usual only: reference convert", over(reference, usual)),
        ("usual only: fused convert", over(fused, usual)),
        ("dead letters only: reference convert", over(reference, dead)),
        ("dead letters only: fused convert", over(fused, dead)),
    ]


def profile(values: list[bytes | None], encoder: WireFormatEncoder) -> None:
    for name, convert in (
        ("reference", reference_converter(encoder)),
        ("fused", fast_path.fused_converter(encoder)),
    ):
        profiler = cProfile.Profile()
        profiler.runcall(over(convert, values))
        print(f"\n--- cProfile, {name} path, {len(values):,} messages (profiler overhead included)")
        pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(12)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--malformed-rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of each path instead")
    args = parser.parse_args(argv)

    factory = EventFactory(args.seed, IrregularityRates.with_malformed(args.malformed_rate))
    values: list[bytes | None] = [event.value for event in factory.batch(args.events, NOW_MS / 1000)]
    encoder = WireFormatEncoder(1, json.loads(SCHEMA_PATH.read_text()))
    over(reference_converter(encoder), values)()  # warm the transform's memo tables, as a stream does
    if args.profile:
        profile(values, encoder)
        return

    rows = steps(values, encoder) + batch_steps(values, encoder)
    cpu: dict[str, list[float]] = {name: [] for name, _ in rows}
    wall: dict[str, list[float]] = {name: [] for name, _ in rows}
    counts: dict[str, int] = {}
    for _ in range(args.repeat):  # interleaved, so that a noisy moment does not favour one row
        for name, run in rows:
            cpu_start, wall_start = time.thread_time(), time.perf_counter()
            counts[name] = run()
            cpu[name].append(time.thread_time() - cpu_start)
            wall[name].append(time.perf_counter() - wall_start)
    print(
        f"{len(values):,} events (seed {args.seed}, {args.malformed_rate:.0%} malformed), median of {args.repeat} "
        f"runs; Python {platform.python_version()}, fastavro {fastavro.__version__}, {platform.machine()}"
    )
    print(f"{'step':<56} {'n':>8} {'CPU msg/s':>11} {'CPU µs/msg':>10} {'wall msg/s':>11}")
    for name, _ in rows:
        count, cpu_s, wall_s = counts[name], statistics.median(cpu[name]), statistics.median(wall[name])
        print(f"{name:<56} {count:>8,} {count / cpu_s:>11,.0f} {cpu_s / count * 1e6:>10.2f} {count / wall_s:>11,.0f}")
    ref, fused = "REFERENCE convert (transform + encode)", "FUSED convert"
    ratio = statistics.median(cpu[fused]) / statistics.median(cpu[ref])
    print(f"fused / reference, CPU per message: {ratio:.2f}")
    if "NATIVE convert_batch" in cpu:
        native = statistics.median(cpu["NATIVE convert_batch"]) / statistics.median(cpu["FUSED convert_batch"])
        routed = statistics.median(cpu["ROUTER route, native"]) / statistics.median(cpu[ROUTE_ROW])
        print(f"native / pure convert_batch, CPU per message: {native:.2f}; router, native / pure: {routed:.2f}")
    else:
        print("native kernel not installed (kdp_native): native rows skipped")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
