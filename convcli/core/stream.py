"""`conv2d` band by band: an image that is read a band of rows at a time.

`stream_conv2d` computes `conv2d`'s result in bands of output rows. For each
band it asks ``read_rows(first, stop)`` for the input rows the band's windows
reach (its halo included), builds the rows beyond the image's true top and
bottom edges by the border rule (never at a band's seam), and runs `conv2d`
on that band alone. Memory is set by the band, not by the image: the first
piece of a streaming path for images bigger than memory. Every band runs the
method the whole image would, so the result is the whole-image call's (to
float rounding for the FFT, whose tiles differ).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from convcli.core.choose import explain
from convcli.core.geometry import IntPair, Padding, _check_call, border_index

RowReader = Callable[[int, int], npt.NDArray[Any]]
"""``read_rows(first, stop)``: the image's rows ``first..stop-1``, (rows, W, C)."""


def stream_conv2d(
    read_rows: RowReader,
    shape: tuple[int, int, int],
    dtype: npt.DTypeLike,
    w: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    *,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    border: str = "constant",
    cval: float = 0.0,
    flip: bool = False,
    method: str = "auto",
    band_rows: int = 256,
) -> Iterator[tuple[int, npt.NDArray[Any]]]:
    """Yield ``(first output row, output rows)`` of `conv2d` over an image read by rows.

    Parameters
    ----------
    read_rows : callable
        ``read_rows(first, stop)`` returns rows ``first..stop-1`` of the
        image as an (rows, W, C) array of ``dtype``; called once per band,
        for the rows that band's windows reach.
    shape : tuple of int
        The image's (H, W, C).
    dtype : dtype
        The image's dtype (integers compute in float32, as `conv2d`).
    w, bias, stride, padding, dilation, border, cval, flip, method
        As `conv2d`.
    band_rows : int
        Output rows per band (the last band may be shorter).

    Examples
    --------
    >>> import numpy as np
    >>> from convcli.core import conv2d
    >>> x = np.arange(70.0).reshape(7, 10, 1)
    >>> k = np.ones((3, 3))
    >>> bands = stream_conv2d(lambda a, b: x[a:b], x.shape, x.dtype, k,
    ...                       padding=1, border="reflect", band_rows=2)
    >>> out = np.concatenate([band for _, band in bands])
    >>> bool(np.array_equal(out, conv2d(x, k, padding=1, border="reflect")))
    True
    """
    if isinstance(band_rows, bool) or not isinstance(band_rows, int) or band_rows < 1:
        msg = f"band_rows must be a whole number >= 1; got {band_rows!r}"
        raise ValueError(msg)
    height, width, channels = (int(n) for n in shape)
    # The whole call, checked as conv2d checks it, on a view that holds no pixels.
    whole = np.broadcast_to(np.zeros((1, 1, 1), dtype=dtype), (height, width, channels))
    call = _check_call(whole, w, bias, stride, padding, dilation, border, cval, flip)
    g = call.geometry
    chosen = explain(
        whole,
        w,
        bias,
        stride=stride,
        padding=padding,
        dilation=dilation,
        border=border,
        cval=cval,
        flip=flip,
        method=method,  # type: ignore[arg-type]
    ).method
    from convcli.core import (
        conv2d,
    )  # the package's entry point: its checks, its methods

    top, _, left, right = g.pads
    (sh, sw), (dh, dw) = g.stride, g.dilation
    out_h = g.out_shape[0]
    span = g.extent[0]
    for r0 in range(0, out_h, band_rows):
        r1 = min(r0 + band_rows, out_h)
        wanted = band_positions(r0, r1, stride=sh, span=span, top=top)
        source = border_index(wanted, height, g.border)
        band = np.empty((wanted.size, width, channels), dtype=call.dtype)
        needed = np.unique(source[source >= 0])
        if needed.size:
            rows = read_runs(read_rows, needed, (width, channels))
            inside = source >= 0
            band[inside] = rows[np.searchsorted(needed, source[inside])]
        band[source < 0] = g.cval
        out = conv2d(
            band,
            w,
            bias,
            stride=(sh, sw),
            padding=((0, 0), (left, right)),
            dilation=(dh, dw),
            border=g.border,
            cval=g.cval,
            flip=flip,
            method=chosen,  # type: ignore[arg-type]
        )
        out3 = out if out.ndim == 3 else out[:, :, np.newaxis]
        yield r0, out3


def band_positions(
    first: int, stop: int, *, stride: int, span: int, top: int
) -> npt.NDArray[np.intp]:
    """Return where, in the image, the padded rows lie that output rows ``first..stop-1`` reach.

    ``span`` is the rows one window covers (dilation x (kh - 1) + 1), ``top``
    the padding above the image; positions outside ``0..H-1`` are padding
    (`border_index` says which image row each stands for).

    >>> band_positions(2, 4, stride=1, span=3, top=1)
    array([1, 2, 3, 4])
    """
    return np.arange(first * stride, (stop - 1) * stride + span, dtype=np.intp) - top


def read_runs(
    read_rows: RowReader,
    needed: npt.NDArray[np.intp],
    row_shape: tuple[int, int],
) -> npt.NDArray[Any]:
    """Read the image rows ``needed`` (sorted, unique) in contiguous runs, in order.

    A band at a wrapped or reflected edge needs rows from the far side of the
    image, never all the rows in between. ``row_shape`` is (W, C), checked.
    """
    parts = []
    for run in np.split(needed, np.flatnonzero(np.diff(needed) > 1) + 1):
        first, stop = int(run[0]), int(run[-1]) + 1
        rows = np.asarray(read_rows(first, stop))
        if rows.shape != (stop - first, *row_shape):
            msg = (
                f"read_rows({first}, {stop}) gave shape {rows.shape}; "
                f"expected {(stop - first, *row_shape)}"
            )
            raise ValueError(msg)
        parts.append(rows)
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
