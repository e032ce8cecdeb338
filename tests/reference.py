"""A slow, obviously correct float64 reference for ``conv2d`` (SPEC section 1).

It does not import convcli and does not call ``np.pad``: every position of the
padded input is mapped to a source position of the image by the explicit formulas
of `source_index`, and every output value is one window times the kernel, summed.

>>> reference_conv2d(np.arange(9.0).reshape(3, 3), np.ones((2, 2)))
array([[ 8., 12.],
       [20., 24.]])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

BORDER_NAMES = ("constant", "edge", "reflect", "symmetric", "wrap")
ALIASES = {"zero": "constant", "replicate": "edge"}


def source_index(i: int, n: int, border: str) -> int | None:
    """Map position ``i`` of a padded axis (0 = first image element) into ``[0, n)``.

    Returns None where ``border`` is ``"constant"`` and ``i`` lies outside the image.
    Pads longer than the image repeat the pattern periodically, as ``numpy.pad``:

    - edge:      clamp to ``[0, n-1]``
    - wrap:      ``i mod n``                      (period n)
    - symmetric: period ``2n``: ``a b c d | d c b a | a b c d ...``
    - reflect:   period ``2n-2``: ``a b c d | c b | a b c d ...`` (``n == 1``: 0)

    >>> [source_index(i, 4, "reflect") for i in range(-3, 7)]
    [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]
    >>> [source_index(i, 4, "symmetric") for i in range(-3, 7)]
    [2, 1, 0, 0, 1, 2, 3, 3, 2, 1]
    """
    border = ALIASES.get(border, border)
    if 0 <= i < n:
        return i
    if border == "constant":
        return None
    if border == "edge":
        return 0 if i < 0 else n - 1
    if border == "wrap":
        return i % n
    if border == "symmetric":
        period = 2 * n
        m = i % period  # position in one period: forward copy, then mirrored copy
        return m if m < n else period - 1 - m
    if border == "reflect":
        if n == 1:
            return 0
        period = 2 * n - 2
        m = i % period  # forward copy (n values), then the inside backwards (n-2)
        return m if m < n else period - m
    msg = f"unknown border {border!r}"
    raise ValueError(msg)


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int | np.integer):
        return int(value), int(value)
    a, b = value
    return int(a), int(b)


def _same_pads(n: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's SAME: output ceil(n/stride), the smaller half of the pad before."""
    out = -(-n // stride)
    extent = dilation * (k - 1) + 1
    total = max((out - 1) * stride + extent - n, 0)
    return total // 2, total - total // 2


def resolve_padding(
    padding: Any,
    shape: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Return ``((top, bottom), (left, right))`` for any accepted padding form."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            return (
                _same_pads(shape[0], kernel[0], stride[0], dilation[0]),
                _same_pads(shape[1], kernel[1], stride[1], dilation[1]),
            )
        msg = f"unknown padding {padding!r}"
        raise ValueError(msg)
    if isinstance(padding, int | np.integer):
        p = int(padding)
        return (p, p), (p, p)
    rows, cols = padding
    if isinstance(rows, int | np.integer):
        return (int(rows), int(rows)), (int(cols), int(cols))
    return (int(rows[0]), int(rows[1])), (int(cols[0]), int(cols[1]))


def reference_conv2d(
    x: Any,
    w: Any,
    bias: Any = None,
    *,
    stride: int | Sequence[int] = 1,
    padding: Any = 0,
    dilation: int | Sequence[int] = 1,
    border: str = "constant",
    cval: float = 0.0,
    flip: bool = False,
) -> np.ndarray:
    """Cross-correlate ``x`` with ``w`` in float64, one output value at a time.

    ``out[i, j, d] = bias[d] + sum_{u,v,c} xp[i*sh + u*dh - top, j*sw + v*dw - left, c]
    * w[d, c, u, v]`` where ``xp`` is ``x`` extended by ``border``.
    """
    x = np.asarray(x).astype(np.float64)
    w = np.asarray(w).astype(np.float64)
    squeeze = x.ndim == 2 and w.ndim == 2
    x3 = x[:, :, None] if x.ndim == 2 else x
    height, width, channels = x3.shape
    if w.ndim == 2:
        bank = False
    elif w.ndim == 4 and w.shape[1] == channels:
        bank = True
    else:
        msg = f"w of shape {w.shape} does not fit x of shape {x.shape}"
        raise ValueError(msg)
    if flip:
        w = w[..., ::-1, ::-1]
    kh, kw = w.shape[-2:]
    sh, sw = _pair(stride)
    dh, dw = _pair(dilation)
    (top, bottom), (left, right) = resolve_padding(
        padding, (height, width), (kh, kw), (sh, sw), (dh, dw)
    )
    out_h = (height + top + bottom - dh * (kh - 1) - 1) // sh + 1
    out_w = (width + left + right - dw * (kw - 1) - 1) // sw + 1
    if out_h < 1 or out_w < 1:
        msg = "kernel window larger than the padded input"
        raise ValueError(msg)
    n_maps = w.shape[0] if bank else channels

    # The padded input as a lookup: padded[r, c] is padded row r - top, col c - left.
    rows = [source_index(r - top, height, border) for r in range(height + top + bottom)]
    cols = [source_index(c - left, width, border) for c in range(width + left + right)]
    padded = np.empty((len(rows), len(cols), channels))
    for r, src_r in enumerate(rows):
        for c, src_c in enumerate(cols):
            if src_r is None or src_c is None:
                padded[r, c] = cval
            else:
                padded[r, c] = x3[src_r, src_c]

    out = np.zeros((out_h, out_w, n_maps))
    for i in range(out_h):
        for j in range(out_w):
            # window[u, v, c] = padded[i*sh + u*dh, j*sw + v*dw, c]
            window = padded[
                i * sh : i * sh + dh * (kh - 1) + 1 : dh,
                j * sw : j * sw + dw * (kw - 1) + 1 : dw,
            ]
            assert window.shape == (kh, kw, channels)
            if bank:  # out[d] = sum_{u,v,c} window[u, v, c] * w[d, c, u, v]
                out[i, j] = np.einsum("uvc,dcuv->d", window, w)
            else:  # out[c] = sum_{u,v} window[u, v, c] * w[u, v]
                out[i, j] = np.einsum("uvc,uv->c", window, w)
    if bias is not None:
        b = np.asarray(bias, dtype=np.float64)
        out += b if b.ndim == 0 else b.reshape(n_maps)
    return out[:, :, 0] if squeeze else out
