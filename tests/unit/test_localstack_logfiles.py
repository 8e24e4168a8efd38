"""Log tails for `kdp stack logs` and error messages."""

from __future__ import annotations

from pathlib import Path

from kdp.devstack.logfiles import excerpt, tail


def test_tail_returns_the_last_lines_of_a_large_file(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    log.write_text("".join(f"line {i} {'x' * 100}\n" for i in range(5000)))

    assert [line.split()[1] for line in tail(log, 3)] == ["4997", "4998", "4999"]


def test_tail_of_a_short_file_is_the_whole_file(tmp_path: Path) -> None:
    log = tmp_path / "short.log"
    log.write_text("one\ntwo")

    assert tail(log, 10) == ["one", "two"]


def test_a_missing_log_gives_nothing_and_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "missing.log"

    assert tail(missing, 5) == []
    assert "nothing logged yet" in excerpt(missing)


def test_an_excerpt_names_its_file(tmp_path: Path) -> None:
    log = tmp_path / "registry.log"
    log.write_text("started\nfailed: port in use\n")

    text = excerpt(log, 1)

    assert str(log) in text and "failed: port in use" in text and "started" not in text
