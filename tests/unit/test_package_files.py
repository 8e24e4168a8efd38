"""The files the code reads at run time travel in the wheel and are found through `package_file`.

Nothing is built here: the data files of every package are matched against pyproject.toml's package-data
patterns, which are what setuptools puts in the wheel (tests/integration/test_wheel.py builds one).
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest

from orchestration.provisioning.declarations import DECLARATIONS_FILE, load_declarations
from streaming.loop.pipeline import PROCESSED_SCHEMA
from streaming.package_files import package_file
from streaming.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def shipped_packages() -> list[str]:
    include = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted(
        p.parent.name for p in ROOT.glob("*/__init__.py") if any(fnmatch.fnmatch(p.parent.name, i) for i in include)
    )


def data_files(package: str) -> list[Path]:
    """Files of the package's folder that are not Python source or build leftovers."""
    return [
        path
        for path in (ROOT / package).rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    ]


def covered(path: Path, package_data: dict[str, list[str]]) -> bool:
    """Whether a package-data entry (package name -> patterns relative to its folder) matches `path`."""
    relative = path.relative_to(ROOT)
    for package, patterns in package_data.items():
        folder = Path(*package.split("."))
        if folder in relative.parents:
            inside = relative.relative_to(folder).as_posix()
            if any(
                fnmatch.fnmatch(inside, pattern) and inside.count("/") == pattern.count("/") for pattern in patterns
            ):
                return True
    return False


def test_every_data_file_of_a_shipped_package_is_package_data():
    package_data = PYPROJECT["tool"]["setuptools"]["package-data"]
    packages = shipped_packages()
    assert {"schemas", "streaming", "orchestration"} <= set(packages)
    missing = [str(f.relative_to(ROOT)) for p in packages for f in data_files(p) if not covered(f, package_data)]
    assert missing == [], "add these to [tool.setuptools.package-data] or the wheel lacks them"


def test_the_contracts_and_the_declarations_are_found_as_package_data():
    assert (
        PROCESSED_SCHEMA
        == package_file("schemas/processed-data-value.avsc")
        == ROOT / "schemas/processed-data-value.avsc"
    )
    assert DECLARATIONS_FILE == ROOT / "orchestration/provisioning/topics.yaml"
    [output] = [d for d in load_declarations(Settings.from_env({})) if d.value_schema is not None]
    assert output.value_schema is not None and output.value_schema.file == PROCESSED_SCHEMA


@pytest.mark.parametrize("name", ["schemas/no-such.avsc", "no_such_package/x.avsc", "schemas"])
def test_a_missing_file_is_named(name):
    with pytest.raises(FileNotFoundError, match=name):
        package_file(name)
