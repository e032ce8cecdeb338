"""Where each part of a `convcli trace --gif` frame goes, and what its text says.

A frame is the picture of the cs231n notes' "Convolution Demo": the input
volume (every channel of the padded input), every filter with its slices and
its bias, and the output volume, side by side; the title and the step above,
the step's arithmetic below. `gif_layout` computes these boxes and strings once
per trace; `convcli.trace_gif` draws them. No Pillow here: text widths come
from the caller's ``measure``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from convcli.tracing import Trace, TraceStep, format_number

Measure = Callable[[str], float]
"""The width in pixels of a string in the frame's font."""

Box = tuple[int, int, int, int]
"""(left, top, right, bottom) in pixels; right and bottom excluded."""

FONT_SIZE = 15
LINE = FONT_SIZE + 7  # one line of text
CELL = 30  # least side of a grid cell
MARGIN = 16
GAP = 24  # below a grid, and between grids side by side
MIN_WIDTH = 640  # room for a product line of a 3x3 kernel
COLUMN_MAX_HEIGHT = 1800
"""A stack of grids (input channels, filter slices, output maps) taller than
this wraps into more columns, so that many channels widen a frame instead of
making it thousands of pixels tall."""

PRODUCTS_MAX = 81
"""Most products of one step written out term by term (9 channels of 3x3);
past that a frame writes the sums only."""

SUM_LINES_MAX = 3
"""Most lines of a step's total; more channel sums than fit are written as one."""


@dataclass(frozen=True)
class Grid:
    """A label and, one line below it, a grid of ``rows`` x ``cols`` cells."""

    label: str
    left: int
    top: int  # of the label
    rows: int
    cols: int
    cell_h: int
    cell_w: int

    @property
    def cells_top(self) -> int:
        """Top of the first row of cells."""
        return self.top + LINE

    @property
    def box(self) -> Box:
        """The cells, without the label."""
        return (
            self.left,
            self.cells_top,
            self.left + self.cols * self.cell_w,
            self.cells_top + self.rows * self.cell_h,
        )

    def cell(self, row: int, col: int) -> Box:
        """Return the box of one cell (0-based ``row`` and ``col``, as numpy indexes)."""
        left = self.left + col * self.cell_w
        top = self.cells_top + row * self.cell_h
        return left, top, left + self.cell_w, top + self.cell_h


@dataclass(frozen=True)
class FilterBlock:
    """One filter: its heading, a slice per channel it reads, its bias, its frame."""

    filter: int
    heading: tuple[str, ...]  # lines, from ``box``'s top-left corner
    box: Box  # the frame drawn around the active filter
    channels: tuple[int, ...]  # the input channel of each slice
    slices: tuple[Grid, ...]  # slices[i] is weights[filter, i]
    bias: Grid  # one cell


@dataclass(frozen=True)
class GifLayout:
    """Every box and string of a trace's frames; all frames share it.

    ``inputs[c]`` is channel c of the padded input, ``filters[d]`` filter d,
    ``outputs[d]`` output map d. ``texts`` are the lines every frame shows
    (title, section headings, legend) as (left, top, text, muted).
    ``headline`` and ``arithmetic`` are the step's lines, drawn from
    ``headline_top`` and ``arithmetic_top``.
    """

    width: int
    height: int
    cell: tuple[int, int]  # (height, width)
    texts: tuple[tuple[int, int, str, bool], ...]
    headline_top: int
    inputs: tuple[Grid, ...]
    filters: tuple[FilterBlock, ...]
    outputs: tuple[Grid, ...]
    arithmetic_top: int
    headlines: tuple[str, ...]  # one per step
    arithmetic: tuple[tuple[tuple[int, str], ...], ...]  # per step: (indent, line)


def wrap(text: str, width: float, measure: Measure) -> list[str]:
    """Break ``text`` after spaces and ``+`` signs into lines of at most ``width`` pixels.

    A piece wider than ``width`` on its own keeps a line to itself.

    Examples
    --------
    >>> wrap("1*2+3*4=14", 4, len)
    ['1*2+', '3*4=14']
    """
    lines: list[str] = []
    line, line_w = "", 0.0
    for piece in re.split(r"(?<=[ +])", text):
        if line and line_w + measure(piece.rstrip()) > width:
            lines.append(line.rstrip())
            line, line_w = "", 0.0
        line += piece
        line_w += measure(piece)
    lines.append(line.rstrip())
    return lines


def channels_text(channels: Sequence[int]) -> str:
    """Name input channels as numpy would slice them.

    Examples
    --------
    >>> channels_text([2]), channels_text(range(2, 4)), channels_text([0, 2])
    ('x[:,:,2]', 'x[:,:,2:4]', 'x[:,:,[0,2]]')
    """
    cs = list(channels)
    if len(cs) == 1:
        return f"x[:,:,{cs[0]}]"
    if cs == list(range(cs[0], cs[-1] + 1)):
        return f"x[:,:,{cs[0]}:{cs[-1] + 1}]"
    return f"x[:,:,[{','.join(map(str, cs))}]]"


class _Names:
    """Names as the cs231n notes write them (plain x, w, b, o for one channel and filter)."""

    def __init__(self, trace: Trace) -> None:
        self.simple = trace.input.shape[0] == 1 and trace.depth == 1

    def x(self, c: int) -> str:
        return "x" if self.simple else f"x[:,:,{c}]"

    def w(self, d: int, i: int | None = None) -> str:
        if self.simple:
            return "w"
        return f"w{d}" if i is None else f"w{d}[:,:,{i}]"

    def b(self, d: int) -> str:
        return "b" if self.simple else f"b{d}"

    def o(self, d: int, row: int | None = None, col: int | None = None) -> str:
        if row is None:
            return "o" if self.simple else f"o[:,:,{d}]"
        return f"o[{row},{col}]" if self.simple else f"o[{row},{col},{d}]"


def _columns(n: int, item_h: int, max_h: int) -> int:
    """Items per column when ``n`` items of ``item_h`` stack at most ``max_h`` tall.

    Balanced: 7 items that need 2 columns go 4 and 3, not 6 and 1.
    """
    per_column = max(1, max_h // item_h)
    n_columns = math.ceil(n / per_column)
    return math.ceil(n / n_columns)


def _stack(
    labels: Sequence[str],
    shape: tuple[int, int],
    cell: tuple[int, int],
    left: int,
    top: int,
    per_column: int,
    column_w: int,
) -> list[Grid]:
    """Grids of one ``shape``, ``per_column`` to a column, columns ``column_w`` apart."""
    (rows, cols), (cell_h, cell_w) = shape, cell
    item_h = LINE + rows * cell_h + GAP
    return [
        Grid(
            label,
            left + (k // per_column) * (column_w + GAP),
            top + (k % per_column) * item_h,
            rows,
            cols,
            cell_h,
            cell_w,
        )
        for k, label in enumerate(labels)
    ]


def _stack_size(n: int, per_column: int, column_w: int, item_h: int) -> tuple[int, int]:
    """Return the (width, height) of ``_stack``'s grids: no gap after the last column."""
    n_columns = math.ceil(n / per_column)
    return n_columns * column_w + (n_columns - 1) * GAP, min(n, per_column) * item_h


def cell_size(trace: Trace, measure: Measure) -> tuple[int, int]:
    """Return the (height, width) of a cell: the widest number shown, or `CELL`."""
    arrays = (trace.padded, trace.weights, trace.bias, trace.output)
    shown = np.unique(np.concatenate([a.ravel() for a in arrays]))
    widest = max(measure(format_number(float(v))) for v in shown)
    return CELL, max(CELL, math.ceil(widest) + 8)


def gif_layout(trace: Trace, title: str, measure: Measure) -> GifLayout:
    """Lay out the frames of ``trace``: sections left to right, text above and below.

    Parameters
    ----------
    trace : Trace
        The convolution laid out by `convcli.tracing.trace`.
    title : str
        The line on top of every frame (wrapped to the frame's width); may be empty.
    measure : callable
        Width in pixels of a string in the frame's font.
    """
    names = _Names(trace)
    cell = cell_h, cell_w = cell_size(trace, measure)
    channels, pad_h, pad_w = (int(n) for n in trace.padded.shape)
    depth, c_in, kh, kw = (int(n) for n in trace.weights.shape)
    out_h, out_w = (int(n) for n in trace.output.shape[1:])

    def widest(texts: Sequence[str]) -> int:
        return math.ceil(max(measure(s) for s in texts))

    texts: list[tuple[int, int, str, bool]] = []
    top = MARGIN
    # The title, then the step's headline, then the sections' headings.
    headline_top = top  # fixed below, once the width is known
    body_top = 0  # the sections' headings; the grids start one line below

    # The input volume: every channel of the padded input.
    in_labels = [names.x(c) for c in range(channels)]
    in_item_h = LINE + pad_h * cell_h + GAP
    in_col_w = max(pad_w * cell_w, widest(in_labels))
    in_per_col = _columns(channels, in_item_h, COLUMN_MAX_HEIGHT)
    in_w, in_h = _stack_size(channels, in_per_col, in_col_w, in_item_h)
    pads = trace.padding
    pad_text = (
        ""
        if not any(pads)
        else f" (+pad {pads[0]})"
        if len(set(pads)) == 1
        else f" (+pad {','.join(map(str, pads))})"
    )
    in_heading = f"Input volume{pad_text} ({pad_h}x{pad_w}x{channels})"
    in_w = max(in_w, widest([in_heading]))

    # The filters: a block each (heading, slices, bias), in rows of blocks.
    reads = [tuple(trace.channels_of(d)) for d in range(depth)]
    all_channels = tuple(range(channels))
    headings = [
        (f"Filter {names.w(d)} ({kh}x{kw}x{c_in})",)
        + (() if reads[d] == all_channels else (f"on {channels_text(reads[d])}",))
        for d in range(depth)
    ]
    n_heading = max(len(h) for h in headings)
    slice_labels = [[names.w(d, i) for i in range(c_in)] for d in range(depth)]
    slice_item_h = LINE + kh * cell_h + GAP
    slice_col_w = max(kw * cell_w, widest([s for ls in slice_labels for s in ls]))
    slice_per_col = _columns(c_in, slice_item_h, COLUMN_MAX_HEIGHT)
    slices_w, slices_h = _stack_size(c_in, slice_per_col, slice_col_w, slice_item_h)
    bias_labels = [names.b(d) for d in range(depth)]
    block_w = max(
        slices_w, cell_w, widest(bias_labels), widest([s for h in headings for s in h])
    )
    block_h = n_heading * LINE + slices_h + LINE + cell_h
    # Roughly as many rows of blocks as columns, in pixels (cs231n's two
    # filters side by side).
    per_row = max(1, min(depth, math.ceil(math.sqrt(depth * block_h / block_w))))
    n_rows = math.ceil(depth / per_row)
    per_row = math.ceil(depth / n_rows)
    f_w = per_row * block_w + (per_row - 1) * GAP
    f_h = n_rows * block_h + (n_rows - 1) * GAP

    # The output volume: one map per filter.
    out_labels = [names.o(d) for d in range(depth)]
    out_item_h = LINE + out_h * cell_h + GAP
    out_col_w = max(out_w * cell_w, widest(out_labels))
    out_per_col = _columns(depth, out_item_h, max(COLUMN_MAX_HEIGHT, in_h, f_h))
    out_w_all, out_h_all = _stack_size(depth, out_per_col, out_col_w, out_item_h)
    out_heading = f"Output volume ({out_h}x{out_w}x{depth})"
    out_w_all = max(out_w_all, widest([out_heading]))

    in_x = MARGIN
    f_x = in_x + in_w + 2 * GAP
    out_x = f_x + f_w + 2 * GAP
    width = max(MIN_WIDTH, out_x + out_w_all + MARGIN)
    text_w = width - 2 * MARGIN

    title_lines = wrap(title, text_w, measure) if title else []
    for line in title_lines:
        texts.append((MARGIN, top, line, False))
        top += LINE
    headline_top = top
    body_top = top + LINE + GAP // 2
    grids_top = body_top + LINE
    texts += [
        (in_x, body_top, in_heading, False),
        (out_x, body_top, out_heading, False),
    ]
    inputs = _stack(
        in_labels, (pad_h, pad_w), cell, in_x, grids_top, in_per_col, in_col_w
    )
    outputs = _stack(
        out_labels, (out_h, out_w), cell, out_x, grids_top, out_per_col, out_col_w
    )
    filters = []
    for d in range(depth):
        left = f_x + (d % per_row) * (block_w + GAP)
        block_top = body_top + (d // per_row) * (block_h + GAP)
        slices_top = block_top + n_heading * LINE
        slices = _stack(
            slice_labels[d],
            (kh, kw),
            cell,
            left,
            slices_top,
            slice_per_col,
            slice_col_w,
        )
        bias = Grid(bias_labels[d], left, slices_top + slices_h, 1, 1, cell_h, cell_w)
        box = (left - 6, block_top - 4, left + block_w + 6, bias.box[3] + 6)
        filters.append(FilterBlock(d, headings[d], box, reads[d], tuple(slices), bias))
    body_h = max(LINE + in_h, f_h + GAP, LINE + out_h_all)

    arithmetic = [
        _arithmetic(trace, names, step, text_w, measure) for step in trace.steps
    ]
    arithmetic_top = body_top + body_h
    n_lines = max(len(lines) for lines in arithmetic)
    legend_top = arithmetic_top + n_lines * LINE + LINE // 2
    texts.append((MARGIN, legend_top, _legend(trace), True))
    return GifLayout(
        width=width,
        height=legend_top + LINE + MARGIN,
        cell=cell,
        texts=tuple(texts),
        headline_top=headline_top,
        inputs=tuple(inputs),
        filters=tuple(filters),
        outputs=tuple(outputs),
        arithmetic_top=arithmetic_top,
        headlines=tuple(
            _headline(trace, names, i, step) for i, step in enumerate(trace.steps)
        ),
        arithmetic=tuple(tuple(lines) for lines in arithmetic),
    )


def _has_bias(trace: Trace) -> bool:
    return bool(np.any(trace.bias != 0))


def _legend(trace: Trace) -> str:
    legend = "highlighted: the window, the filter and the output value"
    if any(trace.padding):
        fill = (
            f"constant {format_number(trace.cval)}"
            if trace.border == "constant"
            else trace.border
        )
        legend += f"; grey: padding ({fill})"
    return legend


def _headline(trace: Trace, names: _Names, index: int, step: TraceStep) -> str:
    d = step.filter
    line = (
        f"step {index + 1} of {len(trace.steps)}: "
        f"{names.o(d, step.row, step.col)} = {names.w(d)} · window"
    )
    return f"{line} + {names.b(d)}" if _has_bias(trace) else line


def _arithmetic(
    trace: Trace, names: _Names, step: TraceStep, text_w: int, measure: Measure
) -> list[tuple[int, str]]:
    """Lines of a step's arithmetic, each with its indent in pixels.

    A product line per channel (as many as `PRODUCTS_MAX` products), then the
    total: channel sums plus the bias, or the sum of all products when the
    channel sums would take over `SUM_LINES_MAX` lines.
    """
    lines: list[tuple[int, str]] = []
    channels = trace.channels_of(step.filter)
    kh, kw = trace.kernel
    products = len(channels) * kh * kw <= PRODUCTS_MAX
    if products:
        for i, c in enumerate(channels):
            prefix = f"{names.x(c)}:  "
            indent = math.ceil(measure(prefix))
            wrapped = wrap(trace.terms(step, i), text_w - indent, measure)
            lines.append((0, prefix + wrapped[0]))
            lines.extend((indent, rest) for rest in wrapped[1:])
    has_bias = _has_bias(trace)
    if products and len(channels) == 1 and not has_bias:
        return lines
    bias = [f"{names.b(step.filter)} ({format_number(step.bias)})"] if has_bias else []
    out = names.o(step.filter, step.row, step.col)
    terms = [format_number(s) for s in step.channel_sums]
    total = f"{out} = {' + '.join([*terms, *bias])} = {format_number(step.value)}"
    wrapped = wrap(total, text_w, measure)
    if len(wrapped) > SUM_LINES_MAX or not (products or len(channels) > 1):
        n = len(channels) * kh * kw
        every = f"{format_number(step.sum)} (the sum of {n} products)"
        total = f"{out} = {' + '.join([every, *bias])} = {format_number(step.value)}"
        wrapped = wrap(total, text_w, measure)
    lines.extend((0, s) for s in wrapped)
    return lines
