"""The container image's dependency list, from pyproject.toml: `python image_requirements.py pyproject.toml`.

Why it exists: the Dockerfile installs the dependencies (through constraints.txt) in a layer of their own,
before the source is copied, so that editing code does not reinstall them; pip can only do that from a
plain list. The list is pyproject's `[project].dependencies` plus its `deploy` extra, Dagster's Postgres
storage, which the containers' instance (deploy/dagster) uses. Dagster releases its libraries in lockstep,
versioned 0.(minor + 16).patch for dagster 1.minor.patch, each pinning the exact dagster it belongs to; the
extra states the series and constraints.txt (`make lock` includes the extra) picks the patch that matches the
locked dagster. The `local` extra (the local stack's Java runtime) stays out: in containers the brokers and
the registry are services of their own.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

IMAGE_EXTRA = "deploy"


def image_requirements(pyproject: dict) -> list[str]:
    """pyproject's runtime dependencies plus the `deploy` extra."""
    project = pyproject["project"]
    return list(project["dependencies"]) + list(project["optional-dependencies"][IMAGE_EXTRA])


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} PYPROJECT_TOML", file=sys.stderr)
        return 2
    pyproject = tomllib.loads(Path(argv[1]).read_text(encoding="utf-8"))
    print("\n".join(image_requirements(pyproject)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
