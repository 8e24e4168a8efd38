"""Reading the stack's folders and ports from the environment and flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from kdp.devstack.config import StackConfig
from kdp.devstack.errors import StackError


def test_environment_sets_folders_and_ports(tmp_path: Path) -> None:
    config = StackConfig.from_env(
        {
            "KDP_HOME": str(tmp_path / "home"),
            "KDP_CACHE": str(tmp_path / "cache"),
            "KDP_KAFKA_PORT": "19092",
            "KDP_CONTROLLER_PORT": "19192",
            "KDP_REGISTRY_PORT": "18081",
            "KDP_REGISTRY_MGMT_PORT": "19000",
        }
    )

    assert (config.home, config.cache) == (tmp_path / "home", tmp_path / "cache")
    assert (config.kafka_port, config.controller_port) == (19092, 19192)
    assert (config.registry_port, config.registry_management_port) == (18081, 19000)


def test_flags_win_over_the_environment_and_unset_flags_do_not(tmp_path: Path) -> None:
    config = StackConfig.from_env({"KDP_KAFKA_PORT": "19092"}, home=tmp_path, kafka_port=29092, registry_port=None)

    assert config.kafka_port == 29092
    assert config.registry_port == 8081


def test_defaults_without_environment() -> None:
    config = StackConfig.from_env({})

    assert config.home.name == ".kdp"
    assert config.cache.parts[-2:] == (".cache", "kdp") or config.cache.name == "kdp"
    assert config.bootstrap(3) == "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094"


@pytest.mark.parametrize("value", ["ninety", "0", "70000"])
def test_a_bad_port_names_its_variable(value: str) -> None:
    with pytest.raises(StackError, match="KDP_REGISTRY_PORT"):
        StackConfig.from_env({"KDP_REGISTRY_PORT": value})


def test_the_stack_host_is_what_clients_are_told_to_connect_to() -> None:
    config = StackConfig.from_env({"KDP_STACK_HOST": "10.213.0.1"})

    assert config.bootstrap(2) == "10.213.0.1:9092,10.213.0.1:9093"


@pytest.mark.parametrize("value", ["localhost", "0.0.0.0", "10.0.0", "::1"])
def test_a_stack_host_clients_cannot_connect_to_names_its_variable(value: str) -> None:
    with pytest.raises(StackError, match="KDP_STACK_HOST"):
        StackConfig.from_env({"KDP_STACK_HOST": value})
