"""`convcli trace`: show a small convolution step by step, as text, JSON or a GIF.

Everything is checked before anything is written: the input, the kernel, the
layer, and where ``--gif`` goes (not onto an input, into a folder that takes
it, frames of a bounded size). Bad input is exit 2; a GIF or stdout that
fails while being written is exit 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from convcli.cli.common import EXIT_FAILED, state, stdout_failures, user_errors
from convcli.cli.options import (
    Border,
    CvalOpt,
    FlipOpt,
    JsonOpt,
    parse_numbers,
    parse_padding,
    parse_pair,
)

if TYPE_CHECKING:
    import numpy.typing as npt

    from convcli.tracing import Trace

# trace's own options. The layer's geometry defaults to a CNN layer's (not to
# apply's): None means "not given", so that a --demo's own settings stay.
MatrixOpt = Annotated[
    str | None,
    typer.Option(
        "--input",
        "-i",
        metavar="MATRIX",
        help="The input: a matrix file (kernel formats; blank lines between "
        "channels) or inline numbers '1,2;3,4' ('|' between channels).",
    ),
]
OneKernelOpt = Annotated[
    str | None,
    typer.Option(
        "--kernel",
        "-k",
        metavar="SPEC",
        help="A kernel: NAME[:params], a file or a matrix.",
    ),
]
LayerStrideOpt = Annotated[
    str | None,
    typer.Option(metavar="S", help="Step between windows: N or ROWS,COLS [1]."),
]
LayerPaddingOpt = Annotated[
    str | None,
    typer.Option(
        metavar="P", help="N or ROWS,COLS, same or valid [0, as a CNN layer]."
    ),
]
LayerDilationOpt = Annotated[
    str | None,
    typer.Option(metavar="D", help="Spacing between taps: N or ROWS,COLS [1]."),
]
LayerBorderOpt = Annotated[
    Border | None, typer.Option(help="What the padding holds [constant].")
]
BiasOpt = Annotated[
    str | None,
    typer.Option(
        metavar="B", help="One value, or one per filter: '1,0' [the kernel's own]."
    ),
]
OnlyOpt = Annotated[
    str | None,
    typer.Option(metavar="ROW,COL[,FILTER]", help="Show this one step."),
]
SummaryOpt = Annotated[
    bool, typer.Option("--summary", help="Show the header and the result only.")
]
DemoOpt = Annotated[
    str | None,
    typer.Option(
        metavar="NAME",
        help="A worked example (see --list-demos); options override it.",
    ),
]
SeedOpt = Annotated[
    int | None,
    typer.Option(metavar="N", help="New random values for --demo cs231n."),
]
ListDemosOpt = Annotated[
    bool, typer.Option("--list-demos", help="List the demos and exit.")
]
GifOpt = Annotated[
    Path | None,
    typer.Option(metavar="OUT.gif", help="Also write the steps as an animation."),
]


def trace(
    matrix: MatrixOpt = None,
    kernel: OneKernelOpt = None,
    stride: LayerStrideOpt = None,
    padding: LayerPaddingOpt = None,
    dilation: LayerDilationOpt = None,
    border: LayerBorderOpt = None,
    cval: CvalOpt = 0.0,
    bias: BiasOpt = None,
    flip: FlipOpt = False,
    only: OnlyOpt = None,
    summary: SummaryOpt = False,
    demo: DemoOpt = None,
    seed: SeedOpt = None,
    list_demos: ListDemosOpt = False,
    gif: GifOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a convolution step by step: each window, its products, sum, bias, output.

    For a small input (at most 16x16 per channel): give it with -i and a
    kernel with -k, or start from a --demo (cs231n is the classic). A bank
    kernel gives one output map per filter. Defaults are a CNN layer's:
    padding 0, stride 1, zeros around the border.
    """
    from convcli import render
    from convcli.demos import DEMOS
    from convcli.tracing import trace as make_trace

    if list_demos:
        render.console.print(render.demo_table(DEMOS))
        return
    with user_errors():
        problem = _problem(
            demo, seed, matrix, kernel, bias, stride, padding, dilation, border, flip
        )
        b = problem.bias
        t = make_trace(
            problem.x,
            problem.w,
            (b[0] if len(b) == 1 else b) if b else None,
            cval=cval,
            flip=flip,
            **problem.options,
        )
        indices = _indices(t, only)
        if gif is not None:  # the plan: where the GIF goes, and its size
            from convcli.trace_gif import check_gif_path, check_gif_size

            check_gif_path(gif, problem.files)
            check_gif_size(t, title=problem.title)
        text = _json(t, indices if only is not None else None) if as_json else ""
    if gif is not None:
        _write_gif(gif, t, problem.title)
    with stdout_failures():
        if as_json:
            render.print_json(text)
            return
        _print_text(t, problem, indices, summary=summary, one_step=only is not None)
        if gif is not None:
            render.console.print(
                f"animation of {len(t.steps)} steps: {gif}", markup=False
            )


def _write_gif(gif: Path, t: Trace, title: str) -> None:
    """Write the animation; a failed write is ``Error: ...`` and exit code 1."""
    from convcli import render
    from convcli.images import ImageError
    from convcli.trace_gif import save_trace_gif

    try:
        save_trace_gif(gif, t, title=title)
    except ImageError as err:
        if state.debug:
            raise
        render.error(str(err))
        raise typer.Exit(code=EXIT_FAILED) from None


@dataclass
class _Problem:
    """What to trace: the arrays, the bias, `trace`'s options, and the header's text."""

    x: npt.ArrayLike
    w: npt.ArrayLike
    bias: tuple[float, ...]
    options: dict[str, Any]
    title: str = ""
    lesson: str = ""
    notes: tuple[str, ...] = ()
    files: dict[str, Path] = field(default_factory=dict)  # input files, by option


def _problem(
    demo: str | None,
    seed: int | None,
    matrix: str | None,
    kernel: str | None,
    bias: str | None,
    stride: str | None,
    padding: str | None,
    dilation: str | None,
    border: Border | None,
    flip: bool,
) -> _Problem:
    """Start from the demo, if any; what the options give replaces its part of it."""
    from convcli.kernels import load_kernel, load_matrix

    problem = _start(demo, seed, given=matrix is not None and kernel is not None)
    if matrix is not None:
        problem.x = load_matrix(matrix)
        if _is_file(Path(matrix.strip())):
            problem.files["-i"] = Path(matrix.strip())
    if kernel is not None:
        k = load_kernel(kernel)
        problem.w, problem.bias = k.weights, k.bias
        if k.source not in ("inline", "imagemagick", "generator") and _is_file(
            Path(k.source)
        ):  # a kernel file, the catalogue's too
            problem.files["-k"] = Path(k.source)
        if k.is_bank and k.combine != "stack":
            problem.notes = (
                f"{k.name} is a bank of {k.weights.shape[0]} filters: `convcli apply` "
                f"combines their maps ({k.combine}); a trace shows each map.",
            )
    if bias is not None:
        problem.bias = tuple(parse_numbers(bias, "bias"))
    problem.options.update(_layer_options(stride, padding, dilation, border))
    if demo is not None:
        given = {
            "-i": matrix,
            "-k": kernel,
            "--bias": bias,
            "--stride": stride,
            "--padding": padding,
            "--dilation": dilation,
            "--border": border,
        }
        changed = [flag for flag, value in given.items() if value is not None]
        changed += ["--flip"] if flip else []
        if changed:
            problem.title += f" (changed here: {' '.join(changed)})"
    return problem


def _start(demo: str | None, seed: int | None, *, given: bool) -> _Problem:
    """Return the demo's problem, or an empty one when -i and -k are both ``given``."""
    from convcli.demos import load_demo

    if demo is not None:
        chosen = load_demo(demo, seed)
        return _Problem(
            chosen.x,
            chosen.w,
            chosen.bias,
            dict(chosen.options),
            title=chosen.title,
            lesson=chosen.lesson,
        )
    if seed is not None:
        msg = "--seed goes with --demo cs231n"
        raise ValueError(msg)
    if not given:
        msg = (
            "give an input with -i and a kernel with -k, or a --demo (see --list-demos)"
        )
        raise ValueError(msg)
    return _Problem(x=(), w=(), bias=(), options={})  # -i and -k fill x, w, bias in


def _layer_options(
    stride: str | None,
    padding: str | None,
    dilation: str | None,
    border: Border | None,
) -> dict[str, Any]:
    """Return `trace`'s geometry keywords for the options given (None: not given)."""
    options: dict[str, Any] = {}
    for name, given, read in [
        ("stride", stride, parse_pair),
        ("padding", padding, lambda text, _: parse_padding(text)),
        ("dilation", dilation, parse_pair),
    ]:
        if given is not None:
            options[name] = read(given, name)
    if border is not None:
        options["border"] = border.value
    return options


def _indices(t: Trace, only: str | None) -> range:
    """Return the steps to show: all of them, or the one ``--only`` names."""
    if only is None:
        return range(len(t.steps))
    first = _step_index(t, *_only(only))
    return range(first, first + 1)


def _only(text: str) -> tuple[int, int, int]:
    """Read ``--only ROW,COL`` or ``ROW,COL,FILTER`` (filter 0 if left out)."""
    parts = text.split(",")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) not in (2, 3):
        msg = f"--only must be ROW,COL or ROW,COL,FILTER (whole numbers); got {text!r}"
        raise ValueError(msg)
    row, col, d = (*numbers, 0) if len(numbers) == 2 else numbers
    return row, col, d


def _step_index(t: Trace, row: int, col: int, d: int) -> int:
    """Return the index of the step at output (row, col) of filter d."""
    depth, out_h, out_w = t.output.shape
    if not (0 <= row < out_h and 0 <= col < out_w and 0 <= d < depth):
        msg = (
            f"--only {row},{col},{d} is outside the output: rows 0-{out_h - 1}, "
            f"cols 0-{out_w - 1}, filters 0-{depth - 1}"
        )
        raise ValueError(msg)
    return int((d * out_h + row) * out_w + col)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long, a NUL byte
        return False


def _json(t: Trace, only: range | None) -> str:
    """Return the trace as strict JSON; with ``only``, just those steps."""
    from convcli.tracing import json_text

    doc = t.to_json()
    if only is not None:
        doc["steps"] = [doc["steps"][i] for i in only]
    return json_text(doc)


def _print_text(
    t: Trace, problem: _Problem, indices: range, *, summary: bool, one_step: bool
) -> None:
    """Print the header, then the steps (unless ``summary``), then the result."""
    from convcli import render

    show = render.console.print
    show(
        render.trace_header(
            t, title=problem.title, lesson=problem.lesson, notes=problem.notes
        ),
        soft_wrap=True,
    )
    if not summary:
        for i in indices:
            show()
            show(render.trace_step(t, i), soft_wrap=True)
    if not one_step:
        show()
        show(render.trace_summary(t), soft_wrap=True)
