"""The planner's load read from DescribeLogDirs answers and bytes-in files (pure parts of `cluster_load`)."""

from __future__ import annotations

import json

import pytest

from orchestration.reassignment.cluster_load import disk_limits_under, parse_log_dirs, read_bytes_in_file


def answer(broker: int, partitions: dict[tuple[str, int], int], total: int = 1000, future: bool = False) -> dict:
    topics: dict[str, list[dict]] = {}
    for (topic, p), size in partitions.items():
        topics.setdefault(topic, []).append(
            {"partition_index": p, "partition_size": size, "offset_lag": 0, "is_future_key": future}
        )
    return {
        "broker": broker,
        "log_dirs": [
            {
                "error_code": 0,
                "log_dir": "/data",
                "topics": [{"name": t, "partitions": ps} for t, ps in topics.items()],
                "total_bytes": total,
                "usable_bytes": total // 2,
            }
        ],
    }


def test_a_partition_weighs_its_largest_replica_and_future_replicas_are_left_out():
    log_dirs = parse_log_dirs(
        [
            answer(1, {("t", 0): 100, ("t", 1): 7}),
            answer(2, {("t", 0): 90}),  # a follower still catching up
            answer(3, {("t", 1): 500}, future=True),  # the copy of an ongoing move
        ]
    )
    assert log_dirs.sizes == {("t", 0): 100, ("t", 1): 7}
    assert log_dirs.replica_sizes == {(("t", 0), 1): 100, (("t", 1), 1): 7, (("t", 0), 2): 90}
    assert log_dirs.disk_total == {1: 1000, 2: 1000, 3: 1000}


def test_a_broker_that_does_not_report_its_disk_has_no_total_and_a_cap_on_it_is_refused():
    log_dirs = parse_log_dirs([answer(1, {("t", 0): 1}, total=-1), answer(2, {("t", 0): 1}, total=2000)])
    assert log_dirs.disk_total == {2: 2000}
    assert disk_limits_under(log_dirs.disk_total, 0.8, [2]) == {2: 1600}
    with pytest.raises(ValueError, match=r"brokers \[1\] do not report"):
        disk_limits_under(log_dirs.disk_total, 0.8, [1, 2])
    with pytest.raises(ValueError, match="must be in"):
        disk_limits_under(log_dirs.disk_total, 1.5, [2])


def test_a_log_dir_error_names_the_broker():
    broken = answer(4, {})
    broken["log_dirs"][0]["error_code"] = 57
    with pytest.raises(RuntimeError, match="broker 4"):
        parse_log_dirs([broken])


def test_bytes_in_file_is_read_and_bad_entries_are_named(tmp_path):
    good = tmp_path / "rates.json"
    good.write_text(json.dumps({"orders:0": 1500, "a:b:1": 2.5}))
    assert read_bytes_in_file(good) == {("orders", 0): 1500.0, ("a:b", 1): 2.5}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"orders": 3}))
    with pytest.raises(ValueError, match="'orders'"):
        read_bytes_in_file(bad)
