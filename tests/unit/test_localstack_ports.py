"""Port checks: a taken port is reported with its purpose before any JVM tries to bind it."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from kdp.devstack.errors import StackError
from kdp.devstack.ports import ensure_ports_free, free_port_block, is_port_free


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def test_a_listening_port_is_taken(listening_port: int) -> None:
    assert not is_port_free(listening_port)


def test_a_port_on_the_wildcard_address_is_taken_for_loopback_too() -> None:
    with socket.socket() as server:
        server.bind(("0.0.0.0", 0))
        server.listen()
        assert not is_port_free(server.getsockname()[1])


def test_a_closed_port_is_free_again(listening_port: int) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
    assert is_port_free(port)


def test_the_error_names_every_taken_port_and_its_purpose(listening_port: int) -> None:
    free = free_port_block(1)

    with pytest.raises(StackError) as error:
        ensure_ports_free({"registry API (--registry-port)": listening_port, "Kafka node 1": free})

    message = str(error.value)
    assert f"{listening_port}: registry API (--registry-port)" in message
    assert "Kafka node 1" not in message


def test_all_free_ports_pass_silently() -> None:
    first = free_port_block(3)
    ensure_ports_free({f"port {i}": first + i for i in range(3)})


def test_a_free_block_is_consecutive_and_free() -> None:
    first = free_port_block(8)

    assert 20000 <= first < 32000 - 8  # below the ephemeral ports clients take at random
    assert all(is_port_free(port) for port in range(first, first + 8))
