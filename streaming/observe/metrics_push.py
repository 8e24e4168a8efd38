"""Pushing a run's converter metrics to a Prometheus Pushgateway, for the runs Prometheus cannot scrape.

`kdp stream` is a long-lived process that Prometheus scrapes (`streaming.observe.metrics`). A Dagster conversion run
or a
dead-letter replay lives seconds to minutes in a process of its own: no scrape target. Such a run pushes the very
registry `kdp stream` serves (same series names) to the Pushgateway named by `KDP_PUSHGATEWAY_URL`, with
prometheus_client's `push_to_gateway`:

* once at its start, counters at 0, so that Prometheus sees the run's increase from zero;
* every `PUSH_INTERVAL_S` while it runs (a long replay shows progress, not one step at its end);
* once at its end, with the final counts.

Grouping key (labels the Pushgateway adds to every pushed series): job `PUSH_JOB`, `mode` (`sensor` for a
conversion run, `replay` for a replay run) and `instance` (the run's converter instance: one per partition set for
conversion runs, one per selection for replays). At most one run of an instance runs at a time, so a run never
overwrites another's figures while it runs; the next run of the same instance replaces them, starting again from
0, which Prometheus's `rate()` and `increase()` read as a counter reset. The number of groups stays bounded (the
partitions, the replay selections) instead of growing by one per run.

A push never fails or delays a run by more than `PUSH_TIMEOUT_S`: a Pushgateway that cannot be reached is logged
as a warning and counted in `kdp_metrics_push_failures_total` (pushed along with the next push that succeeds; the
run's metadata shows it too). With an empty URL nothing is pushed and nothing is counted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from prometheus_client import CollectorRegistry, Counter, push_to_gateway

log = logging.getLogger(__name__)

PUSH_JOB = "kdp-runs"
"""The `job` label of every pushed series (Prometheus keeps it: its Pushgateway job has `honor_labels`)."""
PUSH_INTERVAL_S = 15.0
"""Seconds between two pushes of a running run: the Pushgateway's scrape interval (deploy/prometheus)."""
PUSH_TIMEOUT_S = 5.0
"""Seconds one push may take before it counts as failed."""

Push = Callable[..., Any]


class MetricsPusher:
    """Pushes `registry` to the Pushgateway at `url` while a run lasts; use as a context manager.

    `with MetricsPusher(registry, url, mode="sensor", instance="dagster-user-login.0"): run()` pushes at the
    start, every `interval` seconds from a daemon thread, and at the end (also when the run raises). `push` is
    prometheus_client's `push_to_gateway` (replaceable in tests). Never raises for a failed push.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        url: str,
        *,
        mode: str,
        instance: str,
        interval: float = PUSH_INTERVAL_S,
        push: Push = push_to_gateway,
    ) -> None:
        self.registry = registry
        self.url = url
        self.grouping_key = {"mode": mode, "instance": instance}
        self.interval = interval
        self._push = push
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.pushes = 0
        self.failures = 0
        self._failures_counter = (
            Counter(
                "kdp_metrics_push_failures",
                "Pushes of this run's metrics to the Pushgateway that failed (KDP_PUSHGATEWAY_URL).",
                registry=registry,
            )
            if url
            else None
        )

    @property
    def enabled(self) -> bool:
        return bool(self.url)

    def push(self) -> bool:
        """One push of the registry now; True when the Pushgateway took it. Never raises."""
        if not self.enabled:
            return False
        with self._lock:  # the periodic thread and the final push never overlap
            try:
                self._push(
                    self.url,
                    job=PUSH_JOB,
                    registry=self.registry,
                    grouping_key=self.grouping_key,
                    timeout=PUSH_TIMEOUT_S,
                )
            except Exception as error:  # noqa: BLE001 - any failure of a push must leave the run alone
                self.failures += 1
                assert self._failures_counter is not None
                self._failures_counter.inc()
                log.warning(
                    "could not push metrics to the Pushgateway KDP_PUSHGATEWAY_URL=%s (%s: %s); the run goes on",
                    self.url,
                    type(error).__name__,
                    error,
                )
                return False
            self.pushes += 1
            return True

    def __enter__(self) -> MetricsPusher:
        if self.enabled:
            self.push()
            self._thread = threading.Thread(target=self._every_interval, name="kdp-metrics-push", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.push()

    def _every_interval(self) -> None:
        while not self._stop.wait(self.interval):
            self.push()
