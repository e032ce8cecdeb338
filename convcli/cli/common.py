"""What every command shares: the exit codes, and bad input as ``Error: ...`` (exit 2).

``state.debug`` is ``--debug``, which the root callback sets: then
`user_errors` lets the error through, traceback and all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import typer

from convcli.errors import ConvcliError

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # Ctrl-C; SIGTERM, SIGHUP: 143, 129 (`workers.stop_exit_code`)


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
