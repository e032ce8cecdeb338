"""The command line: parse, call the library, render, choose the exit code."""

from __future__ import annotations

import json
import sys
import time
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
    from convcli.batch import Item, ItemResult
    from convcli.kernels import Kernel
    from convcli.pipeline import ApplyOptions, ApplyResult
    from convcli.tracing import Trace

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


# The options `apply` and `batch` share, spelled once.
KernelSpecs = Annotated[
    list[str],
    typer.Option(
        "--kernel",
        "-k",
        metavar="SPEC",
        help="A kernel: NAME[:params], a file or a matrix; repeatable.",
    ),
]
StrideOpt = Annotated[str, typer.Option(help="Step between windows: N or ROWS,COLS.")]
PaddingOpt = Annotated[
    str, typer.Option(help="same (keep the size), valid (none), N or ROWS,COLS.")
]
DilationOpt = Annotated[str, typer.Option(help="Spacing between taps: N or ROWS,COLS.")]
BorderOpt = Annotated[Border, typer.Option(help="What the padding holds.")]
CvalOpt = Annotated[float, typer.Option(help="Value of constant padding.")]
FlipOpt = Annotated[
    bool,
    typer.Option("--flip", help="Rotate the kernel 180 degrees (true convolution)."),
]
RangeOpt = Annotated[
    Range | None,
    typer.Option("--range", help="Float result to pixels; default: the kernel's own."),
]
MethodOpt = Annotated[Method, typer.Option(help="How to compute.")]
ChannelsOpt = Annotated[
    Channels,
    typer.Option(help="keep the image's channels, or convert to gray or rgb."),
]
FloatOpt = Annotated[
    bool, typer.Option("--float", help="Write the raw float32 values as TIFF.")
]
QualityOpt = Annotated[
    int | None, typer.Option(min=1, max=100, help="JPEG/WebP quality.")
]
CompressOpt = Annotated[
    int | None,
    typer.Option(
        min=0,
        max=9,
        help="PNG zlib level, 0-9 (default 1: fast, files ~14% larger than at 6).",
    ),
]
MaxPixelsOpt = Annotated[
    int | None, typer.Option(min=1, help="Raise Pillow's decompression-bomb limit.")
]
AlphaOpt = Annotated[
    Alpha,
    typer.Option(
        help="carry alpha through unfiltered, or filter colour premultiplied by "
        "alpha so transparent pixels do not bleed in."
    ),
]
LikeOpt = Annotated[
    Like | None,
    typer.Option(
        "--like",
        help="Reproduce a library's result for the same kernel: sets flip, "
        "border, anchor and normalization as it does (overrides those flags).",
    ),
]


def _apply_options(
    stride: str,
    padding: str,
    dilation: str,
    border: Border,
    cval: float,
    flip: bool,
    value_range: Range | None,
    method: Method,
    channels: Channels,
    float_output: bool,
    quality: int | None,
    compress_level: int | None,
    max_pixels: int | None,
    alpha: Alpha,
) -> ApplyOptions:
    """Check the shared options' syntax and return them as `ApplyOptions`."""
    from convcli.pipeline import ApplyOptions

    return ApplyOptions(
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


@app.command()
def apply(
    images: Annotated[
        list[Path], typer.Argument(metavar="IMAGE...", help="Images to filter.")
    ],
    kernel: KernelSpecs,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Output file (one input, one output) or folder."
        ),
    ] = None,
    stride: StrideOpt = "1",
    padding: PaddingOpt = "same",
    dilation: DilationOpt = "1",
    border: BorderOpt = _REFLECT,
    cval: CvalOpt = 0.0,
    flip: FlipOpt = False,
    value_range: RangeOpt = None,
    method: MethodOpt = _AUTO,
    channels: ChannelsOpt = _KEEP,
    float_output: FloatOpt = False,
    quality: QualityOpt = None,
    compress_level: CompressOpt = None,
    max_pixels: MaxPixelsOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print only a JSON document on stdout.")
    ] = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="Say why each method was chosen.")
    ] = False,
    alpha: AlphaOpt = _CARRY,
    montage: Annotated[
        Path | None,
        typer.Option(
            help="Also tile every output (a bank's feature maps, say) into one labelled image."
        ),
    ] = None,
    like_library: LikeOpt = None,
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
    from convcli.pipeline import apply_one, like

    with user_errors():
        options = _apply_options(
            stride,
            padding,
            dilation,
            border,
            cval,
            flip,
            value_range,
            method,
            channels,
            float_output,
            quality,
            compress_level,
            max_pixels,
            alpha,
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


EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


@app.command()
def batch(
    in_dir: Annotated[Path, typer.Argument(help="The folder of images to filter.")],
    kernel: KernelSpecs,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            metavar="OUT_DIR",
            help="Where the outputs go (mirrored tree).",
        ),
    ],
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Also the folders inside IN_DIR.")
    ] = False,
    glob_patterns: Annotated[
        list[str] | None,
        typer.Option(
            "--glob",
            metavar="PATTERN",
            help="File names to take, e.g. '*.png'; repeatable [every image ending].",
        ),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs", "-j", min=1, help="Processes at once [the number of CPUs]."
        ),
    ] = None,
    skip_existing: Annotated[
        bool,
        typer.Option("--skip-existing", help="Leave items whose outputs all exist."),
    ] = False,
    fail_fast: Annotated[
        bool, typer.Option("--fail-fast", help="Stop at the first failed item.")
    ] = False,
    manifest: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE", help="Write a JSON line per item (paths, sizes, sha256)."
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print only a JSON document on stdout.")
    ] = False,
    scheduler: Annotated[
        str | None,
        typer.Option(
            metavar="ADDRESS",
            help="Run on a Dask cluster: its scheduler (tcp://HOST:PORT), or local "
            "to start one here (needs convcli[dask]).",
        ),
    ] = None,
    scheduler_timeout: Annotated[
        float,
        typer.Option(min=0.1, help="Seconds to wait for the Dask scheduler."),
    ] = 10.0,
    stride: StrideOpt = "1",
    padding: PaddingOpt = "same",
    dilation: DilationOpt = "1",
    border: BorderOpt = _REFLECT,
    cval: CvalOpt = 0.0,
    flip: FlipOpt = False,
    value_range: RangeOpt = None,
    method: MethodOpt = _AUTO,
    channels: ChannelsOpt = _KEEP,
    float_output: FloatOpt = False,
    quality: QualityOpt = None,
    compress_level: CompressOpt = None,
    max_pixels: MaxPixelsOpt = None,
    alpha: AlphaOpt = _CARRY,
    like_library: LikeOpt = None,
) -> None:
    """Filter every image in IN_DIR with each KERNEL, in parallel, into OUT_DIR.

    The folder tree is mirrored under OUT_DIR, outputs named as `apply`
    names them. A bad file is reported and the run goes on; exit code 1 if
    any item failed, 130 if interrupted (Ctrl-C finishes the items running,
    starts no more, and leaves no partial file). Inputs are never touched.
    """
    from convcli import workers

    n_jobs = jobs or workers.cpus()
    try:
        if scheduler is None:
            # The worker server imports numpy and Pillow on the other core
            # while this process imports its own.
            workers.start_server(n_jobs)
        from convcli import render
        from convcli.batch import (
            DEFAULT_GLOBS,
            Interrupted,
            Plan,
            find_images,
            manifest_line,
            run,
        )
        from convcli.kernels import load_kernel
        from convcli.pipeline import like
    except KeyboardInterrupt:
        typer.echo("convcli batch (interrupted): no item ran")
        raise typer.Exit(code=EXIT_INTERRUPTED) from None

    items: list[Item] = []
    results: list[ItemResult] = []
    interrupted = False
    log = None
    start = time.perf_counter()
    try:  # Ctrl-C anywhere: report what finished, exit 130 (not click's "Aborted!")
        with user_errors():
            options = _apply_options(
                stride,
                padding,
                dilation,
                border,
                cval,
                flip,
                value_range,
                method,
                channels,
                float_output,
                quality,
                compress_level,
                max_pixels,
                alpha,
            )
            kernels = [load_kernel(spec) for spec in kernel]
            pairs = [(k, options) for k in kernels]
            if like_library is not None:
                pairs = [like(like_library.value, k, options) for k in kernels]
            if scheduler is not None:  # remote workers have other working folders
                in_dir, out = in_dir.resolve(), out.resolve()
            items = find_images(
                in_dir, out, recursive=recursive, globs=glob_patterns or DEFAULT_GLOBS
            )
            try:
                out.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                msg = f"{out}: cannot create the output folder: {err.strerror or err}"
                raise ValueError(msg) from None
            log = _open_manifest(manifest) if manifest is not None else None
        plan = Plan(tuple(pairs), skip_existing=skip_existing)
        with render.batch_progress(len(items), enabled=not as_json) as advance:

            def on_item(result: ItemResult) -> None:
                advance(result)
                if log is not None:
                    log.write(manifest_line(result, plan))
                    log.flush()

            with user_errors():  # an unreachable scheduler is bad input: exit 2
                results = run(
                    items,
                    plan,
                    jobs=n_jobs,
                    fail_fast=fail_fast,
                    on_item=on_item,
                    scheduler=scheduler,
                    scheduler_timeout=scheduler_timeout,
                )
    except Interrupted as stop:
        results, interrupted = stop.results, True
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if log is not None:
            log.close()
    seconds = time.perf_counter() - start
    if as_json:
        doc = {
            "items": [r.to_json() for r in results],
            "summary": render.batch_counts(results, len(items), seconds, interrupted),
        }
        render.print_json(json.dumps(doc, indent=2))
    else:
        render.console.print(
            render.batch_table(results, len(items), seconds, interrupted)
        )
        failed = [r for r in results if r.status == "failed"]
        for r in failed:
            render.console.print(f"failed: {r.error}", markup=False, soft_wrap=True)
    if interrupted:
        raise typer.Exit(code=EXIT_INTERRUPTED)
    if any(r.status == "failed" for r in results):
        raise typer.Exit(code=EXIT_FAILED)


def _open_manifest(path: Path) -> Any:
    """Open the manifest for writing, one line per item as items end."""
    try:
        return path.open("w", encoding="utf-8")
    except OSError as err:
        msg = f"{path}: cannot write the manifest: {err.strerror or err}"
        raise ValueError(msg) from None


def _numbers(text: str, what: str) -> list[float]:
    """Read ``1`` or ``1,0,-0.5``."""
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        msg = f"--{what} must be numbers separated by commas; got {text!r}"
        raise ValueError(msg) from None


def _only(text: str) -> tuple[int, int, int]:
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


@app.command()
def trace(
    matrix: Annotated[
        str | None,
        typer.Option(
            "--input",
            "-i",
            metavar="MATRIX",
            help="The input: a matrix file (kernel formats; blank lines between "
            "channels) or inline numbers '1,2;3,4' ('|' between channels).",
        ),
    ] = None,
    kernel: Annotated[
        str | None,
        typer.Option(
            "--kernel",
            "-k",
            metavar="SPEC",
            help="A kernel: NAME[:params], a file or a matrix.",
        ),
    ] = None,
    stride: Annotated[
        str | None,
        typer.Option(metavar="S", help="Step between windows: N or ROWS,COLS [1]."),
    ] = None,
    padding: Annotated[
        str | None,
        typer.Option(
            metavar="P", help="N or ROWS,COLS, same or valid [0, as a CNN layer]."
        ),
    ] = None,
    dilation: Annotated[
        str | None,
        typer.Option(metavar="D", help="Spacing between taps: N or ROWS,COLS [1]."),
    ] = None,
    border: Annotated[
        Border | None, typer.Option(help="What the padding holds [constant].")
    ] = None,
    cval: Annotated[float, typer.Option(help="Value of constant padding.")] = 0.0,
    bias: Annotated[
        str | None,
        typer.Option(
            metavar="B", help="One value, or one per filter: '1,0' [the kernel's own]."
        ),
    ] = None,
    flip: Annotated[
        bool,
        typer.Option(
            "--flip", help="Rotate the kernel 180 degrees (true convolution)."
        ),
    ] = False,
    only: Annotated[
        str | None,
        typer.Option(metavar="ROW,COL[,FILTER]", help="Show this one step."),
    ] = None,
    summary: Annotated[
        bool, typer.Option("--summary", help="Show the header and the result only.")
    ] = False,
    demo: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="A worked example (see --list-demos); options override it.",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(metavar="N", help="New random values for --demo cs231n."),
    ] = None,
    list_demos: Annotated[
        bool, typer.Option("--list-demos", help="List the demos and exit.")
    ] = False,
    gif: Annotated[
        Path | None,
        typer.Option(metavar="OUT.gif", help="Also write the steps as an animation."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print only a JSON document on stdout.")
    ] = False,
) -> None:
    """Show a convolution step by step: each window, its products, sum, bias, output.

    For a small input (at most 16x16 per channel): give it with -i and a
    kernel with -k, or start from a --demo (cs231n is the classic). A bank
    kernel gives one output map per filter. Defaults are a CNN layer's:
    padding 0, stride 1, zeros around the border.
    """
    from convcli import render
    from convcli.demos import DEMOS, load_demo
    from convcli.kernels import load_kernel, load_matrix
    from convcli.tracing import trace as make_trace

    if list_demos:
        table = render.demo_table(DEMOS)
        render.console.print(table)
        return
    with user_errors():
        title, lesson, notes = "", "", tuple[str, ...]()
        if demo is not None:
            chosen = load_demo(demo, seed)
            x, w, b = chosen.x, chosen.w, chosen.bias
            options = dict(chosen.options)
            title, lesson = chosen.title, chosen.lesson
        elif seed is not None:
            msg = "--seed goes with --demo cs231n"
            raise ValueError(msg)
        else:
            if matrix is None or kernel is None:
                msg = "give an input with -i and a kernel with -k, or a --demo (see --list-demos)"
                raise ValueError(msg)
            options = {}
        if matrix is not None:
            x = load_matrix(matrix)
        if kernel is not None:
            k = load_kernel(kernel)
            w, b = k.weights, k.bias
            if k.is_bank and k.combine != "stack":
                notes = (
                    f"{k.name} is a bank of {k.weights.shape[0]} filters: `convcli apply` "
                    f"combines their maps ({k.combine}); a trace shows each map.",
                )
        if bias is not None:
            b = tuple(_numbers(bias, "bias"))
        for name, given, read in [
            ("stride", stride, _pair),
            ("padding", padding, lambda text, _: _padding(text)),
            ("dilation", dilation, _pair),
        ]:
            if given is not None:
                options[name] = read(given, name)
        if border is not None:
            options["border"] = border.value
        if demo is not None:
            changed = [
                flag
                for flag, given in [
                    ("-i", matrix),
                    ("-k", kernel),
                    ("--bias", bias),
                    ("--stride", stride),
                    ("--padding", padding),
                    ("--dilation", dilation),
                    ("--border", border),
                ]
                if given is not None
            ] + (["--flip"] if flip else [])
            if changed:
                title += f" (changed here: {' '.join(changed)})"
        t = make_trace(
            x,
            w,
            (b[0] if len(b) == 1 else b) if b else None,
            cval=cval,
            flip=flip,
            **options,
        )
        indices = range(len(t.steps))
        if only is not None:
            first = _step_index(t, *_only(only))
            indices = range(first, first + 1)
        if gif is not None:
            from convcli.trace_gif import save_trace_gif

            save_trace_gif(gif, t, title=title)
    if as_json:
        doc = t.to_json()
        if only is not None:
            doc["steps"] = [doc["steps"][i] for i in indices]
        render.print_json(json.dumps(doc, indent=2))
        return
    show = render.console.print
    show(
        render.trace_header(t, title=title, lesson=lesson, notes=notes), soft_wrap=True
    )
    if not summary:
        for i in indices:
            show()
            show(render.trace_step(t, i), soft_wrap=True)
    if only is None:
        show()
        show(render.trace_summary(t), soft_wrap=True)
    if gif is not None:
        show(f"animation of {len(t.steps)} steps: {gif}", markup=False)


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


def main() -> None:
    """Run the convcli command line."""
    app()
