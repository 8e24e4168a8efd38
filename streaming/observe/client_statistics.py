"""librdkafka statistics kept in a file, one JSON line per document, so that a long run can be explained afterwards.

`KDP_STATISTICS_FILE` turns it on (`kdp stream`); the soak (`tests/faults/soak.py`) sets it and reads the
latest line of each client every minute. The Prometheus metrics (`streaming.observe.metrics`) keep only the figures
dashboards use; a diagnosis needs more of each client's state: every broker connection (its state, how often it
connected, its request queues), the client's queues and its transaction or group state. `digest` keeps those
fields of librdkafka's document (STATISTICS.md of librdkafka) and drops the per-partition detail, which is large
and repeats what the lag already says.

librdkafka hands a client's statistics to its `stats_cb` from that client's poll, so a client nobody polls any
more (a producer that was replaced) writes nothing: the client names (`rdkafka#producer-<n>`) tell how many a
process made.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

BROKER_FIELDS = (
    "nodeid",
    "source",
    "state",
    "connects",
    "disconnects",
    "outbuf_cnt",
    "outbuf_msg_cnt",
    "waitresp_cnt",
    "waitresp_msg_cnt",
    "tx",
    "txbytes",
    "rx",
    "rxbytes",
    "req_timeouts",
)
"""Of each broker entry: its connection and what waits to be sent (outbuf) or answered (waitresp)."""
CLIENT_FIELDS = ("replyq", "msg_cnt", "msg_size", "tx", "tx_bytes", "rx", "rx_bytes", "metadata_cache_cnt")
"""Of the client: the queue of events for the application (replyq) and the producer's queue (msg_cnt/size)."""


def digest(stats: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of one statistics document that a diagnosis reads (see the module docstring)."""
    brokers = {
        str(name): {key: broker.get(key) for key in BROKER_FIELDS}
        for name, broker in (stats.get("brokers") or {}).items()
    }
    kept: dict[str, Any] = {"client": stats.get("name"), "type": stats.get("type"), "time": stats.get("time")}
    kept.update({key: stats.get(key) for key in CLIENT_FIELDS})
    kept["brokers"] = brokers
    eos = stats.get("eos")
    if eos:
        kept["eos"] = {key: eos.get(key) for key in ("idemp_state", "txn_state", "producer_id", "producer_epoch")}
    group = stats.get("cgrp")
    if group:
        kept["cgrp"] = {key: group.get(key) for key in ("state", "join_state", "rebalance_cnt", "assignment_size")}
    return kept


class StatisticsFile:
    """Appends the digest of every statistics document to `path`, with this process's id (several processes,
    such as a converter and its restarts, may share the file)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pid = os.getpid()

    def on_statistics(self, stats_json: str) -> None:
        """A `stats_cb`. Never raises (a callback's exception would surface in the converter's poll)."""
        try:
            line = json.dumps({"pid": self._pid, **digest(json.loads(stats_json))})
            with self.path.open("a") as out:
                out.write(line + "\n")
        except (OSError, ValueError, TypeError, AttributeError) as error:
            log.warning("cannot keep librdkafka statistics in %s: %s", self.path, error)


def statistics_config(callbacks: Sequence[Callable[[str], None]], interval_ms: int) -> dict[str, Any]:
    """Client settings that hand every statistics document to each of `callbacks` (librdkafka takes one
    `stats_cb`); empty without callbacks (no statistics are computed then)."""
    if not callbacks:
        return {}

    def each(stats_json: str) -> None:
        for callback in callbacks:
            callback(stats_json)

    return {"statistics.interval.ms": interval_ms, "stats_cb": each}
