"""Worked examples for ``convcli trace --demo``: small inputs that each teach one idea.

Numbers only: each demo is an input, a kernel, a bias and the layer's
settings, which `convcli.tracing.trace` lays out step by step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Demo:
    """A worked example: what it teaches, its arrays and its settings.

    Attributes
    ----------
    name : str
        What ``--demo`` takes.
    title : str
        One line for `DEMOS` listings and the trace header.
    lesson : str
        What to look at, in a sentence or two.
    x : ndarray of float64
        The input, (H, W) or (H, W, C).
    w : ndarray of float64
        The kernel, (kh, kw) or (D, C, kh, kw).
    bias : tuple of float
        One value per filter (empty: none).
    options : dict
        `convcli.tracing.trace` keywords: stride, padding, dilation, border.
    """

    name: str
    title: str
    lesson: str
    x: FloatArray
    w: FloatArray
    bias: tuple[float, ...] = ()
    options: dict[str, Any] = field(default_factory=dict)


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
_CS231N_TITLE = (
    "the cs231n convolution demo: 5x5x3 input, two 3x3x3 filters, stride 2, padding 1"
)
_CS231N_LESSON = (
    "Each filter spans all 3 input channels: one product line per channel, "
    "then their sums plus the filter's bias give one output value. Two "
    "filters give an output of depth 2."
)


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
    if seed is None:
        x, w = _chw(_CS231N_X), np.array(_CS231N_W, dtype=np.float64)
        title = _CS231N_TITLE
    else:
        rng = np.random.default_rng(seed)
        x = rng.integers(0, 3, (5, 5, 3)).astype(np.float64)
        w = rng.integers(-1, 2, (2, 3, 3, 3)).astype(np.float64)
        title = f"{_CS231N_TITLE} (values drawn with seed {seed})"
    return Demo(
        "cs231n",
        title,
        _CS231N_LESSON,
        x,
        w,
        (1.0, 0.0),
        {"stride": 2, "padding": 1},
    )


def _grid(rows: list[list[int]]) -> FloatArray:
    return np.array(rows, dtype=np.float64)


_STEP_IMAGE = _grid([[0, 0, 0, 9, 9, 9]] * 6)
_SOBEL_X = _grid([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
_COUNTING = _grid([[r * 7 + c for c in range(7)] for r in range(7)])
_CROSS = _grid([[0, 1, 0], [1, 1, 1], [0, 1, 0]])

_FIXED = {
    "seed": Demo(
        "seed",
        "the worked example: one 3x3 window, one 3x3 kernel, -8",
        "One output value is the window multiplied element-wise with the kernel "
        "and summed: 4*0 + 0*0 + ... + -4*2 = -8. The kernel is not flipped.",
        _grid([[4, 0, 0], [0, 0, 0], [0, 0, -4]]),
        _grid([[0, 0, 0], [0, 1, 1], [0, 1, 2]]),
    ),
    "stride": Demo(
        "stride",
        "stride 2: the window jumps two cells, so a 7x7 input gives 3x3",
        "With stride 2 the window moves two columns, then two rows, at a time: "
        "(7 - 3)/2 + 1 = 3 positions per axis. Try --stride 1 (5x5) or "
        "--stride 3 (the last rows are never reached).",
        _COUNTING,
        _CROSS,
        (),
        {"stride": 2},
    ),
    "dilation": Demo(
        "dilation",
        "dilation 2: a 3x3 kernel with gaps covers 5x5, so a 7x7 input gives 3x3",
        "Dilation spreads the taps apart: with dilation 2 the 3x3 kernel reads "
        "every other cell of a 5x5 window (2*(3-1)+1 = 5), seeing more context "
        "with the same 9 weights.",
        _COUNTING,
        _CROSS,
        (),
        {"dilation": 2},
    ),
    "same": Demo(
        "same",
        "padding same: one ring of zeros keeps a 5x5 input 5x5",
        "Padding adds a ring of zeros so that windows can centre on the edge "
        "cells: (5 - 3 + 2*1)/1 + 1 = 5, the size is kept. Compare the demo "
        "valid, which shrinks it to 3x3.",
        _COUNTING[:5, :5],
        _CROSS,
        (),
        {"padding": "same"},
    ),
    "valid": Demo(
        "valid",
        "padding valid: no padding, so a 5x5 input shrinks to 3x3",
        "Without padding the window must stay inside the input: "
        "(5 - 3 + 2*0)/1 + 1 = 3 positions per axis, and the edge cells are "
        "seen by fewer windows. Compare the demo same.",
        _COUNTING[:5, :5],
        _CROSS,
        (),
        {"padding": "valid"},
    ),
    "edge": Demo(
        "edge",
        "an edge detector: Sobel x on a tiny image with a dark-to-bright step",
        "The Sobel x kernel subtracts the left column from the right one: "
        "flat regions give 0, the windows over the step give 36, where the "
        "image changes from 0 to 9.",
        _STEP_IMAGE,
        _SOBEL_X,
    ),
}

DEMOS: dict[str, str] = {"cs231n": _CS231N_TITLE} | {
    name: demo.title for name, demo in _FIXED.items()
}
"""Every demo's name and one-line title, in the order `convcli trace --list-demos` shows."""


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
