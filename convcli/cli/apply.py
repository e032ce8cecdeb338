"""`convcli apply`: filter images with kernels, one output file per pair.

A run makes its whole plan before its first write (`convcli.cli.apply_plan`): every kernel
loaded, every input's header read, every output path (and the montage)
checked against the inputs and each other, every size against the pixel
limit, every output folder writable. Anything wrong there is exit 2 and
nothing is written. Then each pair runs; a pair that fails (a truncated
image, a failed write) is reported and the others go on: exit 1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from convcli.cli.apply_plan import Plan, make_folders
from convcli.cli.apply_plan import plan as plan_run
from convcli.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    QuietOpt,
    state,
    stdout_failures,
    user_errors,
)
from convcli.cli.options import (
    AUTO,
    CARRY,
    KEEP,
    REFLECT,
    AlphaOpt,
    BandRowsOpt,
    BorderOpt,
    ChainOpt,
    ChannelsOpt,
    CompressOpt,
    CvalOpt,
    DilationOpt,
    FlipOpt,
    FloatOpt,
    FrameOpt,
    JsonOpt,
    KernelSpecs,
    LikeOpt,
    MaxPixelsOpt,
    MemoryOpt,
    MethodOpt,
    NameOpt,
    PaddingOpt,
    QualityOpt,
    RangeOpt,
    SchedulerOpt,
    SchedulerTimeoutOpt,
    StreamOpt,
    StrideOpt,
    apply_options,
)
from convcli.cli.pipes import FormatOpt, Pipes
from convcli.errors import ConvcliError

if TYPE_CHECKING:
    from collections.abc import Callable

    from convcli.cli.options import Like
    from convcli.pipeline import ApplyOptions, ApplyResult, Output
    from convcli.stream_cluster import DaskBands
    from convcli.streaming import BandRunner

ImagesArg = Annotated[
    list[Path], typer.Argument(metavar="IMAGE...", help="Images to filter.")
]
OutOpt = Annotated[
    str | None,
    typer.Option(
        "--out",
        "-o",
        metavar="PATH",
        help="Output file (one output) or folder (ends with /, exists, or has no ending).",
    ),
]
ExplainOpt = Annotated[
    bool, typer.Option("--explain", help="Say why each method was chosen.")
]
MontageOpt = Annotated[
    Path | None,
    typer.Option(
        help="Also tile every output (a bank's feature maps, say) into one labelled image."
    ),
]


def apply(
    images: ImagesArg,
    kernel: KernelSpecs,
    out: OutOpt = None,
    stride: StrideOpt = "1",
    padding: PaddingOpt = "same",
    dilation: DilationOpt = "1",
    border: BorderOpt = REFLECT,
    cval: CvalOpt = 0.0,
    flip: FlipOpt = False,
    value_range: RangeOpt = None,
    method: MethodOpt = AUTO,
    channels: ChannelsOpt = KEEP,
    float_output: FloatOpt = False,
    quality: QualityOpt = None,
    compress_level: CompressOpt = None,
    max_pixels: MaxPixelsOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    explain: ExplainOpt = False,
    alpha: AlphaOpt = CARRY,
    montage: MontageOpt = None,
    like_library: LikeOpt = None,
    frame: FrameOpt = None,
    chain: ChainOpt = False,
    fmt: FormatOpt = None,
    name: NameOpt = None,
    stream: StreamOpt = None,
    memory: MemoryOpt = None,
    band_rows: BandRowsOpt = None,
    scheduler: SchedulerOpt = None,
    scheduler_timeout: SchedulerTimeoutOpt = 10.0,
) -> None:
    """Filter each IMAGE with each KERNEL and write one output per pair.

    Outputs go beside each input as `<stem>.<kernel><ext>` (a bank with
    combine: stack writes one per filter), or into the folder -o names;
    options other than the defaults add tags (`a.sobel.s2.png` for
    --stride 2), --name TEMPLATE names them otherwise, --format EXT sets
    their format (the input's by default). An
    input is never overwritten: every output is checked before the first is
    written. Defaults: padding same, border reflect, so the image keeps its
    size and its edges do not darken. Every frame of an animated GIF, WebP
    or PNG (every page of a TIFF) is filtered and written as one animation;
    --frame N takes one. Exit 2: bad input, nothing written; exit 1: some
    pair failed (a truncated image, a failed write), the rest done. One
    pair prints its full table; more print one line per output (the full
    tables with --explain); -q prints errors only. - as an IMAGE reads
    it from stdin; -o - writes the one output to stdout (--format, PNG by
    default), and the tables go to stderr. A TIFF bigger than memory (over
    --memory as float32, or over the in-memory pixel limit), or any TIFF
    with --stream, is streamed: read, filtered and written band by band
    into a tiled BigTIFF (--scheduler runs the bands on a Dask cluster).
    """
    with user_errors():
        options = apply_options(
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
            frame=frame,
            name=name,
            fmt=fmt,
            chain=chain,
            stream=True if scheduler is not None and stream is None else stream,
            memory=memory,
            band_rows=band_rows,
        )
    runner = None
    if scheduler is not None:
        with user_errors():
            runner = _band_runner(scheduler, scheduler_timeout, stream)
    pipes = Pipes(list(images), out)
    try:  # the temporary folder goes, however the run ends (Ctrl-C while reading too)
        with user_errors():
            pipes.open(fmt)
        _apply(
            pipes,
            kernel,
            options,
            as_json,
            quiet,
            explain,
            montage,
            like_library,
            runner,
        )
    finally:
        pipes.close()
        if runner is not None:
            runner.close()


def _apply(
    pipes: Pipes,
    kernel: list[str],
    options: ApplyOptions,
    as_json: bool,
    quiet: bool,
    explain: bool,
    montage: Path | None,
    like_library: Like | None,
    runner: BandRunner[Any] | None = None,
) -> None:
    """Plan, run and report, with stdin and stdout through ``pipes``.

    ``runner`` runs a streamed image's bands (``--scheduler``: on Dask).
    """
    images, out = pipes.inputs, pipes.out_text
    with user_errors(), pipes.named():
        try:
            plan = plan_run(
                images,
                kernel,
                options,
                out,
                like_library,
                montage,
                to_stdout=pipes.to_stdout is not None,
            )
        except OSError as err:  # a path the system refuses (too long, a loop, ...)
            msg = f"{err.filename}: {err.strerror or err}"
            raise ConvcliError(msg) from None
        make_folders(plan.folders)
    shown_notes = (
        set()
        if quiet
        else _warn([n for pp in plan.pairs for n in pp.header.notes], set())
    )
    run = _Run(total=len(plan.pairs))
    try:
        _run(plan, run, runner, progress=not (quiet or as_json))
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP: what was done, then stop
        run.interrupted = True
    if not quiet:
        _warn([n for r in run.results for n in r.notes], shown_notes)
    to_stderr = pipes.to_stdout is not None  # stdout carries the image
    run.results = [pipes.as_given(r) for r in run.results]
    for failure in [*run.failures, *([run.cut_short] if run.cut_short else [])]:
        failure.error = pipes.shown(failure.error)
        failure.label = pipes.shown(failure.label)
    with stdout_failures():
        if as_json:
            doc = _result_json(run)
            typer.echo(json.dumps(doc, indent=2, allow_nan=False), err=to_stderr)
        elif not quiet:
            _print_tables(run, explain=explain, to_stderr=to_stderr)
        if not run.failures and not run.interrupted:
            pipes.write_stdout()
    if run.interrupted:
        raise typer.Exit(code=EXIT_INTERRUPTED)
    if run.failures:
        from convcli import render

        for failure in run.failures:
            render.error(failure.error)
        raise typer.Exit(code=EXIT_FAILED)


def _band_runner(scheduler: str, timeout: float, stream: bool | None) -> DaskBands:
    """Return what runs a streamed image's bands on the Dask cluster ``scheduler``."""
    if stream is False:
        msg = "--scheduler runs a streamed image's bands on a cluster; --no-stream contradicts it"
        raise ConvcliError(msg)
    from convcli.stream_cluster import dask_band_runner

    return dask_band_runner(scheduler, timeout=timeout)


def _warn(notes: list[str], shown: set[str]) -> set[str]:
    """Print each note not yet shown as one ``warning:`` line on stderr; return those shown."""
    for note in notes:
        if note not in shown:
            typer.echo(f"warning: {note}", err=True)
            shown.add(note)
    return shown


# ---------------------------------------------------------------------------
# The run: each pair on its own; a failure is reported and the rest goes on


@dataclass
class _Failure:
    """A pair that failed: why, and what it wrote before it did."""

    label: str
    error: str
    written: list[Output] = field(default_factory=list)


@dataclass
class _Run:
    """What a run did: the pairs done, the pairs failed, the montage, an interruption."""

    total: int
    results: list[ApplyResult] = field(default_factory=list)
    failures: list[_Failure] = field(default_factory=list)
    montage: Path | None = None
    tiles: int = 0
    interrupted: bool = False
    cut_short: _Failure | None = None  # the pair running when it was interrupted


def _run(
    plan: Plan,
    run: _Run,
    runner: BandRunner[Any] | None = None,
    *,
    progress: bool = True,
) -> None:
    """Run every pair, then the montage, into ``run``; a failure is recorded, not raised.

    Ctrl-C (and SIGTERM, SIGHUP) is raised; ``run`` holds what was done by then.
    A streamed image's bands run through ``runner`` (None: this machine's
    cores), with a progress bar on a terminal if ``progress``.
    """
    from convcli.render import band_progress

    with band_progress(enabled=progress) as bands:
        _run_pairs(plan, run, runner, bands)


def _run_pairs(
    plan: Plan,
    run: _Run,
    runner: BandRunner[Any] | None,
    bands: Callable[[str, int, int], None],
) -> None:
    """Run every pair, then the montage (see `_run`)."""
    from convcli.images import shown
    from convcli.pipeline import apply_one

    tiles: list[tuple[str, Path]] = []
    for pp in plan.pairs:
        written: list[Output] = []
        try:
            result = apply_one(
                pp.header.path,
                pp.kernel,
                pp.options,
                plan.out,
                folder=plan.folder,
                written=written,
                number=pp.number,
                progress=bands,
                runner=runner,
            )
        except Exception as err:  # one pair's failure must not stop the others
            if state.debug:
                raise
            run.failures.append(_Failure(pp.label, _reason(err, pp.label), written))
        except KeyboardInterrupt:
            run.cut_short = _Failure(pp.label, "interrupted", written)
            raise
        else:
            run.results.append(result)
        # the montage's labels: image, kernel with its parameters, a stacked bank's filter
        params = ",".join(f"{k}={v:g}" for k, v in pp.kernel.params.items() if v)
        kernel = pp.kernel.name + (f":{params}" if params else "")
        stem = pp.header.path.stem
        tiles += [
            (f"{stem} {kernel}" + (f" [{o.filter}]" if o.filter else ""), o.path)
            for o in written
        ]
    if plan.montage is not None and tiles:
        from convcli.images import montage

        try:
            run.montage = montage(plan.montage, tiles)
            run.tiles = len(tiles)
        except Exception as err:  # the outputs stay; the montage is reported failed
            if state.debug:
                raise
            label = f"--montage {shown(plan.montage)}"
            run.failures.append(_Failure(label, _reason(err, shown(plan.montage))))


def _reason(err: Exception, label: str) -> str:
    """One line on why a pair failed, naming it."""
    if isinstance(err, ConvcliError | ValueError):
        text = str(err)
    elif isinstance(err, MemoryError):
        text = "not enough memory"
    elif isinstance(err, OSError):
        text = str(err.strerror or err)
    else:  # not anticipated: still one line (--debug shows the traceback)
        text = f"{type(err).__name__}: {err}"
    return text if label.split(" x ")[0] in text else f"{label}: {text}"


def _print_tables(run: _Run, *, explain: bool, to_stderr: bool = False) -> None:
    """Print one table per pair done, what failed pairs wrote, the montage, a summary.

    On stderr when stdout carries the image (``-o -``).
    """
    from convcli import render  # rich, only for the tables
    from convcli.images import shown

    console = render.err_console if to_stderr else render.console

    if len(run.results) > 1 and not explain:  # many outputs: a line each
        from convcli.render.runs import outputs_table

        console.print(outputs_table(run.results))
    else:
        for result in run.results:
            console.print(render.apply_table(result, explain=explain))
    cut = [run.cut_short] if run.cut_short else []
    for failure in run.failures + cut:
        why = "was interrupted" if failure is run.cut_short else "failed"
        for o in failure.written:
            console.print(
                f"{failure.label}: wrote {shown(o.path)} before it {why}", markup=False
            )
    if run.montage is not None:
        console.print(
            f"montage of {run.tiles} outputs: {shown(run.montage)}", markup=False
        )
    if run.failures or run.interrupted:
        written = sum(len(r.outputs) for r in run.results)
        written += sum(len(f.written) for f in run.failures + cut)
        failed = f", {len(run.failures)} failed" if run.failures else ""
        if run.failures:
            failed += f" ({', '.join(f.label for f in run.failures)})"
        stop = " (interrupted)" if run.interrupted else ""
        console.print(
            f"convcli apply{stop}: {len(run.results)} of {run.total} pairs done"
            f"{failed}; {written} outputs written",
            markup=False,
        )


def _result_json(run: _Run) -> dict[str, Any]:
    """Return the ``--json`` document: each input with its outputs and how each was made."""
    inputs: dict[Path, dict[str, Any]] = {}
    for r in run.results:
        entry = inputs.setdefault(
            r.input,
            {
                "path": str(r.input),
                "shape": list(r.input_shape),
                "frames": r.frames,
                "outputs": [],
            },
        )
        for out in r.outputs:
            entry["outputs"].append(
                {
                    "path": str(out.path),
                    "shape": list(out.shape),
                    "frames": out.frames,
                    "kernel": r.kernel.name,
                    "kernel_shape": list(r.kernel_shape),
                    "filter": out.filter,
                    "method": r.method,
                    "stride": list(r.stride),
                    "padding": list(r.padding),
                    "dilation": list(r.dilation),
                    "border": r.border,
                    "like": r.like,
                    "bands": None if r.bands is None else list(r.bands),
                    "seconds": r.seconds,
                }
            )
            if r.chain:  # --chain: each step's kernel and the size after it
                steps = [{"kernel": k, "shape": list(s)} for k, s in r.chain]
                entry["outputs"][-1]["chain"] = steps
    doc: dict[str, Any] = {"inputs": list(inputs.values())}
    doc["failed"] = [
        {
            "pair": f.label,
            "error": f.error,
            "written": [str(o.path) for o in f.written],
        }
        for f in run.failures
    ]
    if run.montage is not None:
        doc["montage"] = str(run.montage)
    if run.interrupted:
        doc["interrupted"] = True
        written = run.cut_short.written if run.cut_short else []
        doc["written_before_the_interruption"] = [str(o.path) for o in written]
    return doc
