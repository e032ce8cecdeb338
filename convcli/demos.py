"""Worked examples for ``convcli trace --demo``: small inputs that each teach one idea.

Numbers only: each demo is an input, a kernel, a bias and the layer's
settings, which `convcli.tracing.trace` (or, for ``transposed``,
`convcli.tracing_transposed.trace_transposed`) lays out step by step. What a
demo says about its numbers is computed from the trace in force, so that
``--stride 3`` on the stride demo reads 3 wherever the numbers do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from convcli.tracing import Trace, product_terms, size_formula
from convcli.tracing_transposed import TransposedTrace, transposed_size

FloatArray = npt.NDArray[np.float64]

Explain = Callable[[Any], tuple[str, str]]
"""A demo's title and lesson for the trace in force (a `Trace`, a
`TransposedTrace`, or for a two-layer demo the list of its traces)."""


@dataclass(frozen=True, eq=False)
class Demo:
    """A worked example: its arrays, its settings and what it says about them.

    Attributes
    ----------
    name : str
        What ``--demo`` takes.
    summary : str
        One line for ``--list-demos``.
    x : ndarray of float64
        The input, (H, W) or (H, W, C).
    w : ndarray of float64
        The kernel, (kh, kw) or (D, C / groups, kh, kw); for ``transposed``
        PyTorch's (C, D / groups, kh, kw).
    bias : tuple of float
        One value per filter (empty: none).
    options : dict
        The trace's keywords: stride, padding, dilation, border, groups (and
        output_padding for a transposed demo).
    explain : callable
        Returns the title and the lesson for the trace in force.
    transposed : bool
        A transposed convolution (``trace --transpose``).
    then : ndarray of float64 or None
        A second layer's bank (D2, D, 1, 1), applied to this one's output: the
        pointwise step of a depthwise-separable convolution.
    """

    name: str
    summary: str
    x: FloatArray
    w: FloatArray
    bias: tuple[float, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)
    explain: Explain = lambda _t: ("", "")
    transposed: bool = False
    then: FloatArray | None = None


def _axis_formula(t: Trace, axis: int) -> tuple[str, int]:
    """Return the output size formula of one axis of ``t`` (0 rows, 1 columns)."""
    n = t.input.shape[1 + axis]
    before, after = t.padding[2 * axis : 2 * axis + 2]
    return size_formula(
        n,
        t.kernel[axis],
        stride=t.stride[axis],
        before=before,
        after=after,
        dilation=t.dilation[axis],
    )


def _hw(t: Trace) -> tuple[str, str]:
    """Return ``HxW`` of the input and of the output."""
    _, height, width = t.input.shape
    _, out_h, out_w = t.output.shape
    return f"{height}x{width}", f"{out_h}x{out_w}"


_NBSP = "\u00a0"  # the text view does not break a line there


def _keep(text: str) -> str:
    """Return ``text`` with spaces that the text view keeps on one line."""
    return text.replace(" ", _NBSP)


def _one(pair: tuple[int, int]) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]},{pair[1]}"


def _chw(channels: list[list[list[int]]]) -> FloatArray:
    """Channels-first nested lists (C, H, W) as an (H, W, C) array."""
    return np.array(channels, dtype=np.float64).transpose(1, 2, 0)


# The classic of the cs231n notes (CS231n: Convolutional Neural Networks for
# Visual Recognition, "Convolution Demo"): a 5x5x3 input with values in
# {0, 1, 2}, zero-padded by 1, two 3x3x3 filters with weights in {-1, 0, 1}
# and biases 1 and 0, stride 2. The page draws new random values on every
# load; these are one fixed draw, so the transcript in the README stays true.
_CS231N_X = [
    [
        [0, 1, 0, 2, 1],
        [0, 0, 1, 0, 1],
        [2, 1, 2, 1, 2],
        [0, 1, 2, 2, 0],
        [2, 1, 1, 2, 0],
    ],
    [
        [0, 0, 0, 0, 2],
        [0, 1, 0, 0, 1],
        [2, 2, 1, 2, 2],
        [1, 2, 1, 1, 2],
        [0, 2, 0, 2, 1],
    ],
    [
        [0, 1, 1, 2, 0],
        [2, 0, 1, 2, 1],
        [1, 1, 2, 1, 2],
        [2, 1, 2, 1, 1],
        [2, 1, 1, 0, 1],
    ],
]
_CS231N_W = [
    [
        [[1, 0, 0], [1, 1, 0], [0, 1, 1]],
        [[0, 1, 0], [1, 1, 0], [-1, 1, 1]],
        [[0, 0, 0], [0, 1, 1], [1, -1, -1]],
    ],
    [
        [[0, 1, 1], [0, 1, 0], [0, -1, 0]],
        [[0, -1, -1], [-1, 1, 0], [-1, 0, 1]],
        [[-1, -1, -1], [0, 0, 1], [0, 0, 0]],
    ],
]
_CS231N_SUMMARY = (
    "the cs231n convolution demo: 5x5x3 input, two 3x3x3 filters, stride 2, padding 1"
)


def _explain_cs231n(t: Trace) -> tuple[str, str]:
    channels, height, width = t.input.shape
    kh, kw = t.kernel
    pad = t.padding
    padding = str(pad[0]) if len(set(pad)) == 1 else ",".join(map(str, pad))
    title = (
        f"the cs231n convolution demo: {height}x{width}x{channels} input, "
        f"{t.depth} filters of {kh}x{kw}x{t.weights.shape[1]}, stride "
        f"{_one(t.stride)}, padding {padding}"
    )
    lesson = (
        f"Each filter spans all {channels} input channels: one product line per "
        "channel, then their sums plus the filter's bias give one output value. "
        f"{t.depth} filters give an output of depth {t.depth}, "
        f"{_hw(t)[1]}x{t.depth}."
    )
    return title, lesson


def cs231n(seed: int | None = None) -> Demo:
    """Return the cs231n demo: its fixed values, or a new draw for ``seed``.

    Examples
    --------
    >>> demo = cs231n()
    >>> demo.x.shape, demo.w.shape, demo.bias, demo.options
    ((5, 5, 3), (2, 3, 3, 3), (1.0, 0.0), {'stride': 2, 'padding': 1})
    >>> sorted(set(cs231n(seed=7).w.ravel().tolist()))
    [-1.0, 0.0, 1.0]
    """
    explain: Explain = _explain_cs231n
    if seed is None:
        x, w = _chw(_CS231N_X), np.array(_CS231N_W, dtype=np.float64)
    else:
        rng = np.random.default_rng(seed)
        x = rng.integers(0, 3, (5, 5, 3)).astype(np.float64)
        w = rng.integers(-1, 2, (2, 3, 3, 3)).astype(np.float64)

        def explain(t: Trace) -> tuple[str, str]:
            title, lesson = _explain_cs231n(t)
            return f"{title} (values drawn with seed {seed})", lesson

    return Demo(
        "cs231n",
        _CS231N_SUMMARY,
        x,
        w,
        (1.0, 0.0),
        {"stride": 2, "padding": 1},
        explain,
    )


def _grid(rows: list[list[int]]) -> FloatArray:
    return np.array(rows, dtype=np.float64)


_STEP_IMAGE = _grid([[0, 0, 0, 9, 9, 9]] * 6)
_SOBEL_X = _grid([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
_COUNTING = _grid([[r * 7 + c for c in range(7)] for r in range(7)])
_CROSS = _grid([[0, 1, 0], [1, 1, 1], [0, 1, 0]])


def _explain_seed(t: Trace) -> tuple[str, str]:
    step = t.steps[0]
    terms = product_terms(step.window[0], t.weights[0, 0].tolist(), step.sum)
    kh, kw = t.kernel
    title = (
        f"the worked example: one {kh}x{kw} window, one {kh}x{kw} kernel, "
        f"{terms.rsplit('=', 1)[1]}"
    )
    lesson = (
        "One output value is the window multiplied element-wise with the kernel "
        f"and summed: {terms.replace('+', ' + ').replace('=', ' = ')}."
        + (
            " The kernel is rotated first (--flip): a true convolution."
            if t.flip
            else " The kernel is not flipped (cross-correlation, as CNNs do)."
        )
    )
    return title, lesson


def _explain_stride(t: Trace) -> tuple[str, str]:
    size_in, size_out = _hw(t)
    sh, sw = t.stride
    formula, _ = _axis_formula(t, 0)
    title = (
        f"stride {_one(t.stride)}: the window jumps {sh} cells, so a {size_in} "
        f"input gives {size_out}"
    )
    lesson = (
        f"With stride {sh} the window moves {sw} columns, then {sh} rows, at a "
        f"time: {_keep(formula)} positions down each column."
    )
    left_over = (t.padded.shape[1] - t.dilation[0] * (t.kernel[0] - 1) - 1) % sh
    if left_over:
        lesson += (
            f" {sh} does not divide evenly: the last {left_over} row(s) are never "
            "reached."
        )
    lesson += " Try another --stride (1, 2 or 3)."
    return title, lesson


def _explain_dilated(t: Trace) -> tuple[str, str]:
    size_in, size_out = _hw(t)
    (kh, kw), (dh, _) = t.kernel, t.dilation
    span = dh * (kh - 1) + 1
    title = (
        f"dilation {_one(t.dilation)} (atrous): a {kh}x{kw} kernel with gaps covers "
        f"{span}x{t.dilation[1] * (kw - 1) + 1}, so a {size_in} input gives {size_out}"
    )
    lesson = (
        f"Dilation spreads the taps apart: with dilation {dh} the {kh}x{kw} kernel "
        f"reads every {_nth(dh)} cell of a {span}-cell span "
        f"({_keep(f'{dh}*({kh}-1)+1 = {span}')}), seeing more context with the same {kh * kw} weights: its "
        "receptive field grows, its parameters do not. Try --dilation 1."
    )
    return title, lesson


def _nth(n: int) -> str:
    return {1: "", 2: "other", 3: "third"}.get(n, f"{n}th")


def _explain_padding(t: Trace) -> tuple[str, str]:
    size_in, size_out = _hw(t)
    formula, _ = _axis_formula(t, 0)
    top = t.padding[0]
    if any(t.padding):
        title = f"padding {top}: a ring of zeros, so a {size_in} input gives {size_out}"
        lesson = (
            "Padding adds zeros around the input so that windows can centre on "
            f"the edge cells: {_keep(formula)}. Compare the demo valid."
        )
    else:
        title = f"no padding (valid): a {size_in} input shrinks to {size_out}"
        lesson = (
            f"Without padding the window must stay inside the input: {_keep(formula)} "
            "positions per axis, and the edge cells are seen by fewer windows. "
            "Compare the demo same."
        )
    return title, lesson


def _explain_edge(t: Trace) -> tuple[str, str]:
    values = sorted({float(v) for v in t.output.ravel()})
    return (
        "an edge detector: Sobel x on a tiny image with a dark-to-bright step",
        "The Sobel x kernel subtracts the left column from the right one: flat "
        "regions give 0, the windows over the step give "
        f"{', '.join(f'{v:g}' for v in values if v)}, where the image changes.",
    )


def _params(t: Trace) -> int:
    return int(t.weights.size) + t.depth


def _explain_grouped(t: Trace) -> tuple[str, str]:
    channels = t.input.shape[0]
    kh, kw = t.kernel
    per_in = t.weights.shape[1]
    full = t.depth * (channels * kh * kw + 1)
    title = (
        f"groups {t.groups}: {t.depth} filters, each reads {per_in} of the "
        f"{channels} channels"
    )
    lesson = (
        f"The channels and the filters are split into {t.groups} groups; a filter "
        f"reads its group's {per_in} channels only, so it has {kh}x{kw}x{per_in} "
        f"weights instead of {kh}x{kw}x{channels}: "
        f"{_keep(f'{t.depth} x ({per_in * kh * kw} + 1) = {_params(t)}')} parameters "
        f"against {_keep(f'{t.depth} x ({channels * kh * kw} + 1) = {full}')} for "
        "the full convolution. "
        "groups = C is depthwise."
    )
    return title, lesson


def _explain_pointwise(t: Trace) -> tuple[str, str]:
    channels = t.input.shape[0]
    size_in, _ = _hw(t)
    title = (
        f"pointwise (1x1): {t.depth} filters of 1x1x{channels} mix the channels "
        "of each pixel"
    )
    lesson = (
        f"A 1x1 kernel sees one pixel: each output is a weighted sum of the "
        f"{channels} channels at one position plus a bias, the same small fully "
        f"connected layer at all {size_in} positions (weight sharing). "
        f"{_keep(f'{t.depth} x ({channels} + 1) = {_params(t)}')} parameters; the "
        "size is kept."
    )
    return title, lesson


def _explain_separable(traces: list[Trace]) -> tuple[str, str]:
    depthwise, pointwise = traces
    channels = depthwise.input.shape[0]
    kh, kw = depthwise.kernel
    maps = pointwise.depth
    both = _params(depthwise) + _params(pointwise)
    full = maps * (channels * kh * kw + 1)
    title = (
        f"depthwise-separable: a {kh}x{kw} depthwise step on each of the "
        f"{channels} channels, then {maps} pointwise 1x1x{channels} filters"
    )
    lesson = (
        "The depthwise step filters each channel on its own "
        f"({_keep(f'{channels} x ({kh * kw} + 1) = {_params(depthwise)}')} "
        "parameters), the pointwise step mixes the channels "
        f"({_keep(f'{maps} x ({channels} + 1) = {_params(pointwise)}')}): "
        f"{both} parameters in all, against "
        f"{_keep(f'{maps} x ({channels * kh * kw} + 1) = {full}')} for a {kh}x{kw} convolution with {maps} filters of the same "
        "output shape (MobileNet's block)."
    )
    return title, lesson


def _explain_transposed(t: TransposedTrace) -> tuple[str, str]:
    _, height, width = t.input.shape
    _, out_h, out_w = t.output.shape
    kh, kw = t.kernel
    formula, _ = transposed_size(
        height,
        kh,
        stride=t.stride[0],
        padding=t.padding[0],
        output_padding=t.output_padding[0],
        dilation=t.dilation[0],
    )
    title = (
        f"transposed convolution: a {height}x{width} input, a {kh}x{kw} kernel, "
        f"stride {_one(t.stride)}, gives {out_h}x{out_w}"
    )
    lesson = (
        "Each input value stamps a copy of the kernel, scaled by the value, onto "
        f"the output, {t.stride[0]} cells apart; where stamps overlap they add up: "
        f"{_keep(formula)} rows. The same output is an ordinary convolution of the "
        "flipped kernel over the input with zeros inserted between its values "
        "(the second view). Try --padding 1 --output-padding 1."
    )
    return title, lesson


def _draw(shape: tuple[int, ...], low: int, high: int, seed: int) -> FloatArray:
    """Whole numbers in [low, high], one fixed draw.

    numpy's legacy RandomState is frozen (NEP 19): the same seed gives the
    same numbers in every numpy version, so the README's transcripts stay true.
    """
    rng = np.random.RandomState(seed)  # frozen on purpose
    return rng.randint(low, high + 1, size=shape).astype(np.float64)


_FIXED = {
    "seed": Demo(
        "seed",
        "the worked example: one 3x3 window, one 3x3 kernel, -8",
        _grid([[4, 0, 0], [0, 0, 0], [0, 0, -4]]),
        _grid([[0, 0, 0], [0, 1, 1], [0, 1, 2]]),
        explain=_explain_seed,
    ),
    "stride": Demo(
        "stride",
        "stride 2: the window jumps two cells, so a 7x7 input gives 3x3",
        _COUNTING,
        _CROSS,
        (),
        {"stride": 2},
        _explain_stride,
    ),
    "dilated": Demo(
        "dilated",
        "dilation 2 (atrous): a 3x3 kernel with gaps covers 5x5",
        _COUNTING,
        _CROSS,
        (),
        {"dilation": 2},
        _explain_dilated,
    ),
    "same": Demo(
        "same",
        "padding same: one ring of zeros keeps a 5x5 input 5x5",
        _COUNTING[:5, :5],
        _CROSS,
        (),
        {"padding": "same"},
        _explain_padding,
    ),
    "valid": Demo(
        "valid",
        "padding valid: no padding, so a 5x5 input shrinks to 3x3",
        _COUNTING[:5, :5],
        _CROSS,
        (),
        {"padding": "valid"},
        _explain_padding,
    ),
    "edge": Demo(
        "edge",
        "an edge detector: Sobel x on a tiny image with a dark-to-bright step",
        _STEP_IMAGE,
        _SOBEL_X,
        explain=_explain_edge,
    ),
    "transposed": Demo(
        "transposed",
        "transposed convolution: each of 2x2 values stamps a 3x3 kernel, stride 2",
        _grid([[1, 2], [3, 4]]),
        _grid([[1, 0, 0], [2, 1, 0], [3, 2, 1]]),
        (),
        {"stride": 2},
        _explain_transposed,
        transposed=True,
    ),
    "grouped": Demo(
        "grouped",
        "groups 2: four 3x3x2 filters, two on channels 0-1, two on channels 2-3",
        _draw((4, 4, 4), 0, 2, 1),
        _draw((4, 2, 3, 3), -1, 1, 2),
        (),
        {"groups": 2},
        _explain_grouped,
    ),
    "depthwise-separable": Demo(
        "depthwise-separable",
        "a 3x3 depthwise step, then a 1x1 pointwise step, against a full 3x3",
        _draw((4, 4, 3), 0, 2, 3),
        _draw((3, 1, 3, 3), -1, 1, 4),
        (),
        {"groups": 3},
        _explain_separable,
        then=_draw((2, 3, 1, 1), -1, 1, 5),
    ),
    "pointwise": Demo(
        "pointwise",
        "1x1 convolution: two 1x1x3 filters mix the 3 channels of each pixel",
        _draw((3, 3, 3), 0, 2, 6),
        np.array([[1, 0, -1], [1, 2, 1]], dtype=np.float64).reshape(2, 3, 1, 1),
        (1.0, 0.0),
        {},
        _explain_pointwise,
    ),
}
_ALIASES = {
    "dilation": "dilated",
    "separable": "depthwise-separable",
    "1x1": "pointwise",
}

DEMOS: dict[str, str] = {"cs231n": _CS231N_SUMMARY} | {
    name: demo.summary for name, demo in _FIXED.items()
}
"""Every demo's name and one-line summary, in the order `convcli trace --list-demos` shows."""


def load_demo(name: str, seed: int | None = None) -> Demo:
    """Return the demo called ``name``; ``seed`` draws new values (cs231n only).

    Raises
    ------
    ValueError
        An unknown name (with the list), or a seed for a demo with fixed values.

    Examples
    --------
    >>> load_demo("edge").w.tolist()[0]
    [-1.0, 0.0, 1.0]
    """
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key == "cs231n":
        return cs231n(seed)
    if key not in _FIXED:
        msg = f"unknown demo {name!r}; the demos are {', '.join(DEMOS)} (see --list-demos)"
        raise ValueError(msg)
    if seed is not None:
        msg = (
            f"--seed draws new values for the cs231n demo only; {key} has fixed values"
        )
        raise ValueError(msg)
    return _FIXED[key]
