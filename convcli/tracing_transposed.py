"""A small transposed convolution laid out two ways: stamps, and a convolution in disguise.

`trace_transposed` follows PyTorch's ``conv_transpose2d`` (the adjoint of a
convolution, often called a deconvolution). Read forwards, every input value
stamps a copy of its kernel, scaled by the value, onto the output, at ``stride``
steps; overlapping stamps add up, and ``padding`` rows and columns are then cut
from each side. Read as an ordinary convolution, the same output is the kernel
flipped by 180 degrees sliding over the input with ``stride - 1`` zeros
inserted between its values and ``dilation * (k - 1) - padding`` of zeros
around it. numpy only; it never prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from convcli.core.geometry import FloatArray
from convcli.errors import ShapeError
from convcli.tracing import TRACE_MAX_PADDED, TRACE_MAX_SIDE, Trace, trace

VALUE, INSERTED, PADDING = 0, 1, 2
"""What a cell of `TransposedTrace.conv`'s input is: an input value, a zero
inserted between two, or a zero around them."""


@dataclass(frozen=True)
class Stamp:
    """One input value stamped onto the output: ``x[row, col, channel]`` times a kernel.

    ``rows`` and ``cols`` are the first and last row and column of the
    uncropped output it lands on (before ``padding`` is cut), one every
    ``dilation``.
    """

    channel: int
    row: int
    col: int
    value: float
    rows: tuple[int, int]
    cols: tuple[int, int]


@dataclass(frozen=True, eq=False)
class TransposedTrace:
    """A transposed convolution, its stamps and the convolution that gives the same output.

    Attributes
    ----------
    input : ndarray of float64, shape (C, H, W)
        ``x``, channels first.
    weights : ndarray of float64, shape (C, D / groups, kh, kw)
        PyTorch's layout for a transposed convolution: one kernel per input
        channel and output map of its group.
    bias : ndarray of float64, shape (D,)
    full : ndarray of float64, shape (D, Fh, Fw)
        The sum of the stamps before ``padding`` is cut (no bias).
    output : ndarray of float64, shape (D, H', W')
        ``full`` cropped, plus the bias: PyTorch's result.
    stamps : list of Stamp
        One per input value, channel by channel, row by row.
    conv : Trace
        The same output as a convolution: the zero-inserted input, the
        flipped kernels (in and out channels swapped), stride 1.
    cells : ndarray of int8
        What each cell of ``conv.padded`` is: `VALUE` (an input value),
        `INSERTED` (a zero between two) or `PADDING` (a zero around them).
    groups : int
    stride, padding, output_padding, dilation : tuple of int
        (rows, columns).
    """

    input: FloatArray
    weights: FloatArray
    bias: FloatArray
    full: FloatArray
    output: FloatArray
    stamps: list[Stamp]
    conv: Trace
    cells: npt.NDArray[np.int8]
    groups: int
    stride: tuple[int, int]
    padding: tuple[int, int]
    output_padding: tuple[int, int]
    dilation: tuple[int, int]

    @property
    def depth(self) -> int:
        """Output maps D."""
        return int(self.output.shape[0])

    @property
    def kernel(self) -> tuple[int, int]:
        """Rows and columns of one kernel, (kh, kw)."""
        return int(self.weights.shape[2]), int(self.weights.shape[3])

    def maps_of(self, channel: int) -> range:
        """Return the output maps input ``channel`` stamps onto (its group's)."""
        per_in = self.input.shape[0] // self.groups
        per_out = self.depth // self.groups
        group = channel // per_in
        return range(group * per_out, (group + 1) * per_out)

    def to_json(self) -> dict[str, Any]:
        """Return the ``transposed`` part of ``convcli trace --transpose --json``."""
        return {
            "input": self.input.tolist(),
            "weights": self.weights.tolist(),
            "bias": self.bias.tolist(),
            "groups": self.groups,
            "stride": list(self.stride),
            "padding": list(self.padding),
            "output_padding": list(self.output_padding),
            "dilation": list(self.dilation),
            "full": self.full.tolist(),
            "output": self.output.tolist(),
            "stamps": [
                {
                    "channel": s.channel,
                    "row": s.row,
                    "col": s.col,
                    "value": s.value,
                    "rows": list(s.rows),
                    "cols": list(s.cols),
                }
                for s in self.stamps
            ],
        }


def transposed_size(
    n: int, k: int, *, stride: int, padding: int, output_padding: int, dilation: int
) -> tuple[str, int]:
    """Write one axis's output size of a transposed convolution, numbers filled in.

    Examples
    --------
    >>> transposed_size(2, 3, stride=2, padding=0, output_padding=0, dilation=1)
    ('(2 - 1)*2 - 2*0 + 1*(3 - 1) + 0 + 1 = 5', 5)
    """
    result = (n - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1
    text = (
        f"({n} - 1)*{stride} - 2*{padding} + {dilation}*({k} - 1) + "
        f"{output_padding} + 1 = {result}"
    )
    return text, result


def _pair(value: Any, name: str, *, least: int) -> tuple[int, int]:
    pair = (value, value) if np.ndim(value) == 0 else tuple(value)
    if len(pair) != 2 or not all(
        isinstance(v, int | np.integer) and not isinstance(v, bool) for v in pair
    ):
        msg = f"{name} must be a whole number or a pair of them; got {value!r}"
        raise ValueError(msg)
    if min(pair) < least:
        msg = f"{name} must be {least} or more; got {value!r}"
        raise ValueError(msg)
    return int(pair[0]), int(pair[1])


def _kernels(w: FloatArray, channels: int, groups: int) -> tuple[FloatArray, int]:
    """Return w as (C, D / groups, kh, kw) and the groups (C for a 2-D kernel)."""
    if w.ndim == 2:  # one kernel for each channel on its own
        if groups not in (1, channels):
            msg = (
                f"a 2-D kernel stamps each of the {channels} channels onto its own map "
                f"(groups {channels}); got groups {groups}"
            )
            raise ShapeError(msg)
        return np.repeat(w[np.newaxis, np.newaxis], channels, 0), channels
    shape = " x ".join(map(str, w.shape))
    if w.ndim != 4 or w.shape[0] != channels:
        msg = (
            f"a transposed convolution takes a 2-D kernel or weights (C, D/groups, kh, "
            f"kw) with C = {channels} input channels; got w {shape}"
        )
        raise ShapeError(msg)
    if groups < 1 or channels % groups:
        msg = f"groups {groups} must divide the {channels} input channels (w {shape})"
        raise ShapeError(msg)
    return w, groups


def trace_transposed(
    x: npt.ArrayLike,
    w: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    *,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    output_padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    groups: int = 1,
) -> TransposedTrace:
    """Lay out a small transposed convolution (PyTorch's ``conv_transpose2d``).

    ``x`` is (H, W) or (H, W, C); ``w`` is (C, D / groups, kh, kw), or a 2-D
    kernel that stamps each channel onto its own map. Each output axis is
    ``(n - 1)*s - 2*p + d*(k - 1) + output_padding + 1``.

    Examples
    --------
    >>> t = trace_transposed([[1, 2], [3, 4]], [[1, 1], [1, 1]], stride=2)
    >>> t.output[0].tolist()
    [[1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 2.0, 2.0], [3.0, 3.0, 4.0, 4.0], [3.0, 3.0, 4.0, 4.0]]
    """
    xa = np.asarray(x, dtype=np.float64)
    if xa.ndim not in (2, 3) or 0 in xa.shape:
        msg = f"x must be (H, W) or (H, W, C) and not empty; got shape {xa.shape}"
        raise ShapeError(msg)
    x_chw = (xa[np.newaxis] if xa.ndim == 2 else xa.transpose(2, 0, 1)).copy()
    channels, height, width = x_chw.shape
    if max(height, width) > TRACE_MAX_SIDE:
        msg = f"a trace shows inputs up to {TRACE_MAX_SIDE}x{TRACE_MAX_SIDE} per channel; got {height}x{width}"
        raise ShapeError(msg)
    s, p = _pair(stride, "stride", least=1), _pair(padding, "padding", least=0)
    op = _pair(output_padding, "output_padding", least=0)
    d = _pair(dilation, "dilation", least=1)
    for axis in (0, 1):
        if op[axis] >= max(s[axis], d[axis]):
            msg = (
                f"output_padding {op[axis]} must be smaller than the stride "
                f"({s[axis]}) or the dilation ({d[axis]}): it only picks among "
                "the output sizes that the same input size gives"
            )
            raise ValueError(msg)
    wa, groups = _kernels(np.asarray(w, dtype=np.float64), channels, groups)
    per_out = wa.shape[1]
    depth = per_out * groups
    kh, kw = wa.shape[2:]
    full_h = (height - 1) * s[0] + d[0] * (kh - 1) + 1 + op[0]
    full_w = (width - 1) * s[1] + d[1] * (kw - 1) + 1 + op[1]
    out_h, out_w = full_h - 2 * p[0], full_w - 2 * p[1]
    if out_h < 1 or out_w < 1:
        msg = (
            f"padding {p[0]}, {p[1]} cuts the whole output away: the stamps cover "
            f"{full_h - op[0]} x {full_w - op[1]}"
        )
        raise ShapeError(msg)
    b = np.zeros(depth)
    if bias is not None:
        given = np.asarray(bias, dtype=np.float64).ravel()
        if given.size not in (1, depth):
            msg = (
                f"bias must be one value or one per output map ({depth}); got "
                f"{given.size} values"
            )
            raise ShapeError(msg)
        b[:] = given

    # Forwards: per tap, every input value times its kernels' tap, scattered.
    full = np.zeros((depth, full_h, full_w))
    per_in = channels // groups
    with np.errstate(over="ignore", invalid="ignore"):
        for g in range(groups):
            xs = x_chw[g * per_in : (g + 1) * per_in]
            for u in range(kh):
                for v in range(kw):
                    rows = slice(u * d[0], u * d[0] + (height - 1) * s[0] + 1, s[0])
                    cols = slice(v * d[1], v * d[1] + (width - 1) * s[1] + 1, s[1])
                    taps = wa[g * per_in : (g + 1) * per_in, :, u, v]  # (C/g, D/g)
                    full[g * per_out : (g + 1) * per_out, rows, cols] += np.einsum(
                        "chw,ce->ehw", xs, taps
                    )
        output = full[:, p[0] : p[0] + out_h, p[1] : p[1] + out_w] + b[:, None, None]
    stamps = [
        Stamp(
            c,
            i,
            j,
            float(x_chw[c, i, j]),
            (i * s[0], i * s[0] + d[0] * (kh - 1)),
            (j * s[1], j * s[1] + d[1] * (kw - 1)),
        )
        for c in range(channels)
        for i in range(height)
        for j in range(width)
    ]
    conv, cells = _as_convolution(x_chw, wa, b, groups, s, p, op, d)
    return TransposedTrace(
        input=x_chw,
        weights=wa,
        bias=b,
        full=full,
        output=output,
        stamps=stamps,
        conv=conv,
        cells=cells,
        groups=groups,
        stride=s,
        padding=p,
        output_padding=op,
        dilation=d,
    )


def _as_convolution(
    x_chw: FloatArray,
    w: FloatArray,
    bias: FloatArray,
    groups: int,
    s: tuple[int, int],
    p: tuple[int, int],
    op: tuple[int, int],
    d: tuple[int, int],
) -> tuple[Trace, npt.NDArray[np.int8]]:
    """Return the convolution whose output is the transposed one's, and what each cell is.

    The convolution's input is laid out whole (its own padding is 0): each
    cell is an input value (`VALUE`), a zero inserted between two
    (`INSERTED`) or a zero around them (`PADDING`).
    """
    channels, height, width = x_chw.shape
    kh, kw = w.shape[2:]
    # Each axis: the input values `stride` apart, with d*(k-1) - p zeros before
    # and that plus output_padding after; a negative count cuts instead.
    span = ((height - 1) * s[0] + 1, (width - 1) * s[1] + 1)
    before = [d[a] * (k - 1) - p[a] for a, k in ((0, kh), (1, kw))]
    size = [span[a] + 2 * before[a] + op[a] for a in (0, 1)]
    z = np.zeros((channels, *size))
    kind = np.full(size, PADDING, dtype=np.int8)  # what each cell of z is
    rows = np.arange(span[0]) + before[0]
    cols = np.arange(span[1]) + before[1]
    keep_r = (rows >= 0) & (rows < size[0])
    keep_c = (cols >= 0) & (cols < size[1])
    grid = np.ix_(rows[keep_r], cols[keep_c])
    kind[grid] = INSERTED
    real_r = keep_r & (np.arange(span[0]) % s[0] == 0)
    real_c = keep_c & (np.arange(span[1]) % s[1] == 0)
    kind[np.ix_(rows[real_r], cols[real_c])] = VALUE
    z[(slice(None), *np.ix_(rows[real_r], cols[real_c]))] = x_chw[
        :, real_r[:: s[0]], :
    ][:, :, real_c[:: s[1]]]
    # Filter e of group g reads input channel c of that group through w[c, e], flipped.
    per_in, per_out = channels // groups, w.shape[1]
    flipped = np.empty((per_out * groups, per_in, kh, kw))
    for g in range(groups):
        block = w[g * per_in : (g + 1) * per_in, :, ::-1, ::-1]  # (C/g, D/g, kh, kw)
        flipped[g * per_out : (g + 1) * per_out] = block.transpose(1, 0, 2, 3)
    try:
        conv = trace(
            z.transpose(1, 2, 0),
            flipped,
            bias,
            dilation=d,
            groups=groups,
            max_side=TRACE_MAX_PADDED,
        )
    except ShapeError as err:
        msg = f"the zero-inserted input is too large to lay out: {err}"
        raise ShapeError(msg) from None
    return conv, kind
