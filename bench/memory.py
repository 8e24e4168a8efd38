"""Resident memory of a process, read from Linux's `/proc/<pid>/status` (no extra dependency).

`VmHWM` is the kernel's own high-water mark of the resident set: the true peak over the process's whole
life, which sampling from outside could miss between two samples. A measured subject reads its own
just before it reports, so the peak covers everything it did, the whole backlog included.
"""

from __future__ import annotations

from pathlib import Path


def status_field_bytes(status_text: str, name: str) -> int | None:
    """The value of a `kB` line of a `/proc/<pid>/status` text (e.g. `VmHWM`) in bytes, None if absent."""
    for line in status_text.splitlines():
        key, _, rest = line.partition(":")
        if key == name:
            parts = rest.split()
            if len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
                return int(parts[0]) * 1024
    return None


def peak_rss_bytes(pid: int | str = "self") -> int | None:
    """Peak resident set size (`VmHWM`) of `pid` (default: this process); None where /proc has no such file."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return status_field_bytes(text, "VmHWM")
