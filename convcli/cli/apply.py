"""`convcli apply`: filter images with kernels, one output file per pair.

A run makes its whole plan before its first write (`_plan`): every kernel
loaded, every input's header read, every output path (and the montage)
checked against the inputs and each other, every size against the pixel
limit, every output folder writable. Anything wrong there is exit 2 and
nothing is written. Then each pair runs; a pair that fails (a truncated
image, a failed write) is reported and the others go on: exit 1.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from convcli.atomic import file_keys
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
    MethodOpt,
    NameOpt,
    PaddingOpt,
    QualityOpt,
    RangeOpt,
    StrideOpt,
    apply_options,
)
from convcli.cli.pipes import FormatOpt, Pipes
from convcli.errors import ConvcliError

if TYPE_CHECKING:
    from convcli.cli.options import Like
    from convcli.pipeline import ApplyOptions, ApplyResult, Output, PairPlan

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
    default), and the tables go to stderr.
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
        )
    pipes = Pipes(list(images), out)
    try:  # the temporary folder goes, however the run ends (Ctrl-C while reading too)
        with user_errors():
            pipes.open(fmt)
        _apply(pipes, kernel, options, as_json, quiet, explain, montage, like_library)
    finally:
        pipes.close()


def _apply(
    pipes: Pipes,
    kernel: list[str],
    options: ApplyOptions,
    as_json: bool,
    quiet: bool,
    explain: bool,
    montage: Path | None,
    like_library: Like | None,
) -> None:
    """Plan, run and report, with stdin and stdout through ``pipes``."""
    images, out = pipes.inputs, pipes.out_text
    with user_errors(), pipes.named():
        try:
            plan = _plan(
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
        _make_folders(plan.folders)
    shown_notes = (
        set()
        if quiet
        else _warn([n for pp in plan.pairs for n in pp.header.notes], set())
    )
    run = _Run(total=len(plan.pairs))
    try:
        _run(plan, run)
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


def _warn(notes: list[str], shown: set[str]) -> set[str]:
    """Print each note not yet shown as one ``warning:`` line on stderr; return those shown."""
    for note in notes:
        if note not in shown:
            typer.echo(f"warning: {note}", err=True)
            shown.add(note)
    return shown


# ---------------------------------------------------------------------------
# The plan: everything checked before the first write


@dataclass
class _Plan:
    """What a run will write, checked: the pairs, -o, the montage, folders to make."""

    pairs: list[PairPlan]
    out: Path | None
    folder: bool
    montage: Path | None
    folders: list[Path]


def _plan(
    paths: list[Path],
    specs: list[str],
    options: ApplyOptions,
    out_text: str | None,
    like_library: Like | None,
    montage: Path | None,
    *,
    to_stdout: bool = False,
) -> _Plan:
    """Load the kernels, read every header, plan and check every output.

    Raises
    ------
    ConvcliError
        The first problem found, naming the file(s); nothing is written.
    """
    from convcli import images
    from convcli.chain import chain_pairs
    from convcli.kernels import load_kernel
    from convcli.pipeline import like, map_names, plan_pair

    kernels = [load_kernel(spec) for spec in specs]
    pairs = [(k, options) for k in kernels]
    if like_library is not None:
        pairs = [like(like_library.value, k, options) for k in kernels]
    pairs = chain_pairs(pairs, options)  # --chain: one kernel of them all
    headers = [images.probe(p, max_pixels=options.max_pixels) for p in paths]
    out, folder = _out_target(out_text)
    if out is not None and not folder:
        _check_one_file(out, options, to_stdout=to_stdout)
    n_outputs = len(paths) * sum(len(map_names(k)) for k, _ in pairs)
    if out is not None and not folder and n_outputs > 1:
        if len(paths) * len(pairs) == 1:
            bank = pairs[0][0]
            why = f"{bank.name} is a bank that writes one image per filter, combine: stack"
        else:
            why = f"{len(paths)} image(s) x {len(pairs)} kernel(s)"
        msg = (
            f"{images.shown(out)}: -o names one file, but there are {n_outputs} "
            f"outputs ({why}); give a folder, e.g. -o {images.shown(out.with_suffix(''))}/"
        )
        if to_stdout:
            msg = (
                f"-o - writes one image to stdout, but there are {n_outputs} outputs "
                f"({why}); give -o a folder instead"
            )
        raise ConvcliError(msg)
    planned, number = [], 1
    for h in headers:
        for k, o in pairs:
            planned.append(plan_pair(h, k, o, out, folder=folder, number=number))
            number += len(planned[-1].outputs)
    sources = [h.path for h in headers] + [
        Path(k.source) for k in kernels if os.path.isfile(k.source)
    ]
    _refuse_clashes(planned, sources, montage, template=options.name)
    if montage is not None:
        _check_montage(montage, planned, images.pixel_limit(options.max_pixels))
    targets = [t for pp in planned for t in pp.outputs]
    folders = _check_folders(
        {t.parent for t in targets + ([montage] if montage else [])}
    )
    return _Plan(planned, out, folder, montage, folders)


def _out_target(text: str | None) -> tuple[Path | None, bool]:
    """Read -o: a folder (ends with /, is one, or has no ending), or one image file."""
    from convcli.images import FORMATS, shown

    if text is None:
        return None, False
    path = Path(text)
    if text.endswith(("/", os.sep)) or os.path.isdir(path):
        return path, True
    endings = ", ".join(FORMATS)
    if os.path.exists(path):
        if not os.path.isfile(path):
            msg = f"{shown(path)}: -o must be a folder or an image file ({endings}); this is neither (a device, FIFO or socket)"
            raise ConvcliError(msg)
        if path.suffix.lower() not in FORMATS:
            msg = f"{shown(path)}: -o names an existing file without an image ending ({endings}); give a folder or an image file name"
            raise ConvcliError(msg)
        return path, False
    if path.suffix == "":
        return path, True
    if path.suffix.lower() not in FORMATS:
        msg = f"{shown(path)}: -o has the ending {path.suffix!r}, not an image ending ({endings}); end it with / for a folder"
        raise ConvcliError(msg)
    return path, False


def _check_one_file(out: Path, options: ApplyOptions, *, to_stdout: bool) -> None:
    """Refuse --name with -o naming the one output, and a --format its ending contradicts."""
    from convcli.images import shown
    from convcli.naming import same_format

    where = "-o -" if to_stdout else f"-o {shown(out)}"
    if options.name is not None:
        msg = (
            f"--name {options.name!r}: {where} names the one output itself; give -o "
            "a folder to name outputs with --name, or leave --name out"
        )
        raise ConvcliError(msg)
    if options.format and not same_format(out.suffix, options.format):
        msg = (
            f"{where} is a {out.suffix.lstrip('.').lower()} file but --format is "
            f"{options.format}; change the ending of -o or leave --format out"
        )
        raise ConvcliError(msg)


def _refuse_clashes(
    pairs: list[PairPlan],
    inputs: list[Path],
    montage: Path | None,
    *,
    template: str | None = None,
) -> None:
    """Refuse an output that is an input, two outputs that are one file, a folder in the way."""
    from convcli.images import shown

    owners = {key: p for p in inputs for key in file_keys(p)}
    written: dict[object, tuple[str, Path | None]] = {}
    targets: list[tuple[Path, str, Path | None]] = [
        (t, pp.label, pp.header.path) for pp in pairs for t in pp.outputs
    ]
    if montage is not None:
        targets.append((montage, "--montage", None))
    for target, label, image in targets:
        what = "--montage" if image is None else f"the output of {label}"
        fix = "choose another --montage file" if image is None else "choose another -o"
        if image is not None and template is not None:
            fix += " or --name"
        if os.path.isdir(target):
            msg = (
                f"{shown(target)}: a folder is in the way of {what}; move it, or {fix}"
            )
            raise ConvcliError(msg)
        for key in file_keys(target):
            if key in owners:
                msg = f"{shown(target)}: {what} would overwrite the input {shown(owners[key])}; {fix}"
                raise ConvcliError(msg)
            if key in written:
                other, other_image = written[key]
                if image is None or other_image is None:
                    hint = "choose another --montage file"
                elif template is not None:
                    hint = f"--name {template!r} gives them one name; add {{stem}}, {{kernel}}, {{filter}} or {{n}}"
                elif file_keys(image)[0] == file_keys(other_image)[0]:
                    hint = "an image or a kernel is given twice, or two kernels share a name; give each once"
                else:
                    hint = "two images share a name; rename one, or run them into separate -o folders"
                msg = f"{shown(target)}: {other} and {label} would both write this file; {hint}"
                raise ConvcliError(msg)
        written.update(dict.fromkeys(file_keys(target), (label, image)))


def _check_montage(montage: Path, pairs: list[PairPlan], limit: int | None) -> None:
    """Check the montage's ending and its size against the pixel limit."""
    from convcli.images import check_output, montage_size, shown

    check_output(montage, channels=3, kind="u8")
    shapes = [pp.out_shape[:2] for pp in pairs for _ in pp.outputs]
    h, w = montage_size(shapes)
    if limit is not None and h * w > limit:
        msg = (
            f"{shown(montage)}: the montage of {len(shapes)} outputs would be {h} x {w} "
            f"= {h * w:,} pixels, more than the limit of {limit:,}; --max-pixels N "
            "raises it"
        )
        raise ConvcliError(msg)


def _check_folders(folders: set[Path]) -> list[Path]:
    """Check that every output folder is writable or can be made; return those to make."""
    from convcli.images import shown

    missing = []
    for folder in sorted(folders):
        probe = folder
        while not os.path.lexists(probe) and probe.parent != probe:
            probe = probe.parent
        where = "" if probe == folder else f" (to make {shown(folder)})"
        if not os.path.isdir(probe):
            msg = f"{shown(probe)}: not a folder, so no output can go there{where}"
            raise ConvcliError(msg)
        if not os.access(probe, os.W_OK | os.X_OK):
            msg = f"{shown(probe)}: cannot write in this folder (permission denied or read-only){where}"
            raise ConvcliError(msg)
        if probe != folder:
            missing.append(folder)
    return missing


def _make_folders(folders: list[Path]) -> None:
    """Make the output folders the plan needs (after every check, before any output)."""
    from convcli.images import shown

    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            msg = f"{shown(folder)}: cannot make this folder: {err.strerror or err}"
            raise ConvcliError(msg) from None


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


def _run(plan: _Plan, run: _Run) -> None:
    """Run every pair, then the montage, into ``run``; a failure is recorded, not raised.

    Ctrl-C (and SIGTERM, SIGHUP) is raised; ``run`` holds what was done by then.
    """
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
