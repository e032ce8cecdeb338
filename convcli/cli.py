"""The command line: parse, call the library, render, choose the exit code."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from convcli import __version__
from convcli.errors import ConvcliError
from convcli.names import (
    ALPHA_MODES,
    BORDER_ALIASES,
    BORDERS,
    CHANNELS,
    LIKE_NAMES,
    METHODS,
    RANGES,
)

if TYPE_CHECKING:
    from convcli.kernels import Kernel
    from convcli.pipeline import ApplyResult

# numpy, Pillow and rich are imported inside the commands that need them, so
# that `convcli --help` and `convcli --version` start fast.

Border = Enum("Border", {b: b for b in (*BORDERS, *BORDER_ALIASES)}, type=str)  # type: ignore[misc]
Method = Enum("Method", {m: m for m in METHODS}, type=str)  # type: ignore[misc]
Range = Enum("Range", {r: r for r in RANGES}, type=str)  # type: ignore[misc]
Channels = Enum("Channels", {c: c for c in CHANNELS}, type=str)  # type: ignore[misc]
Like = Enum("Like", {name: name for name in LIKE_NAMES}, type=str)  # type: ignore[misc]
Alpha = Enum("Alpha", {a: a for a in ALPHA_MODES}, type=str)  # type: ignore[misc]
_CARRY = Alpha("carry")
_REFLECT, _AUTO, _KEEP = Border("reflect"), Method("auto"), Channels("keep")

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
        from convcli import render

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
    from convcli import render
    from convcli.kernels import list_kernels, load_kernel

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


def _pair(text: str, what: str) -> int | tuple[int, int]:
    """Read ``N`` or ``N,M`` (rows, columns)."""
    parts = [p.strip() for p in text.split(",")]
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        msg = f"--{what} must be N or ROWS,COLS (whole numbers); got {text!r}"
        raise ValueError(msg) from None
    if len(numbers) == 1:
        return numbers[0]
    if len(numbers) == 2:
        return numbers[0], numbers[1]
    msg = f"--{what} must be N or ROWS,COLS; got {text!r}"
    raise ValueError(msg)


def _padding(text: str) -> int | str | tuple[int, int]:
    if text.strip().lower() in ("same", "valid"):
        return text.strip().lower()
    return _pair(text, "padding")


def _result_json(results: list[ApplyResult]) -> dict[str, Any]:
    inputs: dict[Path, dict[str, Any]] = {}
    for r in results:
        entry = inputs.setdefault(
            r.input, {"path": str(r.input), "shape": list(r.input_shape), "outputs": []}
        )
        for out in r.outputs:
            entry["outputs"].append(
                {
                    "path": str(out.path),
                    "shape": list(out.shape),
                    "kernel": r.kernel.name,
                    "kernel_shape": list(r.kernel_shape),
                    "filter": out.filter,
                    "method": r.method,
                    "stride": list(r.stride),
                    "padding": list(r.padding),
                    "dilation": list(r.dilation),
                    "border": r.border,
                    "seconds": r.seconds,
                }
            )
    return {"inputs": list(inputs.values())}


@app.command()
def apply(
    images: Annotated[
        list[Path], typer.Argument(metavar="IMAGE...", help="Images to filter.")
    ],
    kernel: Annotated[
        list[str],
        typer.Option(
            "--kernel",
            "-k",
            help="A kernel: NAME[:params], a file or a matrix; repeatable.",
        ),
    ],
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Output file (one input, one output) or folder."
        ),
    ] = None,
    stride: Annotated[
        str, typer.Option(help="Step between windows: N or ROWS,COLS.")
    ] = "1",
    padding: Annotated[
        str, typer.Option(help="same (keep the size), valid (none), N or ROWS,COLS.")
    ] = "same",
    dilation: Annotated[
        str, typer.Option(help="Spacing between taps: N or ROWS,COLS.")
    ] = "1",
    border: Annotated[Border, typer.Option(help="What the padding holds.")] = _REFLECT,
    cval: Annotated[float, typer.Option(help="Value of constant padding.")] = 0.0,
    flip: Annotated[
        bool,
        typer.Option(
            "--flip", help="Rotate the kernel 180 degrees (true convolution)."
        ),
    ] = False,
    value_range: Annotated[
        Range | None,
        typer.Option(
            "--range", help="Float result to pixels; default: the kernel's own."
        ),
    ] = None,
    method: Annotated[Method, typer.Option(help="How to compute.")] = _AUTO,
    channels: Annotated[
        Channels,
        typer.Option(help="keep the image's channels, or convert to gray or rgb."),
    ] = _KEEP,
    float_output: Annotated[
        bool, typer.Option("--float", help="Write the raw float32 values as TIFF.")
    ] = False,
    quality: Annotated[
        int | None, typer.Option(min=1, max=100, help="JPEG/WebP quality.")
    ] = None,
    compress_level: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=9,
            help="PNG zlib level, 0-9 (default 1: fast, files ~14% larger than at 6).",
        ),
    ] = None,
    max_pixels: Annotated[
        int | None, typer.Option(min=1, help="Raise Pillow's decompression-bomb limit.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print only a JSON document on stdout.")
    ] = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="Say why each method was chosen.")
    ] = False,
    alpha: Annotated[
        Alpha,
        typer.Option(
            help="carry alpha through unfiltered, or filter colour premultiplied by "
            "alpha so transparent pixels do not bleed in."
        ),
    ] = _CARRY,
    montage: Annotated[
        Path | None,
        typer.Option(
            help="Also tile every output (a bank's feature maps, say) into one labelled image."
        ),
    ] = None,
    like_library: Annotated[
        Like | None,
        typer.Option(
            "--like",
            help="Reproduce a library's result for the same kernel: sets flip, "
            "border, anchor and normalization as it does (overrides those flags).",
        ),
    ] = None,
) -> None:
    """Filter each IMAGE with each KERNEL and write one output per pair.

    Outputs go beside each input as <stem>.<kernel><ext> (a bank with
    combine: stack writes one per filter), or into the folder -o names. An
    input is never overwritten. Defaults: padding same, border reflect, so
    the image keeps its size and its edges do not darken.
    """
    from convcli.images import load as load_image
    from convcli.images import montage as write_montage
    from convcli.kernels import load_kernel
    from convcli.pipeline import ApplyOptions, apply_one, like

    with user_errors():
        options = ApplyOptions(
            stride=_pair(stride, "stride"),
            padding=_padding(padding),
            dilation=_pair(dilation, "dilation"),
            border=border.value,
            cval=cval,
            flip=flip,
            method=method.value,
            range=value_range.value if value_range else None,
            channels=channels.value,
            float_output=float_output,
            quality=quality,
            compress_level=compress_level,
            max_pixels=max_pixels,
            alpha=alpha.value,
        )
        kernels = [load_kernel(spec) for spec in kernel]
        n_outputs = len(images) * len(kernels)
        if out is not None and n_outputs > 1 and out.suffix and not out.is_dir():
            msg = f"{out}: -o names one file, but there are {n_outputs} outputs; give a folder"
            raise ValueError(msg)
        if out is not None and (out.suffix == "" or n_outputs > 1):
            out.mkdir(parents=True, exist_ok=True)
        pairs = [(k, options) for k in kernels]
        if like_library is not None:
            pairs = [like(like_library.value, k, options) for k in kernels]
        results = [apply_one(p, k, o, out) for p in images for k, o in pairs]
        if montage is not None:
            tiles = [
                (
                    f"{r.input.stem} {r.kernel.name}"
                    + (f" {o.filter}" if o.filter else ""),
                    load_image(o.path).pixels,
                )
                for r in results
                for o in r.outputs
            ]
            write_montage(montage, tiles)
    if as_json:
        sys.stdout.write(json.dumps(_result_json(results), indent=2) + "\n")
        return
    from convcli import render  # rich, only for the tables

    for result in results:
        render.console.print(render.apply_table(result, explain=explain))
    if montage is not None:
        render.console.print(
            f"montage of {sum(len(r.outputs) for r in results)} outputs: {montage}",
            markup=False,
        )


def main() -> None:
    """Run the convcli command line."""
    app()
