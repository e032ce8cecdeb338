"""The direct method: shift and accumulate over the kernel taps; a bank as one GEMM per tile."""

from __future__ import annotations

import numpy as np

from convcli.core.geometry import FloatArray, _Call
from convcli.core.screen import _Screen
from convcli.core.tiles import (
    _TILE_BYTES,
    _accumulate,
    _Gatherer,
    _run_tiles,
    _serial_below,
    _Tile,
    _tile_rows,
    _tiling,
    _workspace,
)

# Bytes of the per-tile im2col buffer a filter bank fills before its one GEMM.
_BANK_COL_BYTES = 2 << 20


def _direct(call: _Call, out: FloatArray, workers: int) -> None:
    """Run the direct method: per tap for a 2-D kernel, one GEMM per tile for a bank."""
    if call.bank:
        _direct_bank(call, out, workers)
    else:
        _direct_depthwise(call, out, workers)


def _direct_depthwise(call: _Call, out: FloatArray, workers: int) -> None:
    g = call.geometry
    kh, kw = g.kernel
    out_h = g.out_shape[0]
    taps = [
        (u, v, call.w[u, v]) for u in range(kh) for v in range(kw) if call.w[u, v] != 0
    ]
    workers = _serial_below(workers, out.size * len(taps))
    tile, n_tiles = _tiling(call, workers)
    gather = _Gatherer(call.x, g)
    # No screen: a 2-D kernel's direct method is the definition the others
    # follow (`convcli.core.screen`): NaN and inf stay where its arithmetic
    # puts them, zero weights skip their input.

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
    (kh, kw), (sh, sw), (dh, dw) = g.kernel, g.stride, g.dilation
    out_h, out_w = g.out_shape
    channels = g.in_shape[2]
    depth = call.w.shape[0]
    ext_h, width = g.extent[0], g.padded_width
    k = kh * kw * channels
    itemsize = call.dtype.itemsize
    # One GEMM per tile: out (rows*W', D) = cols.T @ weights, where cols
    # (taps*C, rows*W') holds, for each tap (u, v) and channel c, the plane of
    # inputs that tap meets. The tile is gathered as planes (C, rows, width), so
    # every row of cols is a run of contiguous copies (a pixel-major im2col
    # writes C values at a time, 3x slower for RGB), and BLAS reads cols.T
    # without a copy (a transposed operand is a flag to it).
    weights = np.ascontiguousarray(call.w.transpose(2, 3, 1, 0).reshape(k, depth))
    col_rows = max(1, _BANK_COL_BYTES // (out_w * k * itemsize))
    in_rows = _tile_rows(width * channels * itemsize, sh, ext_h, _TILE_BYTES)
    tile = max(1, min(col_rows, in_rows, out_h))
    n_tiles = -(-out_h // tile)
    n_in_max = (tile - 1) * sh + ext_h
    gather = _Gatherer(call.x, g)
    # A GEMM multiplies zero weights too, and sums in its own order: the screen
    # keeps NaN, inf and values near the dtype's largest out of it.
    screen = _Screen(call, 1.0, k)

    def work(start: int, stop: int) -> None:
        planes_buf = _workspace("planes", (channels * n_in_max * width,), call.dtype)
        cols_buf = _workspace("cols", (k * tile * out_w,), call.dtype)
        for t in range(start, stop):
            r0 = t * tile
            rows = min(tile, out_h - r0)
            n_in = (rows - 1) * sh + ext_h
            planes = planes_buf[: channels * n_in * width].reshape(
                channels, n_in, width
            )
            src = planes.transpose(1, 2, 0)  # (n_in, width, C), as the gatherer fills
            gather.fill(r0 * sh, src)
            patch = screen.check(src, rows)
            cols = cols_buf[: k * rows * out_w].reshape(kh, kw, channels, rows, out_w)
            for u in range(kh):
                for v in range(kw):
                    cols[u, v] = planes[
                        :,
                        u * dh : u * dh + (rows - 1) * sh + 1 : sh,
                        v * dw : v * dw + (out_w - 1) * sw + 1 : sw,
                    ]
            np.matmul(
                cols.reshape(k, rows * out_w).T,
                weights,
                out=out[r0 : r0 + rows].reshape(rows * out_w, depth),
            )
            if patch is not None:
                patch.apply(out, r0)

    # One thread walks the tiles: the GEMM already runs on BLAS's own threads, and
    # two tile workers on top of them ran 25 % slower (oversubscribed).
    _run_tiles(n_tiles, work, 1, out.size * k)
