"""Background JVMs tracked by pid files, and stopping exactly those.

Contract:
- `start` launches a command in its own session (so Ctrl-C in the terminal that ran `kdp stack up` does not
  reach the JVMs, and the JVMs outlive it), with stdout and stderr appended to a log file and stdin closed,
  then writes the pid file.
- Every command carries a *marker* argument (`-Dkdp.process=<its state folder>`). A pid counts as ours only
  while the process with that pid has the marker on its command line, so a stale pid file whose pid the system
  has since given to another program is never signalled. The marker also makes our JVMs easy to find:
  `ps -ef | grep kdp.process`.
- `stop` sends SIGTERM (Kafka and Quarkus both shut down cleanly on it), waits, and sends SIGKILL only after a
  timeout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

LOG_ROTATE_BYTES = 10 * 1024 * 1024


def marker_argument(state_folder: Path) -> str:
    """The JVM system property that tags a process as belonging to this state folder."""
    return f"-Dkdp.process={state_folder}"


def start(
    command: Sequence[str], cwd: Path, log_file: Path, pid_file: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Launch `command` detached from the caller's session; return the Popen (pid also in `pid_file`).

    The log is appended to across starts, and set aside as `<name>.1` once it passes `LOG_ROTATE_BYTES`.
    `env`: the process's whole environment (default: this process's).
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    if log_file.exists() and log_file.stat().st_size > LOG_ROTATE_BYTES:
        log_file.replace(log_file.with_name(log_file.name + ".1"))
    with log_file.open("ab") as log:
        process = subprocess.Popen(
            list(command),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=None if env is None else dict(env),
        )
    pid_file.write_text(f"{process.pid}\n")
    return process


def read_pid(pid_file: Path) -> int | None:
    """The pid written in `pid_file`, or None when there is no readable one."""
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def running_pid(pid_file: Path, marker: str) -> int | None:
    """The pid from `pid_file` if that process is alive and carries `marker`; else None."""
    pid = read_pid(pid_file)
    if pid is None or not _is_ours(pid, marker):
        return None
    return pid


@dataclass(frozen=True)
class Stopped:
    """How a process ended: on SIGTERM within the timeout, or killed."""

    pid: int
    seconds: float
    killed: bool

    def __str__(self) -> str:
        if self.killed:
            return f"killed pid {self.pid} after {self.seconds:.0f} s without stopping on SIGTERM"
        return f"stopped pid {self.pid} in {self.seconds:.1f} s"


def stop(pid_file: Path, marker: str, timeout: float) -> Stopped | None:
    """Stop the process of `pid_file` (if ours and alive), delete the pid file; None if none was running."""
    return stop_all([pid_file], marker_for={pid_file: marker}, timeout=timeout).get(pid_file)


def stop_all(pid_files: Sequence[Path], marker_for: dict[Path, str], timeout: float) -> dict[Path, Stopped]:
    """Stop several processes together: SIGTERM to all, then wait for all, then SIGKILL the stragglers.

    Signalling together matters for a KRaft cluster: nodes stopped one after another lose their controller
    quorum half-way and the last ones wait for a majority that is gone. Returns how each running one ended.
    """
    started = time.monotonic()
    running: dict[Path, int] = {}
    for pid_file in pid_files:
        pid = running_pid(pid_file, marker_for[pid_file])
        if pid is None:
            pid_file.unlink(missing_ok=True)
            continue
        _signal(pid, signal.SIGTERM)
        running[pid_file] = pid
    ended: dict[Path, Stopped] = {}
    deadline = started + timeout
    while running and time.monotonic() < deadline:
        for pid_file, pid in list(running.items()):
            if not _is_ours(pid, marker_for[pid_file]):
                ended[pid_file] = Stopped(pid, time.monotonic() - started, killed=False)
                del running[pid_file]
        time.sleep(0.1)
    for pid_file, pid in running.items():
        _signal(pid, signal.SIGKILL)
        _wait_gone(pid, marker_for[pid_file], 10.0)
        ended[pid_file] = Stopped(pid, timeout, killed=True)
    for pid_file in pid_files:
        pid_file.unlink(missing_ok=True)
    return ended


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def _wait_gone(pid: int, marker: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _is_ours(pid, marker) and time.monotonic() < deadline:
        time.sleep(0.1)


def _is_ours(pid: int, marker: str) -> bool:
    """Alive (not a zombie) and started by us for this state folder.

    A process found dead is also reaped when it is a child of this very Python process (a test session that
    starts and stops stacks), so it does not linger as a zombie.
    """
    command_line = _command_line(pid)
    if command_line is not None and marker in command_line:
        return True
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
    return False


def _command_line(pid: int) -> str | None:
    """The process's arguments joined by spaces; None when there is no such process (or it is a zombie)."""
    if sys.platform.startswith("linux"):
        # A process that has just exec'd can show an empty cmdline for a moment (seen under gVisor); a zombie
        # shows one for good. Retry briefly unless the process is a zombie or gone.
        for _ in range(20):
            try:
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()
                if raw:
                    return raw.replace(b"\0", b" ").decode(errors="replace")
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except (OSError, IndexError):
                return None
            if state in ("Z", "X"):
                return None
            time.sleep(0.05)
        return None
    completed = subprocess.run(["ps", "-p", str(pid), "-o", "command="], capture_output=True, text=True, check=False)
    return completed.stdout.strip() or None
