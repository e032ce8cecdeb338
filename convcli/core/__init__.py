"""The numeric core: `conv2d`, the one entry point of its three methods.

numpy only: nothing here opens a file, prints or exits. One module per job:

- `geometry`: padding, output sizes, borders, and the checks every call passes
  once, first (`_check_call`);
- `tiles`: gathering the padded rows a tile needs, scratch buffers, the threads;
- `screen`: the values a method's float arithmetic cannot take (NaN, inf,
  values near the dtype's limits), found per tile and computed exactly;
- `direct`, `separable`, `fft`: the three methods;
- `choose`: the cost model behind ``method="auto"`` and `explain`;
- `groups`: a call with ``groups > 1`` as one call per group;
- `transpose`: `conv_transpose2d`, the adjoint of `conv2d`.

Every method works on row tiles of the output, gathered straight from ``x`` and
run on a small thread pool: `tiles` says how.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from convcli.core.choose import Explanation, _choose, explain
from convcli.core.direct import _direct, _direct_per_channel, _per_channel_pays
from convcli.core.fft import _fft
from convcli.core.geometry import (
    FloatArray,
    IntArray,
    IntPair,
    Method,
    Padding,
    _Call,
    _check_call,
    border_index,
    output_size,
)
from convcli.core.groups import _run_groups
from convcli.core.separable import _separable, kernel_rank
from convcli.core.tiles import _default_workers, _thread_cap
from convcli.core.transpose import conv_transpose2d, output_size_transposed
from convcli.names import METHODS

__all__ = [
    "Explanation",
    "FloatArray",
    "IntArray",
    "IntPair",
    "Method",
    "Padding",
    "border_index",
    "conv2d",
    "conv_transpose2d",
    "explain",
    "kernel_rank",
    "output_size",
    "output_size_transposed",
]

_RUNNERS: dict[str, Callable[[_Call, FloatArray, int], None]] = {
    "direct": _direct,
    "separable": _separable,
    "fft": _fft,
}


def conv2d(
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
    method: Method = "auto",
    workers: int | None = None,
    groups: int = 1,
) -> FloatArray:
    """Convolve an image with a kernel or a bank of filters, as a CNN layer does.

    This is cross-correlation: each output value is the window of the padded
    input multiplied element-wise with ``w`` and summed, ``w`` applied unflipped,
    unless ``flip=True`` (true convolution, as ``scipy.ndimage.convolve``)::

        out[i, j, d] = bias[d] + sum_{u, v, c} xp[i*s + u*dl, j*s + v*dl, c] * w[d, c, u, v]

    where ``xp`` is ``x`` padded by ``padding`` with ``border`` (with
    ``groups``, ``c`` runs over the channels of d's group).

    Parameters
    ----------
    x : array_like, shape (H, W) or (H, W, C)
        The image, of any real dtype and byte order, any strides (views,
        read-only arrays). Never modified.
    w : array_like, shape (kh, kw) or (D, C // groups, kh, kw)
        A 2-D kernel, applied to each channel of ``x`` on its own (depthwise),
        or a bank of D filters, each spanning all C channels of ``x`` (or the
        C // groups channels of its group). A 2-D ``x`` takes a bank of shape
        (D, 1, kh, kw).
    bias : float or array_like of shape (n_maps,), optional
        Added to every output value: one scalar, or one value per output map
        (C for a 2-D kernel on a (H, W, C) image, D for a bank).
    stride : int or (int, int), optional
        Step between windows, rows then columns; at least 1. Only the kept
        outputs are computed.
    padding : int, (int, int), ((int, int), (int, int)), "same" or "valid", optional
        Padding on each side; ``(ph, pw)`` for rows and columns;
        ``((top, bottom), (left, right))``; ``"valid"`` for none; ``"same"`` for an
        output of ``ceil(n / stride)`` per axis, the total padding split with the
        smaller half before (as TensorFlow's SAME). Default 0.
    dilation : int or (int, int), optional
        Spacing between kernel taps; at least 1.
    border : str, optional
        What the padding holds, with ``numpy.pad``'s names: ``"constant"``
        (``cval``; alias ``"zero"``), ``"edge"`` (alias ``"replicate"``),
        ``"reflect"`` (d c b | a b c d), ``"symmetric"`` (c b a | a b c d) or
        ``"wrap"``. Default ``"constant"``.
    cval : float, optional
        The value of ``"constant"`` padding; NaN and +-inf are allowed (see
        Notes). Default 0.
    flip : bool, optional
        Rotate ``w`` by 180 degrees first (true convolution). Default False.
    method : {"auto", "direct", "separable", "fft"}, optional
        ``"direct"`` shifts and accumulates over the taps (a bank does one GEMM
        per row tile); ``"separable"`` splits each 2-D kernel into rank-1 terms
        by SVD and runs two 1-D passes per term (exact for any kernel, fastest
        for rank 1: Sobel, box, Gaussian); ``"fft"`` runs overlap-save over
        tiles with float32 FFTs; ``"auto"`` picks by the cost model that
        `explain` reports. All give the same result within float rounding.
    workers : int, optional
        Threads for the row tiles, at most 4 per CPU this process may use (more
        would only wait). Default: the CPUs this process may use.
    groups : int, optional
        PyTorch's groups: the C channels and the D filters of a bank are split
        into ``groups`` groups, and filter d reads only the channels of its
        group ``d // (D // groups)``, channels ``[g*C/groups, (g+1)*C/groups)``.
        C and D must be divisible by it. ``groups=C`` with a (C, 1, kh, kw)
        bank filters each channel with its own kernel (depthwise). A 2-D
        kernel already filters each channel on its own and takes 1 or C.
        Default 1.

    Returns
    -------
    ndarray
        Shape (H', W') for a 2-D ``x`` and 2-D ``w``, else (H', W', n_maps),
        with ``H' = floor((H + pad_top + pad_bottom - dilation*(kh-1) - 1) / stride) + 1``
        (likewise W'). float64 (native byte order) if ``x`` holds floats of 8
        bytes or more: float64 of either byte order, and longdouble, which is
        computed in float64 (values beyond float64's range become +-inf).
        Else float32: integers, booleans, float16 and float32 are computed in
        float32, except that a kernel with a non-zero weight float32 cannot
        hold (below its smallest normal number, or near its largest) is
        computed in float64 and the result rounded to float32.

    Raises
    ------
    ValueError
        A bad value: stride or dilation < 1, negative padding, unknown border or
        method, non-finite weights, shapes that do not fit
        (`convcli.ShapeError`), a kernel window larger than the padded input,
        a geometry whose output or padded input holds more values than an
        array can index (`convcli.ShapeError`, e.g. a dilation of 10**20).
    TypeError
        A bad type: complex or object arrays, a non-integer stride.

    Notes
    -----
    Non-finite values and extreme magnitudes. ``"direct"`` with a 2-D kernel
    is the definition: tap by tap in the compute dtype, each product rounded,
    then added, zero weights skipped. All four methods give its result: NaN,
    +inf and -inf at the same places, finite values within float rounding
    (relative to ``sum|w| * max|x|``). For ``x``, and for ``cval`` where
    ``"constant"`` padding is used:

    - an output whose window meets a NaN under a non-zero weight is NaN; one
      that meets an inf under a non-zero weight is +-inf (sign of weight times
      value), or NaN where +inf and -inf meet;
    - a zero weight skips its value: ``0 * inf`` counts as 0, for a 2-D
      kernel and a bank alike (numpy's sum of products would give NaN);
    - other outputs are finite, unless the sum leaves the compute dtype: in
      float32, sums of values near its largest (3.4e38) can overflow to
      +-inf (or NaN) on the way, as they do in any float32 loop; pass float64
      ``x`` for such images;
    - ``bias`` is added last: a NaN or inf bias makes its whole map so; a
      bias of zeros is not added at all (it costs no pass over the output,
      and a -0.0 result stays -0.0).

    How: ``"fft"``, ``"separable"`` and a bank's ``"direct"`` (one GEMM per
    tile) look at the smallest and largest value of every row tile of padded
    float input before they use it. An FFT or a banded product mixes all the
    values of a tile, rank-1 terms turn an inf under a zero tap into NaN, a
    GEMM multiplies zero weights too, and an FFT's sums overflow long before
    its result would. So in a tile holding NaN, inf, or values above
    ``3.4e38 / (256 * G * max(sum|w|, 1))`` (float32; G is 1 for a GEMM,
    kh*kw for separable, N**1.5 for an FFT tile of N points: about 1e30 for
    a 15x15 kernel), those values are replaced by 0 for the method and the
    outputs their windows reach are computed with direct's arithmetic; a
    tile whose values are so small that the method would lose them in the
    subnormals is computed so whole. This costs float images one pass over
    the input, which ``"auto"`` counts; integer images and 2-D ``"direct"``
    pay nothing. No RuntimeWarning is raised for any of this.

    Examples
    --------
    The worked window of docs/reference.md (one output, no padding):

    >>> window = np.array([[4, 0, 0], [0, 0, 0], [0, 0, -4]])
    >>> kernel = np.array([[0, 0, 0], [0, 1, 1], [0, 1, 2]])
    >>> conv2d(window, kernel)
    array([[-8.]], dtype=float32)

    Stride 2 and zero padding 1 on a 5x5 image give 3x3:

    >>> conv2d(np.ones((5, 5)), np.ones((3, 3)), stride=2, padding=1)
    array([[4., 6., 4.],
           [6., 9., 6.],
           [4., 6., 4.]])

    Depthwise: ``groups=C``, one 1x1 filter per channel scales each channel:

    >>> x = np.ones((1, 1, 3))
    >>> conv2d(x, np.array([1.0, 2.0, 3.0]).reshape(3, 1, 1, 1), groups=3)
    array([[[1., 2., 3.]]])
    """
    call = _check_call(
        x, w, bias, stride, padding, dilation, border, cval, flip, groups
    )
    if method not in METHODS:
        msg = f"method must be one of {', '.join(METHODS)}; got {method!r}"
        raise ValueError(msg)
    chosen = _choose(call).method if method == "auto" else method
    if workers is None:
        n_workers = _default_workers()
    elif isinstance(workers, int) and not isinstance(workers, bool) and workers >= 1:
        n_workers = min(workers, _thread_cap())
    else:
        msg = f"workers must be an int >= 1 or None; got {workers!r}"
        raise ValueError(msg)
    out_h, out_w = call.geometry.out_shape
    out = np.empty((out_h, out_w, call.n_maps), call.dtype)
    # The tiles silence their own warnings.
    if call.groups == 1:
        _RUNNERS[chosen](call, out, n_workers)
    elif chosen == "direct" and _per_channel_pays(call):
        _direct_per_channel(call, out, n_workers)  # small depthwise: all at once
    else:
        _run_groups(call, _RUNNERS[chosen], out, n_workers)
    if call.bias is not None or call.out_dtype is not None:
        with np.errstate(all="ignore"):  # IEEE arithmetic, see Notes
            if call.bias is not None:
                out += call.bias
            if call.out_dtype is not None:
                out = out.astype(call.out_dtype)
    return out[:, :, 0] if call.squeeze else out
