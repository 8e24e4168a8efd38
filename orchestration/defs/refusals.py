"""A run refused by the cluster fails with one line naming the principal, the resource and the operation."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from streaming.access import refusal_line
from streaming.settings import Settings


@contextmanager
def refusals_fail_the_run(settings: Settings) -> Iterator[None]:
    """Within the block, a missing ACL or a failed login (`streaming.access`) becomes a `dg.Failure` that says so
    in one line and is not retried: retrying cannot grant a right."""
    try:
        yield
    except Exception as error:
        line = refusal_line(error, settings)
        if line is None:
            raise
        raise dg.Failure(description=line, allow_retries=False) from None
