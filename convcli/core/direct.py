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
    out_h = g.out_shape[0]
    # Non-zero taps in row-major order; weights as Python floats (exact: NEP 50
    # casts them back to the compute dtype), which numpy takes faster.
    rows_, cols_ = np.nonzero(call.w)
    taps = list(
        zip(rows_.tolist(), cols_.tolist(), call.w[rows_, cols_].tolist(), strict=True)
    )
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


# Largest output (H' * W') a depthwise bank runs all channels at once. A call
# of one channel costs about 30 us before any arithmetic, which dominates on
# small maps (64x64x32 3x3: 0.6 ms at once against 1.3 ms channel by
# channel); from about 100x100 one channel's flat, contiguous taps are as fast
# or faster (128x128x64 5x5: 10 ms at once against 8 ms by channel).
_PER_CHANNEL_MAX_PIXELS = 96 * 96


def _per_channel_pays(call: _Call) -> bool:
    """Tell whether a grouped call is depthwise and small enough for `_direct_per_channel`."""
    g = call.geometry
    return (
        call.groups == g.in_shape[2]
        and g.out_shape[0] * g.out_shape[1] <= _PER_CHANNEL_MAX_PIXELS
    )


def _direct_per_channel(call: _Call, out: FloatArray, workers: int) -> None:
    """Run a depthwise bank (``groups == C``) by the direct method, all channels at once.

    Filter ``c*k + j`` (k = D / C) reads channel c only. A tile is gathered
    as channel planes (C, rows, width), as a bank's is, and each tap
    multiplies the planes by one weight per filter: numpy's loops run along
    image rows, and there is one call per tap, not one per channel (C calls
    of one channel cost 30 us each before any arithmetic). The products are
    rounded and added in the same order, zero weights skipped channel by
    channel, so the result is bit for bit that of C separate 2-D kernels.
    """
    g = call.geometry
    (kh, kw), (sh, sw), (dh, dw) = g.kernel, g.stride, g.dilation
    out_h, out_w = g.out_shape
    channels, depth = g.in_shape[2], call.w.shape[0]
    per_channel = depth // channels
    width = g.padded_width
    w = call.w.reshape(channels, per_channel, kh, kw)
    taps = []
    for u in range(kh):
        for v in range(kw):
            weights = w[:, :, u, v, np.newaxis, np.newaxis]  # (C, k, 1, 1)
            nonzero = weights != 0
            if nonzero.any():
                taps.append((u, v, weights, None if nonzero.all() else nonzero))
    # A filter of zeros gives zeros (+0.0); every other output starts from its
    # filter's first non-zero tap, as a 2-D kernel's does.
    unused = np.ones((channels, per_channel, 1, 1), bool)
    for *_, mask in taps:
        unused &= False if mask is None else ~mask
    workers = _serial_below(workers, out.size * len(taps))
    tile, n_tiles = _tiling(call, workers)
    n_in_max = (tile - 1) * sh + g.extent[0]
    gather = _Gatherer(call.x, g)

    def work(start: int, stop: int) -> None:
        planes_buf = _workspace("planes", (channels * n_in_max * width,), call.dtype)
        acc_buf = _workspace("acc", (depth * tile * out_w,), call.dtype)
        tmp_buf = _workspace("tmp", (depth * tile * out_w,), call.dtype)
        for t in range(start, stop):
            r0 = t * tile
            rows = min(tile, out_h - r0)
            n_in = (rows - 1) * sh + g.extent[0]
            planes = planes_buf[: channels * n_in * width].reshape(
                channels, 1, n_in, width
            )
            gather.fill(r0 * sh, planes[:, 0].transpose(1, 2, 0))
            shape = (channels, per_channel, rows, out_w)
            acc = acc_buf[: depth * rows * out_w].reshape(shape)
            tmp = tmp_buf[: depth * rows * out_w].reshape(shape)
            fresh = np.ones((channels, per_channel, 1, 1), bool)
            if unused.any():
                acc.fill(0)
            for u, v, weights, mask in taps:
                view = planes[
                    :,
                    :,
                    u * dh : u * dh + (rows - 1) * sh + 1 : sh,
                    v * dw : v * dw + (out_w - 1) * sw + 1 : sw,
                ]
                first = fresh if mask is None else fresh & mask
                if first.all():
                    np.multiply(view, weights, out=acc)
                elif mask is None and not first.any():
                    np.multiply(view, weights, out=tmp)
                    acc += tmp
                else:
                    np.multiply(view, weights, out=acc, where=first)
                    later = ~fresh if mask is None else ~fresh & mask
                    np.multiply(view, weights, out=tmp, where=later)
                    np.add(acc, tmp, out=acc, where=later)
                fresh &= ~first
            out[r0 : r0 + rows] = acc.reshape(depth, rows, out_w).transpose(1, 2, 0)

    _run_tiles(n_tiles, work, workers, out.size * len(taps))
