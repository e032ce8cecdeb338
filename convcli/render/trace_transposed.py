"""The text view of ``convcli trace --transpose``: the stamps, then the convolution view."""

from __future__ import annotations

import numpy as np
from rich.text import Text

from convcli.render.trace import (
    WIDTH,
    _keep,
    _marked_grid,
    _plain_grid,
    _plural,
    _side_by_side,
    _width,
    _wrapped,
    header_rows,
    intro_lines,
)
from convcli.tracing import format_number
from convcli.tracing_transposed import PADDING, TransposedTrace, transposed_size


def _one(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]} rows, {pair[1]} cols"


def _x_name(t: TransposedTrace, c: int) -> str:
    return "x" if t.input.shape[0] == 1 else f"x[:,:,{c}]"


def _o_name(t: TransposedTrace, e: int) -> str:
    return "o" if t.depth == 1 else f"o[:,:,{e}]"


def _w_name(t: TransposedTrace, c: int, e: int) -> str:
    if t.weights.shape[0] == 1 and t.weights.shape[1] == 1:
        return "w"
    return f"w[{c},{e - t.maps_of(c)[0]}]"


def transposed_header(
    t: TransposedTrace, *, title: str = "", lesson: str = "", width: int = WIDTH
) -> Text:
    """Return what comes before the stamps: the layer, its output size, its cost."""
    channels, height, width_in = t.input.shape
    kh, kw = t.kernel
    lines = intro_lines(title, lesson, width)
    row = header_rows(lines, width)

    row("input", f"x  {height} x {width_in} x {channels}  (H x W x C)")
    per_out = t.weights.shape[1]
    row(
        "kernels",
        f"w  {channels} x {per_out} x {kh} x {kw}  (C x D/groups x kh x kw, "
        f"PyTorch's layout): one {_keep(f'{kh} x {kw}')} kernel per input channel and output "
        "map" + (f", groups {t.groups}" if t.groups > 1 else ""),
    )
    if t.bias.any():
        row("bias", ", ".join(format_number(float(b)) for b in t.bias))
    row("stride", _one(t.stride) + "  (the stamps' spacing in the output)")
    row("padding", _one(t.padding) + "  (cut from each side of the stamps' sum)")
    if any(t.output_padding):
        row("out pad", _one(t.output_padding) + "  (added at the bottom and right)")
    if t.dilation != (1, 1):
        row("dilation", _one(t.dilation))
    for axis, n in enumerate((height, width_in)):
        formula, _ = transposed_size(
            n,
            t.kernel[axis],
            stride=t.stride[axis],
            padding=t.padding[axis],
            output_padding=t.output_padding[axis],
            dilation=t.dilation[axis],
        )
        row("output" if axis == 0 else "", f"{'HW'[axis]}' = {formula}")
    depth, out_h, out_w = t.output.shape
    row("", f"o  {out_h} x {out_w} x {depth}  (H' x W' x D)")
    params = int(t.weights.size) + depth
    row(
        "params",
        f"{_keep(f'{t.weights.size} + {depth} = {params}')} (weights and "
        f"{_plural(depth, 'bias', 'biases')}), whatever the input's size",
    )
    macs = int(t.input.size) * per_out * kh * kw
    row(
        "cost",
        f"{macs} multiply-adds: "
        + _keep(f"{_plural(int(t.input.size), 'input')} x {per_out * kh * kw}"),
    )
    lines.append(
        Text(
            "[ ] the stamp   ( ) cut by padding   . not stamped yet   rows, cols from 0",
            style="dim",
        )
    )
    return Text("\n").join(lines)


def stamp_step(t: TransposedTrace, index: int, *, width: int = WIDTH) -> Text:
    """Return one stamp: the input value, its scaled kernels, the output so far."""
    stamp = t.stamps[index]
    c = stamp.channel
    where = (
        f"[{stamp.row},{stamp.col}]"
        if t.input.shape[0] == 1
        else f"[{stamp.row},{stamp.col},{c}]"
    )
    value = format_number(stamp.value)
    head = (
        f"stamp {index + 1} of {len(t.stamps)}: x{where} = "
        f"{value} stamps {value} x its kernel onto rows {stamp.rows[0]}-"
        f"{stamp.rows[1]}, cols {stamp.cols[0]}-{stamp.cols[1]} of the uncut output"
    )
    lines = [Text(part, style="bold") for part in _wrapped(head, width, 2)]
    x_cell = max(_width(t.input), 1)
    mark = {(stamp.row, stamp.col)}
    w_cell = _width(t.weights)
    blocks = [(_x_name(t, c), _marked_grid(t.input[c], x_cell, window=mark))]
    for e in t.maps_of(c):
        kernel = t.weights[c, e - t.maps_of(c)[0]]
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = stamp.value * kernel
        blocks.append((_w_name(t, c, e), _plain_grid(kernel, w_cell)))
        blocks.append(
            (f"{value} x {_w_name(t, c, e)}", _plain_grid(scaled, _width(scaled)))
        )
    lines.extend(_side_by_side(blocks))
    lines.extend(_sums_so_far(t, index))
    return Text("\n").join(lines)


def _stamped(t: TransposedTrace, upto: int) -> np.ndarray:
    """Return the uncut output after stamps 0..upto (their sum so far)."""
    full = np.zeros(t.full.shape)
    (sh, sw), (dh, dw) = t.stride, t.dilation
    kh, kw = t.kernel
    with np.errstate(over="ignore", invalid="ignore"):
        for s in t.stamps[: upto + 1]:
            for e in t.maps_of(s.channel):
                kernel = t.weights[s.channel, e - t.maps_of(s.channel)[0]]
                full[
                    e,
                    s.row * sh : s.row * sh + dh * (kh - 1) + 1 : dh,
                    s.col * sw : s.col * sw + dw * (kw - 1) + 1 : dw,
                ] += s.value * kernel
    return full


def _cut_mask(t: TransposedTrace) -> np.ndarray:
    """Return the cells of the uncut output that the padding cuts away."""
    mask = np.ones(t.full.shape[1:], dtype=bool)
    (ph, pw), (out_h, out_w) = t.padding, t.output.shape[1:]
    mask[ph : ph + out_h, pw : pw + out_w] = False
    return mask


def _sums_so_far(t: TransposedTrace, upto: int) -> list[Text]:
    stamp = t.stamps[upto]
    full = _stamped(t, upto)
    touched = np.zeros(t.full.shape, dtype=bool)
    for s in t.stamps[: upto + 1]:
        rows = range(s.rows[0], s.rows[1] + 1, t.dilation[0])
        cols = range(s.cols[0], s.cols[1] + 1, t.dilation[1])
        for e in t.maps_of(s.channel):
            touched[e][np.ix_(list(rows), list(cols))] = True
    here = {
        (r, c)
        for r in range(stamp.rows[0], stamp.rows[1] + 1, t.dilation[0])
        for c in range(stamp.cols[0], stamp.cols[1] + 1, t.dilation[1])
    }
    cut = _cut_mask(t)
    cut_or_none = cut if cut.any() else None
    cell = max(_width(t.full), 1)
    blocks = [
        (
            f"{_o_name(t, e)} uncut, so far",
            _marked_grid(
                full[e],
                cell,
                window=here if e in t.maps_of(stamp.channel) else set(),
                padding=cut_or_none,
                empty=~touched[e],
            ),
        )
        for e in range(t.depth)
    ]
    return _side_by_side(blocks)


def transposed_result(t: TransposedTrace, *, width: int = WIDTH) -> Text:
    """Return the stamps' sum, cut by the padding, plus the bias: the output."""
    lines: list[Text] = []
    text = "the stamps' sum"
    if any(t.padding):
        text += f", less {_one(t.padding)} row(s)/col(s) of padding cut from each side"
    if any(t.output_padding):
        text += f", with output_padding {_one(t.output_padding)} at the bottom/right"
    if t.bias.any():
        text += ", plus the bias"
    lines.extend(Text(part, style="bold") for part in _wrapped(text + ":", width, 2))
    cell = max(_width(t.output), 1)
    lines.extend(
        _side_by_side(
            [(_o_name(t, e), _plain_grid(t.output[e], cell)) for e in range(t.depth)]
        )
    )
    return Text("\n").join(lines)


def convolution_intro(t: TransposedTrace, *, width: int = WIDTH) -> Text:
    """Return the text before the second view: zeros inserted, the kernel flipped."""
    conv = t.conv
    _, zh, zw = conv.padded.shape
    gaps = [s - 1 for s in t.stride]
    text = (
        "The same output as an ordinary convolution: "
        + (
            f"{_plural(gaps[0], 'zero')} inserted between the input values, "
            if any(gaps)
            else ""
        )
        + "zeros around them ( ) where the kernel reaches past the input "
        f"(dilation x (k - 1) - padding per side), {zh} x {zw} in all; the "
        "kernel flipped 180 degrees slides over it with stride 1, and each "
        "output is the window times the flipped kernel."
    )
    lines = [Text(part, style="bold") for part in _wrapped(text, width)]
    if t.weights.shape[:2] == (1, 1):
        cell = _width(t.weights)
        lines.extend(
            _side_by_side(
                [
                    ("w", _plain_grid(t.weights[0, 0], cell)),
                    ("flipped", _plain_grid(conv.weights[0, 0], cell)),
                ]
            )
        )
    return Text("\n").join(lines)


def padding_cells(t: TransposedTrace) -> np.ndarray:
    """Return the cells of the convolution view's input that are zeros around the values."""
    return np.asarray(t.cells == PADDING)
