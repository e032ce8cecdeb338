"""The numeric core: padding arithmetic and ``conv2d`` with its four methods.

This module uses numpy only. It never opens a file, prints or exits.

Every method works on row tiles of the output. A tile gathers the rows and
columns of the padded input it needs straight from ``x`` (the border is built by
index arithmetic, so the whole padded image is never materialized), converts them
to the compute dtype once, and writes its rows of the output. Tiles are
independent, so they run on a small thread pool: numpy releases the GIL in its
loops, BLAS calls and FFTs.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt

from convcli.errors import ShapeError
from convcli.names import BORDER_ALIASES, BORDERS, METHODS
from convcli.workers import THREADS_ENV, cpus

FloatArray = npt.NDArray[np.floating[Any]]
IntArray = npt.NDArray[np.intp]

Method = Literal["auto", "direct", "separable", "fft"]
Padding = int | str | Sequence[int] | Sequence[Sequence[int]]
IntPair = int | Sequence[int]

# Bytes of padded input one tile of the direct and separable methods holds.
# Smaller tiles stay in the L2 cache (1 MiB a core here) but cost more numpy
# calls, each a GIL hand-off between the workers; 128 KiB to 4 MiB were timed on
# 512- to 4096-wide images and 1 MiB was the best or near it on every size.
_TILE_BYTES = 1 << 20
# Bytes of the per-tile im2col buffer a filter bank fills before its one GEMM.
_BANK_COL_BYTES = 4 << 20
# Below this many multiply-adds a call runs in the calling thread only.
_MIN_PARALLEL_WORK = 1 << 23
# Smallest FFT tile side; see _fft_size.
_FFT_MIN = 96
# Output rows and columns of one banded product of the separable method.
_SEP_ROWS = 32
# Bytes of padded input one tile of the banded separable method gathers.
_SEP_TILE_BYTES = 4 << 20
_SEP_COLS = 32
# Bytes of complex spectra one FFT call of the fft method holds.
_FFT_BATCH_BYTES = 4 << 20

# Cost model of method="auto": nanoseconds per output value of one 2-D
# correlation, a fixed part (gathering, storing, loop overhead) plus a part per
# unit of work. Fitted by least squares on this machine by bench/calibrate.py
# (float32, default threads); only their ratios matter for the choice.
_NS_DIRECT = (1.92, 0.192)  # + per kernel tap
_NS_SEPARABLE = (1.75, 0.203)  # + per 1-D tap (vertical taps count padded columns)
_NS_BANDED = (0.716, 0.0614)  # + per multiply-add of the separable banded products
_NS_FFT = (4.0, 0.300)  # + per point of N*log2(N) per transform, per output
_NS_PER_GEMM_MAC = 0.107  # bank direct: one multiply-add inside the per-tile GEMM
_NS_PER_PIXEL = 0.583  # bank direct: copying one value into the im2col buffer


@dataclass(frozen=True)
class _Geometry:
    """Everything about one call that does not depend on the pixel values."""

    in_shape: tuple[int, int, int]  # (H, W, C)
    kernel: tuple[int, int]  # (kh, kw)
    stride: tuple[int, int]
    dilation: tuple[int, int]
    pads: tuple[int, int, int, int]  # top, bottom, left, right
    border: str
    cval: float
    out_shape: tuple[int, int]  # (H', W')

    @property
    def extent(self) -> tuple[int, int]:
        """Rows and columns one dilated window spans."""
        (kh, kw), (dh, dw) = self.kernel, self.dilation
        return dh * (kh - 1) + 1, dw * (kw - 1) + 1

    @property
    def padded_width(self) -> int:
        """Columns of the padded input that some window reaches."""
        return (self.out_shape[1] - 1) * self.stride[1] + self.extent[1]


@dataclass(frozen=True)
class Explanation:
    """Which method ``conv2d(method="auto")`` picks for a call, and why.

    Attributes
    ----------
    method : str
        The method that runs: ``"direct"``, ``"separable"`` or ``"fft"``.
    reason : str
        One sentence a user can read.
    taps : int
        Weights per filter and channel (kh * kw).
    rank : int
        The largest numerical rank of a 2-D kernel slice; 1 means separable.
    output_shape : tuple of int
        Shape of the result.
    costs : dict
        Estimated milliseconds of each method under the cost model.
    padding : tuple of int
        The padding as resolved: (top, bottom, left, right).
    stride, dilation : tuple of int
        As resolved: (rows, columns).
    border : str
        The border mode, aliases resolved.
    """

    method: str
    reason: str
    taps: int
    rank: int
    output_shape: tuple[int, ...]
    costs: dict[str, float] = field(default_factory=dict)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    border: str = "constant"


# ---------------------------------------------------------------------------
# Arithmetic on one axis


def output_size(
    n: int,
    k: int,
    *,
    stride: int = 1,
    padding: int | str | Sequence[int] = 0,
    dilation: int = 1,
) -> int:
    """Return the length of one output axis.

    ``out = floor((n + p_before + p_after - dilation*(k-1) - 1) / stride) + 1``.

    Parameters
    ----------
    n, k : int
        Input length and kernel length along the axis.
    stride : int, optional
        Step between windows; at least 1.
    padding : int, pair of int, "same" or "valid", optional
        Padding on each side, or ``(before, after)``. ``"same"`` gives
        ``ceil(n / stride)``.
    dilation : int, optional
        Spacing between kernel taps; at least 1.

    Returns
    -------
    int
        The output length; 0 or less means the kernel does not fit.

    Examples
    --------
    >>> output_size(7, 3, stride=2)
    3
    >>> output_size(5, 3, stride=2, padding=1)
    3
    >>> output_size(10, 4, stride=3, padding="same")
    4
    """
    for name, value, least in [
        ("n", n, 1),
        ("k", k, 1),
        ("stride", stride, 1),
        ("dilation", dilation, 1),
    ]:
        _check_int(value, name, least)
    if isinstance(padding, str):
        before, after = _same_or_valid(padding, n, k, stride, dilation, "padding")
    elif isinstance(padding, int | np.integer) and not isinstance(padding, bool):
        before = after = int(padding)
    elif isinstance(padding, Sequence | np.ndarray) and len(padding) == 2:
        before, after = cast("Sequence[int]", padding)
    else:
        msg = f'padding must be an int, a pair, "same" or "valid"; got {padding!r}'
        raise TypeError(msg)
    _check_int(before, "padding", 0)
    _check_int(after, "padding", 0)
    return (
        int(n) + int(before) + int(after) - int(dilation) * (int(k) - 1) - 1
    ) // int(stride) + 1


def _check_int(value: object, name: str, least: int) -> None:
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        msg = f"{name} must be an int; got {value!r}"
        raise TypeError(msg)
    if value < least:
        msg = f"{name} must be >= {least}; got {value}"
        raise ValueError(msg)


def _same_or_valid(
    padding: str, n: int, k: int, stride: int, dilation: int, what: str
) -> tuple[int, int]:
    mode = padding.lower()
    if mode == "valid":
        return 0, 0
    if mode == "same":
        out = -(-n // stride)
        total = max((out - 1) * stride + dilation * (k - 1) + 1 - n, 0)
        return total // 2, total - total // 2
    msg = f'{what} must be an int, a pair, "same" or "valid"; got {padding!r}'
    raise ValueError(msg)


def border_index(idx: IntArray, n: int, border: str) -> IntArray:
    """Map positions along a padded axis to positions in the unpadded axis.

    Parameters
    ----------
    idx : ndarray of int
        Positions relative to the first input element (negative before it,
        ``>= n`` after it).
    n : int
        Length of the unpadded axis.
    border : str
        A resolved border mode, one of `BORDERS`.

    Returns
    -------
    ndarray of int
        Source positions in ``[0, n)``; ``-1`` where ``border`` is ``"constant"``
        and the position lies outside.

    Examples
    --------
    >>> border_index(np.arange(-3, 7), 4, "reflect")
    array([3, 2, 1, 0, 1, 2, 3, 2, 1, 0])
    >>> border_index(np.arange(-3, 7), 4, "symmetric")
    array([2, 1, 0, 0, 1, 2, 3, 3, 2, 1])
    """
    if border == "constant":
        return np.where((idx >= 0) & (idx < n), idx, -1)
    if border == "edge":
        return np.clip(idx, 0, n - 1)
    if border == "wrap":
        return idx % n
    if border == "symmetric":
        m = idx % (2 * n)
        return np.where(m < n, m, 2 * n - 1 - m)
    if border == "reflect":
        if n == 1:
            return np.zeros_like(idx)
        period = 2 * (n - 1)
        m = idx % period
        return np.where(m < n, m, period - m)
    msg = f"border must be one of {', '.join(BORDERS)}; got {border!r}"
    raise ValueError(msg)


# ---------------------------------------------------------------------------
# Validation: once, first


def _pair(value: object, what: str) -> tuple[int, int]:
    if isinstance(value, bool | np.bool_):
        msg = f"{what} must be an int or a pair of ints; got {value!r}"
        raise TypeError(msg)
    if isinstance(value, int | np.integer):
        pair = (int(value), int(value))
    elif isinstance(value, Sequence | np.ndarray) and len(value) == 2:
        items = list(value)
        if not all(
            isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)
            for v in items
        ):
            msg = f"{what} must be an int or a pair of ints; got {value!r}"
            raise TypeError(msg)
        pair = (int(items[0]), int(items[1]))
    else:
        msg = f"{what} must be an int or a pair of ints; got {value!r}"
        raise TypeError(msg)
    if min(pair) < 1:
        msg = f"{what} must be >= 1 in both axes; got {pair}"
        raise ValueError(msg)
    return pair


def _normalize_border(border: object) -> str:
    if not isinstance(border, str):
        msg = f"border must be a string, one of {', '.join(BORDERS)}; got {border!r}"
        raise TypeError(msg)
    name = BORDER_ALIASES.get(border.lower(), border.lower())
    if name not in BORDERS:
        allowed = ", ".join(BORDERS) + " (aliases: " + ", ".join(BORDER_ALIASES) + ")"
        msg = f"border must be one of {allowed}; got {border!r}"
        raise ValueError(msg)
    return name


def _normalize_padding(
    padding: object,
    in_hw: tuple[int, int],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    dilation: tuple[int, int],
) -> tuple[int, int, int, int]:
    bad = (
        "padding must be an int >= 0, a pair (ph, pw), a pair of pairs "
        f'((top, bottom), (left, right)), "same" or "valid"; got {padding!r}'
    )
    if isinstance(padding, str):
        rows = _same_or_valid(
            padding, in_hw[0], kernel[0], stride[0], dilation[0], "padding"
        )
        cols = _same_or_valid(
            padding, in_hw[1], kernel[1], stride[1], dilation[1], "padding"
        )
        return (*rows, *cols)
    if isinstance(padding, bool | np.bool_):
        raise TypeError(bad)
    if isinstance(padding, int | np.integer):
        pads = (int(padding),) * 4
    elif isinstance(padding, Sequence | np.ndarray) and len(padding) == 2:
        parts = list(padding)
        if all(
            isinstance(p, int | np.integer) and not isinstance(p, bool) for p in parts
        ):
            pads = (int(parts[0]), int(parts[0]), int(parts[1]), int(parts[1]))
        elif all(
            isinstance(p, Sequence | np.ndarray)
            and len(p) == 2
            and all(
                isinstance(v, int | np.integer) and not isinstance(v, bool) for v in p
            )
            for p in parts
        ):
            pads = tuple(int(v) for p in parts for v in p)  # type: ignore[assignment]
        else:
            raise TypeError(bad)
    else:
        raise TypeError(bad)
    if min(pads) < 0:
        msg = f"padding must be >= 0 on every side; got {padding!r}"
        raise ValueError(msg)
    return pads


def _compute_dtype(x: npt.NDArray[Any]) -> np.dtype[np.floating[Any]]:
    """Integers, booleans and float16 compute in float32; float64 stays float64."""
    if x.dtype == np.float64:
        return np.dtype(np.float64)
    if x.dtype.kind in "biuf":
        return np.dtype(np.float32)
    msg = f"x must hold real numbers (bool, int, uint or float); got dtype {x.dtype}"
    raise TypeError(msg)


@dataclass(frozen=True)
class _Call:
    """A validated call: arrays in canonical layout plus its geometry."""

    x: npt.NDArray[Any]  # (H, W, C), caller's dtype, never written
    w: FloatArray  # (kh, kw) depthwise, or (D, C, kh, kw) bank; compute dtype
    bank: bool
    squeeze: bool  # the caller passed a 2-D x with a 2-D w
    geometry: _Geometry
    dtype: np.dtype[np.floating[Any]]
    bias: FloatArray | None  # shape (n_maps,)

    @property
    def n_maps(self) -> int:
        return self.w.shape[0] if self.bank else self.geometry.in_shape[2]


def _check_call(
    x: npt.ArrayLike,
    w: npt.ArrayLike,
    bias: npt.ArrayLike | None,
    stride: object,
    padding: object,
    dilation: object,
    border: object,
    cval: object,
    flip: bool,
) -> _Call:
    xa = np.asarray(x)
    dtype = _compute_dtype(xa)
    wa = np.asarray(w)
    if wa.dtype.kind not in "biuf":
        msg = f"w must hold real numbers; got dtype {wa.dtype}"
        raise TypeError(msg)
    if xa.ndim not in (2, 3):
        msg = (
            f"x must have shape (H, W) or (H, W, C); got shape {xa.shape} "
            f"(with w of shape {wa.shape})"
        )
        raise ShapeError(msg)
    if min(xa.shape) == 0:
        msg = f"x must have at least one row, column and channel; got shape {xa.shape}"
        raise ShapeError(msg)
    x3 = xa if xa.ndim == 3 else xa[:, :, np.newaxis]
    channels = x3.shape[2]
    if wa.ndim == 2:
        bank = False
    elif wa.ndim == 4 and wa.shape[1] == channels:
        bank = True
    else:
        expected = f"(kh, kw) or (D, {channels}, kh, kw)"
        msg = f"w has shape {wa.shape}; expected {expected} for x of shape {xa.shape}"
        raise ShapeError(msg)
    if wa.size == 0:
        msg = f"w must not be empty; got shape {wa.shape}"
        raise ShapeError(msg)
    if not np.isfinite(wa).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(wa))[0])
        msg = f"w must hold finite numbers; got {wa[bad]} at index {bad}"
        raise ValueError(msg)
    wc = wa.astype(dtype, copy=True)
    if flip:
        wc = np.ascontiguousarray(wc[..., ::-1, ::-1])
    kernel = (int(wc.shape[-2]), int(wc.shape[-1]))

    stride2 = _pair(stride, "stride")
    dilation2 = _pair(dilation, "dilation")
    resolved = _normalize_border(border)
    if isinstance(cval, bool) or not isinstance(
        cval, int | float | np.integer | np.floating
    ):
        msg = f"cval must be a number; got {cval!r}"
        raise TypeError(msg)
    in_hw = (int(x3.shape[0]), int(x3.shape[1]))
    pads = _normalize_padding(padding, in_hw, kernel, stride2, dilation2)
    out_h = output_size(
        in_hw[0], kernel[0], stride=stride2[0], padding=pads[:2], dilation=dilation2[0]
    )
    out_w = output_size(
        in_hw[1], kernel[1], stride=stride2[1], padding=pads[2:], dilation=dilation2[1]
    )
    if out_h < 1 or out_w < 1:
        extent = (
            dilation2[0] * (kernel[0] - 1) + 1,
            dilation2[1] * (kernel[1] - 1) + 1,
        )
        padded = (in_hw[0] + pads[0] + pads[1], in_hw[1] + pads[2] + pads[3])
        msg = (
            f"kernel window {extent[0]}x{extent[1]} (kernel {kernel[0]}x{kernel[1]}, "
            f"dilation {dilation2}) is larger than the padded input "
            f"{padded[0]}x{padded[1]}"
        )
        raise ShapeError(msg)
    geometry = _Geometry(
        in_shape=(in_hw[0], in_hw[1], channels),
        kernel=kernel,
        stride=stride2,
        dilation=dilation2,
        pads=pads,
        border=resolved,
        cval=float(cval),
        out_shape=(out_h, out_w),
    )
    call = _Call(
        x=x3,
        w=wc,
        bank=bank,
        squeeze=xa.ndim == 2 and not bank,
        geometry=geometry,
        dtype=dtype,
        bias=None,
    )
    if bias is None:
        return call
    ba = np.asarray(bias)
    if ba.dtype.kind not in "biuf":
        msg = f"bias must hold real numbers; got dtype {ba.dtype}"
        raise TypeError(msg)
    n_maps = call.n_maps
    if ba.ndim == 0:
        bvec = np.full(n_maps, ba, dtype=dtype)
    elif ba.shape == (n_maps,):
        bvec = ba.astype(dtype)
    else:
        msg = (
            f"bias must be a scalar or have shape ({n_maps},), one value per output "
            f"map; got shape {ba.shape}"
        )
        raise ShapeError(msg)
    return _Call(
        x=x3,
        w=wc,
        bank=bank,
        squeeze=call.squeeze,
        geometry=geometry,
        dtype=dtype,
        bias=bvec,
    )


# ---------------------------------------------------------------------------
# Tiles: gathering padded input, running on threads


class _Gatherer:
    """Copies the padded rows a tile needs from ``x`` into a float buffer."""

    def __init__(self, x: npt.NDArray[Any], g: _Geometry) -> None:
        self.x = x
        self.g = g
        height, width, _ = g.in_shape
        top, _, left, _ = g.pads
        self.width = g.padded_width
        cols = border_index(np.arange(self.width) - left, width, g.border)
        # Columns [lo, hi) of the padded tile are x's columns [lo - left, hi - left).
        self.lo = min(left, self.width)
        self.hi = min(left + width, self.width)
        self.left_cols = cols[: self.lo]
        self.right_cols = cols[self.hi :]
        self.height = height
        self.top = top

    def fill(self, row0: int, out: FloatArray) -> None:
        """Fill ``out`` (rows, padded_width, C) with padded rows from ``row0``."""
        g = self.g
        n_rows = out.shape[0]
        src = border_index(
            np.arange(row0, row0 + n_rows) - self.top, self.height, g.border
        )
        first, last = int(src[0]), int(src[-1])
        if first >= 0 and last - first == n_rows - 1 and np.all(np.diff(src) == 1):
            rows = self.x[first : last + 1]
        else:
            rows = self.x[np.maximum(src, 0)]
        out[:, self.lo : self.hi] = rows[:, : self.hi - self.lo]
        if g.border == "constant":
            out[:, : self.lo] = g.cval
            out[:, self.hi :] = g.cval
            out[src < 0] = g.cval
        else:
            if self.lo:
                out[:, : self.lo] = rows[:, self.left_cols]
            if self.hi < self.width:
                out[:, self.hi :] = rows[:, self.right_cols]


_POOL: tuple[ThreadPoolExecutor, int] | None = None  # the pool and its size
_POOL_LOCK = threading.Lock()


def _executor(n: int) -> ThreadPoolExecutor:
    """Return the shared tile pool, grown to at least ``n`` threads."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None or _POOL[1] < n:
            size = max(n, _default_workers())
            _POOL = (
                ThreadPoolExecutor(max_workers=size, thread_name_prefix="convcli"),
                size,
            )
        return _POOL[0]


def _default_workers() -> int:
    """Threads of one call with ``workers=None``: `THREADS_ENV` if set, else the CPUs."""
    cap = os.environ.get(THREADS_ENV, "")
    if cap.isdigit() and int(cap) >= 1:
        return int(cap)
    return cpus()


_LOCAL = threading.local()
# Largest scratch buffer a thread keeps between calls (a few tiles' worth).
_KEEP_BYTES = 16 << 20


def _workspace(name: str, shape: tuple[int, ...], dtype: np.dtype[Any]) -> FloatArray:
    """Return a scratch array of ``shape``, reused by this thread across calls.

    Fresh memory costs a page fault per 4 KiB on first touch, as much as the
    arithmetic of a 3x3 tile, so each thread keeps its tile buffers. Their
    contents are left over: callers write before they read.
    """
    size = math.prod(shape)
    if size * dtype.itemsize > _KEEP_BYTES:
        return np.empty(shape, dtype)
    store: dict[tuple[str, str], FloatArray] = _LOCAL.__dict__.setdefault("store", {})
    key = (name, dtype.str)
    buf = store.get(key)
    if buf is None or buf.size < size:
        buf = np.empty(size, dtype)
        store[key] = buf
    return buf[:size].reshape(shape)


def _run_tiles(
    n_tiles: int,
    work: Callable[[int, int], None],
    workers: int,
    macs: float,
) -> None:
    """Run ``work(start, stop)`` over contiguous ranges of tiles on ``workers`` threads."""
    n = min(workers, n_tiles)
    if n <= 1 or macs < _MIN_PARALLEL_WORK:
        work(0, n_tiles)
        return
    executor = _executor(n)
    bounds = [round(i * n_tiles / n) for i in range(n + 1)]
    futures = [
        executor.submit(work, a, b) for a, b in itertools.pairwise(bounds) if b > a
    ]
    for future in futures:
        future.result()


def _tile_rows(row_bytes: int, stride: int, extent: int, budget: int) -> int:
    """Output rows per tile so that the padded input of a tile stays near ``budget``."""
    rows = (budget // max(row_bytes, 1) - extent) // stride + 1
    return max(rows, 8)


# ---------------------------------------------------------------------------
# Method: direct (shift and accumulate over the taps)


def _accumulate(
    acc: FloatArray,
    tmp: FloatArray,
    terms: Iterable[tuple[FloatArray, Any]],
    *,
    fresh: bool = True,
) -> bool:
    """Add ``weight * view`` for each term into ``acc``; overwrite it first if ``fresh``.

    Weights of +1 and -1 skip the multiplication. Returns whether ``acc`` is
    still untouched (no terms and ``fresh``).
    """
    for view, weight in terms:
        if fresh:
            if weight == 1:
                np.copyto(acc, view)
            elif weight == -1:
                np.negative(view, out=acc)
            else:
                np.multiply(view, weight, out=acc)
            fresh = False
        elif weight == 1:
            acc += view
        elif weight == -1:
            acc -= view
        else:
            np.multiply(view, weight, out=tmp)
            acc += tmp
    return fresh


class _Tile:
    """Buffers of one worker: a padded input tile and what is computed from it.

    A flat tile (stride 1) is kept as one flat array: the view for a kernel offset is then one
    contiguous slice (twice as fast as a 2-D strided view), the results are
    computed for every padded column, and the last ``extent - 1`` columns of
    each row, which wrap to the next row, are cropped when copied out.
    """

    def __init__(
        self, call: _Call, rows: int, channels_out: int | None, *, flat: bool
    ) -> None:
        g = call.geometry
        self.g = g
        self.rows = rows
        self.channels = g.in_shape[2]
        self.flat = flat
        self.row_len = g.padded_width * self.channels
        n_in = (rows - 1) * g.stride[0] + g.extent[0]
        self.slack = (g.extent[1] - 1) * self.channels
        self.padded = _workspace(
            "padded", (n_in * self.row_len + self.slack,), call.dtype
        )
        # Accumulator and scratch of `buffers`; None: the caller keeps its own.
        width = g.padded_width if self.flat else g.out_shape[1]
        acc_shape = (rows, width, channels_out or 0)
        self.acc = _workspace("acc", acc_shape, call.dtype)
        self.tmp = _workspace("tmp", acc_shape, call.dtype)

    def load(self, gather: _Gatherer, out_row: int, rows: int) -> FloatArray:
        """Gather the padded input of output rows ``[out_row, out_row + rows)``."""
        g = self.g
        n_in = (rows - 1) * g.stride[0] + g.extent[0]
        end = n_in * self.row_len
        buf = self.padded[:end].reshape(n_in, g.padded_width, self.channels)
        gather.fill(out_row * g.stride[0], buf)
        # The cropped columns of the last row read this far; zeros never warn.
        self.padded[end : end + self.slack] = 0
        return buf

    def offset_view(self, buf: FloatArray, rows: int, u: int, v: int) -> FloatArray:
        """Return the input values kernel tap ``(u, v)`` meets, one per output value."""
        g = self.g
        (sh, sw), (dh, dw) = g.stride, g.dilation
        if self.flat:
            start = (u * dh * g.padded_width + v * dw) * self.channels
            return self.padded[start : start + rows * self.row_len]
        return buf[
            u * dh : u * dh + (rows - 1) * sh + 1 : sh,
            v * dw : v * dw + (g.out_shape[1] - 1) * sw + 1 : sw,
        ]

    def buffers(self, rows: int) -> tuple[FloatArray, FloatArray]:
        """Accumulator and scratch shaped like the views of `offset_view`."""
        if self.flat:
            n = rows * self.acc.shape[1] * self.acc.shape[2]
            return self.acc.reshape(-1)[:n], self.tmp.reshape(-1)[:n]
        return self.acc[:rows], self.tmp[:rows]

    def store(self, out: FloatArray, out_row: int, rows: int) -> None:
        """Copy the accumulated rows into ``out``, cropping the wrapped columns."""
        out[out_row : out_row + rows] = self.acc[:rows, : out.shape[1]]


def _tiling(call: _Call, workers: int, budget: int | None = None) -> tuple[int, int]:
    """Output rows per tile and the number of tiles: cache-sized, and enough for all workers."""
    g = call.geometry
    out_h = g.out_shape[0]
    row_bytes = g.padded_width * g.in_shape[2] * call.dtype.itemsize
    tile = min(
        _tile_rows(row_bytes, g.stride[0], g.extent[0], budget or _TILE_BYTES), out_h
    )
    if workers > 1:
        tile = max(1, min(tile, -(-out_h // workers)))
    return tile, -(-out_h // tile)


def _direct_depthwise(call: _Call, out: FloatArray, workers: int) -> None:
    g = call.geometry
    kh, kw = g.kernel
    out_h = g.out_shape[0]
    tile, n_tiles = _tiling(call, workers)
    gather = _Gatherer(call.x, g)
    taps = [
        (u, v, call.w[u, v]) for u in range(kh) for v in range(kw) if call.w[u, v] != 0
    ]

    def work(start: int, stop: int) -> None:
        bufs = _Tile(call, tile, g.in_shape[2], flat=g.stride == (1, 1))
        for t in range(start, stop):
            r0 = t * tile
            rows = min(tile, out_h - r0)
            src = bufs.load(gather, r0, rows)
            acc, tmp = bufs.buffers(rows)
            views = (
                (bufs.offset_view(src, rows, u, v), weight) for u, v, weight in taps
            )
            if _accumulate(acc, tmp, views):
                acc.fill(0)
            bufs.store(out, r0, rows)

    _run_tiles(n_tiles, work, workers, out.size * len(taps))


def _direct_bank(call: _Call, out: FloatArray, workers: int) -> None:
    g = call.geometry
    (kh, kw), sh = g.kernel, g.stride[0]
    out_h, out_w = g.out_shape
    channels = g.in_shape[2]
    depth = call.w.shape[0]
    ext_h = g.extent[0]
    taps = kh * kw
    itemsize = call.dtype.itemsize
    # One GEMM per tile: (rows*W', taps*C) @ (taps*C, D), the im2col of one tile only.
    weights = np.ascontiguousarray(
        call.w.transpose(2, 3, 1, 0).reshape(taps * channels, depth)
    )
    col_rows = max(1, _BANK_COL_BYTES // (out_w * taps * channels * itemsize))
    in_rows = _tile_rows(g.padded_width * channels * itemsize, sh, ext_h, _TILE_BYTES)
    tile = max(1, min(col_rows, in_rows, out_h))
    n_tiles = -(-out_h // tile)
    gather = _Gatherer(call.x, g)

    def work(start: int, stop: int) -> None:
        bufs = _Tile(call, tile, None, flat=False)
        cols = _workspace("cols", (tile, out_w, taps, channels), call.dtype)
        for t in range(start, stop):
            r0 = t * tile
            rows = min(tile, out_h - r0)
            src = bufs.load(gather, r0, rows)
            col = cols[:rows]
            for u in range(kh):
                for v in range(kw):
                    col[:, :, u * kw + v] = bufs.offset_view(src, rows, u, v)
            np.matmul(
                col.reshape(rows * out_w, taps * channels),
                weights,
                out=out[r0 : r0 + rows].reshape(rows * out_w, depth),
            )

    # One thread walks the tiles: the GEMM already runs on BLAS's own threads, and
    # two tile workers on top of them ran 25 % slower (oversubscribed).
    _run_tiles(n_tiles, work, 1, out.size * taps * channels)


# ---------------------------------------------------------------------------
# Method: separable (rank-1 terms, two 1-D passes each)


def _rank_terms(w2: FloatArray) -> list[tuple[FloatArray, FloatArray]]:
    """Split a 2-D kernel into rank-1 terms ``col (kh,) x row (kw,)`` by SVD."""
    u, s, vt = np.linalg.svd(w2.astype(np.float64), full_matrices=False)
    if s[0] == 0:
        return []
    tol = _rank_tolerance(w2.dtype) * s[0]
    terms = []
    for i in range(len(s)):
        if s[i] <= tol:
            break
        scale = math.sqrt(s[i])
        terms.append(
            ((u[:, i] * scale).astype(w2.dtype), (vt[i] * scale).astype(w2.dtype))
        )
    return terms


def _rank_tolerance(dtype: np.dtype[Any]) -> float:
    return 8.0 * float(np.finfo(dtype).eps)


def kernel_rank(w: npt.ArrayLike) -> int:
    """Return the numerical rank of a 2-D kernel, or the largest over a bank's slices.

    Singular values below ``8 * eps * s_max`` (float32 eps for anything but
    float64) count as zero. Rank 1 means the kernel is separable.

    Examples
    --------
    >>> kernel_rank([[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    1
    >>> kernel_rank([[0, 1, 0], [1, -4, 1], [0, 1, 0]])
    2
    """
    wa = np.asarray(w)
    dtype = np.dtype(np.float64) if wa.dtype == np.float64 else np.dtype(np.float32)
    # One batched SVD over all slices: a bank may hold hundreds.
    slices = wa.reshape(-1, *wa.shape[-2:]).astype(dtype).astype(np.float64)
    values = np.linalg.svd(slices, compute_uv=False)  # (slices, min(kh, kw))
    tol = _rank_tolerance(dtype) * values[:, :1]
    return int(((values > tol) & (values[:, :1] > 0)).sum(axis=1).max())


def _banded(taps: FloatArray, n_out: int, stride: int, dilation: int) -> FloatArray:
    """Return the (n_out, n_in) matrix whose product with a column correlates it.

    Row ``i`` holds ``taps[u]`` at column ``i * stride + u * dilation``: a 1-D
    correlation of ``n_in = (n_out - 1) * stride + extent`` values as one matrix
    product, which BLAS runs at several times the speed of one numpy pass per tap.
    """
    extent = dilation * (len(taps) - 1) + 1
    matrix = np.zeros((n_out, (n_out - 1) * stride + extent), taps.dtype)
    rows = np.arange(n_out)[:, np.newaxis]
    cols = rows * stride + np.arange(len(taps)) * dilation
    matrix[rows, cols] = taps
    return matrix


def _separable_banded(call: _Call, out: FloatArray, workers: int) -> None:
    """Two 1-D passes per rank-1 term, each a banded matrix product on BLAS.

    Per input channel and term, the vertical pass multiplies blocks of
    ``_SEP_ROWS`` output rows by the padded input rows; the horizontal pass cuts
    each row into blocks of ``_SEP_COLS`` outputs (overlapping by the kernel's
    extent) and multiplies them all by one banded matrix. Both waste some
    multiply-adds on zeros but replace one numpy pass per tap by one BLAS call.
    """
    g = call.geometry
    (sh, sw), (dh, dw) = g.stride, g.dilation
    out_h, out_w = g.out_shape
    channels = g.in_shape[2]
    # (output map, input channel, vertical band, horizontal band) per rank-1 term;
    # a 2-D kernel filters each channel into its own map.
    pairs = (
        [(d, c, call.w[d, c]) for d in range(call.w.shape[0]) for c in range(channels)]
        if call.bank
        else [(c, c, call.w) for c in range(channels)]
    )
    bands: dict[int, list[tuple[FloatArray, FloatArray]]] = {}
    terms = []
    for d, c, w2 in pairs:
        key = d * channels + c if call.bank else 0
        if key not in bands:
            bands[key] = [
                (
                    _banded(col, _SEP_ROWS, sh, dh),
                    _banded(row, _SEP_COLS, sw, dw).T.copy(),
                )
                for col, row in _rank_terms(w2)
            ]
        terms += [(d, c, vband, hband) for vband, hband in bands[key]]
    n_blocks = -(-out_w // _SEP_COLS)
    block_in = (_SEP_COLS - 1) * sw + g.extent[1]  # input columns of one block
    wide = (n_blocks * _SEP_COLS - 1) * sw + g.extent[1]  # >= padded_width
    # Tiles of whole vertical blocks, tall enough that the kernel's overlap of
    # extent - 1 rows is gathered rarely.
    tile, _ = _tiling(call, 1, budget=_SEP_TILE_BYTES)
    tile = min(max(_SEP_ROWS, tile // _SEP_ROWS * _SEP_ROWS), out_h)
    n_tiles = -(-out_h // tile)
    gather = _Gatherer(call.x, g)

    def work(start: int, stop: int) -> None:
        bufs = _Tile(call, tile, None, flat=False)
        vert = _workspace("vertical", (tile, wide), call.dtype)
        vert[:, g.padded_width :] = 0  # never written below: beyond the input
        blocks = _workspace("blocks", (tile, n_blocks, block_in), call.dtype)
        result = _workspace("hblocks", (tile, n_blocks * _SEP_COLS), call.dtype)
        for t in range(start, stop):
            r0 = t * tile
            rows = min(tile, out_h - r0)
            src = bufs.load(gather, r0, rows)
            dest = out[r0 : r0 + rows]
            written: set[int] = set()
            for d, c, vband, hband in terms:
                plane = src[:, :, c]
                for i0 in range(0, rows, _SEP_ROWS):
                    n = min(_SEP_ROWS, rows - i0)
                    band = vband[:n, : (n - 1) * sh + g.extent[0]]
                    lo = i0 * sh
                    np.matmul(
                        band,
                        plane[lo : lo + band.shape[1]],
                        out=vert[i0 : i0 + n, : g.padded_width],
                    )
                # Overlapping column blocks: (rows, blocks, block_in).
                view = np.lib.stride_tricks.as_strided(
                    vert[:rows],
                    shape=(rows, n_blocks, block_in),
                    strides=(
                        vert.strides[0],
                        _SEP_COLS * sw * vert.strides[1],
                        vert.strides[1],
                    ),
                    writeable=False,
                )
                np.copyto(blocks[:rows], view)
                res = result[:rows]
                np.matmul(
                    blocks[:rows].reshape(-1, block_in),
                    hband,
                    out=res.reshape(-1, _SEP_COLS),
                )
                if d in written:
                    dest[:, :, d] += res[:, :out_w]
                else:
                    dest[:, :, d] = res[:, :out_w]
                    written.add(d)
            for d in range(call.n_maps):
                if d not in written:
                    dest[:, :, d] = 0

    # One thread walks the tiles: both products already run on BLAS's threads.
    _run_tiles(n_tiles, work, 1, out.size * max(len(terms), 1) * sum(g.kernel))


def _separable_taps(call: _Call, out: FloatArray, workers: int) -> None:
    """Two 1-D passes per rank-1 term, one numpy multiply-add per tap."""
    g = call.geometry
    (sh, sw), (dh, dw) = g.stride, g.dilation
    out_h, out_w = g.out_shape
    channels = g.in_shape[2]
    # Rank-1 terms of each 2-D slice: (output map, input channel, the non-zero
    # taps of the column and row vectors). Map and channel are None for a 2-D
    # kernel, which is applied to every channel at once.
    terms: list[
        tuple[int | None, int | None, list[tuple[int, Any]], list[tuple[int, Any]]]
    ] = []
    slices = (
        [(d, c, call.w[d, c]) for d in range(call.w.shape[0]) for c in range(channels)]
        if call.bank
        else [(None, None, call.w)]
    )
    for d, c, w2 in slices:
        for col, row in _rank_terms(w2):
            col_taps = [(u, weight) for u, weight in enumerate(col) if weight != 0]
            row_taps = [(v, weight) for v, weight in enumerate(row) if weight != 0]
            if col_taps and row_taps:
                terms.append((d, c, col_taps, row_taps))
    tile, n_tiles = _tiling(call, workers)
    gather = _Gatherer(call.x, g)
    depth = 1 if call.bank else channels  # channels of one term's vertical pass
    flat = sw == 1 and not call.bank
    maps = call.n_maps

    def work(start: int, stop: int) -> None:
        bufs = _Tile(call, tile, maps, flat=flat)
        slack = (g.extent[1] - 1) * depth
        size = tile * g.padded_width * depth
        vertical = _workspace("vertical", (size + slack,), call.dtype)
        scratch = _workspace("vscratch", (size,), call.dtype)
        for t in range(start, stop):
            r0 = t * tile
            rows = min(tile, out_h - r0)
            src = bufs.load(gather, r0, rows)
            n = rows * g.padded_width * depth
            vertical[n : n + slack] = 0
            vert = vertical[:n].reshape(rows, g.padded_width, depth)
            vtmp = scratch[:n].reshape(rows, g.padded_width, depth)
            acc, tmp = bufs.buffers(rows)
            fresh: dict[int | None, bool] = {}
            for d, c, col, row in terms:
                part = src if c is None else src[:, :, c : c + 1]
                vviews = (
                    (part[u * dh : u * dh + (rows - 1) * sh + 1 : sh], wt)
                    for u, wt in col
                )
                _accumulate(vert, vtmp, vviews)
                if flat:
                    hviews = (
                        (vertical[v * dw * depth : v * dw * depth + n], wt)
                        for v, wt in row
                    )
                    dst, dtmp = acc, tmp
                else:
                    hviews = (
                        (vert[:, v * dw : v * dw + (out_w - 1) * sw + 1 : sw], wt)
                        for v, wt in row
                    )
                    dst = acc if d is None else acc[:, :, d : d + 1]
                    dtmp = tmp if d is None else tmp[:, :, d : d + 1]
                fresh[d] = _accumulate(dst, dtmp, hviews, fresh=fresh.get(d, True))
            if call.bank:
                for d in range(maps):
                    if fresh.get(d, True):
                        acc[:, :, d] = 0
            elif fresh.get(None, True):
                acc.fill(0)
            bufs.store(out, r0, rows)

    _run_tiles(n_tiles, work, workers, out.size * max(len(terms), 1) * sum(g.kernel))


def _separable(call: _Call, out: FloatArray, workers: int) -> None:
    """Split the kernel into rank-1 terms: by taps or by banded products, the cheaper."""
    variants = _separable_costs(call, 1)
    # A banded product multiplies zeros by every input of its block, so a NaN or
    # inf would spread over the block; taps keep it where it is.
    if variants["banded"] < variants["taps"] and np.isfinite(call.x).all():
        _separable_banded(call, out, workers)
    else:
        _separable_taps(call, out, workers)


def _separable_costs(call: _Call, rank_: int) -> dict[str, float]:
    """Nanoseconds of the two ways to run the separable method, for one 2-D pair."""
    g = call.geometry
    (kh, kw), (sh, sw) = g.kernel, g.stride
    ext_h, ext_w = g.extent
    out_px = g.out_shape[0] * g.out_shape[1]
    spread = g.padded_width / max(g.out_shape[1], 1)  # vertical outputs per output
    # The vertical pass runs on every padded column, the horizontal one on kept ones.
    taps = rank_ * (kh * spread + kw)
    macs = rank_ * (
        ((_SEP_ROWS - 1) * sh + ext_h) * spread + (_SEP_COLS - 1) * sw + ext_w
    )
    return {
        "taps": out_px * (_NS_SEPARABLE[0] + taps * _NS_SEPARABLE[1]),
        "banded": out_px * (_NS_BANDED[0] + macs * _NS_BANDED[1]),
    }


# ---------------------------------------------------------------------------
# Method: fft (overlap-save over tiles, float32 rfft2)


def _fft_size(extent: int, limit: int) -> int:
    """FFT length for one axis: about four kernel extents, an even 5-smooth number.

    Tiles of 96 to 256 points measured fastest per useful output on this machine
    (bench/calibrate.py): smaller ones waste the ``extent - 1`` overlap, larger
    ones leave the cache. A tile never exceeds what the whole axis needs.
    """
    n = min(max(4 * extent, _FFT_MIN), limit + extent - 1)
    while not _smooth(n) or (n % 2 and n > 16):
        n += 1
    return n


def _smooth(n: int) -> bool:
    for p in (2, 3, 5):
        while n % p == 0:
            n //= p
    return n == 1


def _fft(call: _Call, out: FloatArray, workers: int) -> None:
    g = call.geometry
    (kh, kw), (sh, sw), (dh, dw) = g.kernel, g.stride, g.dilation
    out_h, out_w = g.out_shape
    channels = g.in_shape[2]
    ext_h, ext_w = g.extent
    # Stride-1 outputs a tile computes, rounded to whole strides so the kept
    # positions fall on the same place in every tile.
    full_h = (out_h - 1) * sh + 1
    full_w = (out_w - 1) * sw + 1
    n_h = _fft_size(ext_h, full_h)
    n_w = _fft_size(ext_w, full_w)
    step_h = max(sh, (n_h - ext_h + 1) // sh * sh)
    step_w = max(sw, (n_w - ext_w + 1) // sw * sw)
    n_h = max(n_h, step_h + ext_h - 1)
    n_w = max(n_w, step_w + ext_w - 1)
    rows_out = step_h // sh  # output rows per tile
    cols_out = step_w // sw
    # Kernel spectra, conjugated: X * conj(K) is a correlation.
    if call.bank:
        k4 = call.w
    else:
        k4 = call.w[np.newaxis, np.newaxis]
    dilated = np.zeros((*k4.shape[:2], ext_h, ext_w), call.dtype)
    dilated[:, :, ::dh, ::dw] = k4
    # numpy's pocketfft runs 3-7x slower on float32 when it need not scale
    # (norm="backward" forward, norm="forward" inverse), so the tiles use
    # norm="ortho" both ways and the kernel's spectrum stays unscaled.
    spectra = np.conj(np.fft.rfft2(dilated.astype(np.float64), s=(n_h, n_w)))
    spectra = spectra.astype(
        np.complex128 if call.dtype == np.float64 else np.complex64
    )
    n_col_tiles = -(-out_w // cols_out)
    width = (n_col_tiles - 1) * step_w + n_w  # padded columns a band needs
    n_tiles = -(-out_h // rows_out)
    gather = _Gatherer(call.x, g)
    n_maps = out.shape[2]
    padded_rows = (out_h - 1) * sh + ext_h

    # Column tiles per FFT call: enough to amortize the call, few enough that the
    # spectra of one batch stay a few MiB whatever the image width.
    batch = max(1, _FFT_BATCH_BYTES // (max(channels, n_maps) * n_h * n_w * 8))

    def work(start: int, stop: int) -> None:
        band = _workspace("band", (n_h, width, channels), call.dtype)
        band[:, g.padded_width :] = 0  # never gathered into: beyond the input
        planes = _workspace("planes", (channels, n_h, width), call.dtype)
        for t in range(start, stop):
            r0 = t * rows_out
            rows = min(rows_out, out_h - r0)
            n_in = min(n_h, padded_rows - r0 * sh)
            band[n_in:] = 0
            gather.fill(r0 * sh, band[:n_in, : g.padded_width])
            # Channels apart, so every FFT reads contiguous rows.
            src = band[:, :, 0] if channels == 1 else planes
            if channels > 1:
                np.copyto(planes, band.transpose(2, 0, 1))
            for j0 in range(0, n_col_tiles, batch):
                j1 = min(j0 + batch, n_col_tiles)
                _fft_batch(src, j0, j1, rows, r0)

    def _fft_batch(src: FloatArray, j0: int, j1: int, rows: int, r0: int) -> None:
        # Column tiles j0..j1 as a strided view (tiles, C, n_h, n_w).
        base = src[..., j0 * step_w :]
        tiles = np.lib.stride_tricks.as_strided(
            base,
            shape=(j1 - j0, channels, n_h, n_w),
            strides=(
                step_w * src.strides[-1],
                src.strides[0] if channels > 1 else 0,
                *src.strides[-2:],
            ),
            writeable=False,
        )
        spec = np.fft.rfft2(tiles, norm="ortho")  # (tiles, C, n_h, n_w//2+1)
        if call.bank:
            prod = spec[:, 0, None] * spectra[None, :, 0]
            for c in range(1, channels):
                prod += spec[:, c, None] * spectra[None, :, c]
        else:
            prod = spec
            prod *= spectra[0, 0]
        res = np.fft.irfft2(prod, s=(n_h, n_w), norm="ortho")  # (tiles, maps, n_h, n_w)
        # Kept outputs, as (rows, tiles, cols_out, maps), straight into `out`.
        kept = res[:, :, : rows * sh : sh, :step_w:sw].transpose(2, 0, 3, 1)
        c0 = j0 * cols_out
        c1 = min(j1 * cols_out, out_w)
        dest = out[r0 : r0 + rows, c0:c1]
        whole = (c1 - c0) // cols_out
        dest[:, : whole * cols_out].reshape(rows, whole, cols_out, n_maps)[...] = kept[
            :, :whole
        ]
        rest = (c1 - c0) - whole * cols_out
        if rest:
            dest[:, whole * cols_out :] = kept[:, whole, :rest]

    macs = out.size * kh * kw
    _run_tiles(n_tiles, work, workers, macs)


# ---------------------------------------------------------------------------
# The cost model behind method="auto"


def _estimate(call: _Call, rank_: int) -> dict[str, float]:
    """Estimated milliseconds of each method for ``call``, on one thread."""
    g = call.geometry
    (kh, kw), (sh, sw) = g.kernel, g.stride
    ext_h, ext_w = g.extent
    out_px = g.out_shape[0] * g.out_shape[1]
    channels = g.in_shape[2]
    maps = call.w.shape[0] if call.bank else channels
    pairs = maps * channels if call.bank else channels  # 2-D correlations to do
    taps = (
        kh * kw if call.bank else int(np.count_nonzero(call.w))
    )  # zero taps are skipped
    costs: dict[str, float] = {}
    if call.bank:
        costs["direct"] = out_px * (
            _NS_DIRECT[0] * channels
            + kh * kw * channels * (_NS_PER_PIXEL + maps * _NS_PER_GEMM_MAC)
        )
    else:
        costs["direct"] = out_px * pairs * (_NS_DIRECT[0] + taps * _NS_DIRECT[1])
    costs["separable"] = pairs * min(_separable_costs(call, rank_).values())
    n_h = _fft_size(ext_h, (g.out_shape[0] - 1) * sh + 1)
    n_w = _fft_size(ext_w, (g.out_shape[1] - 1) * sw + 1)
    useful = max(n_h - ext_h + 1, 1) * max(n_w - ext_w + 1, 1)
    points = n_h * n_w * math.log2(n_h * n_w) / useful  # per transform, per output
    full_px = ((g.out_shape[0] - 1) * sh + 1) * ((g.out_shape[1] - 1) * sw + 1)
    transforms = channels + maps + (pairs if call.bank else 0) / 4
    costs["fft"] = full_px * (_NS_FFT[0] * maps + _NS_FFT[1] * points * transforms)
    return {k: v / 1e6 for k, v in costs.items()}


def _choose(call: _Call) -> Explanation:
    g = call.geometry
    rank_ = kernel_rank(call.w)
    costs = _estimate(call, rank_)
    best = min(costs, key=costs.__getitem__)
    taps = g.kernel[0] * g.kernel[1]
    shape = _result_shape(call)
    if best == "fft" and not np.isfinite(call.x).all():
        best = min(("direct", "separable"), key=costs.__getitem__)
        reason = (
            "x holds NaN or inf, which an FFT would spread over a whole tile; "
            f"{best} keeps them where they are"
        )
    elif best == "separable":
        reason = (
            f"the {g.kernel[0]}x{g.kernel[1]} kernel has rank {rank_}: "
            f"{rank_} x ({g.kernel[0]}+{g.kernel[1]}) 1-D taps cost less than {taps} 2-D taps"
        )
    elif best == "fft":
        reason = (
            f"{taps} taps per output value cost more than tiled FFTs "
            f"(about {costs['fft']:.3g} ms against {costs['direct']:.3g} ms direct)"
        )
    else:
        reason = f"{taps} taps are cheapest as shift-and-accumulate"
        if rank_ == 1 and taps > 1:
            reason += " (rank 1, but too few taps to gain from two passes)"
    return Explanation(
        best,
        reason,
        taps,
        rank_,
        shape,
        costs,
        padding=g.pads,
        stride=g.stride,
        dilation=g.dilation,
        border=g.border,
    )


def _result_shape(call: _Call) -> tuple[int, ...]:
    out_h, out_w = call.geometry.out_shape
    if call.squeeze:
        return (out_h, out_w)
    return (out_h, out_w, call.n_maps)


def explain(
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
) -> Explanation:
    """Say which method `conv2d` runs for these arguments, and why.

    Takes the same arguments as `conv2d` and checks them the same way, but
    computes nothing. With ``method="auto"`` the answer comes from the cost model
    (kernel taps, numerical rank, image and tile sizes, constants measured by
    ``bench/calibrate.py``); with another method, that method is reported.

    Returns
    -------
    Explanation
        The method, a one-sentence reason, taps, rank, the output shape and the
        estimated milliseconds of every method.

    Examples
    --------
    >>> explain(np.zeros((512, 512)), np.ones((3, 3))).method
    'separable'
    >>> explain(np.zeros((512, 512)), np.random.default_rng(0).random((31, 31))).method
    'fft'
    """
    call = _check_call(x, w, bias, stride, padding, dilation, border, cval, flip)
    return _explain_call(call, method)


def _explain_call(call: _Call, method: object) -> Explanation:
    if method not in METHODS:
        msg = f"method must be one of {', '.join(METHODS)}; got {method!r}"
        raise ValueError(msg)
    choice = _choose(call)
    if method == "auto":
        return choice
    return dataclasses.replace(
        choice, method=str(method), reason=f"method={method!r} was requested"
    )


_RUNNERS: dict[str, Callable[[_Call, FloatArray, int], None]] = {
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
) -> FloatArray:
    """Convolve an image with a kernel or a bank of filters, as a CNN layer does.

    This is cross-correlation: each output value is the window of the padded
    input multiplied element-wise with ``w`` and summed, ``w`` applied unflipped,
    unless ``flip=True`` (true convolution, as ``scipy.ndimage.convolve``)::

        out[i, j, d] = bias[d] + sum_{u, v, c} xp[i*s + u*dl, j*s + v*dl, c] * w[d, c, u, v]

    where ``xp`` is ``x`` padded by ``padding`` with ``border``.

    Parameters
    ----------
    x : array_like, shape (H, W) or (H, W, C)
        The image. Never modified.
    w : array_like, shape (kh, kw) or (D, C, kh, kw)
        A 2-D kernel, applied to each channel of ``x`` on its own (depthwise),
        or a bank of D filters, each spanning all C channels of ``x``. A 2-D
        ``x`` takes a bank of shape (D, 1, kh, kw).
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
        The value of ``"constant"`` padding. Default 0.
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
        Threads for the row tiles. Default: the CPUs this process may use.

    Returns
    -------
    ndarray
        Shape (H', W') for a 2-D ``x`` and 2-D ``w``, else (H', W', n_maps),
        with ``H' = floor((H + pad_top + pad_bottom - dilation*(kh-1) - 1) / stride) + 1``
        (likewise W'). float64 if ``x`` is float64, else float32 (integer
        inputs are computed in float32).

    Raises
    ------
    ValueError
        A bad value: stride or dilation < 1, negative padding, unknown border or
        method, shapes that do not fit (`convcli.ShapeError`), a kernel window
        larger than the padded input.
    TypeError
        A bad type: complex or object arrays, a non-integer stride.

    Examples
    --------
    The worked window of the spec (one output, no padding):

    >>> window = np.array([[4, 0, 0], [0, 0, 0], [0, 0, -4]])
    >>> kernel = np.array([[0, 0, 0], [0, 1, 1], [0, 1, 2]])
    >>> conv2d(window, kernel)
    array([[-8.]], dtype=float32)

    Stride 2 and zero padding 1 on a 5x5 image give 3x3:

    >>> conv2d(np.ones((5, 5)), np.ones((3, 3)), stride=2, padding=1)
    array([[4., 6., 4.],
           [6., 9., 6.],
           [4., 6., 4.]])
    """
    call = _check_call(x, w, bias, stride, padding, dilation, border, cval, flip)
    if method not in METHODS:
        msg = f"method must be one of {', '.join(METHODS)}; got {method!r}"
        raise ValueError(msg)
    chosen = _choose(call).method if method == "auto" else method
    if workers is None:
        n_workers = _default_workers()
    elif isinstance(workers, int) and not isinstance(workers, bool) and workers >= 1:
        n_workers = workers
    else:
        msg = f"workers must be an int >= 1 or None; got {workers!r}"
        raise ValueError(msg)
    out_h, out_w = call.geometry.out_shape
    out = np.empty((out_h, out_w, call.n_maps), call.dtype)
    runner: Callable[[_Call, FloatArray, int], None]
    if chosen == "direct":
        runner = _direct_bank if call.bank else _direct_depthwise
    else:
        runner = _RUNNERS[chosen]
    runner(call, out, n_workers)
    if call.bias is not None:
        out += call.bias
    return out[:, :, 0] if call.squeeze else out


# ---------------------------------------------------------------------------
# Trace: every output value of a small convolution, step by step

TRACE_MAX_SIDE = 16
"""Largest input side (per channel) `trace_steps` explains."""

TRACE_MAX_STEPS = 512
"""Most output values (all filters) `trace_steps` explains."""


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
        C for a bank; 1 when a 2-D kernel filters each channel on its own
        (``groups == C``, PyTorch's depthwise layout).
    bias : ndarray of float64, shape (D,)
        One value per filter (zeros when none was given).
    output : ndarray of float64, shape (D, H', W')
        Every ``value`` of ``steps`` in place; equal to `conv2d`'s result.
    steps : list of TraceStep
        One per output value, filter by filter, row by row.
    groups : int
        1 for a bank; C for a 2-D kernel on C channels (filter d sees channel d).
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
        """Return the input channels filter ``d`` reads."""
        if self.groups == 1:
            return range(self.input.shape[0])
        return range(d, d + 1)

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
        """Return the document ``convcli trace --json`` prints."""
        top, bottom, left, right = self.padding
        return {
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
) -> Trace:
    """Lay out a small `conv2d` call step by step: one `TraceStep` per output value.

    Takes `conv2d`'s arguments and checks them the same way. ``w`` is applied
    unflipped (cross-correlation) unless ``flip=True``. The arithmetic is
    float64 and every step's ``value`` equals `conv2d`'s output. For inputs
    up to `TRACE_MAX_SIDE` per side and `TRACE_MAX_STEPS` output values: a
    trace is for reading; larger inputs raise `ShapeError`.

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
    call = _check_call(xa, w, bias, stride, padding, dilation, border, cval, flip)
    g = call.geometry
    height, width, channels = g.in_shape
    if max(height, width) > TRACE_MAX_SIDE:
        msg = (
            f"a trace shows inputs up to {TRACE_MAX_SIDE}x{TRACE_MAX_SIDE} per channel; "
            f"got {height}x{width} (use `convcli apply` for images)"
        )
        raise ShapeError(msg)
    depth = call.n_maps
    out_h, out_w = g.out_shape
    if depth * out_h * out_w > TRACE_MAX_STEPS:
        msg = (
            f"a trace shows at most {TRACE_MAX_STEPS} steps; this one has "
            f"{depth} x {out_h} x {out_w} = {depth * out_h * out_w} "
            "(use a smaller input, a larger stride, or `convcli apply`)"
        )
        raise ShapeError(msg)
    top, bottom, left, right = g.pads
    rows = border_index(np.arange(-top, height + bottom), height, g.border)
    cols = border_index(np.arange(-left, width + right), width, g.border)
    x_chw = np.ascontiguousarray(call.x.astype(np.float64).transpose(2, 0, 1))
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
    for d in range(depth):
        seen = windows if call.bank else windows[:, :, d : d + 1]
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
        groups=1 if call.bank else channels,
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
    """Write one window times one kernel slice as the spec's worked example does.

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
