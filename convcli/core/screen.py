"""Values a method's float arithmetic cannot take: found per tile, done as direct does.

The direct method with a 2-D kernel is the definition: tap by tap in the compute
dtype, each non-zero weight times its input added in row-major order, zero
weights skipped (so ``0 * inf`` adds nothing). The other methods must give its
answer, and on some values they cannot: an FFT or a banded matrix product mixes
every input of a tile into every output, so one NaN or inf would spread over the
tile; the rank-1 terms of a separable kernel turn an inf under a zero tap into
NaN; an FFT's sums overflow long before the result would (from about 1e35 in
float32 for a 15x15 kernel); a bank's GEMM multiplies zero weights too; and
tiny values lose their precision in the subnormals sooner in an FFT.

So before such a method uses a tile of padded input, `_Screen.check` looks at
its smallest and largest value (two reductions over a tile still in cache). A
tile whose values are all finite and within the method's safe range runs as it
is. Otherwise the values that are not finite or too large are set to 0 for the
method, and the outputs whose window reaches one of them are computed here
(`_Patch`) with the direct method's own arithmetic; a tile whose largest value
is too small is computed so whole. Every method then puts NaN and +-inf where
direct does, and gives direct's very values there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from convcli.core.geometry import FloatArray, IntArray, _Call

# Head room of the safe range: a method's intermediate values stay this far
# below the dtype's largest (rounding, bias), and this far above its smallest
# normal number times the growth (24 bits: a float32 mantissa).
_HEADROOM = 2.0**8
_FOOTROOM = 2.0**24


@dataclass(frozen=True)
class _Patch:
    """Direct's outputs for part of a tile, written over what the method computed."""

    rows: IntArray | None  # output rows within the tile; None: the whole tile
    cols: IntArray | None
    values: FloatArray  # (positions, maps), or (rows, out_w, maps) for a tile

    def apply(self, out: FloatArray, out_row: int) -> None:
        """Write the values into ``out``, whose tile starts at ``out_row``."""
        if self.rows is None or self.cols is None:
            out[out_row : out_row + self.values.shape[0]] = self.values
        else:
            out[out_row + self.rows, self.cols] = self.values


class _Screen:
    """Which tiles of one call a method can run as they are; direct's values for the rest.

    Parameters
    ----------
    call : _Call
        The validated call.
    growth : float
        How much larger than ``max|x| * sum|w|`` the method's intermediate
        values may grow (1 for sums of products; about ``N**1.5`` for an FFT
        of N points).
    spread : float
        How many roundings to the dtype's smallest step one output may gather
        (taps for sums of products, N for an FFT).
    """

    def __init__(self, call: _Call, growth: float, spread: float) -> None:
        self.call = call
        info = np.finfo(call.dtype)
        largest = float(info.max)
        scale = call.w_scale
        # An FFT transforms x before the weights scale it: below sum|w| = 1
        # its values are still bounded by x's.
        self.hi = largest / (_HEADROOM * growth * max(scale, 1.0))
        self.lo = float(info.tiny) * _FOOTROOM * spread / scale if scale > 0 else 0.0
        self.active = not self._tame_by_dtype()
        self._taps: tuple[IntArray, IntArray] | None = None  # see _used_taps

    def _fits(self, top: float) -> bool:
        return top == 0 or self.lo <= top <= self.hi

    def _tame_by_dtype(self) -> bool:
        """Tell whether every tile is tame whatever its values (integers, tame cval)."""
        g = self.call.geometry
        dtype = self.call.x.dtype
        if dtype.kind not in "biu":
            return False
        if dtype.kind == "b":
            top = 1.0
        else:
            info = np.iinfo(dtype)
            top = float(max(-int(info.min), int(info.max)))
        if not (self._fits(top) and self._fits(1.0)):
            return False
        return g.border != "constant" or not any(g.pads) or self._fits(abs(g.cval))

    def check(self, src: FloatArray, rows: int) -> _Patch | None:
        """Screen the padded input ``src`` of ``rows`` output rows, before use.

        Returns None if the method can use ``src`` as it is. Otherwise sets the
        values it cannot take to 0 in place and returns direct's outputs for the
        windows that reached them (all the tile's outputs if its largest value
        is too small), for the caller to apply once the tile is written.
        """
        if not self.active:
            return None
        low, high = float(src.min()), float(src.max())  # NaN if any NaN
        if low >= -self.hi and high <= self.hi:
            if self._fits(max(-low, high)):
                return None
            return _Patch(None, None, self._exact_tile(src, rows))
        magnitude = np.abs(src)
        bad = ~(magnitude <= self.hi)  # NaN, inf and too large
        rest = float(np.max(magnitude, where=~bad, initial=0.0))
        patch: _Patch | None
        if not self._fits(rest):
            patch = _Patch(None, None, self._exact_tile(src, rows))
        else:
            reached = self._reached(np.any(bad, axis=2), rows)
            pi, pj = np.nonzero(reached)
            if 4 * pi.size > reached.size:  # most of the tile: by views, faster
                patch = _Patch(None, None, self._exact_tile(src, rows))
            elif pi.size:
                patch = _Patch(pi, pj, self._exact_at(src, pi, pj))
            else:
                patch = None
        src[bad] = 0
        return patch

    def _used_taps(self) -> tuple[IntArray, IntArray]:
        """Kernel rows and columns with a non-zero weight (computed once, if needed)."""
        if self._taps is None:
            w = self.call.w
            used = (w != 0).reshape(-1, *w.shape[-2:]).any(axis=0)
            self._taps = (
                np.flatnonzero(used.any(axis=1)),
                np.flatnonzero(used.any(axis=0)),
            )
        return self._taps

    def _reached(self, bad: npt.NDArray[np.bool_], rows: int) -> npt.NDArray[np.bool_]:
        """Return the outputs (rows, out_w) with a bad input in their window."""
        g = self.call.geometry
        (sh, sw), (dh, dw) = g.stride, g.dilation
        out_w = g.out_shape[1]
        tap_rows, tap_cols = self._used_taps()
        down = np.zeros((rows, bad.shape[1]), bool)
        for u in tap_rows:
            down |= bad[u * dh : u * dh + (rows - 1) * sh + 1 : sh]
        reached = np.zeros((rows, out_w), bool)
        for v in tap_cols:
            reached |= down[:, v * dw : v * dw + (out_w - 1) * sw + 1 : sw]
        return reached

    def _exact_tile(self, src: FloatArray, rows: int) -> FloatArray:
        g = self.call.geometry
        (sh, sw), (dh, dw) = g.stride, g.dilation
        out_w = g.out_shape[1]

        def take(u: int, v: int) -> FloatArray:
            return src[
                u * dh : u * dh + (rows - 1) * sh + 1 : sh,
                v * dw : v * dw + (out_w - 1) * sw + 1 : sw,
            ]

        return _exact(self.call, take, (rows, out_w))

    def _exact_at(self, src: FloatArray, pi: IntArray, pj: IntArray) -> FloatArray:
        g = self.call.geometry
        (sh, sw), (dh, dw) = g.stride, g.dilation
        r, c = pi * sh, pj * sw

        def take(u: int, v: int) -> FloatArray:
            return src[r + u * dh, c + v * dw]

        return _exact(self.call, take, (len(pi),))


def _exact(
    call: _Call, take: Callable[[int, int], FloatArray], shape: tuple[int, ...]
) -> FloatArray:
    """Sum ``w * input`` tap by tap as the direct method does, skipping zero weights.

    ``take(u, v)`` returns the inputs tap ``(u, v)`` meets, in the compute
    dtype, shaped ``shape + (C,)``; the result is shaped ``shape + (maps,)``.
    Each product is rounded to the compute dtype, then added, taps in row-major
    order: for a 2-D kernel, bit for bit what the direct method computes. A
    bank's taps go channel by channel within each tap.
    """
    w = call.w
    kh, kw = call.geometry.kernel
    acc = np.zeros((*shape, call.n_maps), call.dtype)
    term = np.empty_like(acc)
    for u in range(kh):
        for v in range(kw):
            if call.bank:
                weights = w[:, :, u, v]  # (D, C)
                if not weights.any():
                    continue
                seen = take(u, v)
                for c in range(weights.shape[1]):
                    column = weights[:, c]
                    used = column != 0
                    if used.any():
                        np.multiply(seen[..., c, np.newaxis], column, out=term)
                        np.add(acc, term, out=acc, where=used)
            elif w[u, v] != 0:
                np.multiply(take(u, v), w[u, v], out=term)
                acc += term
    return acc
