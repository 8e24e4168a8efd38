"""Java's AOT cache (Java 25+): after the first run, Kafka and the registry start with much less CPU.

A JVM started with `-XX:AOTCacheOutput=F` records the classes it loads and links and writes them to F when it
exits; a JVM started with `-XX:AOTCache=F` then finds them loaded and linked already. Measured on this 2-core
machine: a Kafka node needs 2.7 instead of 4.6 CPU-seconds to become ready, the registry 3.2 instead of 4.4.
That matters most where it hurts most: three brokers, or several stacks, starting at once on a laptop.

Contract:
- A program's cache is one file in `<KDP_CACHE>/aot/`, named by the program and a digest of the Java build and
  the classpath: the JVM ignores (with a warning on stdout, then runs normally) a cache made by another build
  or for other jars, so different keys must not share a file.
- Without a cache, one process per program records, into its own state folder (`*.aot.recording`). Writing it
  happens at exit and takes 10-20 s, which `kdp stack down` waits for, once per machine. Only `down`, and only
  after the process exited on SIGTERM, moves a recording into the cache (an atomic rename): a recording of a
  killed or crashed process may be incomplete and is deleted instead, never used.
- Java older than 25 gets no options at all.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kdp.devstack.java import JavaRuntime

MINIMUM_JAVA = 25
"""`-XX:AOTCacheOutput` (one-step recording, JEP 514) arrived in Java 25."""

RECORDING_SUFFIX = ".recording"


@dataclass(frozen=True)
class AotCache:
    """The cache file of one program, and where a process of it records when the file does not exist yet."""

    cached: Path
    recording: Path

    def jvm_options(self, may_record: bool) -> list[str]:
        """Use the cache when it exists; else record it if `may_record` (one process per program).

        Java 25 warns about a few code stubs it cannot take from the cache and then makes them as usual;
        `-Xlog:aot*=error` keeps that noise out of the logs but still shows a cache refused for a mismatch.
        """
        if self.cached.is_file():
            return [f"-XX:AOTCache={self.cached}", "-Xlog:aot*=error"]
        if not may_record:
            return []
        self.recording.unlink(missing_ok=True)
        return [f"-XX:AOTCacheOutput={self.recording}", "-Xlog:aot*=error"]


def aot_cache(
    java: JavaRuntime,
    cache: Path,
    program: str,
    options: Sequence[str],
    classpath: Path,
    state_folder: Path,
) -> AotCache | None:
    """The AOT cache of `program` run by `java` with JVM `options` from the jars in `classpath` (a folder),
    or None when this Java has no AOT cache."""
    if java.major_version < MINIMUM_JAVA:
        return None
    installed = classpath.stat().st_mtime_ns if classpath.exists() else 0
    key = "\n".join([java.executable, java.description, *options, str(classpath), str(installed)])
    name = f"{program}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    return AotCache(cache / "aot" / f"{name}.aot", state_folder / f"{name}.aot{RECORDING_SUFFIX}")


def keep_recordings(state_folder: Path, cache: Path, exited_cleanly: bool) -> list[Path]:
    """After a process of `state_folder` ended: move its finished recordings into the cache, or delete them.

    Returns the cache files written. Older caches of the same program (another Java build, another version)
    are left alone: they are valid for their own key and small enough not to matter.
    """
    kept = []
    for recording in state_folder.glob(f"*.aot{RECORDING_SUFFIX}"):
        if not exited_cleanly or recording.stat().st_size == 0:
            recording.unlink(missing_ok=True)
            continue
        target = cache / "aot" / recording.name.removesuffix(RECORDING_SUFFIX)
        target.parent.mkdir(parents=True, exist_ok=True)
        program = target.name.rsplit("-", 1)[0]
        for older in target.parent.glob(f"{program}-*.aot"):
            older.unlink(missing_ok=True)
        os.replace(recording, target)
        kept.append(target)
    return kept
