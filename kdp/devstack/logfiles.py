"""The last lines of a log file: for `kdp stack logs` and for errors that show why a process died."""

from __future__ import annotations

from collections import deque
from pathlib import Path


def tail(path: Path, lines: int) -> list[str]:
    """Up to `lines` last lines of `path` without their line ends; empty when the file does not exist yet.

    Reads from the end in blocks, so asking for 20 lines of a 10 MB log costs one or two reads, not the file.
    """
    if lines <= 0 or not path.is_file():
        return []
    block = 64 * 1024
    with path.open("rb") as handle:
        end = handle.seek(0, 2)
        position = end
        data = b""
        while position > 0 and data.count(b"\n") <= lines:
            position = max(0, position - block)
            handle.seek(position)
            data = handle.read(end - position)
    kept: deque[str] = deque(data.decode(errors="replace").splitlines(), maxlen=lines)
    return list(kept)


def excerpt(path: Path, lines: int = 30) -> str:
    """A log's last lines indented under a header naming the file, ready to append to an error message."""
    found = tail(path, lines)
    if not found:
        return f"(nothing logged yet in {path})"
    return f"Last lines of {path}:\n" + "\n".join(f"    {line}" for line in found)
