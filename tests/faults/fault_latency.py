"""End-to-end latency and throughput of a live pipeline, before and during an operation, seen by a reader.

`OutputWatch` reads the output topic from a background thread as a downstream reader does
(`isolation.level=read_committed`: in exactly-once a record counts once its transaction has committed) and
notes this machine's wall clock when each record arrives. After the scenario, `figures` matches every
record with its source message's Kafka timestamp (CreateTime, set when the traffic produced it, same clock),
so a record's latency is produced -> visible to readers. A window is judged by the records *produced* in it:
their p50 and p99 latency, and their number per second (the throughput, for a fixed offered rate).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from kafka_io import read_all

from streaming.conversion.encoding import WireFormatDecoder
from streaming.settings import Settings


@dataclass(frozen=True)
class WindowFigures:
    seconds: float
    records: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @property
    def per_second(self) -> float:
        return self.records / self.seconds

    def text(self) -> str:
        return (
            f"{self.per_second:.0f} rec/s, p50 {self.p50_ms:.0f} ms, p99 {self.p99_ms:.0f} ms, "
            f"max {self.max_ms:.0f} ms over {self.seconds:.0f} s"
        )


class OutputWatch:
    """Arrival times of the output topic's records, by their source (partition, offset)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.visible_at: dict[tuple[int, int], float] = {}
        self._stop = threading.Event()
        self._decode = WireFormatDecoder(SchemaRegistryClient(settings.registry_config())).decode
        self._consumer = Consumer(
            {
                **settings.kafka_config(),
                "group.id": f"{settings.group_id}-latency-watch",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed",
                "fetch.wait.max.ms": 10,
            }
        )
        self._consumer.subscribe([settings.output_topic])
        self._thread = threading.Thread(target=self._watch, name="fault-output-watch", daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set():
            for message in self._consumer.consume(1000, 0.1):
                if message.error() is not None:
                    continue
                now = time.time()
                record = self._decode(message.value())
                self.visible_at.setdefault((record["source_partition"], record["source_offset"]), now)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._consumer.close()

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time within [start, end] in which no record became visible: the stall an operation caused
        (its recovery time), at an offered rate that otherwise makes records visible every few milliseconds."""
        times = sorted(t for t in self.visible_at.values() if start <= t <= end)
        edges = [start, *times, end]
        return max(b - a for a, b in zip(edges, edges[1:], strict=False))

    def figures(self, windows: dict[str, tuple[float, float]]) -> dict[str, WindowFigures]:
        """Per named window (wall-clock start, end): the records whose source was produced in it."""
        produced = {
            (m.partition(), m.offset()): m.timestamp()[1] / 1000
            for m in read_all(self.settings.bootstrap, self.settings.source_topic, timeout=120)
        }
        result = {}
        for name, (start, end) in windows.items():
            latencies = sorted(
                (self.visible_at[where] - at) * 1000
                for where, at in produced.items()
                if start <= at < end and where in self.visible_at
            )
            result[name] = WindowFigures(
                seconds=end - start,
                records=len(latencies),
                p50_ms=_percentile(latencies, 50),
                p99_ms=_percentile(latencies, 99),
                max_ms=latencies[-1] if latencies else math.nan,
            )
        return result


def _percentile(ordered: list[float], p: float) -> float:
    """Nearest rank; NaN for no values."""
    if not ordered:
        return math.nan
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]
