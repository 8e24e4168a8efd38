"""The one exception the local stack raises on purpose.

A `StackError` is meant to be shown to a person as is: its message says what went wrong *and* what to do
about it (install Maven, free a port, purge data of another cluster size, read these log lines...).
The CLI prints it without a traceback; anything else escaping is a bug.
"""


class StackError(RuntimeError):
    """A failure of `kdp stack` whose message names the cause and the remedy."""


class MissingPrerequisiteError(StackError):
    """This installation lacks something the stack needs (a Java runtime); the message names what to install.
    Exit code 2, like a bad setting: nothing was tried."""
