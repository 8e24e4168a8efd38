"""Micro-benchmark of the converter's CPU hot path, without Kafka: transform, encode, and both.

Usage (from the repository root; pin to one core for steadier figures):

    taskset -c 0 .venv/bin/python bench/hot_path.py [--events 200000] [--repeat 5] [--malformed-rate 0]

Events come from the project's own generator (`streaming.events.EventFactory`: about 5 % without
`device_type`, plus `--malformed-rate` of malformed ones). Every step runs `--repeat` times over the same
events in this one process; the median is reported, so the rows compare like with like. fastavro's
`schemaless_writer` (parsed schema, one reused buffer, as a careful caller would use it) is measured in
the same run as the reference the generated writer replaces.

Two clocks: CPU time of this thread (what a message costs; steady even when other processes compete for
the cores) and wall time (what you get on this machine right now). On an idle, pinned core they agree.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import fastavro

from streaming.encoding import WireFormatEncoder
from streaming.events import EventFactory, IrregularityRates
from streaming.transform import transform

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "processed-data-value.avsc"
NOW_MS = 1_720_576_830_000


def measure(run: Callable[[], int], repeat: int) -> tuple[float, float, int]:
    """Median CPU and wall seconds of `run()` over `repeat` runs, and how many messages one run handles."""
    cpu, wall, count = [], [], 0
    for _ in range(repeat):
        cpu_start, wall_start = time.thread_time(), time.perf_counter()
        count = run()
        cpu.append(time.thread_time() - cpu_start)
        wall.append(time.perf_counter() - wall_start)
    return statistics.median(cpu), statistics.median(wall), count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--malformed-rate", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)

    factory = EventFactory(args.seed, IrregularityRates.with_malformed(args.malformed_rate))
    values = [event.value for event in factory.batch(args.events, NOW_MS / 1000)]
    schema = json.loads(SCHEMA_PATH.read_text())
    generated = WireFormatEncoder(1, schema).encode
    with_fastavro = WireFormatEncoder(1, schema, mode="fastavro").encode
    parsed = fastavro.parse_schema(schema)
    records = [r for r in (transform(v, "user-login", 0, i, NOW_MS) for i, v in enumerate(values)) if type(r) is dict]

    def transform_only() -> int:
        for offset, value in enumerate(values):
            transform(value, "user-login", 0, offset, NOW_MS)
        return len(values)

    def encode_generated() -> int:
        for record in records:
            generated(record)
        return len(records)

    def encode_wire_fastavro() -> int:
        for record in records:
            with_fastavro(record)
        return len(records)

    def schemaless_writer_reused_buffer() -> int:
        buffer, write = io.BytesIO(), fastavro.schemaless_writer
        for record in records:
            buffer.seek(0)
            buffer.truncate()
            write(buffer, parsed, record)
            buffer.getvalue()
        return len(records)

    def both(encode: Callable[[dict], bytes]) -> Callable[[], int]:
        def run() -> int:
            for offset, value in enumerate(values):
                result = transform(value, "user-login", 0, offset, NOW_MS)
                if type(result) is dict:
                    encode(result)
            return len(values)

        return run

    steps = [
        ("transform", transform_only),
        ("encode: generated writer (WireFormatEncoder)", encode_generated),
        ("encode: fastavro mode (WireFormatEncoder)", encode_wire_fastavro),
        ("encode: fastavro.schemaless_writer, reused buffer", schemaless_writer_reused_buffer),
        ("transform + encode (generated)", both(generated)),
        ("transform + encode (fastavro mode)", both(with_fastavro)),
    ]
    print(
        f"{len(values):,} events ({len(records):,} become records), median of {args.repeat} runs; "
        f"Python {platform.python_version()}, fastavro {fastavro.__version__}, {platform.machine()}"
    )
    print(f"{'step':<52} {'CPU msg/s':>11} {'CPU µs/msg':>10} {'wall msg/s':>11}")
    for name, run in steps:
        cpu, wall, count = measure(run, args.repeat)
        print(f"{name:<52} {count / cpu:>11,.0f} {cpu / count * 1e6:>10.2f} {count / wall:>11,.0f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
