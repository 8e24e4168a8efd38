"""The `kdp` entry point: it mounts every plane's subcommand, the command lines in use still parse, and the
data plane stays below it (no import of the local-stack tooling or the control plane)."""

from __future__ import annotations

import ast
import shlex
from pathlib import Path

import pytest

from kdp.cli import build_parser
from kdp.demo import Outcome, _summary
from streaming.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("command_line", "command"),
    [
        ("stack up", "stack"),
        ("stack down --purge", "stack"),
        ("generate --count 200000 --rate 50000 --malformed-rate 0.05", "generate"),
        ("stream --until-caught-up --log-every 5", "stream"),
        ("stream --instance one --log-every 0.5", "stream"),
        ("tail processed-data -n 3", "tail"),
        ("-v demo --count 1000", "demo"),
        ("replay --dry-run", "replay"),
        ("replay --reason rejected_by_broker --reason invalid_ip --failed-since 2h --limit 100 --execute", "replay"),
        ("schema check", "schema"),
        ("schema check v2.avsc --rules v2.rules.yaml", "schema"),
        ("schema preview v2.avsc --rules v2.rules.yaml --last 500 --topic user-login", "schema"),
        ("schema register v2.avsc --rules v2.rules.yaml --execute", "schema"),
        ("generate --extra-key proxy_ip=10.0.0.1,2001:db8::1 --count 10", "generate"),
    ],
)
def test_the_command_lines_in_use_parse_to_their_handler(command_line: str, command: str) -> None:
    args = build_parser().parse_args(shlex.split(command_line))
    assert args.command == command
    assert callable(args.handler)


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_data_plane_imports_neither_the_local_stack_nor_the_control_plane() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in _imported_modules(path) if name.split(".")[0] in {"orchestration", "kdp"}
        )
        for path in (ROOT / "streaming").rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_demo_summary_names_every_reason_and_what_to_run_next(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = Outcome(
        generated=1000,
        generated_s=2.0,
        malformed=50,
        without_device_type=40,
        consumed=1200,
        processed=1150,
        dead_lettered=50,
        reasons={"empty": 20, "invalid_json": 30},
        converted_s=3.0,
        delivery="at-least-once",
        backlog=200,
    )
    _summary(Settings(), outcome, 12.0)
    out = capsys.readouterr().out
    assert "events generated       1,000  (50 malformed, 40 without device_type)" in out
    assert "dead letters              50" in out
    assert out.index("invalid_json") < out.index("empty")  # the most frequent reason first
    assert "generation 500 msg/s, conversion 400 msg/s (at-least-once, 1,200 messages, 200 of them from before)" in out
    for command in ("make dev", "kdp tail processed-data", "kdp replay --dry-run", "kdp stack down"):
        assert command in out
