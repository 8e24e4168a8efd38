"""`kdp generate`: the command line of the generator (`streaming.generator.producer` holds the producing loop).

Flags are validated as they are parsed and name themselves in errors; the irregularity shares must add up to
at most 1. SIGINT/SIGTERM stop the run and flush, a second one abandons the flush (`streaming.shutdown`). The
summary goes to stdout as one JSON object; the exit code is 1 when any message was not delivered.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys

from streaming import access
from streaming.generator.events import MALFORMED_KINDS, EventFactory, Irregularity, IrregularityRates
from streaming.generator.producer import generate
from streaming.settings import Settings
from streaming.shutdown import Shutdown

log = logging.getLogger(__name__)


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be >= 0")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be > 0")
    return value


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"{text} must be > 0")
    return value


def _share(text: str) -> float:
    value = _non_negative_float(text)
    if value > 1:
        raise argparse.ArgumentTypeError(f"{text} is a share of the events: it must be between 0 and 1")
    return value


def _extra_key(text: str) -> tuple[str, list[str]]:
    name, sep, values = text.partition("=")
    choices = [value for value in values.split(",") if value] if sep else []
    if not name or not choices:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE[,VALUE...]")
    return name, choices


def _rate_flag(kind: Irregularity) -> str:
    return f"--{kind.value.replace('_', '-')}-rate"


def add_generate_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Mount `generate` on the `kdp` command line; the handler returns the exit code (0 = all delivered)."""
    parser = subparsers.add_parser(
        "generate",
        help="produce synthetic login events to the source topic",
        description="Produce synthetic login events (JSON, keyed by user id) with optional irregularities. "
        "Runs until --count or --duration is reached, or until stopped: Ctrl-C stops and flushes, a second "
        "Ctrl-C abandons the flush. "
        "Prints a JSON summary on stdout; exits 1 if any message was not delivered.",
    )
    parser.add_argument(
        "--rate", type=_non_negative_float, default=1000.0, help="messages/s (default 1000); 0 = unlimited"
    )
    parser.add_argument("--count", type=_positive_int, help="stop after this many messages")
    parser.add_argument("--duration", type=_positive_float, help="stop after this many seconds")
    parser.add_argument("--seed", type=int, help="random seed (default: a random one, logged)")
    parser.add_argument("--topic", help="target topic (default: KDP_SOURCE_TOPIC, user-login)")
    parser.add_argument("--users", type=_positive_int, default=10_000, help="size of the user pool (default 10000)")
    parser.add_argument(
        "--missing-device-type-rate", type=_share, default=0.05, help="share without device_type (0.05)"
    )
    parser.add_argument(
        "--malformed-rate",
        type=_share,
        default=0.0,
        help=f"share of malformed messages, spread evenly over {', '.join(k.value for k in MALFORMED_KINDS)}",
    )
    for kind in MALFORMED_KINDS:
        parser.add_argument(_rate_flag(kind), type=_share, default=0.0, help=f"share of {kind.value} messages")
    parser.add_argument(
        "--extra-key",
        type=_extra_key,
        action="append",
        default=[],
        metavar="KEY=VALUE[,VALUE...]",
        help="add KEY to every well-formed event, with one of the VALUEs (text) at random; repeatable. "
        "For trying a schema change that reads a new input key",
    )
    parser.add_argument(
        "--progress-every",
        type=_non_negative_float,
        default=5.0,
        help="seconds between progress lines (default 5); 0 = none",
    )

    def handler(args: argparse.Namespace) -> int:
        try:
            rates = rates_from_args(args)
        except ValueError as error:
            parser.error(str(error))
        return run_generate_command(args, rates)

    parser.set_defaults(handler=handler)
    return parser


def rates_from_args(args: argparse.Namespace) -> IrregularityRates:
    """The irregularity rates the flags ask for; `ValueError` names the flags when they add up to over 1."""
    per_kind = {kind.value: getattr(args, kind.value + "_rate") for kind in MALFORMED_KINDS}
    try:
        return IrregularityRates.with_malformed(
            args.malformed_rate, missing_device_type=args.missing_device_type_rate, **per_kind
        )
    except ValueError as error:
        given = {_rate_flag(Irregularity.MISSING_DEVICE_TYPE): args.missing_device_type_rate}
        given["--malformed-rate"] = args.malformed_rate
        given.update({_rate_flag(kind): per_kind[kind.value] for kind in MALFORMED_KINDS})
        flags = ", ".join(f"{flag} {value:g}" for flag, value in given.items() if value > 0)
        raise ValueError(f"{flags}: {error}") from None


def run_generate_command(args: argparse.Namespace, rates: IrregularityRates) -> int:
    """Run `kdp generate` with the settings from the environment; prints the summary as JSON on stdout."""
    settings = Settings.from_env()
    topic = args.topic or settings.source_topic
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    bounds = [f"{args.count} messages" if args.count else "", f"{args.duration:g} s" if args.duration else ""]
    log.info(
        "generating to %s on %s at %s, seed %d, until %s",
        topic,
        settings.bootstrap,
        f"{args.rate:g} msg/s" if args.rate else "full speed",
        seed,
        " or ".join(bound for bound in bounds if bound) or "stopped",
    )
    access.check_access(settings, [access.topic(topic, "WRITE")])
    try:
        factory = EventFactory(seed, rates, users=args.users, extra_keys=dict(args.extra_key))
    except ValueError as refused:
        print(f"kdp generate: --extra-key: {refused}", file=sys.stderr)
        return 2
    with Shutdown("stopping and flushing", "abandoning the flush").on_signals() as shutdown:
        summary = generate(
            settings.kafka_config(),
            topic,
            factory,
            rate=args.rate,
            count=args.count,
            duration_s=args.duration,
            progress_every_s=args.progress_every,
            stop=shutdown.stop,
            abandon=shutdown.abandon,
        )
    print(json.dumps({"topic": topic, "seed": seed, **summary.as_dict()}))
    for error in summary.errors:
        log.error("%s", error)
    log.info(
        "produced %d in %.1f s (%.0f msg/s): delivered %d, failed %d",
        summary.produced,
        summary.elapsed_s,
        summary.rate,
        summary.delivered,
        summary.failed,
    )
    return 0 if summary.ok else 1
