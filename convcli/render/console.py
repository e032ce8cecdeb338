"""The terminal's two consoles, the one-line error, and JSON on stdout."""

from __future__ import annotations

import sys

from rich.console import Console

from convcli.errors import shown

console = Console(highlight=False, emoji=False)  # ":smile:" in a path stays text
err_console = Console(stderr=True, highlight=False, emoji=False)


def error(message: str) -> None:
    """Print ``Error: message`` on stderr, on one line, as plain text.

    Paths may hold ``[`` (no markup) and control characters, which are
    escaped so that a file name can neither split the line nor drive the
    terminal.
    """
    err_console.print(
        f"Error: {shown(message)}", markup=False, highlight=False, soft_wrap=True
    )


def print_json(text: str) -> None:
    """Write a JSON document to stdout as it is, nothing else."""
    sys.stdout.write(text + "\n")
