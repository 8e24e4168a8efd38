"""Where each peer runs: the project's own interpreter, or a virtual environment of its own, built on demand.

A peer whose pins fit ours (Arroyo) runs with the harness's interpreter and the project's venv. A peer
whose pins clash (Quix Streams wants an older confluent-kafka) gets a venv of its own under
`$KDP_CACHE/bench/venvs/<name>-<digest>/`, built from a pinned requirements file by `pip` from PyPI the
first time it is needed, and reused afterwards. The digest covers the requirements file and the Python
version, so changing a pin (or the interpreter) builds a new venv instead of silently reusing the old one.

Building is safe when two benchmark runs start at once (developers share the machine and the cache): one
builds under a file lock while the other waits, and a venv counts as built only once its marker file is
written, so a build that was interrupted is started again from scratch.
"""

from __future__ import annotations

import fcntl
import hashlib
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from kdp.devstack.config import StackConfig

PEERS_DIR = Path(__file__).resolve().parent
MARKER = ".kdp-bench-complete"


class EnvironmentBuildError(RuntimeError):
    """pip could not build a peer's venv; the message quotes the end of pip's output."""


@dataclass(frozen=True)
class PeerEnvironment:
    """The interpreter a peer runs with. `requirements` None: the harness's own (the project's venv)."""

    name: str
    requirements: Path | None = None

    @property
    def own_venv(self) -> bool:
        return self.requirements is not None

    def digest(self, python_version: str | None = None) -> str:
        """12 hex digits of the requirements' text and the Python version: what the venv is built from."""
        if self.requirements is None:
            raise ValueError(f"{self.name} runs in the project's environment and has no venv of its own")
        version = python_version or platform.python_version()
        text = self.requirements.read_text()
        return hashlib.sha256(f"python {version}\n{text}".encode()).hexdigest()[:12]

    def venv_path(self, cache: Path, python_version: str | None = None) -> Path:
        return cache / "bench" / "venvs" / f"{self.name}-{self.digest(python_version)}"

    def is_built(self, cache: Path) -> bool:
        return not self.own_venv or (self.venv_path(cache) / MARKER).is_file()

    def python(self, cache: Path | None = None) -> str:
        """The interpreter to run the peer with, building its venv first when it has one and it is missing."""
        if self.requirements is None:
            return sys.executable
        return str(ensure_venv(self, cache or bench_cache()) / "bin" / "python")


def bench_cache() -> Path:
    """`$KDP_CACHE` (default `~/.cache/kdp`), the local stack's download cache: kept across clones and runs."""
    return StackConfig.from_env().cache


def ensure_venv(environment: PeerEnvironment, cache: Path) -> Path:
    """The built venv of `environment` under `cache`, built now (under a lock) if it is not there yet."""
    path = environment.venv_path(cache)
    if (path / MARKER).is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / f"{path.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be building the same venv: wait for it
        if (path / MARKER).is_file():
            return path
        shutil.rmtree(path, ignore_errors=True)  # a build interrupted earlier
        started = time.monotonic()
        print(f"building the {environment.name} venv in {path} (once) ...", file=sys.stderr, flush=True)
        assert environment.requirements is not None
        steps = [
            [sys.executable, "-m", "venv", str(path)],
            [str(path / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check"]
            + ["-r", str(environment.requirements)],
        ]
        for command in steps:
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                shutil.rmtree(path, ignore_errors=True)
                output = (done.stdout + done.stderr).strip().splitlines()[-15:]
                raise EnvironmentBuildError(f"{' '.join(command[:4])} failed:\n" + "\n".join(output))
        (path / MARKER).write_text(f"built in {time.monotonic() - started:.0f} s\n")
        print(f"  built in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return path


def installed_version(python: str, package: str) -> str | None:
    """The version of `package` installed for the interpreter `python`, None if it is not installed."""
    code = f"from importlib import metadata\ntry: print(metadata.version({package!r}))\nexcept Exception: pass"
    done = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
    return done.stdout.strip() or None
