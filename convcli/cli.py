"""The command line: parse, call the library, render, choose the exit code."""

from __future__ import annotations

from typing import Annotated

import typer

from convcli import __version__

app = typer.Typer(
    name="convcli",
    rich_markup_mode=None,
    no_args_is_help=True,
    add_completion=False,
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
) -> None:
    """Filter images with convolution kernels, and see how a convolution works."""


def main() -> None:
    """Run the convcli command line."""
    app()
