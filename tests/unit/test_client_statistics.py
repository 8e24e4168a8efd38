"""`streaming.observe.client_statistics`: what is kept of librdkafka's statistics, and how they reach every callback."""

from __future__ import annotations

import json
import os

from streaming.observe.client_statistics import StatisticsFile, digest, statistics_config

PRODUCER_STATS = {
    "name": "rdkafka#producer-2",
    "type": "producer",
    "time": 1796620000,
    "replyq": 3,
    "msg_cnt": 70,
    "msg_size": 21000,
    "tx": 10,
    "tx_bytes": 5000,
    "rx": 9,
    "rx_bytes": 900,
    "brokers": {
        "127.0.0.1:9092/1": {"nodeid": 1, "source": "learned", "state": "UP", "connects": 1, "outbuf_cnt": 2,
                             "waitresp_cnt": 1, "rtt": {"avg": 1000}},
        "TxnCoordinator": {"nodeid": 1, "source": "logical", "state": "UP", "connects": 1},
    },
    "topics": {"t": {"partitions": {"0": {"partition": 0, "msgq_cnt": 70}}}},
    "eos": {"idemp_state": "Assigned", "txn_state": "InTransaction", "producer_id": 7, "producer_epoch": 2,
            "txn_may_enq": True},
}  # fmt: skip


def test_the_digest_keeps_connections_queues_and_the_transaction_state_but_not_partitions():
    kept = digest(PRODUCER_STATS)
    assert kept["client"] == "rdkafka#producer-2"
    assert kept["msg_cnt"] == 70 and kept["replyq"] == 3
    assert kept["brokers"]["127.0.0.1:9092/1"]["outbuf_cnt"] == 2
    assert kept["brokers"]["TxnCoordinator"]["source"] == "logical"
    assert "rtt" not in kept["brokers"]["127.0.0.1:9092/1"]
    assert kept["eos"] == {"idemp_state": "Assigned", "txn_state": "InTransaction", "producer_id": 7,
                           "producer_epoch": 2}  # fmt: skip
    assert "topics" not in kept and "cgrp" not in kept


def test_the_file_gets_a_line_per_document_with_the_process_id(tmp_path):
    path = tmp_path / "statistics.jsonl"
    written = StatisticsFile(path)
    written.on_statistics(json.dumps(PRODUCER_STATS))
    written.on_statistics("not json")  # logged, never raised into the client's poll
    written.on_statistics(json.dumps(PRODUCER_STATS))
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["pid"] for line in lines] == [os.getpid(), os.getpid()]


def test_every_callback_gets_every_document_and_none_means_no_statistics():
    seen: list[tuple[str, str]] = []
    config = statistics_config([lambda s: seen.append(("a", s)), lambda s: seen.append(("b", s))], 5000)
    assert config["statistics.interval.ms"] == 5000
    config["stats_cb"]("{}")
    assert seen == [("a", "{}"), ("b", "{}")]
    assert statistics_config([], 5000) == {}
