"""CI checks what the Makefile offers: `.ci/run` runs lint, type check and tests, over every folder of code."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: Folders of Python code that lint and type checks cover (tests are linted, not type-checked).
CODE_FOLDERS = {"kdp", "streaming", "orchestration", "bench"}


def make_recipe(target: str) -> list[str]:
    """The command lines of a Makefile target's recipe."""
    lines = (ROOT / "Makefile").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{target}:"))
    recipe = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        recipe.append(line.strip())
    return recipe


def test_ci_runs_lint_typecheck_and_tests():
    commands = [line for line in (ROOT / ".ci/run").read_text(encoding="utf-8").splitlines() if line.startswith("make")]
    assert commands == ["make lint typecheck test"]


def test_every_code_folder_is_linted_and_type_checked():
    python_folders = {p.parent.name for p in ROOT.glob("*/__init__.py")}
    assert python_folders - {"tests", "schemas"} == CODE_FOLDERS
    for command in make_recipe("lint"):
        linted = set(re.sub(r"^\$\(BIN\)/ruff (check|format --check) ", "", command).split())
        assert linted == CODE_FOLDERS | {"tests"}, command
    mypy = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert set(mypy["packages"]) == CODE_FOLDERS
