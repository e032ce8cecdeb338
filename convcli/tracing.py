"""The steps of a small convolution as data: windows, products, sums, values.

`trace` lays out a `conv2d` call one output value at a time, with the padded
input, the filters as applied and the output, for the text view, ``--json`` and
the GIF to draw; `json_text` writes its JSON strictly (no ``NaN`` or
``Infinity`` literals). numpy only; it never prints.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from convcli.core.geometry import (
    FloatArray,
    IntPair,
    Padding,
    _check_call,
    border_index,
)
from convcli.errors import ShapeError

TRACE_MAX_SIDE = 16
"""Largest input side (per channel) `trace_steps` explains."""

TRACE_MAX_STEPS = 512
"""Most output values (all filters) `trace_steps` explains."""

TRACE_MAX_PADDED = 64
"""Largest side (per channel) of the padded input `trace_steps` lays out."""

TRACE_MAX_PRODUCTS = 1 << 18
"""Most products (multiply-adds of all steps) `trace_steps` writes out."""

NON_FINITE_JSON = {"inf": "Infinity", "-inf": "-Infinity", "nan": "NaN"}
"""How `json_text` writes numbers JSON has no literal for: as these strings,
which Python's ``float()`` and JavaScript's ``Number()`` both read back."""


def _json_safe(value: Any) -> Any:
    """Return ``value`` with every non-finite float replaced by its string."""
    if isinstance(value, float):
        return value if math.isfinite(value) else NON_FINITE_JSON[repr(value)]
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def json_text(doc: Any, *, indent: int | None = 2) -> str:
    """Write ``doc`` as strict JSON: never ``NaN``, ``Infinity`` or ``-Infinity``.

    A non-finite float (an overflow, an infinite bias) is written as the
    string ``"NaN"``, ``"Infinity"`` or ``"-Infinity"`` (`NON_FINITE_JSON`),
    so that any JSON parser reads the document.

    Examples
    --------
    >>> json_text({"sum": float("inf"), "values": [1.5, float("nan")]}, indent=None)
    '{"sum": "Infinity", "values": [1.5, "NaN"]}'
    """
    try:
        return json.dumps(doc, indent=indent, allow_nan=False)
    except ValueError:  # a non-finite float somewhere: the slow walk
        return json.dumps(_json_safe(doc), indent=indent, allow_nan=False)


@dataclass(frozen=True)
class TraceStep:
    """One output value: the window it saw, the products, their sums, the value.

    ``window`` and ``products`` are nested lists (C x kh x kw) of the padded
    input under the (dilated) kernel and of window times weights;
    ``channel_sums`` adds the products of each channel, ``sum`` adds them
    all, and ``value`` is ``sum`` plus ``bias``, the filter's bias. The
    fields are the keys of a step in ``convcli trace --json``.
    """

    filter: int
    row: int
    col: int
    window: list[list[list[float]]]
    products: list[list[list[float]]]
    channel_sums: list[float]
    sum: float
    bias: float
    value: float


@dataclass(frozen=True, eq=False)
class Trace:
    """A small convolution laid out for reading: its arrays, its geometry, its steps.

    Attributes
    ----------
    input : ndarray of float64, shape (C, H, W)
        ``x`` before padding, channels first.
    padded : ndarray of float64, shape (C, H + top + bottom, W + left + right)
        ``x`` with its padding, as the windows see it.
    weights : ndarray of float64, shape (D, C_in, kh, kw)
        The filters as applied (already rotated when ``flip``). ``C_in`` is
        C / groups: C for a bank; 1 when a 2-D kernel filters each channel on
        its own (``groups == C``, PyTorch's depthwise layout).
    bias : ndarray of float64, shape (D,)
        One value per filter (zeros when none was given).
    output : ndarray of float64, shape (D, H', W')
        Every ``value`` of ``steps`` in place; equal to `conv2d`'s result.
    steps : list of TraceStep
        One per output value, filter by filter, row by row.
    groups : int
        PyTorch's groups: the channels and the filters are split into this many
        groups, and each filter reads the channels of its group only. 1 for a
        bank over all channels; C for a 2-D kernel on C channels (filter d
        reads channel d).
    stride, dilation : tuple of int
        (rows, columns).
    padding : tuple of int
        (top, bottom, left, right).
    border : str
        The border mode, aliases resolved.
    cval : float
        The value of ``"constant"`` padding.
    flip : bool
        Whether the kernel was rotated by 180 degrees first.
    """

    input: FloatArray
    padded: FloatArray
    weights: FloatArray
    bias: FloatArray
    output: FloatArray
    steps: list[TraceStep]
    groups: int
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: tuple[int, int, int, int]
    border: str
    cval: float
    flip: bool

    @property
    def depth(self) -> int:
        """Number of filters D, one output map each."""
        return int(self.weights.shape[0])

    @property
    def kernel(self) -> tuple[int, int]:
        """Rows and columns of one filter, (kh, kw)."""
        return int(self.weights.shape[2]), int(self.weights.shape[3])

    @property
    def parameters(self) -> int:
        """Learnable numbers of the layer: every weight plus one bias per filter."""
        return int(self.weights.size) + self.depth

    @property
    def multiply_adds(self) -> int:
        """Multiplications (each paired with an addition) of the whole layer."""
        return int(self.output.size) * int(self.weights[0].size)

    def channels_of(self, d: int) -> range:
        """Return the input channels filter ``d`` reads (its group's)."""
        per_in = self.input.shape[0] // self.groups
        group = d // (self.depth // self.groups)
        return range(group * per_in, (group + 1) * per_in)

    def origin(self, step: TraceStep) -> tuple[int, int]:
        """Row and column of a step's top-left tap in the padded input."""
        return step.row * self.stride[0], step.col * self.stride[1]

    def taps(self, step: TraceStep) -> tuple[range, range]:
        """Rows and columns of the padded input under a step's window."""
        (r0, c0), (kh, kw), (dh, dw) = self.origin(step), self.kernel, self.dilation
        return range(r0, r0 + dh * (kh - 1) + 1, dh), range(
            c0, c0 + dw * (kw - 1) + 1, dw
        )

    def terms(self, step: TraceStep, channel: int) -> str:
        """Return ``a*b+...=sum`` for one channel of a step (index into its window)."""
        return product_terms(
            step.window[channel],
            self.weights[step.filter, channel].tolist(),
            step.channel_sums[channel],
        )

    def to_json(self) -> dict[str, Any]:
        """Return the document ``convcli trace --json`` prints.

        Strict JSON: a non-finite number (an overflow, an infinite bias) is the
        string ``"Infinity"``, ``"-Infinity"`` or ``"NaN"`` (`NON_FINITE_JSON`).
        """
        top, bottom, left, right = self.padding
        arrays = (self.input, self.weights, self.bias, self.output)
        finite = math.isfinite(self.cval) and all(np.isfinite(a).all() for a in arrays)
        doc: dict[str, Any] = {
            "input": self.input.tolist(),
            "weights": self.weights.tolist(),
            "bias": self.bias.tolist(),
            "groups": self.groups,
            "stride": list(self.stride),
            "padding": [[top, bottom], [left, right]],
            "dilation": list(self.dilation),
            "border": self.border,
            "cval": self.cval,
            "flip": self.flip,
            "output": self.output.tolist(),
            "steps": [asdict(step) for step in self.steps],
        }
        # An infinite product makes its sum, and so the output, non-finite too.
        if finite:
            return doc
        safe: dict[str, Any] = _json_safe(doc)
        return safe


def trace(
    x: npt.ArrayLike,
    w: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    *,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    border: str = "constant",
    cval: float = 0.0,
    flip: bool = False,
    groups: int = 1,
    max_side: int = TRACE_MAX_SIDE,
) -> Trace:
    """Lay out a small `conv2d` call step by step: one `TraceStep` per output value.

    Takes `conv2d`'s arguments and checks them the same way. With ``groups``
    (PyTorch's), a bank ``w`` is (D, C / groups, kh, kw) and filter d reads
    the channels of its group only. ``max_side`` is the largest input side
    laid out (a transposed convolution's zero-inserted input may be larger
    than `TRACE_MAX_SIDE`, up to `TRACE_MAX_PADDED`). ``w`` is applied
    unflipped (cross-correlation) unless ``flip=True``. The arithmetic is
    float64 and every step's ``value`` equals `conv2d`'s output (an overflow
    is inf, inf - inf is NaN, without a warning). For inputs up to
    `TRACE_MAX_SIDE` per side, `TRACE_MAX_STEPS` output values, a padded input
    up to `TRACE_MAX_PADDED` per side and `TRACE_MAX_PRODUCTS` products in
    all: a trace is for reading; larger ones raise `ShapeError`.

    Examples
    --------
    >>> t = trace([[1, 2, 3], [4, 5, 6]], [[1, 0], [0, -1]], bias=10)
    >>> t.output.tolist()
    [[[6.0, 6.0]]]
    >>> step = t.steps[1]
    >>> step.window, step.products, step.value
    ([[[2.0, 3.0], [5.0, 6.0]]], [[[2.0, 0.0], [0.0, -6.0]]], 6.0)
    """
    xa = np.asarray(x, dtype=np.float64)
    call = _check_call(
        xa, w, bias, stride, padding, dilation, border, cval, flip, groups
    )
    g = call.geometry
    height, width, channels = g.in_shape
    x3 = call.x
    per_group = channels // call.groups if call.bank else 1
    if max(height, width) > min(max_side, TRACE_MAX_PADDED):
        msg = (
            f"a trace shows inputs up to {max_side}x{max_side} per channel; "
            f"got {height}x{width} (use `convcli apply` for images)"
        )
        raise ShapeError(msg)
    depth = call.w.shape[0] if call.bank else channels
    out_h, out_w = g.out_shape
    if depth * out_h * out_w > TRACE_MAX_STEPS:
        msg = (
            f"a trace shows at most {TRACE_MAX_STEPS} steps; this one has "
            f"{depth} x {out_h} x {out_w} = {depth * out_h * out_w} "
            "(use a smaller input, a larger stride, or `convcli apply`)"
        )
        raise ShapeError(msg)
    top, bottom, left, right = g.pads
    padded_h, padded_w = height + top + bottom, width + left + right
    if max(padded_h, padded_w) > TRACE_MAX_PADDED:
        msg = (
            f"a trace shows a padded input up to {TRACE_MAX_PADDED}x{TRACE_MAX_PADDED} "
            f"per channel; got {padded_h}x{padded_w} (padding {top}, {bottom}, "
            f"{left}, {right}): use less padding, or `convcli apply`"
        )
        raise ShapeError(msg)
    kh, kw = g.kernel
    taps = (per_group if call.bank else 1) * kh * kw
    if depth * out_h * out_w * taps > TRACE_MAX_PRODUCTS:
        msg = (
            f"a trace writes out at most {TRACE_MAX_PRODUCTS} products; this one has "
            f"{depth * out_h * out_w} steps x {taps} taps = "
            f"{depth * out_h * out_w * taps} (use fewer channels, a smaller kernel, "
            "or `convcli apply`)"
        )
        raise ShapeError(msg)
    rows = border_index(np.arange(-top, height + bottom), height, g.border)
    cols = border_index(np.arange(-left, width + right), width, g.border)
    x_chw = np.ascontiguousarray(x3.transpose(2, 0, 1))
    padded = x_chw[:, np.maximum(rows, 0)][:, :, np.maximum(cols, 0)]
    if g.border == "constant":
        padded[:, rows < 0] = g.cval
        padded[:, :, cols < 0] = g.cval
    (sh, sw), (dh, dw) = g.stride, g.dilation
    if call.bank:
        weights = call.w.astype(np.float64)
    else:  # a 2-D kernel filters each channel on its own
        weights = np.repeat(call.w.astype(np.float64)[np.newaxis, np.newaxis], depth, 0)
    biases = call.bias.astype(np.float64) if call.bias is not None else np.zeros(depth)
    # Every window at once: (H', W', C, kh, kw) views of the padded input.
    windows = np.lib.stride_tricks.sliding_window_view(
        padded, (g.extent[0], g.extent[1]), axis=(1, 2)
    )[:, ::sh, ::sw, ::dh, ::dw][:, :out_h, :out_w].transpose(1, 2, 0, 3, 4)
    steps = []
    output = np.empty((depth, out_h, out_w))
    groups = call.groups if call.bank else channels
    per_out = depth // groups
    for d in range(depth):
        first = d // per_out * per_group
        seen = windows[:, :, first : first + per_group]
        # Finite numbers may overflow to inf (1e308 * 2), and inf - inf is NaN:
        # IEEE's defined results, shown as such, not warned about.
        with np.errstate(over="ignore", invalid="ignore"):
            prods = seen * weights[d]
            channel_sums = prods.sum(axis=(3, 4))
            sums = channel_sums.sum(axis=2)
            output[d] = sums + biases[d]
        for i in range(out_h):
            for j in range(out_w):
                steps.append(
                    TraceStep(
                        d,
                        i,
                        j,
                        seen[i, j].tolist(),
                        prods[i, j].tolist(),
                        channel_sums[i, j].tolist(),
                        float(sums[i, j]),
                        float(biases[d]),
                        float(output[d, i, j]),
                    )
                )
    return Trace(
        input=x_chw,
        padded=padded,
        weights=weights,
        bias=biases,
        output=output,
        steps=steps,
        groups=groups,
        stride=g.stride,
        dilation=g.dilation,
        padding=g.pads,
        border=g.border,
        cval=g.cval,
        flip=flip,
    )


def trace_steps(
    x: npt.ArrayLike,
    w: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    **options: Any,
) -> list[TraceStep]:
    """Return `trace`'s steps only; takes the same arguments.

    Examples
    --------
    >>> window = [[4, 0, 0], [0, 0, 0], [0, 0, -4]]
    >>> step = trace_steps(window, [[0, 0, 0], [0, 1, 1], [0, 1, 2]])[0]
    >>> step.sum, step.products[0][2]
    (-8.0, [0.0, 0.0, -8.0])
    """
    return trace(x, w, bias, **options).steps


def format_number(v: float) -> str:
    """Write a number short, as a trace shows it: ``4``, ``-0.5``, ``0.3333``.

    Whole numbers lose their ``.0``; others keep 4 significant digits; minus
    zero is ``0``.

    Examples
    --------
    >>> [format_number(v) for v in (4.0, -0.0, 0.1 * 0.2, 1 / 3, -12.5, 2e9)]
    ['4', '0', '0.02', '0.3333', '-12.5', '2000000000']
    """
    if v == 0:
        return "0"
    if float(v).is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.4g}"


def product_terms(
    window: Sequence[Sequence[float]], weights: Sequence[Sequence[float]], total: float
) -> str:
    """Write one window times one kernel slice as the worked `=-8` example does.

    Terms ``window*weight`` row by row, joined by ``+``, then ``=`` and
    ``total`` (the sum of the products), every number as `format_number`
    writes it.

    Examples
    --------
    >>> window = [[4, 0, 0], [0, 0, 0], [0, 0, -4]]
    >>> product_terms(window, [[0, 0, 0], [0, 1, 1], [0, 1, 2]], -8)
    '4*0+0*0+0*0+0*0+0*1+0*1+0*0+0*1+-4*2=-8'
    """
    terms = "+".join(
        f"{format_number(a)}*{format_number(b)}"
        for wrow, krow in zip(window, weights, strict=True)
        for a, b in zip(wrow, krow, strict=True)
    )
    return f"{terms}={format_number(total)}"


def size_formula(
    n: int, k: int, *, stride: int, before: int, after: int, dilation: int = 1
) -> tuple[str, int]:
    """Write one axis's output size as the CNN course formula ``(n - k + 2p)/s + 1``.

    Returns the formula with the numbers filled in and its result, and
    ``floor(...)`` around the division when the stride does not divide
    evenly. A dilated kernel counts its span ``d*(k-1)+1``; unequal padding
    is written ``before+after``.

    Examples
    --------
    >>> size_formula(5, 3, stride=2, before=1, after=1)
    ('(5 - 3 + 2*1)/2 + 1 = 3', 3)
    >>> size_formula(6, 3, stride=2, before=0, after=0)
    ('floor((6 - 3 + 2*0)/2) + 1 = 2', 2)
    >>> size_formula(7, 3, stride=1, before=0, after=1, dilation=2)
    ('(7 - (2*(3-1)+1) + 0+1)/1 + 1 = 4', 4)
    """
    span = f"({dilation}*({k}-1)+1)" if dilation > 1 else f"{k}"
    pads = f"2*{before}" if before == after else f"{before}+{after}"
    inner = f"({n} - {span} + {pads})/{stride}"
    numerator = n + before + after - dilation * (k - 1) - 1
    result = numerator // stride + 1
    if numerator % stride:
        inner = f"floor({inner})"
    return f"{inner} + 1 = {result}", result
