"""Pid files: a started process is found by its marker, stopped on SIGTERM, and a stranger is never signalled.

Uses a sleeping Python process as the stand-in for a JVM: what is tested is the pid-file contract, not Java.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from kdp.devstack import processes
from kdp.devstack.logfiles import tail


def _gone(pid: int) -> bool:
    """True when no process has this pid any more (stop reaps its own children, so no zombie remains)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _sleeper(folder: Path) -> list[str]:
    return [sys.executable, "-c", "import time; time.sleep(120)", processes.marker_argument(folder)]


def test_a_started_process_is_tracked_then_stopped(tmp_path: Path) -> None:
    pid_file = tmp_path / "sleeper.pid"
    marker = processes.marker_argument(tmp_path)
    started = processes.start(_sleeper(tmp_path), tmp_path, tmp_path / "logs" / "out.log", pid_file)

    assert processes.running_pid(pid_file, marker) == started.pid

    stopped = processes.stop(pid_file, marker, timeout=10)

    assert stopped is not None and (stopped.pid, stopped.killed) == (started.pid, False)
    assert str(stopped).startswith(f"stopped pid {started.pid}")
    assert _gone(started.pid)
    assert not pid_file.exists()
    assert processes.running_pid(pid_file, marker) is None


def test_a_pid_without_our_marker_is_not_ours(tmp_path: Path) -> None:
    pid_file = tmp_path / "stale.pid"
    pid_file.write_text(f"{os.getpid()}\n")  # this test process: alive, but no marker on its command line

    assert processes.running_pid(pid_file, processes.marker_argument(tmp_path)) is None
    assert processes.stop(pid_file, processes.marker_argument(tmp_path), timeout=1) is None
    assert not pid_file.exists()


def test_a_process_ignoring_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    stubborn = [
        sys.executable,
        "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
        "time.sleep(120)",
        processes.marker_argument(tmp_path),
    ]
    pid_file = tmp_path / "stubborn.pid"
    log = tmp_path / "stubborn.log"
    started = processes.start(stubborn, tmp_path, log, pid_file)
    while tail(log, 1) != ["ready"]:
        assert started.poll() is None

    stopped = processes.stop(pid_file, processes.marker_argument(tmp_path), timeout=1)

    assert stopped is not None and stopped.killed
    assert str(stopped).startswith(f"killed pid {started.pid}")
    assert _gone(started.pid)


def test_the_process_runs_in_its_own_session(tmp_path: Path) -> None:
    started = processes.start(_sleeper(tmp_path), tmp_path, tmp_path / "out.log", tmp_path / "s.pid")
    try:
        assert os.getsid(started.pid) == started.pid != os.getsid(0)
    finally:
        started.kill()
        started.wait()


def test_output_goes_to_the_log_file(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import sys; print('to stdout'); print('to stderr', file=sys.stderr)"]
    log = tmp_path / "out.log"
    processes.start(command, tmp_path, log, tmp_path / "p.pid").wait(timeout=30)

    assert sorted(tail(log, 10)) == ["to stderr", "to stdout"]


def test_stop_all_reports_each_process(tmp_path: Path) -> None:
    folders = [tmp_path / name for name in ("a", "b")]
    for folder in folders:
        folder.mkdir()
        processes.start(_sleeper(folder), folder, folder / "out.log", folder / "p.pid")

    ended = processes.stop_all(
        [folder / "p.pid" for folder in folders],
        {folder / "p.pid": processes.marker_argument(folder) for folder in folders},
        timeout=10,
    )

    assert sorted(path.parent.name for path in ended) == ["a", "b"]
    assert not any(stopped.killed for stopped in ended.values())
    assert subprocess.run(["pgrep", "-f", f"kdp.process={tmp_path}"], capture_output=True).stdout == b""


def test_a_large_log_is_set_aside_at_the_next_start(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(processes, "LOG_ROTATE_BYTES", 10)
    log = tmp_path / "out.log"
    log.write_text("an old run's output\n")
    command = [sys.executable, "-c", "print('new run')"]

    processes.start(command, tmp_path, log, tmp_path / "p.pid").wait(timeout=30)

    assert tail(log, 5) == ["new run"]
    assert tail(tmp_path / "out.log.1", 5) == ["an old run's output"]
