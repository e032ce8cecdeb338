"""Everything the terminal shows: consoles, tables, kernel grids, errors.

The only module that imports rich. Functions here build renderables from
library values and print nothing on their own, except `error`.
"""

from __future__ import annotations

import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from convcli.kernels import GENERATORS, Kernel
from convcli.names import STATUSES
from convcli.tracing import Trace, format_number, size_formula

if TYPE_CHECKING:
    from convcli.batch import ItemResult
    from convcli.pipeline import ApplyResult  # only a type: Pillow stays unloaded

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def error(message: str) -> None:
    """Print ``Error: message`` on stderr, as plain text (paths may hold ``[``)."""
    err_console.print(
        f"Error: {message}", markup=False, highlight=False, soft_wrap=True
    )


def _params(kernel: Kernel) -> str:
    gen = GENERATORS.get(kernel.name)
    if gen is None or kernel.source != "generator":
        return ""
    return ", ".join(f"{k}={format_number(v)}" for k, v in gen.defaults.items())


def _shape(kernel: Kernel) -> str:
    kh, kw = kernel.size
    if not kernel.is_bank:
        return f"{kh}x{kw}"
    depth, channels = kernel.weights.shape[:2]
    return f"{depth} x {channels}x{kh}x{kw}"


def _separable(kernel: Kernel) -> str:
    rank = kernel.rank
    return "yes" if rank == 1 else f"no (rank {rank})"


def kernel_table(kernels: list[Kernel]) -> Table:
    """Return the catalogue as a table: name, size, parameters, separable, sum, description."""
    table = Table(title="convcli kernels", title_justify="left")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("size", no_wrap=True)
    table.add_column("parameters")
    table.add_column("separable", no_wrap=True)
    table.add_column("sum", justify="right", no_wrap=True)
    table.add_column("description")
    for k in kernels:
        table.add_row(
            k.name,
            _shape(k),
            _params(k),
            _separable(k),
            format_number(round(k.total, 6)),
            k.description,
        )
    return table


def _cell(value: float) -> Text:
    """One weight: sign always written (+2, -1, 0), coloured by sign as well."""
    if value == 0:
        return Text("0", style="dim")
    text = format_number(value)
    return Text(
        text if value < 0 else f"+{text}", style="red" if value < 0 else "green"
    )


def _grid(weights: np.ndarray) -> Table:
    grid = Table(show_header=False, box=None, padding=(0, 1), pad_edge=False)
    for _ in range(weights.shape[1]):
        grid.add_column(justify="right", no_wrap=True, overflow="ignore")
    for row in weights:
        grid.add_row(*(_cell(float(v)) for v in row))
    return grid


def kernel_view(kernel: Kernel) -> Group:
    """Return one kernel's weights as grids, then its properties."""
    parts: list[Table | Text] = [
        Text(f"{kernel.name}: {kernel.description}".rstrip(": "), style="bold")
    ]
    if kernel.is_bank:
        names = kernel.filter_names or tuple(
            f"f{i}" for i in range(kernel.weights.shape[0])
        )
        for d, name in enumerate(names):
            for c in range(kernel.weights.shape[1]):
                label = f"filter {name}" + (
                    f", channel {c}" if kernel.weights.shape[1] > 1 else ""
                )
                parts.append(Text(label, style="italic"))
                parts.append(_grid(kernel.weights[d, c]))
    else:
        parts.append(_grid(kernel.weights))
    props = Table(show_header=False, box=None, padding=(0, 1))
    props.add_column(style="bold")
    props.add_column()
    props.add_row("shape", _shape(kernel))
    props.add_row("sum", format_number(round(kernel.total, 6)))
    props.add_row("separable", _separable(kernel))
    props.add_row("combine", kernel.combine)
    props.add_row("range", kernel.range)
    if kernel.bias:
        props.add_row("bias", " ".join(format_number(b) for b in kernel.bias))
    if kernel.params:
        props.add_row(
            "parameters",
            ", ".join(f"{k}={format_number(v)}" for k, v in kernel.params.items()),
        )
    if kernel.origin:
        props.add_row("origin", kernel.origin)
    props.add_row("source", kernel.source)
    parts.append(props)
    return Group(*parts)


def print_json(text: str) -> None:
    """Write a JSON document to stdout as it is, nothing else."""
    sys.stdout.write(text + "\n")


def _hwc(shape: tuple[int, ...]) -> str:
    return " x ".join(str(n) for n in shape)


def apply_table(r: ApplyResult, *, explain: bool = False) -> Table:
    """Return one run as a table: the feature-map shapes, the geometry, where it went."""
    table = Table(
        title=f"{r.input.name} x {r.kernel.name}",
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
        "kernel", f"{r.kernel.name}  {_hwc(r.kernel_shape)}  ({dims}){combine}"
    )
    table.add_row("stride", f"{r.stride[0]}, {r.stride[1]}  (rows, cols)")
    top, bottom, left, right = r.padding
    table.add_row(
        "padding", f"{top}, {bottom}, {left}, {right}  (top, bottom, left, right)"
    )
    table.add_row("dilation", f"{r.dilation[0]}, {r.dilation[1]}")
    table.add_row("border", r.border)
    for i, part in enumerate(r.formula.split("; ")):
        table.add_row("output size" if i == 0 else "", part)
    for out in r.outputs:
        label = "output" + (f" [{out.filter}]" if out.filter else "")
        table.add_row(label, f"{_hwc(out.shape)}  (H' x W' x C)  ->  {out.path}")
    ms = 1000 * sum(r.seconds.values())
    parts = ", ".join(f"{k} {1000 * v:.1f}" for k, v in r.seconds.items())
    table.add_row("method", r.method)
    table.add_row("time", f"{ms:.1f} ms  ({parts})")
    if explain:
        table.add_row("why", r.reason)
        costs = ", ".join(f"{m} {est:.3g} ms" for m, est in r.costs.items())
        table.add_row("estimates", costs)
    return table


# ---------------------------------------------------------------------------
# convcli trace: the header, one block per step, the summary

_WINDOW = "bold black on yellow"
_PADDING = "dim"
_CURRENT = "bold"

TRACE_LEGEND = "[ ] the window   ( ) padding   . not computed yet"
"""How the plain-text grids mark cells; printed under the trace header."""


@dataclass(frozen=True)
class TraceLabels:
    """How a trace names things: x[:,:,c], w0[:,:,c], b0, o[:,:,d] (cs231n's way)."""

    channels: int
    depth: int
    groups: int

    @property
    def single(self) -> bool:
        """One channel and one filter: plain x, w, b, o."""
        return self.channels == 1 and self.depth == 1

    def x(self, c: int) -> str:
        """Return the name of input channel ``c``."""
        return "x" if self.channels == 1 else f"x[:,:,{c}]"

    def w(self, d: int, c: int | None = None) -> str:
        """Return the name of filter ``d``, or of its slice over input channel ``c``."""
        name = "w" if self.single else f"w{d}"
        if c is None or self.channels == 1 or self.groups > 1:
            return name
        return f"{name}[:,:,{c}]"

    def b(self, d: int) -> str:
        """Return the name of filter ``d``'s bias."""
        return "b" if self.single else f"b{d}"

    def o(self, d: int, row: int | None = None, col: int | None = None) -> str:
        """Return the name of output map ``d``, or of one of its values."""
        if row is None:
            return "o" if self.single else f"o[:,:,{d}]"
        if self.single:
            return f"o[{row},{col}]"
        return f"o[{row},{col},{d}]"


def _labels(t: Trace) -> TraceLabels:
    return TraceLabels(int(t.input.shape[0]), t.depth, t.groups)


def _width(*arrays: np.ndarray) -> int:
    return max(len(format_number(float(v))) for a in arrays for v in a.ravel())


def _marked_grid(
    values: np.ndarray,
    width: int,
    *,
    window: AbstractSet[tuple[int, int]] = frozenset(),
    padding: np.ndarray | None = None,
    empty: np.ndarray | None = None,
) -> list[Text]:
    """Draw a matrix as lines: ``[ ]`` around window runs, ``( )`` round padding.

    The brackets sit in the gaps between cells, so the columns stay aligned
    and a dilated window shows each of its taps.
    """
    lines = []
    rows, cols = values.shape
    for r in range(rows):
        line = Text()
        for c in range(cols + 1):
            left = (r, c - 1) in window
            here = (r, c) in window
            gap = "]" if left and not here else "[" if here and not left else " "
            line.append(gap, style=_WINDOW if left or here else "")
            if c == cols:
                break
            is_pad = padding is not None and bool(padding[r, c])
            text = (
                "."
                if empty is not None and empty[r, c]
                else format_number(float(values[r, c]))
            )
            # room for the parentheses; digits line up either way
            cell = (f"({text})" if is_pad else f"{text} ").rjust(width + 2)
            style = _WINDOW if here else _PADDING if is_pad else ""
            line.append(cell, style=style)
        line.rstrip()
        lines.append(line)
    return lines


def _plain_grid(values: np.ndarray, width: int) -> list[Text]:
    return [
        Text(" ".join(format_number(float(v)).rjust(width) for v in row))
        for row in values
    ]


def _side_by_side(blocks: list[tuple[str, list[Text]]], gap: int = 4) -> list[Text]:
    """Place labelled blocks of lines next to each other, tops aligned."""
    widths = [
        max([len(label)] + [line.cell_len for line in lines]) for label, lines in blocks
    ]
    height = max(len(lines) for _, lines in blocks) + 1
    out = []
    for i in range(height):
        line = Text()
        for b, ((label, lines), width) in enumerate(zip(blocks, widths, strict=True)):
            part = (
                Text(label, style="italic")
                if i == 0
                else (lines[i - 1].copy() if i - 1 < len(lines) else Text())
            )
            if b < len(blocks) - 1:
                part.pad_right(width + gap - part.cell_len)
            line.append_text(part)
        line.rstrip()
        out.append(line)
    return out


def _padding_mask(t: Trace) -> np.ndarray:
    top, _, left, _ = t.padding
    height, width = t.input.shape[1:]
    mask = np.ones(t.padded.shape[1:], dtype=bool)
    mask[top : top + height, left : left + width] = False
    return mask


def _pads_text(t: Trace) -> str:
    top, bottom, left, right = t.padding
    if not any(t.padding):
        return "none (valid)"
    if top == bottom == left == right:
        where = f"{top} on each side"
    else:
        where = f"top {top}, bottom {bottom}, left {left}, right {right}"
    if t.border == "constant":
        holds = "zeros" if t.cval == 0 else f"the value {format_number(t.cval)}"
    else:
        holds = f"border {t.border}"
    rows, cols = t.padded.shape[1:]
    return f"{where}, {holds}  ->  {rows} x {cols} x {t.input.shape[0]}"


def trace_header(
    t: Trace, *, title: str = "", lesson: str = "", notes: tuple[str, ...] = ()
) -> Text:
    """Return what comes before the steps: the layer, its sizes, its cost."""
    lab = _labels(t)
    channels, height, width = t.input.shape
    kh, kw = t.kernel
    lines: list[Text] = []
    if title:
        lines.append(Text(f"convcli trace: {title}", style="bold"))
    if lesson:
        lines.extend(Text(part, style="italic") for part in textwrap.wrap(lesson, 88))
    if lines:
        lines.append(Text())

    def row(label: str, text: str, style: str = "") -> None:
        line = Text(f"{label:<10}", style="bold")
        line.append(text, style=style)
        lines.append(line)

    row("input", f"x  {height} x {width} x {channels}  (H x W x C)")
    row("padding", _pads_text(t))
    names = (
        ", ".join(lab.w(d) for d in range(t.depth))
        if t.depth <= 4
        else (f"{lab.w(0)} ... {lab.w(t.depth - 1)}")
    )
    count = "1 filter" if t.depth == 1 else f"{t.depth} filters"
    if t.groups > 1:
        shape = f"{kh} x {kw}, each on one input channel (depthwise: groups {t.groups})"
    else:
        shape = f"each {channels} x {kh} x {kw}  (C x kh x kw)"
    row("filters", f"{count} {names}, {shape}")
    if any(t.bias):
        row(
            "bias",
            ", ".join(
                f"{lab.b(d)} = {format_number(float(b))}" for d, b in enumerate(t.bias)
            ),
        )
    row(
        "stride",
        f"{t.stride[0]}"
        if t.stride[0] == t.stride[1]
        else f"{t.stride[0]} rows, {t.stride[1]} cols",
    )
    if t.dilation != (1, 1):
        span = [d * (k - 1) + 1 for d, k in zip(t.dilation, t.kernel, strict=True)]
        row(
            "dilation",
            f"{t.dilation[0]}, {t.dilation[1]}  (each window spans {span[0]} x {span[1]})",
        )
    top, bottom, left, right = t.padding
    warnings = []
    for axis, (n, k, s, before, after, d) in enumerate(
        [
            (height, kh, t.stride[0], top, bottom, t.dilation[0]),
            (width, kw, t.stride[1], left, right, t.dilation[1]),
        ]
    ):
        formula, _ = size_formula(
            n, k, stride=s, before=before, after=after, dilation=d
        )
        row("output" if axis == 0 else "", f"{'HW'[axis]}' = {formula}")
        left_over = (n + before + after - d * (k - 1) - 1) % s
        if left_over:
            one, many = ("row", "rows") if axis == 0 else ("column", "columns")
            last = (
                f"last {left_over} padded {many} never enter"
                if left_over > 1
                else f"last padded {one} never enters"
            )
            warnings.append(
                f"warning: stride {s} does not divide the {many} evenly: the {last} a window"
            )
    depth, out_h, out_w = t.output.shape
    per = "one map per filter" if t.groups == 1 else "one map per channel"
    row("", f"o  {out_h} x {out_w} x {depth}  (H' x W' x D: {per})")
    for warning in warnings:
        lines.append(Text(warning, style="yellow"))
    per_filter = int(t.weights[0].size)
    row(
        "cost",
        f"{t.parameters} parameters ({t.depth} x {per_filter} weights + {t.depth} "
        f"{'bias' if t.depth == 1 else 'biases'}), {t.multiply_adds} multiply-adds "
        f"({t.output.size} output{'s' if t.output.size > 1 else ''} x {per_filter})",
    )
    for note in notes:
        lines.append(Text(note, style="italic"))
    if t.flip:
        lines.append(
            Text(
                "flip: every kernel is rotated 180 degrees (true convolution); the steps use the rotated weights:",
                style="italic",
            )
        )
        given = t.weights[0, 0, ::-1, ::-1]
        w = _width(given)
        lines.extend(
            _side_by_side(
                [
                    (f"{lab.w(0, 0)} as given", _plain_grid(given, w)),
                    ("rotated", _plain_grid(t.weights[0, 0], w)),
                ]
            )
        )
    lines.append(Text(TRACE_LEGEND, style="dim"))
    return Text("\n").join(lines)


def trace_step(t: Trace, index: int) -> Text:
    """Return one step: the padded input with its window, the kernel, the products, the output so far."""
    lab = _labels(t)
    step = t.steps[index]
    d = step.filter
    rows, cols = t.taps(step)
    window = {(r, c) for r in rows for c in cols}
    pad: np.ndarray | None = _padding_mask(t)
    if pad is not None and not pad.any():
        pad = None
    cell = max(_width(t.padded), 1)
    wcell = _width(t.weights)
    lines = [
        Text(
            f"step {index + 1} of {len(t.steps)}: {lab.o(d, step.row, step.col)}, "
            f"filter {lab.w(d)} over rows {rows[0]}-{rows[-1]}, cols {cols[0]}-{cols[-1]} "
            "of the padded input",
            style="bold",
        )
    ]
    for i, c in enumerate(t.channels_of(d)):
        if i:
            lines.append(Text())
        lines.extend(
            _side_by_side(
                [
                    (
                        lab.x(c),
                        _marked_grid(t.padded[c], cell, window=window, padding=pad),
                    ),
                    (lab.w(d, c), _plain_grid(t.weights[d, i], wcell)),
                ]
            )
        )
        lines.append(Text(t.terms(step, i)))
    if len(t.channels_of(d)) > 1:
        lines.append(Text())
    sums = [format_number(s) for s in step.channel_sums]
    total = " + ".join(sums)
    if step.bias or len(sums) > 1:
        total += f" + {lab.b(d)} ({format_number(step.bias)})"
    result = Text(f"{lab.o(d, step.row, step.col)} = ", style="bold")
    if total != format_number(step.value):
        result.append(f"{total} = ", style="bold")
    result.append(format_number(step.value), style="bold green")
    lines.append(result)
    lines.extend(_output_maps(t, index))
    return Text("\n").join(lines)


def _output_maps(t: Trace, upto: int) -> list[Text]:
    """Return the output maps with the values of steps 0..upto, the current one bracketed."""
    lab = _labels(t)
    done = np.zeros(t.output.shape, dtype=bool)
    for s in t.steps[: upto + 1]:
        done[s.filter, s.row, s.col] = True
    current = t.steps[upto]
    width = _width(t.output)
    blocks = []
    for d in range(t.depth):
        here = {(current.row, current.col)} if d == current.filter else set()
        blocks.append(
            (lab.o(d), _marked_grid(t.output[d], width, window=here, empty=~done[d]))
        )
    return _side_by_side(blocks)


def trace_summary(t: Trace) -> Group:
    """Return what comes after the steps: a table of shapes, then the output maps."""
    lab = _labels(t)
    channels, height, width = t.input.shape
    kh, kw = t.kernel
    depth, out_h, out_w = t.output.shape
    table = Table(title="shapes", title_justify="left")
    table.add_column("what", style="bold", no_wrap=True)
    table.add_column("shape", no_wrap=True)
    table.add_column("numbers", justify="right", no_wrap=True)
    table.add_row("input x", f"{height} x {width} x {channels}", str(t.input.size))
    rows, cols = t.padded.shape[1:]
    table.add_row("padded x", f"{rows} x {cols} x {channels}", str(t.padded.size))
    table.add_row(
        "weights w",
        f"{depth} x {t.weights.shape[1]} x {kh} x {kw}  (D x C x kh x kw)",
        str(t.weights.size),
    )
    table.add_row("bias b", f"{depth}", str(t.bias.size))
    table.add_row("output o", f"{out_h} x {out_w} x {depth}", str(t.output.size))
    table.add_row(
        "multiply-adds", f"{t.output.size} x {t.weights[0].size}", str(t.multiply_adds)
    )
    width_o = _width(t.output)
    maps = _side_by_side(
        [(lab.o(d), _plain_grid(t.output[d], width_o)) for d in range(t.depth)]
    )
    return Group(table, Text("\n").join(maps))


def demo_table(demos: dict[str, str]) -> Table:
    """Return the demos of ``convcli trace --demo`` as a table."""
    table = Table(title="convcli trace demos", title_justify="left")
    table.add_column("demo", style="bold", no_wrap=True)
    table.add_column("what it shows")
    for name, title in demos.items():
        table.add_row(name, title)
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
