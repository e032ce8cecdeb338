"""Geometry and arguments of one call: padding, output sizes, borders, validation.

Everything `conv2d` checks happens here, once, before any method runs: the
result is a `_Call` with arrays in canonical layout and a `_Geometry` that no
method checks again. numpy only.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

import numpy as np
import numpy.typing as npt

from convcli.errors import ShapeError
from convcli.names import BORDER_ALIASES, BORDERS

FloatArray = npt.NDArray[np.floating[Any]]
IntArray = npt.NDArray[np.intp]

Method = Literal["auto", "direct", "separable", "fft"]
Padding = int | str | Sequence[int] | Sequence[Sequence[int]]
IntPair = int | Sequence[int]

_T = TypeVar("_T")
# Entries each memo of `_memo` keeps: kernels a program uses over and over.
_MEMO_SIZE = 256
# Largest kernel memoized, in bytes: a large bank is not kept (256 of them
# could hold gigabytes), and costs its checks and SVD again; next to its
# convolution that is nothing.
_MEMO_MAX_BYTES = 1 << 16
_MEMO_LOCK = threading.Lock()


def _memo(
    memo: dict[tuple[Any, ...], _T],
    key: tuple[Any, ...] | None,
    make: Callable[[], _T],
) -> _T:
    """Return ``memo[key]``, made by ``make()`` the first time, oldest evicted first.

    What depends on a kernel only (its rank, its rank-1 terms, the method for a
    geometry) is computed once per kernel, not on every call: an SVD costs as
    much as a 3x3 convolution of a 64x64 image. Keys hold the kernel's bytes,
    so equal weights share an entry; a key of None (a kernel over
    `_MEMO_MAX_BYTES`) is not memoized. Safe across threads: at worst an
    entry is computed twice.
    """
    if key is None:
        return make()
    found = memo.get(key)
    if found is None:
        found = make()
        with _MEMO_LOCK:
            if len(memo) >= _MEMO_SIZE:
                memo.pop(next(iter(memo)), None)
            memo[key] = found
    return found


def _array_key(a: npt.NDArray[Any]) -> tuple[Any, ...] | None:
    """Return a hashable key of an array's dtype, shape and values; None if too large."""
    if a.nbytes > _MEMO_MAX_BYTES:
        return None
    return (a.dtype.str, a.shape, a.tobytes())


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

    @functools.cached_property
    def extent(self) -> tuple[int, int]:
        """Rows and columns one dilated window spans."""
        (kh, kw), (dh, dw) = self.kernel, self.dilation
        return dh * (kh - 1) + 1, dw * (kw - 1) + 1

    @functools.cached_property
    def padded_width(self) -> int:
        """Columns of the padded input that some window reaches."""
        return (self.out_shape[1] - 1) * self.stride[1] + self.extent[1]


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


def _pair(value: object, what: str, least: int = 1) -> tuple[int, int]:
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
    if min(pair) < least:
        msg = f"{what} must be >= {least} in both axes; got {pair}"
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
    """Return the dtype a call computes in, by kind and size, never by byte order.

    Floats of 8 bytes or more (float64 in either byte order, longdouble)
    compute in native float64; integers, booleans, float16 and float32 in
    float32.
    """
    if x.dtype.kind == "f" and x.dtype.itemsize >= 8:
        return np.dtype(np.float64)
    if x.dtype.kind in "biuf":
        return np.dtype(np.float32)
    msg = f"x must hold real numbers (bool, int, uint or float); got dtype {x.dtype}"
    raise TypeError(msg)


# Largest number of values any array of a call may hold (the output, a tile of
# the padded input, a dilated kernel): 2**58 values of up to 16 bytes (complex
# spectra) stay within what int64 byte offsets can address.
_MAX_VALUES = 2**58


def _check_size(count: int, what: str, geometry: _Geometry) -> None:
    """Raise `ShapeError` if an array of ``count`` values cannot be indexed.

    Checked with Python integers before numpy sees the size, so an absurd
    geometry (a dilation of 10**20) is a clear error, not an overflow inside
    numpy or an attempt to allocate.
    """
    if count <= _MAX_VALUES:
        return
    (kh, kw), (h, w, c) = geometry.kernel, geometry.in_shape
    msg = (
        f"{what} would hold {count:.3g} values; an array holds at most "
        f"{_MAX_VALUES:.3g}; got x of shape ({h}, {w}, {c}), kernel {kh}x{kw}, "
        f"stride {geometry.stride}, dilation {geometry.dilation}, "
        f"padding {geometry.pads}"
    )
    raise ShapeError(msg)


_F32 = np.finfo(np.float32)


def _needs_float64(w: npt.NDArray[Any]) -> bool:
    """Tell whether float32 cannot hold a non-zero weight faithfully.

    That is below its smallest normal number (1.2e-38) or within 2**8 of its
    largest (3.4e38); integers and float16 always fit.
    """
    if w.dtype.kind != "f" or w.dtype.itemsize < 4:
        return False
    mags = np.abs(w)
    top = float(mags.max())
    if top == 0:
        return False
    least = float(mags[mags > 0].min())
    return least < float(_F32.tiny) or top > float(_F32.max) / 2**8


@dataclass(frozen=True)
class _Call:
    """A validated call: arrays in canonical layout plus its geometry."""

    x: npt.NDArray[Any]  # (H, W, C), caller's dtype, never written
    w: FloatArray  # (kh, kw) depthwise, or (D, C, kh, kw) bank; compute dtype
    bank: bool
    squeeze: bool  # the caller passed a 2-D x with a 2-D w
    geometry: _Geometry
    dtype: np.dtype[np.floating[Any]]  # the compute dtype
    bias: FloatArray | None  # shape (n_maps,)
    out_dtype: np.dtype[np.floating[Any]] | None = None  # returned; None: dtype
    groups: int = 1  # a bank's w is then (D, C // groups, kh, kw)

    @property
    def w_scale(self) -> float:
        """Return the largest ``sum|w|`` of one output map, in float64."""
        with np.errstate(over="ignore"):
            mags = np.abs(self.w, dtype=np.float64)
            if self.bank:
                return float(mags.reshape(self.w.shape[0], -1).sum(axis=1).max())
            return float(mags.sum())

    @property
    def n_maps(self) -> int:
        return self.w.shape[0] if self.bank else self.geometry.in_shape[2]


_WEIGHTS: dict[tuple[Any, ...], tuple[FloatArray, np.dtype[np.floating[Any]]]] = {}


def _weights(
    wa: npt.NDArray[Any], out_dtype: np.dtype[np.floating[Any]], flip: bool
) -> tuple[FloatArray, np.dtype[np.floating[Any]]]:
    """Check a kernel's values; return it in the compute dtype (read-only) and that dtype.

    Memoized per kernel by `_check_call`: a call with the same weights pays
    neither the checks nor the copy again.
    """
    if not np.isfinite(wa).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(wa))[0])
        msg = f"w must hold finite numbers; got {wa[bad]} at index {bad}"
        raise ValueError(msg)
    # Weights float32 would round to 0 or near its largest value: the call
    # computes in float64 and returns float32.
    dtype = np.dtype(np.float64) if _needs_float64(wa) else out_dtype
    if wa.dtype.itemsize <= 8:
        wc = wa.astype(dtype, copy=True)
    else:  # longdouble: beyond float64's range is an error
        with np.errstate(over="ignore"):
            wc = wa.astype(dtype, copy=True)
        if not np.isfinite(wc).all():
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(wc))[0])
            msg = (
                f"w must hold numbers within float64's range (|w| <= "
                f"{np.finfo(np.float64).max:.4g}); got {wa[bad]} at index {bad}"
            )
            raise ValueError(msg)
    if flip:
        wc = np.ascontiguousarray(wc[..., ::-1, ::-1])
    wc.flags.writeable = False  # shared by every call with these weights
    return wc, dtype


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
    groups: object = 1,
) -> _Call:
    xa = np.asarray(x)
    out_dtype = _compute_dtype(xa)
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
    bank = wa.ndim == 4
    n_groups = 1
    if (
        type(groups) is not int
        or groups != 1
        or wa.ndim not in (2, 4)
        or (bank and wa.shape[1] != channels)
    ):
        n_groups = _check_groups(groups, xa.shape, wa.shape, channels)
        if not bank:  # a 2-D kernel on each channel is depthwise already
            n_groups = 1
    if wa.size == 0:
        msg = f"w must not be empty; got shape {wa.shape}"
        raise ShapeError(msg)
    wkey = _array_key(wa)
    wc, dtype = _memo(
        _WEIGHTS,
        None if wkey is None else (wkey, out_dtype.str, flip),
        lambda: _weights(wa, out_dtype, flip),
    )
    kernel = (int(wc.shape[-2]), int(wc.shape[-1]))

    n_maps = int(wc.shape[0]) if bank else channels
    shape = (int(x3.shape[0]), int(x3.shape[1]), channels)
    options = (stride, padding, dilation, border, cval)
    # Shapes and options only: the same ones again (ints, strings) hit the memo.
    simple = all(type(o) in (int, str, float) for o in options)
    key = (shape, kernel, n_maps, *options[:4], repr(cval)) if simple else None
    geometry = _memo(
        _GEOMETRIES, key, lambda: _make_geometry(shape, kernel, n_maps, *options)
    )
    call = _Call(
        x=x3,
        w=wc,
        bank=bank,
        squeeze=xa.ndim == 2 and not bank,
        geometry=geometry,
        dtype=dtype,
        bias=None,
        out_dtype=None if out_dtype == dtype else out_dtype,
        groups=n_groups,
    )
    bvec = _bias_vector(bias, n_maps, dtype)
    return call if bvec is None else dataclasses.replace(call, bias=bvec)


_GEOMETRIES: dict[tuple[Any, ...], _Geometry] = {}


def _make_geometry(
    shape: tuple[int, int, int],
    kernel: tuple[int, int],
    n_maps: int,
    stride: object,
    padding: object,
    dilation: object,
    border: object,
    cval: object,
) -> _Geometry:
    """Check the layer's options against the shapes; return the call's geometry."""
    stride2 = _pair(stride, "stride")
    dilation2 = _pair(dilation, "dilation")
    resolved = _normalize_border(border)
    if isinstance(cval, bool) or not isinstance(
        cval, int | float | np.integer | np.floating
    ):
        msg = f"cval must be a number; got {cval!r}"
        raise TypeError(msg)
    try:
        cval_f = float(cval)
    except OverflowError:
        msg = f"cval must fit in a float64 (|cval| <= 1.8e308); got {cval!r}"
        raise ValueError(msg) from None
    pads = _normalize_padding(padding, in_hw := shape[:2], kernel, stride2, dilation2)
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
        in_shape=shape,
        kernel=kernel,
        stride=stride2,
        dilation=dilation2,
        pads=pads,
        border=resolved,
        cval=cval_f,
        out_shape=(out_h, out_w),
    )
    _check_size(out_h * out_w * n_maps, "the output", geometry)
    _check_size(
        geometry.extent[0] * geometry.padded_width * shape[2],
        "a tile of the padded input (one kernel window of rows)",
        geometry,
    )
    return geometry


def _check_groups(
    groups: object,
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    channels: int,
) -> int:
    """Return ``groups`` as an int once ``x`` and ``w`` are known to fit it.

    A bank ``w`` is (D, C // groups, kh, kw) with C and D divisible by
    ``groups``; a 2-D kernel filters each channel on its own, which is
    ``groups`` 1 or C (both mean the same).
    """
    if isinstance(groups, bool | np.bool_) or not isinstance(groups, int | np.integer):
        msg = f"groups must be an int; got {groups!r}"
        raise TypeError(msg)
    if groups < 1:
        msg = f"groups must be >= 1; got {groups}"
        raise ValueError(msg)
    n = int(groups)
    if len(w_shape) == 2 and n in (1, channels):
        return n
    if len(w_shape) == 4 and w_shape[1] * n == channels and w_shape[0] % n == 0:
        return n
    shapes = f"got x {x_shape} and w {w_shape}"
    if len(w_shape) == 2:
        msg = (
            f"groups={n} needs a bank w of shape (D, C // {n}, kh, kw); a 2-D "
            f"kernel (kh, kw) filters each channel on its own and takes groups=1 "
            f"or groups=C ({channels}); {shapes}"
        )
    elif len(w_shape) == 4 and (channels % n or w_shape[0] % n):
        msg = f"groups={n} needs C and D divisible by {n}; {shapes}"
    elif n == 1:
        expected = f"(kh, kw) or (D, {channels}, kh, kw)"
        msg = f"w has shape {w_shape}; expected {expected} for x of shape {x_shape}"
    else:
        msg = (
            f"w has shape {w_shape}; expected (D, {channels // n}, kh, kw) "
            f"(D, C // groups, kh, kw) for x of shape {x_shape} with groups={n}"
        )
    raise ShapeError(msg)


def _bias_vector(
    bias: npt.ArrayLike | None, n_maps: int, dtype: np.dtype[np.floating[Any]]
) -> FloatArray | None:
    """Return ``bias`` as one value per output map; None for no bias or zeros.

    Adding zeros would cost a pass over the output (and make -0.0 of -0.0).
    """
    if bias is None:
        return None
    ba = np.asarray(bias)
    if ba.dtype.kind not in "biuf":
        msg = f"bias must hold real numbers; got dtype {ba.dtype}"
        raise TypeError(msg)
    if ba.ndim == 0:
        with np.errstate(over="ignore"):
            bvec = np.full(n_maps, ba, dtype=dtype)
    elif ba.shape == (n_maps,):
        with np.errstate(over="ignore"):
            bvec = ba.astype(dtype)
    else:
        msg = (
            f"bias must be a scalar or have shape ({n_maps},), one value per output "
            f"map; got shape {ba.shape}"
        )
        raise ShapeError(msg)
    return bvec if bvec.any() else None
