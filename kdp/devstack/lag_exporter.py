"""The local stack's consumer-lag exporter: kminion's lag series, computed from Kafka's own offsets.

In docker-compose.yml and on Kubernetes, consumer lag comes from kminion (docs/monitoring.md says why kminion).
kminion ships as a container image and as a Go program whose module the Go module proxy does not serve, and the
local stack runs without Docker: so `kdp stack up --monitoring` runs this exporter instead, unless a `kminion`
binary is on PATH. It serves the subset
of kminion's series that deploy/prometheus/alerts.yml and the dashboard use, with kminion's names, labels and
meaning (its admin-API scrape mode), so the same rules hold in every environment:

* `kminion_kafka_consumer_group_topic_partition_lag{group_id, topic_name, partition_id}`: the partition's high
  watermark minus the group's committed offset, at least 0; only partitions where the group has committed;
* `kminion_kafka_consumer_group_topic_lag{group_id, topic_name}`: the sum over the topic's partitions;
* `kminion_kafka_consumer_group_topic_offset_sum{group_id, topic_name}`: the sum of the committed offsets (it
  moves exactly when the group makes progress);
* `kminion_exporter_up`: 1 when the scrape read everything from Kafka, 0 when Kafka could not be reached or
  answered with an error (then the lag series are those it could read, possibly none).

Offsets are read at each scrape (no cache), with the admin API: the consumer groups, each group's committed
offsets, the high watermarks of those partitions. Kafka clients' settings (bootstrap, TLS, SASL) come from the
`KDP_*` environment variables (`streaming.settings`).

`python -m kdp.devstack.lag_exporter --port 9308` serves `/metrics` until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streaming.settings import Settings, SettingsError

log = logging.getLogger(__name__)

DEFAULT_PORT = 9308
REQUEST_TIMEOUT_S = 4.0
"""Seconds each admin request of a scrape may take (a scrape makes 2 + one per group). Well below Prometheus's
scrape timeout (10 s by default): an unreachable Kafka is answered with `kminion_exporter_up 0` in about this
long, instead of a scrape that times out."""

PARTITION_LAG = "kminion_kafka_consumer_group_topic_partition_lag"
TOPIC_LAG = "kminion_kafka_consumer_group_topic_lag"
OFFSET_SUM = "kminion_kafka_consumer_group_topic_offset_sum"
EXPORTER_UP = "kminion_exporter_up"
SERIES = (PARTITION_LAG, TOPIC_LAG, OFFSET_SUM, EXPORTER_UP)
"""Every series name this exporter serves (all gauges, as in kminion)."""

Partition = tuple[str, int]


@dataclass
class ClusterOffsets:
    """What one scrape read: each group's committed offsets, the partitions' high watermarks, and whether all of
    it could be read (`complete`)."""

    committed: dict[str, dict[Partition, int]] = field(default_factory=dict)
    high: dict[Partition, int] = field(default_factory=dict)
    complete: bool = True


def lag_metrics(offsets: ClusterOffsets) -> list[Metric]:
    """The exporter's series for `offsets` (pure). A partition without a high watermark is left out."""
    partition_lag = GaugeMetricFamily(
        PARTITION_LAG,
        "The number of messages a consumer group is lagging behind the latest offset of a partition",
        labels=["group_id", "topic_name", "partition_id"],
    )
    topic_lag = GaugeMetricFamily(
        TOPIC_LAG,
        "The number of messages a consumer group is lagging behind across all partitions in a topic",
        labels=["group_id", "topic_name"],
    )
    offset_sum = GaugeMetricFamily(
        OFFSET_SUM,
        "The sum of all committed group offsets across all partitions in a topic",
        labels=["group_id", "topic_name"],
    )
    for group, committed in sorted(offsets.committed.items()):
        by_topic: dict[str, list[tuple[int, int]]] = {}
        for (topic, partition), offset in sorted(committed.items()):
            high = offsets.high.get((topic, partition))
            if high is None:
                continue
            lag = max(high - offset, 0)
            partition_lag.add_metric([group, topic, str(partition)], lag)
            by_topic.setdefault(topic, []).append((lag, offset))
        for topic, rows in by_topic.items():
            topic_lag.add_metric([group, topic], sum(lag for lag, _ in rows))
            offset_sum.add_metric([group, topic], sum(offset for _, offset in rows))
    up = GaugeMetricFamily(EXPORTER_UP, "1 if the last scrape read every offset from Kafka, else 0.")
    up.add_metric([], 1.0 if offsets.complete else 0.0)
    return [partition_lag, topic_lag, offset_sum, up]


def read_offsets(admin: AdminClient, timeout: float = REQUEST_TIMEOUT_S) -> ClusterOffsets:
    """Committed offsets of every consumer group and the high watermarks of their partitions, from Kafka.

    Raises KafkaException when Kafka cannot be reached; a group or partition that answers with an error is left
    out and makes the result incomplete."""
    offsets = ClusterOffsets()
    listing = admin.list_consumer_groups(request_timeout=timeout).result(timeout=timeout + 5)
    if listing.errors:
        offsets.complete = False
    for group in sorted(g.group_id for g in listing.valid):
        request = [ConsumerGroupTopicPartitions(group)]
        futures = admin.list_consumer_group_offsets(request, request_timeout=timeout)
        try:
            answer = futures[group].result(timeout=timeout + 5)
        except KafkaException as error:
            log.warning("committed offsets of group %s: %s", group, error)
            offsets.complete = False
            continue
        committed = {}
        for tp in answer.topic_partitions or []:
            if tp.error is not None:
                offsets.complete = False
            elif tp.offset >= 0:
                committed[(tp.topic, tp.partition)] = tp.offset
        if committed:
            offsets.committed[group] = committed
    partitions = {p for committed in offsets.committed.values() for p in committed}
    if partitions:
        specs = {TopicPartition(topic, partition): OffsetSpec.latest() for topic, partition in partitions}
        for tp, future in admin.list_offsets(specs, request_timeout=timeout).items():
            try:
                offsets.high[(tp.topic, tp.partition)] = future.result(timeout=timeout + 5).offset
            except KafkaException as error:
                log.warning("high watermark of %s:%d: %s", tp.topic, tp.partition, error)
                offsets.complete = False
    return offsets


class LagCollector(Collector):
    """A prometheus_client collector that reads the offsets at each scrape (`read`, e.g. `read_offsets`)."""

    def __init__(self, read: Callable[[], ClusterOffsets]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        try:
            offsets = self._read()
        except Exception as error:  # noqa: BLE001 - any failure to read Kafka is reported as kminion_exporter_up 0
            log.warning("cannot read offsets from Kafka: %s", error)
            offsets = ClusterOffsets(complete=False)
        yield from lag_metrics(offsets)


def admin_client(settings: Settings) -> AdminClient:
    return AdminClient({**settings.kafka_config(), "socket.connection.setup.timeout.ms": 5000})


def serve(settings: Settings, port: int, address: str, stop: threading.Event) -> None:
    """Serve the lag series on address:port until `stop` is set."""
    admin = admin_client(settings)
    registry = CollectorRegistry()
    registry.register(LagCollector(lambda: read_offsets(admin)))
    server, thread = start_http_server(port, address, registry=registry)
    log.info("consumer lag of %s on http://%s:%d/metrics", settings.bootstrap, address, port)
    stop.wait()
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kdp.devstack.lag_exporter", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to serve /metrics on ({DEFAULT_PORT})")
    parser.add_argument("--address", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument("--home", help="the monitoring folder that started this exporter (marks its process)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env(environ)
    except SettingsError as error:
        print(f"error: {error}")
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    serve(settings, args.port, args.address, stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
