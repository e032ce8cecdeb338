"""Tables of apply's results and of batch runs; batch's progress bar."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from convcli.names import STATUSES
from convcli.render.console import err_console

if TYPE_CHECKING:
    from convcli.batch import ItemResult
    from convcli.pipeline import ApplyResult  # only a type: Pillow stays unloaded


def _shown(path: object) -> str:
    """Return a path with control characters escaped (as `convcli.images.shown`)."""
    text = str(path)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _hwc(shape: tuple[int, ...]) -> str:
    return " x ".join(str(n) for n in shape)


LIKE_SET: dict[str, str] = {
    "opencv": "no flip, border reflect (BORDER_REFLECT_101), anchor k//2, clip",
    "scipy": "no flip, border symmetric (mode reflect), anchor k//2 (origin 0), clip",
    "pillow": "kernel flipped top to bottom and divided by its sum, border edge, "
    "anchor (k-1)//2, clip",
    "torch": "no flip, border constant 0 (zero padding), anchor (k-1)//2 "
    "(padding 'same'), clip",
    "imagemagick": "flip (a true convolution), border edge (virtual pixels Edge), "
    "origin (k-1)//2, clip",
}
"""What ``--like LIBRARY`` set, for apply's ``like`` row: flip, border, the anchor of
even kernels, range; as `convcli.pipeline.like` sets them (a test holds the two together)."""


def like_text(library: str) -> str:
    """Return the ``like`` row: ``opencv: no flip, border reflect (...), anchor k//2, clip``."""
    return f"{library}: {LIKE_SET.get(library, '')}".rstrip(": ")


def apply_table(r: ApplyResult, *, explain: bool = False) -> Table:
    """Return one run as a table: the feature-map shapes, the geometry, where it went.

    A ``like`` row says what ``--like`` set, when it was given.
    """
    table = Table(
        title=Text(f"{_shown(r.input.name)} x {r.kernel.name}"),  # no markup
        title_justify="left",
        show_header=False,
    )
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    h, w, c = r.input_shape
    table.add_row("input", f"{h} x {w} x {c}  (H x W x C)")
    dims = "D x C x kh x kw" if len(r.kernel_shape) == 4 else "kh x kw"
    combine = f", combine {r.kernel.combine}" if r.kernel.is_bank else ""
    table.add_row(
        "kernel", Text(f"{r.kernel.name}  {_hwc(r.kernel_shape)}  ({dims}){combine}")
    )
    for i, (step, shape) in enumerate(r.chain, 1):  # --chain: each step, its size
        table.add_row(f"step {i}", Text(f"{step}  {_hwc(shape)}"))
    table.add_row("stride", f"{r.stride[0]}, {r.stride[1]}  (rows, cols)")
    top, bottom, left, right = r.padding
    table.add_row(
        "padding", f"{top}, {bottom}, {left}, {right}  (top, bottom, left, right)"
    )
    table.add_row("dilation", f"{r.dilation[0]}, {r.dilation[1]}")
    table.add_row("border", r.border)
    if r.like:
        table.add_row("like", Text(like_text(r.like)))
    formula = [] if r.chain else r.formula.split("; ")  # --chain: the step rows
    for i, part in enumerate(formula):
        table.add_row("output size" if i == 0 else "", part)
    for out in r.outputs:
        label = Text("output" + (f" [{_shown(out.filter)}]" if out.filter else ""))
        where = f"{_hwc(out.shape)}  (H' x W' x C)  ->  {_shown(out.path)}"
        table.add_row(label, Text(where))
    ms = 1000 * sum(r.seconds.values())
    parts = ", ".join(f"{k} {1000 * v:.1f}" for k, v in r.seconds.items())
    table.add_row("method", r.method)
    if r.bands is None:
        table.add_row("time", f"{ms:.1f} ms  ({parts})")
    else:  # reading, filtering and writing overlap, band by band
        n, rows = r.bands
        bands = f"{n} band{'s' if n > 1 else ''} of {rows} output rows"
        table.add_row("streamed", f"{bands}, read, filtered and written in turn")
        table.add_row("time", f"{ms:.1f} ms")
    if explain:
        table.add_row("why", Text(r.reason))
        costs = ", ".join(f"{m} {est:.3g} ms" for m, est in r.costs.items())
        table.add_row("estimates", costs)
    return table


# ---------------------------------------------------------------------------
# convcli batch: progress and summary


@contextmanager
def batch_progress(
    total: int, *, enabled: bool = True
) -> Iterator[Callable[[ItemResult], None]]:
    """Yield a callback that advances a progress bar on stderr, if it is a terminal.

    The bar shows the count, the rate and the time left; it is drawn only
    when stderr is a terminal and ``enabled``, so pipes and logs stay clean.
    """
    if not (enabled and err_console.is_terminal):
        yield lambda _: None
        return
    # only batch draws a bar: apply and trace do not pay for importing it
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]batch"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )
    task = progress.add_task("batch", total=total, rate="")
    start = time.perf_counter()

    def advance(_: ItemResult) -> None:
        progress.advance(task)
        done = progress.tasks[0].completed
        elapsed = time.perf_counter() - start
        progress.update(task, rate=f"{done / elapsed:.1f} images/s" if elapsed else "")

    with progress:
        yield advance


@contextmanager
def band_progress(*, enabled: bool = True) -> Iterator[Callable[[str, int, int], None]]:
    """Yield ``progress(stage, rows done, rows)`` that draws a streamed image's bands on stderr.

    One bar per stage (``range``: rescale's first pass; ``filter``), drawn
    only when stderr is a terminal and ``enabled``; never called for an
    image filtered in memory.
    """
    if not (enabled and err_console.is_terminal):
        yield lambda *_: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,.0f} of {task.total:,.0f} rows"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )
    tasks: dict[tuple[str, int], Any] = {}

    def advance(stage: str, done: int, total: int) -> None:
        key = (stage, total)
        if key not in tasks or progress.tasks[-1].id != tasks[key]:
            tasks[key] = progress.add_task(stage, total=total)
        progress.update(tasks[key], completed=done)

    with progress:
        yield advance


def batch_counts(
    results: list[ItemResult], total: int, seconds: float, interrupted: bool
) -> dict[str, Any]:
    """Return the numbers of a run: items by status, time, images per second."""
    counts = {status: sum(r.status == status for r in results) for status in STATUSES}
    return {
        "items": total,
        **counts,
        "not_started": total - len(results),
        "seconds": round(seconds, 3),
        "images_per_second": round(counts["done"] / seconds, 2) if seconds else 0.0,
        "interrupted": interrupted,
    }


def batch_table(
    results: list[ItemResult], total: int, seconds: float, interrupted: bool
) -> Table:
    """Return the summary of a run as a table."""
    counts = batch_counts(results, total, seconds, interrupted)
    title = "convcli batch" + (" (interrupted)" if interrupted else "")
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(justify="right")
    table.add_row("done", str(counts["done"]))
    table.add_row("skipped", str(counts["skipped"]))
    table.add_row(
        "failed", str(counts["failed"]), style="red" if counts["failed"] else ""
    )
    if counts["not_started"]:
        table.add_row("not started", str(counts["not_started"]))
    table.add_row("time", f"{seconds:.2f} s")
    table.add_row("images/s", f"{counts['images_per_second']:.1f}")
    return table
