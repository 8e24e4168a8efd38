"""Kill -9 in the middle of work: start a `kdp` command and SIGKILL it once it has committed a few batches.

Both `kdp stream` and `kdp replay` log progress lines carrying `... batches <n> ...` (with `--log-every`), where
`n` counts committed batches; a kill after some but not all of them is what a crash-recovery test needs.
"""

from __future__ import annotations

import signal
import subprocess
import time

import pytest


def kill_after_committed_batches(
    command: list[str], environment: dict[str, str], batches: int = 3, timeout_s: float = 120.0
) -> None:
    """Run `command`, read its log until it reports `batches` committed batches, then SIGKILL it and reap it.

    Fails the test when the command ends first (it had too little work to be killed mid-way) or makes no
    progress for `timeout_s`."""
    victim = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout_s
    assert victim.stdout is not None
    for line in victim.stdout:
        if _committed_batches(line) >= batches:
            break
        assert time.monotonic() < deadline, f"{command[2:4]} made no progress in {timeout_s:.0f} s"
    else:
        pytest.fail(f"{command[2:4]} ended before it could be killed (exit {victim.wait()})")
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)


def _committed_batches(line: str) -> int:
    """`n` of a progress line's `batches <n>`, or 0 for any other line."""
    try:
        return int(line.split(" batches ")[1].split()[0])
    except (IndexError, ValueError):
        return 0
