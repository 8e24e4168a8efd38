"""The generated Kafka node configuration: what one node and three nodes need to work as a cluster."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from kdp.devstack.config import StackConfig
from kdp.devstack.errors import StackError
from kdp.devstack.kafka_node import (
    formatted_cluster,
    new_cluster_id,
    plan_nodes,
    read_properties,
    render_properties,
    replication_settings,
    server_properties,
)


def _config(tmp_path: Path) -> StackConfig:
    return StackConfig.from_env({}, home=tmp_path / "home", cache=tmp_path / "cache")


def test_a_single_node_is_a_complete_cluster_on_loopback(tmp_path: Path) -> None:
    [node] = plan_nodes(_config(tmp_path), 1)
    properties = server_properties(node, [node])

    assert properties["process.roles"] == "broker,controller"
    assert properties["controller.quorum.voters"] == "1@127.0.0.1:9192"
    assert properties["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9192"
    assert properties["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert properties["log.dirs"] == str(tmp_path / "home" / "kafka" / "node-1" / "data")
    assert properties["group.initial.rebalance.delay.ms"] == "0"
    # Kafka's default of 3 would leave __consumer_offsets and __transaction_state uncreatable on one node.
    assert properties["offsets.topic.replication.factor"] == "1"
    assert properties["transaction.state.log.replication.factor"] == "1"
    assert properties["share.coordinator.state.topic.replication.factor"] == "1"


def test_three_nodes_share_one_voter_list_and_spread_over_racks(tmp_path: Path) -> None:
    nodes = plan_nodes(_config(tmp_path), 3)
    configurations = [server_properties(node, nodes) for node in nodes]

    assert {c["controller.quorum.voters"] for c in configurations} == {
        "1@127.0.0.1:9192,2@127.0.0.1:9193,3@127.0.0.1:9194"
    }
    assert [c["node.id"] for c in configurations] == ["1", "2", "3"]
    assert [c["broker.rack"] for c in configurations] == ["rack-a", "rack-b", "rack-c"]
    assert [c["advertised.listeners"] for c in configurations] == [
        "PLAINTEXT://127.0.0.1:9092",
        "PLAINTEXT://127.0.0.1:9093",
        "PLAINTEXT://127.0.0.1:9094",
    ]
    assert len({c["log.dirs"] for c in configurations}) == 3


@pytest.mark.parametrize(
    ("size", "factor", "min_in_sync"),
    [(1, "1", "1"), (2, "2", "1"), (3, "3", "2"), (5, "3", "2")],
)
def test_replication_never_asks_more_than_the_cluster_has(size: int, factor: str, min_in_sync: str) -> None:
    settings = replication_settings(size)

    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "share.coordinator.state.topic.replication.factor",
        "default.replication.factor",
    ):
        assert settings[key] == factor
    for key in (
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.min.isr",
        "min.insync.replicas",
    ):
        assert settings[key] == min_in_sync
    # A write with acks=all must still succeed with one replica down once there are three.
    assert int(min_in_sync) < int(factor) or size == 1


def test_ports_follow_the_configured_first_ports(tmp_path: Path) -> None:
    config = StackConfig.from_env({}, home=tmp_path, kafka_port=19092, controller_port=19192)
    nodes = plan_nodes(config, 2)

    assert [(node.port, node.controller_port) for node in nodes] == [(19092, 19192), (19093, 19193)]


@pytest.mark.parametrize("brokers", [0, 10])
def test_cluster_sizes_outside_the_supported_range_are_refused(tmp_path: Path, brokers: int) -> None:
    with pytest.raises(StackError, match="1 to 9 brokers"):
        plan_nodes(_config(tmp_path), brokers)


def test_rendered_properties_read_back_identically(tmp_path: Path) -> None:
    [node] = plan_nodes(_config(tmp_path), 1)
    properties = server_properties(node, [node])
    path = tmp_path / "server.properties"

    path.write_text(render_properties(properties))

    assert read_properties(path) == properties


def test_cluster_ids_have_kafkas_format() -> None:
    ids = {new_cluster_id() for _ in range(200)}

    assert len(ids) == 200
    for cluster_id in ids:
        assert len(cluster_id) == 22
        assert not cluster_id.startswith("-")
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def _format(home: Path, node_id: int, cluster_id: str) -> None:
    data = home / "kafka" / f"node-{node_id}" / "data"
    data.mkdir(parents=True)
    (data / "meta.properties").write_text(f"#\nnode.id={node_id}\nversion=1\ncluster.id={cluster_id}\n")


def test_the_formatted_data_tells_the_cluster_size(tmp_path: Path) -> None:
    assert formatted_cluster(tmp_path) == (None, 0)
    for node_id in (1, 2, 3):
        _format(tmp_path, node_id, "abc")
    (tmp_path / "kafka" / "node-4" / "data").mkdir(parents=True)  # never formatted: not part of the cluster

    assert formatted_cluster(tmp_path) == ("abc", 3)


def test_data_of_two_clusters_in_one_home_is_an_error(tmp_path: Path) -> None:
    _format(tmp_path, 1, "one")
    _format(tmp_path, 2, "other")

    with pytest.raises(StackError, match="--purge"):
        formatted_cluster(tmp_path)
