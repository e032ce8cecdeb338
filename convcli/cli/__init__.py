"""The `convcli` command line: the Typer app, its root options, its commands.

Each command is a module of this package (`kernels`, `apply`, `batch`,
`trace`): parse the options, call the library, render, choose the exit code.
The options `apply` and `batch` share are declared in `convcli.cli.options`,
and bad input becomes exit code 2 in `convcli.cli.common`. numpy, Pillow and
rich are imported inside the commands that need them, so that
`convcli --help` and `convcli --version` start fast: no module here imports
more than typer, the standard library, `convcli.errors` and `convcli.names`
at load time.
"""

from __future__ import annotations

from typing import Annotated

import typer

from convcli import __version__
from convcli.cli import apply, batch, kernels, trace
from convcli.cli.common import state

__all__ = ["app", "main"]

app = typer.Typer(
    name="convcli",
    rich_markup_mode=None,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Filter images with convolution kernels, and see how a convolution works.",
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"convcli {__version__}")
        raise typer.Exit


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_show_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the Python traceback of an error.")
    ] = False,
) -> None:
    """Filter images with convolution kernels, and see how a convolution works."""
    state.debug = debug


# In this order in `convcli --help`.
app.command()(kernels.kernels)
app.command()(apply.apply)
app.command()(batch.batch)
app.command()(trace.trace)


def main() -> None:
    """Run the convcli command line."""
    app()
