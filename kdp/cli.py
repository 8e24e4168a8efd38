"""The `kdp` entry point: one parser with a subcommand per plane's command.

Each subcommand registers itself through an `add_*_parser(subparsers)` function that lives beside its code
and sets `handler` (namespace -> exit code). Importing this module stays cheap: the heavy modules are
imported by the handler that needs them. Long-running handlers stop on SIGINT/SIGTERM through
`streaming.shutdown`; a Ctrl-C anywhere else ends the command with exit code 130. A bad setting, or a Kafka or
registry that does not answer, ends it with one line naming the setting and exit code 2; so does a refusal of
the cluster (a missing ACL, a failed login), naming the principal, the resource and the operation
(`streaming.access`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from kdp.demo import add_demo_parser
from kdp.devstack.cli import add_stack_parser
from kdp.schema_cli import add_schema_parser
from streaming.cli.generate import add_generate_parser
from streaming.cli.replay import add_replay_parser
from streaming.cli.stream import add_stream_parser
from streaming.cli.tail import add_tail_parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kdp", description="The command line of the Kafka data pipeline.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_stack_parser(subparsers)
    add_generate_parser(subparsers)
    add_stream_parser(subparsers)
    add_tail_parser(subparsers)
    add_replay_parser(subparsers)
    add_schema_parser(subparsers)
    add_demo_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from streaming.access import refusal_line
    from streaming.schema_registry import SchemaNotRegisteredError
    from streaming.settings import ServiceUnreachableError, SettingsError

    try:
        return int(args.handler(args) or 0)
    except SettingsError as error:
        print(f"kdp: configuration error: {error}", file=sys.stderr)
        return 2
    except ServiceUnreachableError as error:
        print(f"kdp: {error}", file=sys.stderr)
        return 2
    except SchemaNotRegisteredError as error:  # a converter or a replay refusing to start: nothing was changed
        print(f"kdp {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        line = refusal_line(error)
        if line is None:
            raise
        print(f"kdp {args.command}: {line}", file=sys.stderr)
        return 2
