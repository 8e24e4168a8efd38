"""Where the peers of `make bench` run: the venv spec (digest, path, built or not) and the peer list (pure logic)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench.peers import ARROYO, PEERS, QUIX
from bench.peers.environments import MARKER, PeerEnvironment, ensure_venv


@pytest.fixture
def spec(tmp_path: Path) -> PeerEnvironment:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("quixstreams==3.28.1\nmsgspec==0.22.0\n")
    return PeerEnvironment("quixstreams", requirements)


def test_the_venv_is_named_after_its_requirements_and_python(spec: PeerEnvironment, tmp_path: Path) -> None:
    digest = spec.digest("3.11.7")
    assert len(digest) == 12 and int(digest, 16) >= 0
    assert spec.digest("3.11.7") == digest  # stable: the same pins find the same venv
    assert spec.digest("3.12.1") != digest  # another interpreter: another venv
    expected = tmp_path / "cache" / "bench" / "venvs" / f"quixstreams-{digest}"
    assert spec.venv_path(tmp_path / "cache", "3.11.7") == expected


def test_changing_a_pin_asks_for_a_new_venv(spec: PeerEnvironment) -> None:
    before = spec.digest("3.11.7")
    assert spec.requirements is not None
    spec.requirements.write_text("quixstreams==3.28.2\nmsgspec==0.22.0\n")
    assert spec.digest("3.11.7") != before


def test_a_venv_counts_as_built_only_with_its_marker(spec: PeerEnvironment, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    path = spec.venv_path(cache)
    path.mkdir(parents=True)
    assert not spec.is_built(cache)  # a folder left by an interrupted build is not a venv
    (path / MARKER).write_text("built\n")
    assert spec.is_built(cache)
    assert ensure_venv(spec, cache) == path  # built: reused, nothing run
    assert spec.python(cache) == str(path / "bin" / "python")


def test_a_peer_in_the_projects_environment_uses_the_harness_interpreter(tmp_path: Path) -> None:
    project = PeerEnvironment("arroyo")
    assert not project.own_venv and project.is_built(tmp_path)
    assert project.python(tmp_path) == sys.executable
    with pytest.raises(ValueError, match="project's environment"):
        project.digest()


def test_quix_has_its_own_pinned_venv_and_arroyo_shares_ours() -> None:
    assert [peer.key for peer in PEERS] == ["quixstreams", "arroyo"]
    assert QUIX.environment.own_venv and not ARROYO.environment.own_venv
    assert QUIX.environment.requirements is not None
    pins = [line for line in QUIX.environment.requirements.read_text().splitlines() if line and line[0] != "#"]
    assert all("==" in line for line in pins)  # every package pinned
    assert any(line.startswith("quixstreams[avro]==3.") for line in pins)
    assert any(line.startswith("msgspec==") for line in pins)  # our transform needs it
