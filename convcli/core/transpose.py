"""Transposed convolution: `conv_transpose2d`, the adjoint of `conv2d`, and its sizes.

A transposed convolution runs a convolution backwards: every input value
stamps a copy of the kernel, scaled by the value, onto the output, at stride
steps. It is the gradient of `conv2d` with respect to its input (PyTorch's
``conv_transpose2d``, a CNN decoder's upsampling layer). numpy only.

How: the input is taken in blocks of rows; one matrix product per block (per
group) gives every tap's products ``x[i, j, :] @ w[:, :, u, v]`` at once, and
each tap's plane of products is added into a strided slice of the output. No
loop runs over pixels: the loops are over blocks and kernel taps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from convcli.core.geometry import (
    _MAX_VALUES,
    FloatArray,
    IntPair,
    _bias_vector,
    _check_int,
    _compute_dtype,
    _pair,
    _weights,
)
from convcli.errors import ShapeError

# Bytes of the products one block of input rows makes (every tap, every map).
_BLOCK_BYTES = 4 << 20


def output_size_transposed(
    n: int,
    k: int,
    *,
    stride: int = 1,
    padding: int = 0,
    output_padding: int = 0,
    dilation: int = 1,
) -> int:
    """Return the length of one output axis of `conv_transpose2d`.

    ``out = (n - 1)*stride - 2*padding + dilation*(k - 1) + output_padding + 1``,
    PyTorch's formula. It inverts `output_size`: a `conv2d` with the same
    kernel, stride, padding and dilation maps ``out`` back to ``n``, and
    ``output_padding`` picks which of the ``stride`` lengths that do so.

    Parameters
    ----------
    n, k : int
        Input length and kernel length along the axis; at least 1.
    stride : int, optional
        Step between the stamps of neighbouring inputs; at least 1.
    padding : int, optional
        Rows (or columns) cropped from each end of the full result; at least 0.
    output_padding : int, optional
        Extra rows added at the end (bottom or right); at least 0 and smaller
        than ``stride`` or than ``dilation``.
    dilation : int, optional
        Spacing between kernel taps; at least 1.

    Returns
    -------
    int
        The output length; 0 or less means ``padding`` crops everything.

    Examples
    --------
    >>> output_size_transposed(3, 3, stride=2, padding=1)
    5
    >>> output_size_transposed(3, 3, stride=2, padding=1, output_padding=1)
    6
    >>> output_size_transposed(4, 4, stride=2, padding=1)  # the usual 2x upsampling
    8
    """
    for name, value, least in [
        ("n", n, 1),
        ("k", k, 1),
        ("stride", stride, 1),
        ("padding", padding, 0),
        ("output_padding", output_padding, 0),
        ("dilation", dilation, 1),
    ]:
        _check_int(value, name, least)
    _check_output_padding((int(output_padding),), (int(stride),), (int(dilation),))
    return _length(
        int(n), int(k), int(stride), int(padding), int(output_padding), int(dilation)
    )


def _length(n: int, k: int, s: int, p: int, op: int, d: int) -> int:
    return (n - 1) * s - 2 * p + d * (k - 1) + op + 1


def _check_output_padding(
    output_padding: tuple[int, ...], stride: tuple[int, ...], dilation: tuple[int, ...]
) -> None:
    """Raise ValueError unless each axis's output_padding < its stride or dilation."""
    if all(
        op < s or op < d
        for op, s, d in zip(output_padding, stride, dilation, strict=True)
    ):
        return
    shown = [
        f"{v[0]}" if len(v) == 1 else f"{v}" for v in (output_padding, stride, dilation)
    ]
    msg = (
        f"output_padding must be smaller than stride or dilation in each axis; "
        f"got output_padding {shown[0]} with stride {shown[1]} and dilation {shown[2]}"
    )
    raise ValueError(msg)


@dataclass(frozen=True)
class _Transposed:
    """A validated `conv_transpose2d` call."""

    x: FloatArray  # (G, C // G, H, W): channel planes, the compute dtype
    w: FloatArray  # (G, kh*kw*(D // G), C // G): each group's (u, v, d) rows
    kernel: tuple[int, int]
    groups: int
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    out_shape: tuple[int, int, int]  # (H', W', D)
    bias: FloatArray | None
    out_dtype: np.dtype[np.floating[Any]] | None  # returned if not the compute dtype
    squeeze: bool  # a 2-D x with a 2-D w: the result is 2-D


def _check_transposed(
    x: npt.ArrayLike,
    w: npt.ArrayLike,
    bias: npt.ArrayLike | None,
    stride: object,
    padding: object,
    output_padding: object,
    dilation: object,
    groups: object,
) -> _Transposed:
    xa, wa = np.asarray(x), np.asarray(w)
    out_dtype = _compute_dtype(xa)
    if wa.dtype.kind not in "biuf":
        msg = f"w must hold real numbers; got dtype {wa.dtype}"
        raise TypeError(msg)
    if xa.ndim not in (2, 3) or min(xa.shape, default=0) == 0:
        msg = (
            f"x must have shape (H, W) or (H, W, C) with at least one row, column "
            f"and channel; got shape {xa.shape} (with w of shape {wa.shape})"
        )
        raise ShapeError(msg)
    channels = xa.shape[2] if xa.ndim == 3 else 1
    if isinstance(groups, bool | np.bool_) or not isinstance(groups, int | np.integer):
        msg = f"groups must be an int; got {groups!r}"
        raise TypeError(msg)
    if groups < 1:
        msg = f"groups must be >= 1; got {groups}"
        raise ValueError(msg)
    n_groups = int(groups)
    shapes = f"got x {xa.shape} and w {wa.shape}"
    if wa.ndim == 2:  # one kernel stamped by every channel on its own
        if n_groups not in (1, channels):
            msg = (
                f"groups={n_groups} needs w of shape (C, D // {n_groups}, kh, kw); a 2-D "
                f"kernel (kh, kw) is stamped by each channel on its own and takes "
                f"groups=1 or groups=C ({channels}); {shapes}"
            )
            raise ShapeError(msg)
        n_groups = channels
        w4 = wa[np.newaxis, np.newaxis]
    elif wa.ndim == 4 and channels % n_groups:
        msg = f"groups={n_groups} needs C divisible by {n_groups}; {shapes}"
        raise ShapeError(msg)
    elif wa.ndim == 4 and wa.shape[0] == channels:
        w4 = wa
    else:
        msg = (
            f"w has shape {wa.shape}; expected (kh, kw) or ({channels}, D // groups, "
            f"kh, kw) (C, D // groups, kh, kw) for x of shape {xa.shape} with "
            f"groups={n_groups}"
        )
        raise ShapeError(msg)
    if wa.size == 0:
        msg = f"w must not be empty; got shape {wa.shape}"
        raise ShapeError(msg)
    wc, dtype = _weights(w4, out_dtype, False)
    if wa.ndim == 2:
        wc = np.broadcast_to(wc, (channels, 1, *wa.shape))
    stride2 = _pair(stride, "stride")
    dilation2 = _pair(dilation, "dilation")
    padding2 = _pair(padding, "padding", least=0)
    output_padding2 = _pair(output_padding, "output_padding", least=0)
    _check_output_padding(output_padding2, stride2, dilation2)

    (height, width), (kh, kw) = xa.shape[:2], wc.shape[2:]
    per_in, per_out = channels // n_groups, wc.shape[1]
    depth = per_out * n_groups
    out_h, out_w = (
        _length(n, k, s, p, op, d)
        for n, k, s, p, op, d in zip(
            (height, width),
            (kh, kw),
            stride2,
            padding2,
            output_padding2,
            dilation2,
            strict=True,
        )
    )
    if out_h < 1 or out_w < 1:
        msg = (
            f"padding {padding2} crops the whole output: {out_h + 2 * padding2[0]}x"
            f"{out_w + 2 * padding2[1]} before cropping, for x of shape {xa.shape}, "
            f"w of shape {wa.shape}, stride {stride2} and dilation {dilation2}"
        )
        raise ShapeError(msg)
    if out_h * out_w * depth > _MAX_VALUES:
        msg = (
            f"the output would hold {out_h * out_w * depth:.3g} values; an array holds "
            f"at most {_MAX_VALUES:.3g}; got x of shape {xa.shape}, w of shape "
            f"{wa.shape}, stride {stride2}, dilation {dilation2}"
        )
        raise ShapeError(msg)
    planes = np.empty((channels, height, width), dtype)
    with np.errstate(over="ignore"):  # longdouble beyond float64: +-inf
        np.copyto(planes, xa.reshape(height, width, channels).transpose(2, 0, 1))
    # (C, D/G, kh, kw) -> (G, kh*kw*D/G, C/G): one matrix per group whose
    # rows run over the taps (u, v), then the group's maps.
    wg = (
        wc.reshape(n_groups, per_in, per_out, kh, kw)
        .transpose(0, 3, 4, 2, 1)
        .reshape(n_groups, kh * kw * per_out, per_in)
    )
    return _Transposed(
        x=planes.reshape(n_groups, per_in, height, width),
        w=np.ascontiguousarray(wg),
        kernel=(kh, kw),
        groups=n_groups,
        stride=stride2,
        padding=padding2,
        dilation=dilation2,
        out_shape=(out_h, out_w, depth),
        bias=_bias_vector(bias, depth, dtype),
        out_dtype=None if out_dtype == dtype else out_dtype,
        squeeze=xa.ndim == 2 and wa.ndim == 2,
    )


def conv_transpose2d(
    x: npt.ArrayLike,
    w: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    *,
    stride: IntPair = 1,
    padding: IntPair = 0,
    output_padding: IntPair = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> FloatArray:
    """Apply a transposed convolution: every input value stamps the kernel on the output.

    PyTorch's ``conv_transpose2d`` with channels last, as `conv2d`. Input
    value ``x[i, j, c]`` adds ``x[i, j, c] * w[c, d, u, v]`` to output
    ``(i*s - p + u*dl, j*s - p + v*dl, d)`` for every tap ``(u, v)`` and map
    ``d`` of its group, ``w`` applied as it is (not flipped; there is no
    ``flip``)::

        out[r, t, d] = bias[d] + sum x[i, j, c] * w[c, d, u, v]
                       over r = i*s - p + u*dl, t = j*s - p + v*dl

    It is the adjoint of `conv2d` with the same ``w``, stride, padding and
    dilation (the gradient a CNN back-propagates through a convolution):
    ``sum(conv2d(a, w) * b) == sum(a * conv_transpose2d(b, w))`` wherever the
    shapes match, and its output has the shape `conv2d` took as input.

    Parameters
    ----------
    x : array_like, shape (H, W) or (H, W, C)
        The input, of any real dtype. Never modified. A 2-D ``x`` has C = 1.
    w : array_like, shape (C, D // groups, kh, kw) or (kh, kw)
        PyTorch's layout: input channel first, then the output maps of its
        group. A 2-D kernel is stamped by each channel on its own, giving C
        maps (as ``w`` of shape (C, 1, kh, kw) with ``groups=C``).
    bias : float or array_like of shape (D,), optional
        Added to every output value: one scalar, or one value per output map.
    stride : int or (int, int), optional
        Step between the stamps of neighbouring inputs (rows, columns), at
        least 1: the upsampling factor.
    padding : int or (int, int), optional
        Rows and columns cropped from each side of the full result; at least 0.
    output_padding : int or (int, int), optional
        Rows and columns added at the bottom and right (zeros plus bias where
        no stamp reaches), to pick among the ``stride`` output sizes that a
        `conv2d` maps back to ``x``'s size; at least 0 and, per axis, smaller
        than ``stride`` or than ``dilation``. Default 0.
    dilation : int or (int, int), optional
        Spacing between kernel taps; at least 1.
    groups : int, optional
        The C channels and D maps split into ``groups`` groups; channel c
        stamps only onto the maps of its group ``c // (C // groups)``. C must
        be divisible by it; ``groups=C`` is depthwise. Default 1.

    Returns
    -------
    ndarray
        Shape (H', W', D), or (H', W') for a 2-D ``x`` and a 2-D ``w``, with
        ``H' = (H - 1)*stride - 2*padding + dilation*(kh - 1) + output_padding + 1``
        (likewise W'; `output_size_transposed` computes one axis). float64 if
        ``x`` holds floats of 8 bytes or more, else float32: integers,
        booleans, float16 and float32 are computed in float32 (or in float64
        and rounded, for weights float32 cannot hold), as `conv2d`.

    Raises
    ------
    ValueError
        Stride or dilation < 1, padding or output_padding < 0, output_padding
        not below stride or dilation, non-finite weights, shapes that do not
        fit or groups that do not divide C (`convcli.ShapeError`, saying both
        shapes), a padding that crops the whole output.
    TypeError
        A bad type: complex or object arrays, a non-integer stride or groups.

    Notes
    -----
    The arithmetic is IEEE's: a NaN or inf in ``x`` reaches every output its
    stamp covers, through zero weights too (``0 * inf`` is NaN), as in
    PyTorch. Products are summed in the compute dtype by matrix products.

    Examples
    --------
    Stride 2 spreads the stamps of a 2x2 kernel of ones apart, each scaled by
    its input value:

    >>> conv_transpose2d(np.array([[1, 2], [3, 4]]), np.ones((2, 2)), stride=2)
    array([[1., 1., 2., 2.],
           [1., 1., 2., 2.],
           [3., 3., 4., 4.],
           [3., 3., 4., 4.]], dtype=float32)

    Overlapping stamps add up, and the result has conv2d's input shape again:

    >>> y = conv_transpose2d(np.ones((2, 2, 1)), np.ones((1, 3, 3, 3)))
    >>> y.shape, y[:, :, 0]
    ((4, 4, 3), array([[1., 2., 2., 1.],
           [2., 4., 4., 2.],
           [2., 4., 4., 2.],
           [1., 2., 2., 1.]]))
    """
    t = _check_transposed(x, w, bias, stride, padding, output_padding, dilation, groups)
    out_h, out_w, depth = t.out_shape
    # Stamped as planes (D, H', W'): every tap's addition then runs along rows
    # of the image, not along the D values of one pixel (3x faster for D = 3).
    planes = np.zeros((depth, out_h, out_w), t.x.dtype)
    out = np.empty(t.out_shape, t.x.dtype if t.out_dtype is None else t.out_dtype)
    with np.errstate(all="ignore"):  # IEEE arithmetic, see Notes
        _stamp(t, planes)
        if t.bias is None:
            np.copyto(out, planes.transpose(1, 2, 0))
        else:
            np.add(planes.transpose(1, 2, 0), t.bias, out=out, casting="same_kind")
    return out[:, :, 0] if t.squeeze else out


def _tap_range(n: int, n_out: int, offset: int, stride: int) -> tuple[int, int, int]:
    """Return the inputs ``[lo, hi)`` of one tap that land in ``[0, n_out)``, and where.

    Input ``i`` of the axis lands at ``i*stride + offset``; the third value is
    the landing place of ``lo``.
    """
    lo = max(0, -(offset // stride)) if offset < 0 else 0
    hi = min(n, (n_out - 1 - offset) // stride + 1) if n_out - 1 >= offset else 0
    return lo, max(lo, hi), lo * stride + offset


def _stamp(t: _Transposed, planes: FloatArray) -> None:
    """Add every input's stamps into ``planes`` (D, H', W'), a block of input rows at a time."""
    n_groups, _, height, width = t.x.shape
    (kh, kw), (sh, sw), (dh, dw) = t.kernel, t.stride, t.dilation
    per_out = t.w.shape[1] // (kh * kw)
    out_h, out_w = t.out_shape[:2]
    out = planes.reshape(n_groups, per_out, out_h, out_w)
    row_bytes = width * t.w.shape[1] * n_groups * t.x.dtype.itemsize  # products per row
    block = max(1, min(height, _BLOCK_BYTES // max(row_bytes, 1)))
    cols = [_tap_range(width, out_w, v * dw - t.padding[1], sw) for v in range(kw)]
    rows = [_tap_range(height, out_h, u * dh - t.padding[0], sh) for u in range(kh)]
    for a in range(0, height, block):
        b = min(a + block, height)
        products = _products(t.x[:, :, a:b], t.w).reshape(
            n_groups, kh, kw, per_out, b - a, width
        )
        for u, (lo, hi, first) in enumerate(rows):
            i0, i1 = max(lo, a), min(hi, b)
            if i0 >= i1:
                continue
            r0 = first + (i0 - lo) * sh
            for v, (j0, j1, c0) in enumerate(cols):
                if j0 >= j1:
                    continue
                out[
                    :,
                    :,
                    r0 : r0 + (i1 - i0 - 1) * sh + 1 : sh,
                    c0 : c0 + (j1 - j0 - 1) * sw + 1 : sw,
                ] += products[:, u, v, :, i0 - a : i1 - a, j0:j1]


def _products(x: FloatArray, w: FloatArray) -> FloatArray:
    """Return ``w[g] @ x[g]`` for each group g: (G, kh*kw*D/G, rows*W).

    ``x`` is (G, C/G, rows, W), ``w`` (G, kh*kw*D/G, C/G).
    """
    n_groups, per_in, rows, width = x.shape
    flat = x.reshape(n_groups, per_in, rows * width)
    products: FloatArray
    if per_in == 1:  # depthwise: an outer product per group, by broadcasting
        products = w * flat
    else:
        products = np.matmul(w, flat)
    return products
