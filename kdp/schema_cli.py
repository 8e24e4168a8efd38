"""`kdp schema check | preview | register`: the output schema's evolution, in the order an operator runs it.

Each takes the proposed contract: a schema file (default: the repository's `schemas/processed-data-value.avsc`)
and `--rules`, the conversion rules that fill it. The logic is `orchestration.schema.workflow`, which the
Dagster schema jobs run too. Exit codes: 0 done (check: compatible with every registered version; register:
registered, or a dry run that would register); 1 preview: a reader on one schema cannot read records of the
other; 2 bad input, changing nothing, in one line: an unreadable schema or rules file, a topic that does not
exist, an incompatible schema (the registry's reasons quoted), an unreachable registry.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from streaming.loop.pipeline import PROCESSED_SCHEMA

if TYPE_CHECKING:
    from orchestration.schema.contract import Contract
    from streaming.settings import Settings


def add_schema_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "schema",
        help="check, preview and register a change of the output schema",
        description="The output schema's evolution: check a proposed schema (and its rules) against every "
        "registered version, preview it on the source topic's recent messages, register it. Settings "
        "(registry, topics) come from KDP_* environment variables.",
    )
    commands = parser.add_subparsers(dest="schema_command", required=True, metavar="STEP")

    check = commands.add_parser(
        "check", help="the proposed schema against every registered version, with the registry's reasons"
    )
    _contract_arguments(check)
    check.set_defaults(handler=run_check)

    preview = commands.add_parser(
        "preview",
        help="the proposed contract beside the current one on recent source messages (reads only)",
        description="Convert the last messages of each source partition with the current and the proposed "
        "contract and compare: records changed and which fields, new refusals by reason, output size, and "
        "whether old readers decode new records and new readers old ones. Commits, writes and registers nothing.",
    )
    _contract_arguments(preview)
    preview.add_argument(
        "--current-schema", type=Path, default=PROCESSED_SCHEMA, help="the schema converters run now (repository's)"
    )
    preview.add_argument("--current-rules", type=Path, help="the rules converters run now (default: repository's)")
    preview.add_argument("--last", type=_positive_int, default=10_000, help="messages per partition (10000)")
    preview.add_argument("--topic", help="the topic to read (default: KDP_SOURCE_TOPIC)")
    preview.set_defaults(handler=run_preview)

    register = commands.add_parser(
        "register", help="check, then register the proposed schema (a dry run unless --execute)"
    )
    _contract_arguments(register)
    register.add_argument("--execute", action="store_true", help="register (default: only say what would happen)")
    register.set_defaults(handler=run_register)


def _contract_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "schema", nargs="?", type=Path, default=PROCESSED_SCHEMA, help="the proposed .avsc (default: repository's)"
    )
    parser.add_argument("--rules", type=Path, help="the proposed conversion rules (default: repository's)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def run_check(args: argparse.Namespace) -> int:
    from orchestration.schema import workflow

    def step() -> int:
        settings, proposed = _inputs(args)
        report = workflow.check(settings, proposed)
        print("\n".join(report.describe()))
        if not report.compatible:
            return _refuse(args, report.refusal())
        print(f"compatible with every registered version of {report.subject}")
        return 0

    return _guarded(args, step)


def run_preview(args: argparse.Namespace) -> int:
    from orchestration.schema import workflow
    from orchestration.schema.contract import load_contract

    def step() -> int:
        settings, proposed = _inputs(args)
        current = load_contract(args.current_schema, args.current_rules, native=settings.native_fast_path)
        report = workflow.preview(settings, proposed, current, last=args.last, topic=args.topic)
        print("\n".join(report.describe()))
        return 0 if report.readers_agree else 1

    return _guarded(args, step)


def run_register(args: argparse.Namespace) -> int:
    from orchestration.schema import workflow

    def step() -> int:
        settings, proposed = _inputs(args)
        report, registered = workflow.register(settings, proposed, execute=args.execute)
        print("\n".join(report.describe()))
        if registered is not None:
            print(f"registered: subject {registered.subject}, version {registered.version}, id {registered.schema_id}")
        elif report.registered_as is not None:
            print(f"dry run: already registered as version {report.registered_as}; --execute changes nothing")
        else:
            print("dry run: the registry would take it; run again with --execute to register")
        return 0

    return _guarded(args, step)


def _inputs(args: argparse.Namespace) -> tuple[Settings, Contract]:
    from orchestration.schema.contract import load_contract
    from streaming.settings import Settings

    settings = Settings.from_env()
    return settings, load_contract(args.schema, args.rules, native=settings.native_fast_path)


def _guarded(args: argparse.Namespace, step: Callable[[], int]) -> int:
    """`step()`, with the errors that mean "bad input, nothing changed" as one line and exit code 2."""
    from orchestration.schema.contract import ContractError
    from orchestration.schema.preview import PreviewError
    from orchestration.schema.registry import SchemaIncompatibleError
    from streaming.schema_registry import RegistryUnavailableError

    if not args.verbose:  # the report is the output; one log line per registry request is noise here
        for name in ("httpx", "httpx2"):
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return step()
    except (ContractError, PreviewError, SchemaIncompatibleError, RegistryUnavailableError) as error:
        return _refuse(args, str(error))


def _refuse(args: argparse.Namespace, message: str) -> int:
    print(f"kdp schema {args.schema_command}: {message}", file=sys.stderr)
    return 2
