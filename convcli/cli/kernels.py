"""`convcli kernels`: list the kernel catalogue, or show one kernel."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from convcli.cli.common import stdout_failures, user_errors
from convcli.cli.options import complete_kernel

if TYPE_CHECKING:
    from convcli.kernels import Kernel


def kernels(
    spec: Annotated[
        str | None,
        typer.Argument(
            metavar="NAME",
            help="A kernel to show: NAME[:key=value,...], a kernel file or a matrix.",
            autocompletion=complete_kernel,
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
    from convcli import render
    from convcli.kernels import list_kernels, load_kernel
    from convcli.tracing import json_text

    # Everything is computed (a rank may be refused) before anything is printed.
    with user_errors():
        if spec is None:
            catalogue = list_kernels()
            if as_json:
                text = json_text([_summary(k) for k in catalogue])
            else:
                shown: Any = render.kernel_table(catalogue)
        else:
            kernel = load_kernel(spec)
            if as_json:
                doc = {**kernel.to_json(), **_summary(kernel), "source": kernel.source}
                text = json_text(doc)
            else:
                shown = render.kernel_view(kernel)
    with stdout_failures():
        if as_json:
            render.print_json(text)
        else:  # laid out for the width: a number too wide for it is not cut
            render.console.print(shown, crop=False)


def _summary(kernel: Kernel) -> dict[str, Any]:
    """Return the JSON facts of one catalogue entry."""
    from convcli.kernels import GENERATORS

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
