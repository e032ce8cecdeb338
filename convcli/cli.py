"""The command line: parse, call the library, render, choose the exit code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from convcli import __version__, render
from convcli.errors import ConvcliError
from convcli.kernels import GENERATORS, Kernel, list_kernels, load_kernel

EXIT_BAD_INPUT = 2

app = typer.Typer(
    name="convcli",
    rich_markup_mode=None,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Filter images with convolution kernels, and see how a convolution works.",
)


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
        render.error(str(err))
        raise typer.Exit(code=EXIT_BAD_INPUT) from None


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


def _summary(kernel: Kernel) -> dict[str, Any]:
    """Return the JSON facts of one catalogue entry."""
    gen = GENERATORS.get(kernel.name) if kernel.source == "generator" else None
    rank = kernel.rank
    return {
        "name": kernel.name,
        "shape": list(kernel.weights.shape),
        "parameters": dict(gen.defaults) if gen else {},
        "separable": rank == 1,
        "rank": rank,
        "sum": round(kernel.total, 12),
        "combine": kernel.combine,
        "range": kernel.range,
        "description": kernel.description,
        "origin": kernel.origin,
    }


@app.command()
def kernels(
    spec: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME",
            help="A kernel to show: NAME[:key=value,...], a kernel file or a matrix.",
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON on stdout instead of tables.")
    ] = False,
) -> None:
    """List the kernel catalogue, or show one kernel's weights and properties.

    Examples: `convcli kernels`, `convcli kernels sobel`,
    `convcli kernels gaussian:sigma=2`, `convcli kernels "0,-1,0;-1,5,-1;0,-1,0"`.
    """
    with user_errors():
        if spec is None:
            catalogue = list_kernels()
        else:
            kernel = load_kernel(spec)
    if spec is None:
        if as_json:
            render.print_json(json.dumps([_summary(k) for k in catalogue], indent=2))
        else:
            render.console.print(render.kernel_table(catalogue))
        return
    if as_json:
        doc = {**kernel.to_json(), **_summary(kernel), "source": kernel.source}
        render.print_json(json.dumps(doc, indent=2))
    else:
        render.console.print(render.kernel_view(kernel))


def main() -> None:
    """Run the convcli command line."""
    app()
