"""Prometheus metrics of the converter: what it did, how far behind it is, and how its Kafka clients fare.

Three sources feed one registry:

* the converter's batch boundaries, through the `streaming.observe.observer.ConverterObserver` calls that
  `ConverterMetrics` implements (counts, batch duration, end-to-end latency, redos, transactions,
  replaced clients). Nothing is counted per message: a batch's tallies are added when it commits, so
  the counters equal the run's `ConverterSummary` and a redone batch never counts twice;
* librdkafka's statistics (`statistics.interval.ms` + `stats_cb`, see `client_config`): consumer lag
  per partition, broker round-trip times, producer queue depth. librdkafka calls `stats_cb` from the
  client's own poll, on the converter's thread, every `STATISTICS_INTERVAL_MS`: the consumer's at each
  consume, the producer's while it sends (the loop does not poll an idle producer, so its figures then
  keep their last values);
* the process itself (CPU, memory, open files), from prometheus_client's process collector.

`serve(port)` exposes them in Prometheus text format over HTTP (`kdp stream --metrics-port`,
`KDP_METRICS_PORT`). Metric names are a contract with `deploy/prometheus` and `deploy/grafana`:
the tests check that every name those files use is exported here.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, ProcessCollector, start_http_server

from streaming.conversion.convert import Lanes
from streaming.observe.observer import BATCH_STAGES, BatchReport, ConverterObserver, Partition
from streaming.records import Reason
from streaming.settings import SettingsError

log = logging.getLogger(__name__)

STATISTICS_INTERVAL_MS = 5000
"""How often librdkafka reports its statistics: the lag and rtt gauges are at most this old."""

BATCH_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
STAGE_SECONDS_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)
"""Finer than a batch's buckets at the low end: a stage of a small batch takes well under a millisecond."""
LATENCY_SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

#: Partition fetch states of librdkafka in which the partition is not (or no longer) this consumer's.
_NOT_FETCHING = frozenset({"none", "stopping", "stopped"})


class MetricsPortInUse(SettingsError):
    """The metrics port is taken: the converter does not start (naming the setting, like any bad setting)."""


class ConverterMetrics(ConverterObserver):
    """The converter's metrics in a registry of their own; an observer of the converter's batches.

    One instance per converter process. Not thread-safe beyond what prometheus_client guarantees: the
    observer calls and `on_statistics` all come from the converter's thread.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        process_metrics: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`clock`: wall-clock seconds, for the end-to-end latency (source timestamps are wall-clock too)."""
        self.registry = registry or CollectorRegistry()
        self._clock = clock
        r = self.registry
        self.consumed = Counter("kdp_messages_consumed", "Source messages converted (committed batches).", registry=r)
        self.processed = Counter("kdp_records_processed", "Processed records written to the output topic.", registry=r)
        self.dead_letters = Counter(
            "kdp_dead_letters", "Messages written to the dead-letter topic, by reason.", ["reason"], registry=r
        )
        self.by_engine = Counter(
            "kdp_messages_by_engine",
            "Source messages converted, by the conversion engine that decided them (native, fast, reference).",
            ["engine"],
            registry=r,
        )
        for engine in Lanes._fields:
            self.by_engine.labels(engine=engine)
        self.bytes_consumed = Counter("kdp_bytes_consumed", "Bytes of source message values converted.", registry=r)
        self.batches = Counter("kdp_batches", "Batches delivered and committed.", registry=r)
        self.batches_redone = Counter(
            "kdp_batches_redone", "Batches that failed, were rewound to their first offsets and redone.", registry=r
        )
        self.batch_duration = Histogram(
            "kdp_batch_duration_seconds",
            "Time from a batch's first consumed message to its commit.",
            buckets=BATCH_SECONDS_BUCKETS,
            registry=r,
        )
        self.latency = Histogram(
            "kdp_end_to_end_latency_seconds",
            "Commit time minus the Kafka timestamp of each batch's oldest source message (its append time on the "
            "provisioned topics); one observation per batch.",
            buckets=LATENCY_SECONDS_BUCKETS,
            registry=r,
        )
        self.transactions = Counter(
            "kdp_transactions", "Kafka transactions (exactly-once), by outcome.", ["outcome"], registry=r
        )
        self.producer_replacements = Counter(
            "kdp_producer_replacements", "Broken or fenced producers replaced by a new one.", registry=r
        )
        self.consumer_replacements = Counter(
            "kdp_consumer_replacements", "Consumers broken by a fatal error and replaced.", registry=r
        )
        self.lag = Gauge(
            "kdp_consumer_lag_messages",
            "Messages of an assigned partition not yet converted: last stable offset minus position "
            "(librdkafka statistics).",
            ["topic", "partition"],
            registry=r,
        )
        self.broker_rtt = Gauge(
            "kdp_kafka_broker_rtt_seconds",
            "Broker round-trip time over the last statistics interval (librdkafka), by client and quantile.",
            ["client", "broker", "quantile"],
            registry=r,
        )
        self.broker_outbuf = Gauge(
            "kdp_kafka_broker_outbuf_requests",
            "Requests waiting to be sent to a broker (librdkafka).",
            ["client", "broker"],
            registry=r,
        )
        self.producer_queue_messages = Gauge(
            "kdp_kafka_producer_queue_messages", "Messages in the producer's queues, not yet acknowledged.", registry=r
        )
        self.producer_queue_bytes = Gauge(
            "kdp_kafka_producer_queue_bytes", "Bytes of the messages in the producer's queues.", registry=r
        )
        self.info = Info("kdp_converter", "What this converter runs: delivery mode, group, topics.", registry=r)
        if process_metrics:
            ProcessCollector(registry=r)
        # Series exist from the start, at 0, so that rate() and the alert rules see the first increase.
        for reason in Reason:
            self.dead_letters.labels(reason=reason.value)
        for outcome in ("committed", "aborted"):
            self.transactions.labels(outcome=outcome)
        self._lag_series: set[tuple[str, str]] = set()
        self._broker_series: dict[str, set[str]] = {}
        self._add_stage_metrics()

    def _add_stage_metrics(self) -> None:
        """Where a batch's time goes (`ConverterObserver.batch_stage`), and failed offset commits."""
        self.batch_stage_seconds = Histogram(
            "kdp_batch_stage_seconds",
            "Time of one stage of a batch: poll (waiting for its first message), convert, produce, flush (waiting "
            "for acknowledgements), commit (offsets; exactly-once: the transaction). Flush and commit are per "
            "transaction in exactly-once.",
            ["stage"],
            buckets=STAGE_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self._stage_histograms = {stage: self.batch_stage_seconds.labels(stage=stage) for stage in BATCH_STAGES}
        self.offset_commit_failures = Counter(
            "kdp_offset_commit_failures",
            "Offset commits that failed (at-least-once); their offsets are committed again by the next commit.",
            registry=self.registry,
        )

    def describe_run(self, **labels: str) -> None:
        """Labels of the `kdp_converter_info` series (delivery, group, topics)."""
        self.info.info(labels)

    # -- the converter's batch boundaries (streaming.observe.observer.ConverterObserver) ----------------------

    def batch_delivered(self, report: BatchReport) -> None:
        """Adds the batch's counts; latency is measured now, when its output has become durable."""
        self.batches.inc()
        self.consumed.inc(report.consumed)
        self.processed.inc(report.tallies.processed)
        self.bytes_consumed.inc(report.bytes_in)
        for engine, count in zip(Lanes._fields, report.lanes, strict=True):
            if count:
                self.by_engine.labels(engine=engine).inc(count)
        for reason, count in report.tallies.reasons.items():
            self.dead_letters.labels(reason=reason).inc(count)
        self.batch_duration.observe(report.seconds)
        if report.oldest_source_ms is not None and report.oldest_source_ms > 0:
            self.latency.observe(max(self._clock() - report.oldest_source_ms / 1000, 0.0))

    def batch_redone(self, reason: str, first_offsets: Mapping[Partition, int], learned: bool) -> None:
        self.batches_redone.inc()

    def producer_replaced(self, reason: str, fenced: bool) -> None:
        self.producer_replacements.inc()

    def consumer_replaced(self, reason: str) -> None:
        self.consumer_replacements.inc()

    def transaction_committed(self, batches: int) -> None:
        self.transactions.labels(outcome="committed").inc()

    def transaction_aborted(self, reason: str) -> None:
        self.transactions.labels(outcome="aborted").inc()

    def batch_stage(self, stage: str, seconds: float) -> None:
        self._stage_histograms[stage].observe(seconds)

    def offset_commit_failed(self, reason: str) -> None:
        self.offset_commit_failures.inc()

    def counts(self) -> dict[str, Any]:
        """The counters as plain numbers, named as in the summary: for runs too short to be scraped (the Dagster
        conversion runs report them as metadata). Dead letters by reason lists the reasons seen only."""
        by_reason = {
            sample.labels["reason"]: int(sample.value)
            for family in self.dead_letters.collect()
            for sample in family.samples
            if sample.name == "kdp_dead_letters_total" and sample.value
        }

        def count(name: str, **labels: str) -> int:
            return int(self.registry.get_sample_value(name, labels) or 0)

        return {
            "consumed": count("kdp_messages_consumed_total"),
            "processed": count("kdp_records_processed_total"),
            **{f"by_engine_{engine}": count("kdp_messages_by_engine_total", engine=engine) for engine in Lanes._fields},
            "dead_lettered": sum(by_reason.values()),
            "dead_letters_by_reason": by_reason,
            "batches": count("kdp_batches_total"),
            "redone_batches": count("kdp_batches_redone_total"),
            "transactions_committed": count("kdp_transactions_total", outcome="committed"),
            "transactions_aborted": count("kdp_transactions_total", outcome="aborted"),
            "producer_replacements": count("kdp_producer_replacements_total"),
            "consumer_replacements": count("kdp_consumer_replacements_total"),
        }

    # -- librdkafka statistics ---------------------------------------------------------------------

    def client_config(self) -> dict[str, Any]:
        """What a consumer's or producer's configuration needs for its statistics to arrive here."""
        return {"statistics.interval.ms": STATISTICS_INTERVAL_MS, "stats_cb": self.on_statistics}

    def on_statistics(self, stats_json: str) -> None:
        """librdkafka's `stats_cb`: a JSON document of the client's state. Never raises (a bad document is
        logged): a callback's exception would surface in the converter's poll."""
        try:
            stats = json.loads(stats_json)
            client = str(stats.get("type", "unknown"))
            self._brokers(client, stats.get("brokers") or {})
            if client == "producer":
                self.producer_queue_messages.set(stats.get("msg_cnt", 0))
                self.producer_queue_bytes.set(stats.get("msg_size", 0))
            elif client == "consumer":
                self._lags(stats.get("topics") or {})
        except (ValueError, TypeError, AttributeError) as error:
            log.warning("unreadable librdkafka statistics: %s", error)

    def _brokers(self, client: str, brokers: dict[str, Any]) -> None:
        seen = set()
        for broker in brokers.values():
            if broker.get("source") != "learned" or broker.get("nodeid", -1) < 0:
                continue  # bootstrap and internal entries, not brokers of the cluster
            node = str(broker["nodeid"])
            seen.add(node)
            self.broker_outbuf.labels(client=client, broker=node).set(broker.get("outbuf_cnt", 0))
            rtt = broker.get("rtt") or {}
            if rtt.get("cnt", 0) > 0:  # no request in this interval: keep the last figure
                for quantile, key in (("avg", "avg"), ("0.99", "p99")):
                    self.broker_rtt.labels(client=client, broker=node, quantile=quantile).set(rtt[key] / 1e6)
        for gone in self._broker_series.get(client, set()) - seen:
            self._remove(self.broker_outbuf, client, gone)
            for quantile in ("avg", "0.99"):
                self._remove(self.broker_rtt, client, gone, quantile)
        self._broker_series[client] = seen

    def _lags(self, topics: dict[str, Any]) -> None:
        """Lag of each partition this consumer fetches; a partition revoked or lost loses its series."""
        seen = set()
        for topic, details in topics.items():
            for partition in (details.get("partitions") or {}).values():
                lag = partition_lag(partition)
                if lag is None:
                    continue
                labels = (topic, str(partition["partition"]))
                seen.add(labels)
                self.lag.labels(*labels).set(lag)
        for gone in self._lag_series - seen:
            self._remove(self.lag, *gone)
        self._lag_series = seen

    @staticmethod
    def _remove(metric: Gauge, *labels: str) -> None:
        with contextlib.suppress(KeyError):  # never set, or removed already
            metric.remove(*labels)

    # -- exposition --------------------------------------------------------------------------------

    def serve(self, port: int, address: str = "0.0.0.0") -> Callable[[], None]:
        """Serve `/metrics` on `port` from a daemon thread; returns a function that stops the server.

        A port already in use raises `MetricsPortInUse` naming the setting, before anything else starts.
        """
        try:
            server, thread = start_http_server(port, address, registry=self.registry)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise MetricsPortInUse(
                    f"KDP_METRICS_PORT={port} (--metrics-port): the port is already in use on {address}; "
                    "choose a free port or stop what listens there"
                ) from error
            raise SettingsError(f"KDP_METRICS_PORT={port} (--metrics-port): cannot listen: {error}") from error
        log.info("metrics on http://%s:%d/metrics", address, port)

        def stop() -> None:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)

        return stop


def partition_lag(partition: dict[str, Any]) -> int | None:
    """A partition's lag from its librdkafka statistics, or None when it is not this consumer's to fetch.

    The converter reads `read_committed`, so the end is the last stable offset (`ls_offset`); its position is
    the offset after the last message handed to it (`app_offset`), or the group's committed offset before it
    has consumed anything. In exactly-once mode offsets are committed by the producer's transaction, which
    the consumer's own `committed_offset` does not see: hence the larger of the two.
    """
    if partition.get("partition", -1) < 0 or partition.get("fetch_state") in _NOT_FETCHING:
        return None
    if not partition.get("desired", True):
        return None
    end = partition.get("ls_offset", -1)
    position = max(partition.get("app_offset", -1), partition.get("committed_offset", -1))
    if end < 0 or position < 0:
        return None
    return max(end - position, 0)
