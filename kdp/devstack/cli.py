"""`kdp stack up|down|status|logs`: the command-line face of `kdp.devstack.stack.LocalStack`.

`kdp/cli.py` mounts it with `add_stack_parser(subparsers)`; the parsed namespace carries `handler`,
which runs the action and returns the exit code. `python -m kdp.devstack up|down|status|logs` offers the same
actions without the `kdp` entry point. Progress goes to stderr (through logging), results to stdout, a
`StackError` becomes one `error:` message and exit code 1 (2 for a `MissingPrerequisiteError`).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from collections.abc import Sequence
from typing import Any

from kdp.devstack import certificates, security
from kdp.devstack.config import (
    ENV_CONTROLLER_PORT,
    ENV_KAFKA_PORT,
    ENV_OIDC_PORT,
    ENV_REGISTRY_MGMT_PORT,
    ENV_REGISTRY_PORT,
    StackConfig,
)
from kdp.devstack.errors import MissingPrerequisiteError, StackError
from kdp.devstack.kafka_node import MAX_NODES
from kdp.devstack.logfiles import tail
from kdp.devstack.monitoring import Monitoring
from kdp.devstack.stack import DEFAULT_TIMEOUT, LocalStack, StackInfo

DESCRIPTION = (
    "Run Apache Kafka (KRaft) and a Confluent-compatible schema registry (Apicurio) on this machine, "
    "from Maven Central, without Docker. State lives in $KDP_HOME (default <repo>/.kdp), downloads in "
    "$KDP_CACHE (default ~/.cache/kdp)."
)


def add_stack_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `stack` command to an argparse subparsers object; returns its parser."""
    parser = subparsers.add_parser(
        "stack", help="start, stop and inspect the local Kafka and schema registry", description=DESCRIPTION
    )
    add_stack_actions(parser)
    return parser


def add_stack_actions(parser: argparse.ArgumentParser) -> None:
    """Add the up/down/status/logs actions to `parser` and make `handler` run the chosen one."""
    actions = parser.add_subparsers(dest="stack_action", required=True, metavar="{up,down,status,logs}")

    up = actions.add_parser("up", help="start the stack (no-op when it already runs) and wait until it is usable")
    up.add_argument("--brokers", type=int, default=1, help=f"Kafka nodes, 1-{MAX_NODES} (default 1)")
    up.add_argument("--no-registry", action="store_true", help="start Kafka only")
    up.add_argument(
        "--secure",
        action="store_true",
        help="TLS with a CA made at start, SASL/SCRAM logins, ACLs (credentials in $KDP_HOME/credentials/, CA in "
        "$KDP_HOME/tls/ca.pem; docs/security.md)",
    )
    up.add_argument(
        "--monitoring",
        action="store_true",
        help="also start Prometheus, the Pushgateway and the consumer-lag exporter (ports $KDP_PROMETHEUS_PORT 9090, "
        "$KDP_PUSHGATEWAY_PORT 9091, $KDP_LAG_EXPORTER_PORT 9308; Debian packages prometheus and "
        "prometheus-pushgateway)",
    )
    up.add_argument("--kafka-port", type=int, help=f"first node's client port (${ENV_KAFKA_PORT}, 9092)")
    up.add_argument("--controller-port", type=int, help=f"first node's KRaft port (${ENV_CONTROLLER_PORT}, 9192)")
    up.add_argument("--registry-port", type=int, help=f"registry API port (${ENV_REGISTRY_PORT}, 8081)")
    up.add_argument(
        "--registry-management-port", type=int, help=f"registry health port (${ENV_REGISTRY_MGMT_PORT}, 9000)"
    )
    up.add_argument("--oidc-port", type=int, help=f"--secure: the OIDC server's port (${ENV_OIDC_PORT}, 8180)")
    up.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds to wait for readiness (default 180)"
    )
    up.set_defaults(handler=_up)

    down = actions.add_parser("down", help="stop the stack's processes (only those it started)")
    down.add_argument("--purge", action="store_true", help="also delete its data and logs (schemas, topics)")
    down.set_defaults(handler=_down)

    status = actions.add_parser("status", help="show what runs where, with pids and versions")
    status.set_defaults(handler=_status)

    logs = actions.add_parser("logs", help="print the last lines of the Kafka and/or registry logs")
    logs.add_argument("component", nargs="?", choices=("kafka", "registry"), help="default: both")
    logs.add_argument("-n", "--lines", type=int, default=40, help="lines per log (default 40)")
    logs.set_defaults(handler=_logs)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m kdp.devstack ...`."""
    parser = argparse.ArgumentParser(prog="python -m kdp.devstack", description=DESCRIPTION)
    add_stack_actions(parser)
    args = parser.parse_args(argv)
    result: int = args.handler(args)
    return result


def _stack(args: argparse.Namespace) -> LocalStack:
    return LocalStack(
        StackConfig.from_env(
            kafka_port=getattr(args, "kafka_port", None),
            controller_port=getattr(args, "controller_port", None),
            registry_port=getattr(args, "registry_port", None),
            registry_management_port=getattr(args, "registry_management_port", None),
            oidc_port=getattr(args, "oidc_port", None),
        )
    )


def _reporting_errors(action: Any) -> Any:
    """Run an action with progress shown on stderr; turn StackError into a message and exit code 1 (2 when a
    prerequisite is missing)."""

    def run(args: argparse.Namespace) -> int:
        _show_progress()
        try:
            action(args)
        except StackError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2 if isinstance(error, MissingPrerequisiteError) else 1
        return 0

    return run


@_reporting_errors
def _up(args: argparse.Namespace) -> None:
    stack = _stack(args)
    info = stack.up(brokers=args.brokers, with_registry=not args.no_registry, timeout=args.timeout, secure=args.secure)
    _print_info(info)
    if args.monitoring:
        monitoring = Monitoring(stack.config.home)
        kafka_environment = info.environment()
        if info.secure and info.home is not None:
            kafka_environment |= security.principal_environment(info.home, security.ADMIN)
        monitoring.up(kafka_environment)
        print(f"Prometheus:  {monitoring.prometheus_url}   (alerts: {monitoring.prometheus_url}/alerts)")
        print(f"Pushgateway: {monitoring.pushgateway_url}")
        print(f"  export KDP_PUSHGATEWAY_URL={monitoring.pushgateway_url}    # Dagster runs push their metrics there")


@_reporting_errors
def _down(args: argparse.Namespace) -> None:
    stack = _stack(args)
    monitoring = Monitoring(stack.config.home)
    accounts = monitoring.down() + stack.down(purge=args.purge)
    if args.purge and monitoring.folder.exists():
        shutil.rmtree(monitoring.folder)
        accounts.append(f"deleted the monitoring data under {monitoring.folder}")
    for account in accounts or ["nothing was running"]:
        print(account)


@_reporting_errors
def _status(args: argparse.Namespace) -> None:
    status = _stack(args).status()
    print(f"home:    {status.home}")
    print(f"cache:   {status.cache}")
    if status.cluster_id:
        print(f"cluster: {status.cluster_id} ({status.formatted_brokers} broker(s) formatted)")
    else:
        print("cluster: none formatted yet (`kdp stack up` creates one)")
    if status.java:
        print(f"java:    {status.java}")
    if status.secure:
        ca = certificates.tls_files(status.home).ca
        print(f"security: TLS (clients trust {ca}), SASL/{security.MECHANISM} logins and ACLs; credentials in:")
        for path in status.credentials:
            print(f"  {path}")
    elif status.cluster_id:
        print("security: none (PLAINTEXT, no ACLs)")
    if not status.components:
        return
    rows = [("COMPONENT", "PID", "ADDRESS", "LOG")]
    rows += [
        (
            component.name,
            str(component.pid) if component.pid else "stopped",
            component.address,
            str(component.log),
        )
        for component in status.components
    ]
    rows += [
        (component.name, str(component.pid), component.address, str(component.log))
        for component in Monitoring(status.home).status()
        if component.pid
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[3])


@_reporting_errors
def _logs(args: argparse.Namespace) -> None:
    files = _stack(args).log_files(args.component)
    if not files:
        print("no logs yet (has `kdp stack up` run under this KDP_HOME?)")
    for title, path in files:
        print(f"==> {title}: {path} <==")
        for line in tail(path, args.lines):
            print(line)


def _print_info(info: StackInfo) -> None:
    print(f"Kafka:    {info.bootstrap} ({info.brokers} broker{'s' if info.brokers > 1 else ''})")
    print(f"Registry: {info.registry_url or 'not started'}")
    print("To point the pipeline at it:")
    for name, value in info.environment().items():
        print(f"  export {name}={value}")
    if info.secure and info.home is not None:
        print(f"  source {security.credentials_file(info.home)}    # as admin (every right), or as one principal:")
        for name in security.CLIENT_NAMES:
            if name != security.ADMIN:
                print(f"  source {security.credentials_file(info.home, name)}")


def _show_progress() -> None:
    """Send the stack's progress messages to stderr, unless the application configured logging already."""
    if logging.getLogger().handlers:
        return
    logger = logging.getLogger("localstack")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
