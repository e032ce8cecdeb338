"""What every command shares: the exit codes, bad input as ``Error: ...`` (exit 2), stdout that fails.

``state.debug`` is ``--debug``, which the root callback sets: then
`user_errors` lets the error through, traceback and all.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated

import typer

from convcli.errors import ConvcliError

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # Ctrl-C; SIGTERM, SIGHUP: 143, 129 (`workers.stop_exit_code`)

QuietOpt = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="Print errors only: no tables, warnings or progress (--json still prints).",
    ),
]


@dataclass
class _State:
    debug: bool = False


state = _State()


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn bad input into ``Error: ...`` on stderr and exit code 2."""
    try:
        yield
    except (ConvcliError, ValueError) as err:
        if state.debug:
            raise
        from convcli import render

        render.error(str(err))
        raise typer.Exit(code=EXIT_BAD_INPUT) from None


@contextmanager
def stdout_failures() -> Iterator[None]:
    """Turn a failed write to stdout into ``Error: ...`` and exit code 1.

    A full disk (``> /dev/full``) or an I/O error loses output: that is said
    on stderr. A reader that has gone (``| head -1``) ends the command
    quietly, with exit code 1 as rich does for the text views. Either way
    stdout is pointed at ``/dev/null``, so that Python's last flush does not
    fail again.
    """
    try:
        yield
        sys.stdout.flush()
    except OSError as err:
        if state.debug:
            raise
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError):  # no real stdout (a test's capture)
            pass
        if err.errno == errno.EPIPE:
            raise typer.Exit(code=EXIT_FAILED) from None
        from convcli import render

        render.error(f"cannot write the output to stdout: {err.strerror or err}")
        raise typer.Exit(code=EXIT_FAILED) from None
