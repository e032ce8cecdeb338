"""`convcli batch`: filter a folder of images in parallel, locally or on a Dask cluster."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from convcli.cli.common import EXIT_FAILED, QuietOpt, stdout_failures, user_errors
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
    SchedulerOpt,
    SchedulerTimeoutOpt,
    StrideOpt,
    apply_options,
)
from convcli.cli.pipes import FormatOpt

if TYPE_CHECKING:
    from convcli.batch import Executor, Item, ItemResult, Plan
    from convcli.cli.options import Like
    from convcli.manifest import Manifest
    from convcli.pipeline import ApplyOptions

InDirArg = Annotated[Path, typer.Argument(help="The folder of images to filter.")]
OutDirOpt = Annotated[
    Path,
    typer.Option(
        "--out", "-o", metavar="OUT_DIR", help="Where the outputs go (mirrored tree)."
    ),
]
RecursiveOpt = Annotated[
    bool, typer.Option("--recursive", "-r", help="Also the folders inside IN_DIR.")
]
GlobOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--glob",
        metavar="PATTERN",
        help="File names to take, e.g. '*.png'; repeatable [every image ending].",
    ),
]
JobsOpt = Annotated[
    int | None,
    typer.Option("--jobs", "-j", min=1, help="Processes at once [the number of CPUs]."),
]
SkipExistingOpt = Annotated[
    bool, typer.Option("--skip-existing", help="Leave items whose outputs all exist.")
]
FailFastOpt = Annotated[
    bool, typer.Option("--fail-fast", help="Stop at the first failed item.")
]
ManifestOpt = Annotated[
    Path | None,
    typer.Option(
        metavar="FILE", help="Write a JSON line per item (paths, sizes, sha256)."
    ),
]


def batch(
    in_dir: InDirArg,
    kernel: KernelSpecs,
    out: OutDirOpt,
    recursive: RecursiveOpt = False,
    glob_patterns: GlobOpt = None,
    jobs: JobsOpt = None,
    skip_existing: SkipExistingOpt = False,
    fail_fast: FailFastOpt = False,
    manifest: ManifestOpt = None,
    as_json: JsonOpt = False,
    quiet: QuietOpt = False,
    scheduler: SchedulerOpt = None,
    scheduler_timeout: SchedulerTimeoutOpt = 10.0,
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
    alpha: AlphaOpt = CARRY,
    like_library: LikeOpt = None,
    frame: FrameOpt = None,
    chain: ChainOpt = False,
    name: NameOpt = None,
    fmt: FormatOpt = None,
) -> None:
    """Filter every image in IN_DIR with each KERNEL, in parallel, into OUT_DIR.

    The folder tree is mirrored under OUT_DIR, outputs named as `apply`
    names them (--name TEMPLATE, --format EXT too; {n} counts the outputs
    in the order the images are listed). A bad file is reported and the run goes on; exit code 1 if
    any item failed, 130 if interrupted (Ctrl-C finishes the items running,
    starts no more, and leaves no partial file; SIGTERM and SIGHUP do the
    same and exit 143 and 129). Inputs are never touched: a run whose
    outputs or manifest would replace an input, or one another, stops
    before it starts (exit 2).
    """
    n_jobs = _get_ready(jobs, local=scheduler is None)
    from convcli import workers
    from convcli.batch import Interrupted

    outcome = _Outcome()
    log: Manifest | None = None
    start = time.perf_counter()
    try:  # Ctrl-C anywhere: report what finished, exit 130 (not click's "Aborted!")
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
            plan = _plan(kernel, options, like_library, skip_existing)
            if scheduler is not None:  # remote workers have other working folders
                in_dir, out = in_dir.resolve(), out.resolve()
            outcome.items = _find_work(
                in_dir, out, recursive, glob_patterns, outcome.unlisted
            )
            log = _prepare_writes(outcome.items, plan, out, manifest)
        executor = _executor(scheduler, scheduler_timeout)
        outcome.results = _run(
            outcome, plan, executor, n_jobs, fail_fast, log, quiet=as_json or quiet
        )
    except Interrupted as stop:
        outcome.results = outcome.unlisted + stop.results
        outcome.interrupted = True
    except KeyboardInterrupt:
        outcome.interrupted = True
    finally:
        if log is not None:  # the manifest goes into place, whatever ended the run
            try:
                with workers.held_signals():
                    log.close()
            except KeyboardInterrupt:
                outcome.interrupted = True
    with stdout_failures():
        _report(outcome, time.perf_counter() - start, as_json=as_json, quiet=quiet)
    if log is not None and log.error is not None:
        from convcli import render

        render.error(log.error)
    if outcome.interrupted:
        raise typer.Exit(code=workers.stop_exit_code())
    failed = any(r.status == "failed" for r in outcome.results)
    if failed or (log is not None and log.error is not None):
        raise typer.Exit(code=EXIT_FAILED)


@dataclass
class _Outcome:
    """How far a run got: what was found, the results so far, whether a signal stopped it.

    ``unlisted`` holds the folders that could not be listed, as failed results.
    """

    items: list[Item] = field(default_factory=list)
    unlisted: list[ItemResult] = field(default_factory=list)
    results: list[ItemResult] = field(default_factory=list)
    interrupted: bool = False


def _get_ready(jobs: int | None, *, local: bool) -> int:
    """Return the number of jobs, once what a run needs is imported (numpy, Pillow, rich).

    For a ``local`` run, the process pool's worker server imports numpy and
    Pillow on the other core while this process imports its own. Ctrl-C
    (SIGTERM, SIGHUP) here exits 130 (143, 129) at once: no item ran.
    """
    from convcli import workers

    n_jobs = jobs or workers.cpus()
    try:
        if local:
            workers.start_server(n_jobs)
        from convcli import batch, kernels, manifest, pipeline, render  # noqa: F401
    except KeyboardInterrupt:
        typer.echo("convcli batch (interrupted): no item ran")
        raise typer.Exit(code=workers.stop_exit_code()) from None
    return n_jobs


def _plan(
    specs: list[str],
    options: ApplyOptions,
    like_library: Like | None,
    skip_existing: bool,
) -> Plan:
    """Load the kernels and pair each with its options (``--like`` adjusts them)."""
    from convcli.batch import Plan
    from convcli.chain import chain_pairs
    from convcli.kernels import load_kernel
    from convcli.pipeline import like

    kernels = [load_kernel(spec) for spec in specs]
    pairs = [(k, options) for k in kernels]
    if like_library is not None:
        pairs = [like(like_library.value, k, options) for k in kernels]
    pairs = chain_pairs(pairs, options)  # --chain: one kernel of them all
    return Plan(tuple(pairs), skip_existing=skip_existing)


def _find_work(
    in_dir: Path,
    out: Path,
    recursive: bool,
    glob_patterns: list[str] | None,
    unlisted: list[ItemResult],
) -> list[Item]:
    """List the images to filter; the folders that cannot be listed go to ``unlisted``."""
    from convcli.batch import DEFAULT_GLOBS, find_images

    return find_images(
        in_dir,
        out,
        recursive=recursive,
        globs=glob_patterns or DEFAULT_GLOBS,
        unlisted=unlisted,
    )


def _prepare_writes(
    items: list[Item], plan: Plan, out: Path, manifest: Path | None
) -> Manifest | None:
    """Check the whole output plan; then create the output folder and start the manifest.

    Nothing is written before the plan is checked: an output or a manifest
    that would replace an input, or one another, is bad input (exit 2).
    """
    from convcli.batch import check_plan
    from convcli.manifest import Manifest

    check_plan(items, plan, manifest=manifest)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        msg = f"{out}: cannot create the output folder: {err.strerror or err}"
        raise ValueError(msg) from None
    return Manifest.open(manifest) if manifest is not None else None


def _executor(scheduler: str | None, timeout: float) -> Executor:
    """Return what runs the items: the local process pool, or the Dask cluster."""
    if scheduler is None:
        from convcli.batch import run_locally

        return run_locally
    from convcli.cluster import dask_executor

    return dask_executor(scheduler, timeout=timeout)


def _run(
    outcome: _Outcome,
    plan: Plan,
    executor: Executor,
    jobs: int,
    fail_fast: bool,
    log: Manifest | None,
    *,
    quiet: bool,
) -> list[ItemResult]:
    """Run the items, drawing the progress bar (unless ``quiet``) and the manifest.

    Each item's manifest line is written as the item ends; the folders that
    could not be listed come first, as failed results (with ``fail_fast``,
    one of them stops the run before any item).
    """
    from convcli import render
    from convcli.batch import run
    from convcli.manifest import manifest_line

    total = len(outcome.items) + len(outcome.unlisted)
    with render.batch_progress(total, enabled=not quiet) as advance:

        def on_item(result: ItemResult) -> None:
            advance(result)
            if log is not None:
                log.write(manifest_line(result, plan))

        for result in outcome.unlisted:
            on_item(result)
        if fail_fast and outcome.unlisted:
            return list(outcome.unlisted)
        with user_errors():  # an unreachable scheduler is bad input: exit 2
            results = run(
                outcome.items,
                plan,
                jobs=jobs,
                fail_fast=fail_fast,
                on_item=on_item,
                executor=executor,
            )
    return outcome.unlisted + results


def _report(
    outcome: _Outcome, seconds: float, *, as_json: bool, quiet: bool = False
) -> None:
    """Print the run's summary (a table, or JSON) and each failed item's error.

    ``quiet`` (``-q``): each failed item's error on stderr, nothing else.

    A terminal that is gone after a stop signal (SIGHUP) takes nothing more:
    that is no error. Otherwise a failed write goes on to `stdout_failures`.
    """
    from convcli import render
    from convcli.manifest import finite_json

    results = outcome.results
    total = len(outcome.items) + len(outcome.unlisted)
    try:
        if as_json:
            counts = render.batch_counts(results, total, seconds, outcome.interrupted)
            doc = {"items": [r.to_json() for r in results], "summary": counts}
            text = json.dumps(finite_json(doc), indent=2, allow_nan=False)
            render.print_json(text)
            return
        if quiet:
            for r in results:
                if r.status == "failed" and r.error:
                    render.error(r.error)
            return
        render.console.print(
            render.batch_table(results, total, seconds, outcome.interrupted)
        )
        for r in results:
            if r.status == "failed":
                render.console.print(f"failed: {r.error}", markup=False, soft_wrap=True)
    except OSError:
        if not outcome.interrupted:
            raise  # a full disk on stdout: stdout_failures says so, exit 1
