"""`kdp`: the command line of the pipeline.

Each subcommand lives beside the code it drives and registers itself here through an
`add_*_parser(subparsers)` function; this module only assembles them, so importing it stays
cheap (the heavy modules are imported by the subcommand that needs them).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    from localstack.cli import add_stack_parser
    from streaming.converter_cli import add_stream_parser
    from streaming.generator import add_generate_parser
    from streaming.tail import add_tail_parser

    parser = argparse.ArgumentParser(prog="kdp", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_stack_parser(subparsers)
    add_generate_parser(subparsers)
    add_stream_parser(subparsers)
    add_tail_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from streaming.settings import SettingsError

    try:
        return int(args.handler(args) or 0)
    except SettingsError as error:
        print(f"kdp: configuration error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
