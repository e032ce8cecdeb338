"""`convcli trace`: show a small convolution step by step, as text, JSON, a GIF or a page.

Everything is checked before anything is written: the input, the kernel, the
layer, and where ``--gif`` and ``--html`` go (not onto an input nor onto each
other, into a folder that takes them, frames of a bounded size). Bad input is
exit 2; a GIF, page or stdout that fails while being written is exit 1.
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
    complete_kernel,
    parse_numbers,
    parse_padding,
    parse_pair,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import numpy.typing as npt

    from convcli.demos import Explain
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
        autocompletion=complete_kernel,
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
GroupsOpt = Annotated[
    int | None,
    typer.Option(
        metavar="G",
        min=1,
        help="Split channels and filters into G groups; a filter reads its "
        "group's channels (a bank D x C/G x kh x kw) [1].",
    ),
]
TransposeOpt = Annotated[
    bool,
    typer.Option(
        "--transpose",
        help="A transposed convolution (PyTorch's conv_transpose2d): each input "
        "value stamps the kernel onto the output; -k is C x D/G x kh x kw.",
    ),
]
OutputPaddingOpt = Annotated[
    str | None,
    typer.Option(
        metavar="P",
        help="With --transpose: rows/cols added at the bottom and right, "
        "N or ROWS,COLS, below the stride [0].",
    ),
]
OnlyOpt = Annotated[
    str | None,
    typer.Option(
        metavar="ROW,COL[,FILTER]",
        help="Show the step of o[ROW,COL,FILTER] only; counted from 0, as the "
        "labels, numpy and PyTorch do.",
    ),
]
StepOpt = Annotated[
    bool,
    typer.Option(
        "--step", help="On a terminal: wait for Enter between steps (q quits)."
    ),
]
SummaryOpt = Annotated[
    bool, typer.Option("--summary", help="Show the header and the result only.")
]


def complete_demo(incomplete: str) -> list[tuple[str, str]]:
    """Return the demos whose names start with ``incomplete``, with their summaries."""
    from convcli.demos import DEMOS

    return [
        (name, about) for name, about in DEMOS.items() if name.startswith(incomplete)
    ]


DemoOpt = Annotated[
    str | None,
    typer.Option(
        metavar="NAME",
        help="A worked example (see --list-demos); options override it.",
        autocompletion=complete_demo,
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
HtmlOpt = Annotated[
    Path | None,
    typer.Option(
        metavar="OUT.html",
        help="Also write the layer as an interactive web page (one file, no network).",
    ),
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
    groups: GroupsOpt = None,
    transpose: TransposeOpt = False,
    output_padding: OutputPaddingOpt = None,
    only: OnlyOpt = None,
    summary: SummaryOpt = False,
    step: StepOpt = False,
    demo: DemoOpt = None,
    seed: SeedOpt = None,
    list_demos: ListDemosOpt = False,
    gif: GifOpt = None,
    html: HtmlOpt = None,
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

    if list_demos:
        render.console.print(render.demo_table(DEMOS))
        return
    with user_errors():
        problem = _problem(
            demo,
            seed,
            matrix,
            kernel,
            bias,
            _Layer(stride, padding, dilation, border, groups, output_padding),
            flip=flip,
            transpose=transpose,
        )
        layers = _layers(problem, cval=cval, flip=flip)
        problem.explained(layers)
        shown = _shown(layers)  # the trace whose steps --only, --gif and --json take
        if (only is not None or gif is not None) and len(layers) > 1:
            msg = (
                f"--demo {problem.name} shows two layers; --only and --gif take one "
                "(try --demo grouped or --demo pointwise)"
            )
            raise ValueError(msg)
        indices = _indices(shown, only)
        if gif is not None:  # the plan: where the GIF goes, and its size
            from convcli.trace_gif import check_gif_path, check_gif_size

            check_gif_path(gif, problem.files)
            check_gif_size(shown, title=problem.title)
        if html is not None:  # where the page goes: not onto an input or the GIF
            from convcli.trace_html import check_page_path

            check_page_path(html, problem.files, {"--gif": gif})
        text = _json(layers, indices if only is not None else None) if as_json else ""
    if gif is not None:
        from convcli.trace_gif import save_trace_gif

        _written(lambda: save_trace_gif(gif, shown, title=problem.title))
    if html is not None:
        from convcli.trace_html import save_trace_page

        lesson = " ".join((problem.lesson, *problem.notes)).strip()
        traced = layers if len(layers) > 1 else layers[0]
        _written(
            lambda: save_trace_page(
                html, traced, title=problem.title, lesson=lesson, start=indices[0]
            )
        )
    with stdout_failures():
        if as_json:
            render.print_json(text)
            return
        _print_text(
            layers,
            problem,
            indices,
            summary=summary,
            one_step=only is not None,
            pause=_pauser(step),
        )
        steps = {"animation": len(shown.steps)}  # the page: every layer's
        steps["web page"] = sum(len(_shown([t]).steps) for t in layers)
        for path, what in ((gif, "animation"), (html, "web page")):
            if path is not None:
                render.console.print(
                    f"{what} of {steps[what]} steps: {path}",
                    markup=False,
                    soft_wrap=True,
                )


@dataclass(frozen=True)
class _Layer:
    """The layer's options as given on the command line (None: not given)."""

    stride: str | None
    padding: str | None
    dilation: str | None
    border: Border | None
    groups: int | None
    output_padding: str | None


def _layers(problem: _Problem, *, cval: float, flip: bool) -> list[Any]:
    """Trace the problem: one `Trace`, a `TransposedTrace`, or two layers' traces."""
    from convcli.tracing import trace as make_trace

    b = problem.bias
    bias = (b[0] if len(b) == 1 else b) if b else None
    if problem.transposed:
        from convcli.tracing_transposed import trace_transposed

        options = dict(problem.options)
        if options.pop("border", "constant") != "constant" or cval != 0:
            msg = "a transposed convolution pads with zeros only: leave out --border and --cval"
            raise ValueError(msg)
        if flip:
            msg = "--flip goes with a convolution; --transpose already flips the kernel in its second view"
            raise ValueError(msg)
        if isinstance(options.get("padding"), str):
            if options["padding"] != "valid":
                msg = (
                    "a transposed convolution takes --padding N or ROWS,COLS (not same)"
                )
                raise ValueError(msg)
            options["padding"] = 0
        return [trace_transposed(problem.x, problem.w, bias, **options)]
    options = dict(problem.options)
    if "output_padding" in options:
        msg = "--output-padding goes with --transpose"
        raise ValueError(msg)
    first = make_trace(problem.x, problem.w, bias, cval=cval, flip=flip, **options)
    if problem.then is None:
        return [first]
    return [first, make_trace(first.output.transpose(1, 2, 0), problem.then)]


def _shown(layers: list[Any]) -> Trace:
    """Return the trace of steps: the layer's, or a transposed one's convolution view."""
    from convcli.tracing_transposed import TransposedTrace

    first = layers[0]
    return first.conv if isinstance(first, TransposedTrace) else first


def _interactive() -> bool:
    """Tell whether a person can answer: stdin and stdout are both a terminal."""
    import sys

    from convcli import render

    return sys.stdin.isatty() and render.console.is_terminal


def _pauser(step: bool) -> Callable[[], bool]:
    """Return what runs between two steps: True goes on, False stops (q)."""
    from convcli import render

    if not (step and _interactive()):
        return lambda: True

    def pause() -> bool:
        try:
            answer = render.console.input("[dim]Enter: next step, q: quit[/dim] ")
        except (EOFError, KeyboardInterrupt):
            return False
        return answer.strip().lower() not in ("q", "quit")

    return pause


def _written(write: Callable[[], object]) -> None:
    """Write the GIF or the page; a failed write is ``Error: ...`` and exit code 1."""
    from convcli import render
    from convcli.errors import ConvcliError

    try:
        write()
    except ConvcliError as err:  # ImageError, PageError: what and why
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
    name: str = ""  # the demo's
    explain: Explain | None = None  # the demo's title and lesson, from its traces
    transposed: bool = False
    then: npt.ArrayLike | None = None  # a second layer's bank (depthwise-separable)
    changed: tuple[str, ...] = ()  # the options that changed the demo
    title: str = ""
    lesson: str = ""
    notes: tuple[str, ...] = ()
    files: dict[str, Path] = field(default_factory=dict)  # input files, by option

    def explained(self, layers: list[Any]) -> None:
        """Write the demo's title and lesson for the traces in force."""
        if self.explain is None:
            return
        self.title, self.lesson = self.explain(layers if len(layers) > 1 else layers[0])
        if self.changed:
            self.title += f" (changed here: {' '.join(self.changed)})"


def _problem(
    demo: str | None,
    seed: int | None,
    matrix: str | None,
    kernel: str | None,
    bias: str | None,
    layer: _Layer,
    *,
    flip: bool,
    transpose: bool,
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
    problem.options.update(_layer_options(layer))
    problem.transposed = problem.transposed or transpose
    if demo is not None:
        given = {
            "-i": matrix,
            "-k": kernel,
            "--bias": bias,
            "--stride": layer.stride,
            "--padding": layer.padding,
            "--dilation": layer.dilation,
            "--border": layer.border,
            "--groups": layer.groups,
            "--output-padding": layer.output_padding,
        }
        changed = [flag for flag, value in given.items() if value is not None]
        changed += ["--flip"] if flip else []
        changed += ["--transpose"] if transpose else []
        problem.changed = tuple(changed)
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
            name=chosen.name,
            explain=chosen.explain,
            transposed=chosen.transposed,
            then=chosen.then,
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


def _layer_options(layer: _Layer) -> dict[str, Any]:
    """Return the trace's keywords for the options given (None: not given)."""
    options: dict[str, Any] = {}
    for name, given, read in [
        ("stride", layer.stride, parse_pair),
        ("padding", layer.padding, lambda text, _: parse_padding(text)),
        ("dilation", layer.dilation, parse_pair),
        ("output_padding", layer.output_padding, parse_pair),
    ]:
        if given is not None:
            options[name] = read(given, name.replace("_", "-"))
    if layer.border is not None:
        options["border"] = layer.border.value
    if layer.groups is not None:
        options["groups"] = layer.groups
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


def _json(layers: list[Any], only: range | None) -> str:
    """Return the trace as strict JSON; with ``only``, just those steps.

    A transposed convolution is its own document with the convolution view
    under ``convolution``; two layers are ``{"layers": [...]}``.
    """
    from convcli.tracing import json_text
    from convcli.tracing_transposed import TransposedTrace

    def conv_doc(t: Trace) -> dict[str, Any]:
        doc = t.to_json()
        if only is not None:
            doc["steps"] = [doc["steps"][i] for i in only]
        return doc

    first = layers[0]
    if isinstance(first, TransposedTrace):
        doc = first.to_json()
        doc["convolution"] = conv_doc(first.conv)
        return json_text(doc)
    if len(layers) > 1:
        return json_text({"layers": [conv_doc(t) for t in layers]})
    return json_text(conv_doc(first))


def _print_text(
    layers: list[Any],
    problem: _Problem,
    indices: range,
    *,
    summary: bool,
    one_step: bool,
    pause: Callable[[], bool],
) -> None:
    """Print the header, then the steps (unless ``summary``), then the result."""
    from convcli import render
    from convcli.tracing_transposed import TransposedTrace

    show = render.console.print
    width = render.console.width
    first = layers[0]
    if isinstance(first, TransposedTrace):
        _print_transposed(first, problem, indices, summary, one_step, pause)
        return
    for n, t in enumerate(layers):
        if n:
            show()
            show(
                f"Then layer {n + 1}, on layer {n}'s output: the pointwise (1x1) step",
                style="bold",
                markup=False,
            )
        show(
            render.trace_header(
                t,
                title=problem.title if n == 0 else "",
                lesson=problem.lesson if n == 0 else "",
                notes=problem.notes,
                width=width,
            ),
            soft_wrap=True,
        )
        if not summary:
            steps = indices if n == 0 else range(len(t.steps))
            shown_all = _show_steps(
                (render.trace_step(t, i, width=width) for i in steps), pause
            )
            summary = not shown_all
        if not one_step:
            show()
            show(render.trace_summary(t), soft_wrap=True)


def _print_transposed(
    t: Any,
    problem: _Problem,
    indices: range,
    summary: bool,
    one_step: bool,
    pause: Callable[[], bool],
) -> None:
    """Print a transposed convolution: the stamps, the result, the convolution view."""
    from convcli import render
    from convcli.render import trace_transposed as view

    show = render.console.print
    width = render.console.width
    show(
        view.transposed_header(
            t, title=problem.title, lesson=problem.lesson, width=width
        ),
        soft_wrap=True,
    )
    going = not summary
    if going and not one_step:
        stamps = (view.stamp_step(t, i, width=width) for i in range(len(t.stamps)))
        going = _show_steps(stamps, pause)
    if not one_step:
        show()
        show(view.transposed_result(t, width=width), soft_wrap=True)
    if going:
        show()
        show(view.convolution_intro(t, width=width), soft_wrap=True)
        cells = view.padding_cells(t)
        _show_steps(
            (render.trace_step(t.conv, i, width=width, padding=cells) for i in indices),
            pause,
        )


def _show_steps(blocks: Iterator[Any], pause: Callable[[], bool]) -> bool:
    """Print each block after a blank line, pausing between; False if stopped (q)."""
    from convcli import render

    for block in blocks:
        render.console.print()
        render.console.print(block, soft_wrap=True)
        if not pause():
            return False
    return True
