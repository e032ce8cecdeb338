"""The text view of `convcli trace`: the header, one block per step, the summary; the demos."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

import numpy as np
from rich.console import Group
from rich.table import Table
from rich.text import Text

from convcli.tracing import Trace, format_number, size_formula

_WINDOW = "bold black on yellow"
_PADDING = "dim"
_CURRENT = "bold"

TRACE_LEGEND = "[ ] the window   ( ) padding   . not computed yet   rows, cols from 0"
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
        if c is None or self.channels // self.groups == 1:
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


WIDTH = 80
"""Columns the text view fits in when the terminal does not say (a pipe)."""

_LABEL = 10  # the header's label column


def _wrapped(text: str, width: int, indent: int = 0) -> list[str]:
    """Wrap prose to ``width``; lines after the first indented by ``indent``.

    A formula written with `_keep` stays on one line.
    """
    parts = textwrap.wrap(
        text, width, subsequent_indent=" " * indent, break_on_hyphens=False
    )
    return [part.replace(_NBSP, " ") for part in parts] or [""]


_NBSP = "\u00a0"


def _keep(text: str) -> str:
    """Return ``text`` with spaces that `_wrapped` does not break at."""
    return text.replace(" ", _NBSP)


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def intro_lines(title: str, lesson: str, width: int) -> list[Text]:
    """Return a header's title (bold) and lesson (italic), wrapped, then a blank line."""
    lines: list[Text] = []
    if title:
        lines.extend(
            Text(part, style="bold")
            for part in _wrapped(f"convcli trace: {title}", width, 2)
        )
    if lesson:
        lines.extend(Text(part, style="italic") for part in _wrapped(lesson, width))
    if lines:
        lines.append(Text())
    return lines


def header_rows(lines: list[Text], width: int) -> Callable[..., None]:
    """Return ``row(label, text, style="")``, which appends a labelled, wrapped row to ``lines``."""

    def row(label: str, text: str, style: str = "") -> None:
        for i, part in enumerate(_wrapped(text, width - _LABEL, 2)):
            line = Text(f"{label if i == 0 else '':<{_LABEL}}", style="bold")
            line.append(part, style=style)
            lines.append(line)

    return row


def trace_header(
    t: Trace,
    *,
    title: str = "",
    lesson: str = "",
    notes: tuple[str, ...] = (),
    width: int = WIDTH,
) -> Text:
    """Return what comes before the steps: the layer, its sizes, its cost.

    Every line fits in ``width`` columns (prose is wrapped, the values of a
    row continue under their own column).
    """
    lab = _labels(t)
    channels, height, width_in = t.input.shape
    kh, kw = t.kernel
    lines = intro_lines(title, lesson, width)
    row = header_rows(lines, width)

    row("input", f"x  {height} x {width_in} x {channels}  (H x W x C)")
    row("padding", _pads_text(t))
    row("filters", _filters_text(t, lab))
    row(
        "bias",
        ", ".join(
            f"{lab.b(d)} = {format_number(float(b))}" for d, b in enumerate(t.bias)
        )
        if any(t.bias)
        else "none (0 for each filter)",
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
            (width_in, kw, t.stride[1], left, right, t.dilation[1]),
        ]
    ):
        formula, _ = size_formula(
            n, k, stride=s, before=before, after=after, dilation=d
        )
        row("output" if axis == 0 else "", f"{'HW'[axis]}' = {formula}")
        left_over = (n + before + after - d * (k - 1) - 1) % s
        if left_over:
            many = "rows" if axis == 0 else "columns"
            where = "padded input" if before + after else "input"
            warnings.append(
                f"warning: stride {s} does not divide the {many} evenly: the last "
                f"{_plural(left_over, many[:-1])} of the {where} never "
                f"{'enters' if left_over == 1 else 'enter'} a window"
            )
    depth, out_h, out_w = t.output.shape
    row("", f"o  {out_h} x {out_w} x {depth}  (H' x W' x D: one map per filter)")
    for warning in warnings:
        lines.extend(Text(part, style="yellow") for part in _wrapped(warning, width, 2))
    per_filter = int(t.weights[0].size)
    positions = out_h * out_w
    row(
        "sharing",
        f"each filter's {_plural(per_filter, 'weight')} are used at all "
        f"{_plural(positions, 'position')} of its map (weight sharing); the "
        "window an output sees is its receptive field",
    )
    n_in, n_out = int(t.input.size), int(t.output.size)
    row(
        "params",
        f"{_keep(f'{t.depth} x ({per_filter} + 1) = {t.parameters}')} "
        f"(weights and {_plural(t.depth, 'bias', 'biases')}), whatever the "
        "input's size; a fully connected layer from the "
        f"{_plural(n_in, 'input')} to the {_plural(n_out, 'output')} would need "
        f"{_keep(f'{n_in} x {n_out} + {n_out} = {n_in * n_out + n_out}')}",
    )
    products = _keep(f"{_plural(n_out, 'output')} x {_plural(per_filter, 'weight')}")
    row("cost", f"{t.multiply_adds} multiply-adds: {products}")
    for note in notes:
        lines.extend(Text(part, style="italic") for part in _wrapped(note, width))
    if t.flip:
        lines.extend(
            Text(part, style="italic")
            for part in _wrapped(
                "flip: every kernel is rotated 180 degrees (true convolution); the "
                "steps use the rotated weights:",
                width,
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


def _filters_text(t: Trace, lab: TraceLabels) -> str:
    """Return the filters row: how many, their names, shape, and channels read."""
    channels = t.input.shape[0]
    kh, kw = t.kernel
    names = (
        ", ".join(lab.w(d) for d in range(t.depth))
        if t.depth <= 4
        else f"{lab.w(0)} ... {lab.w(t.depth - 1)}"
    )
    per_in = t.weights.shape[1]
    each = "" if t.depth == 1 else "each "
    count = f"{_plural(t.depth, 'filter')} {names}, {each}"
    if t.groups == 1:
        return f"{count}{kh} x {kw} x {channels}  (kh x kw x C)"
    if per_in == 1 and t.depth == channels:
        return (
            f"{count}{kh} x {kw} on one input channel: filter d reads channel d "
            f"(depthwise, groups {t.groups})"
        )
    per_out = t.depth // t.groups
    groups = "; ".join(
        f"{', '.join(lab.w(d) for d in range(g * per_out, (g + 1) * per_out))} "
        f"read channels {g * per_in}-{(g + 1) * per_in - 1}"
        for g in range(t.groups)
    )
    return f"{count}{kh} x {kw} x {per_in}  (kh x kw x C/groups, groups {t.groups}): {groups}"


def receptive_field(t: Trace, index: int) -> str:
    """Name the input cells one step's output sees, as a numpy slice of ``x``.

    The window's taps in the padded input, less the padding; a dilated
    window reads every ``dilation``-th cell of its span.
    """
    step = t.steps[index]
    rows, cols = t.taps(step)
    top, _, left, _ = t.padding
    channels, height, width = t.input.shape
    parts: list[str] = []
    outside = False
    for taps, before, n, d in (
        (rows, top, height, t.dilation[0]),
        (cols, left, width, t.dilation[1]),
    ):
        inside = [i - before for i in taps if 0 <= i - before < n]
        outside = outside or len(inside) < len(taps)
        if not inside:
            return "padding only: no cell of x"
        stop = inside[-1] + 1
        parts.append(
            f"{inside[0]}:{stop}" + (f":{d}" if d > 1 and len(inside) > 1 else "")
        )
    chans = t.channels_of(step.filter)
    parts.append(f"{chans[0]}:{chans[-1] + 1}" if len(chans) > 1 else f"{chans[0]}")
    seen = f"x[{', '.join(parts)}]"
    if channels == 1:
        seen = f"x[{', '.join(parts[:2])}]"
    return seen + (" and padding" if outside else "")


def trace_step(
    t: Trace, index: int, *, width: int = WIDTH, padding: np.ndarray | None = None
) -> Text:
    """Return one step: the padded input with its window, the kernel, the products, the output so far.

    ``padding`` marks the cells drawn as padding, if not the trace's own.
    """
    lab = _labels(t)
    step = t.steps[index]
    d = step.filter
    rows, cols = t.taps(step)
    window = {(r, c) for r in rows for c in cols}
    pad: np.ndarray | None = _padding_mask(t) if padding is None else padding
    if pad is not None and not pad.any():
        pad = None
    cell = max(_width(t.padded), 1)
    wcell = _width(t.weights)
    head = (
        f"{lab.o(d, step.row, step.col)} (step {index + 1} of {len(t.steps)}): "
        f"filter {lab.w(d)} over {_span('row', rows)}, {_span('col', cols)} of the "
        "padded input"
    )
    lines = [Text(part, style="bold") for part in _wrapped(head, width, 2)]
    if padding is None:
        lines.extend(
            Text(part, style="italic")
            for part in _wrapped(
                f"receptive field: {_keep(receptive_field(t, index))}", width, 2
            )
        )
    for i, c in enumerate(t.channels_of(d)):
        lines.append(Text())
        lines.extend(
            _side_by_side(
                [
                    (
                        lab.x(c),
                        _marked_grid(t.padded[c], cell, window=window, padding=pad),
                    ),
                    (lab.w(d, i), _plain_grid(t.weights[d, i], wcell)),
                ]
            )
        )
        lines.extend(Text(part) for part in _terms_lines(t.terms(step, i), width))
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


def _span(what: str, taps: range) -> str:
    """Return ``rows 0-2``, or ``row 3`` for a window one tap high."""
    if len(taps) == 1:
        return f"{what} {taps[0]}"
    return f"{what}s {taps[0]}-{taps[-1]}"


def _terms_lines(terms: str, width: int) -> list[str]:
    """Break a long ``a*b+c*d+...=s`` line after a ``+``, each part within ``width``."""
    lines: list[str] = []
    line = ""
    for part in re.split(r"(?<=\+)(?=[^+])", terms):
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = "  "
        line += part
    lines.append(line)
    return lines


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
        f"{depth} x {t.weights.shape[1]} x {kh} x {kw}  "
        + ("(D x C x kh x kw)" if t.groups == 1 else "(D x C/groups x kh x kw)"),
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
