"""The separable method: rank-1 terms by SVD, two 1-D passes each (by taps or banded products)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from convcli.core.geometry import FloatArray, _array_key, _Call, _memo
from convcli.core.screen import _Screen
from convcli.core.tiles import (
    _accumulate,
    _Gatherer,
    _run_tiles,
    _serial_below,
    _Tile,
    _tiling,
    _workspace,
)

# Output rows and columns of one banded product of the separable method.
_SEP_ROWS = 32
# Bytes of padded input one tile of the banded separable method gathers.
_SEP_TILE_BYTES = 4 << 20
_SEP_COLS = 32

# Cost of the two variants, as in choose.py: ns per output value, fixed + per unit.
_NS_SEPARABLE = (1.75, 0.203)  # + per 1-D tap (vertical taps count padded columns)
_NS_BANDED = (0.716, 0.0614)  # + per multiply-add of the separable banded products


_TERMS: dict[tuple[Any, ...], list[tuple[FloatArray, FloatArray]]] = {}
_RANKS: dict[tuple[Any, ...], int] = {}


def _rank_terms(w2: FloatArray) -> list[tuple[FloatArray, FloatArray]]:
    """Split a 2-D kernel into rank-1 terms ``col (kh,) x row (kw,)`` by SVD.

    Computed once per kernel (`_memo`); callers must not write to the terms.
    """
    return _memo(_TERMS, _array_key(w2), lambda: _split(w2))


def _split(w2: FloatArray) -> list[tuple[FloatArray, FloatArray]]:
    u, s, vt = np.linalg.svd(w2.astype(np.float64), full_matrices=False)
    if s[0] == 0:
        return []
    tol = _rank_tolerance(w2.dtype) * s[0]
    terms = []
    for i in range(len(s)):
        if s[i] <= tol:
            break
        scale = math.sqrt(s[i])
        col = (u[:, i] * scale).astype(w2.dtype)
        row = (vt[i] * scale).astype(w2.dtype)
        col.flags.writeable = row.flags.writeable = False  # shared by every call
        terms.append((col, row))
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
    return _memo(_RANKS, _array_key(wa), lambda: _rank(wa))


def _rank(wa: npt.NDArray[Any]) -> int:
    wide = wa.dtype.kind == "f" and wa.dtype.itemsize >= 8  # float64, any byte order
    dtype = np.dtype(np.float64) if wide else np.dtype(np.float32)
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
    screen = _screen(call)

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
            patch = screen.check(src, rows)
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
            if patch is not None:
                patch.apply(out, r0)

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
    macs = out.size * max(len(terms), 1) * sum(g.kernel)
    workers = _serial_below(workers, macs)
    tile, n_tiles = _tiling(call, workers)
    gather = _Gatherer(call.x, g)
    depth = 1 if call.bank else channels  # channels of one term's vertical pass
    flat = sw == 1 and not call.bank
    maps = call.n_maps
    screen = _screen(call)

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
            patch = screen.check(src, rows)
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
            if patch is not None:
                patch.apply(out, r0)

    _run_tiles(n_tiles, work, workers, macs)


def _separable(call: _Call, out: FloatArray, workers: int) -> None:
    """Split the kernel into rank-1 terms: by taps or by banded products, the cheaper."""
    variants = _separable_costs(call, 1)
    # Both are safe with NaN and inf in x: `_Screen` keeps them out of the
    # products (a banded one would spread them over its block, rank-1 terms
    # would turn an inf under a zero tap into NaN).
    if variants["banded"] < variants["taps"]:
        _separable_banded(call, out, workers)
    else:
        _separable_taps(call, out, workers)


def _screen(call: _Call) -> _Screen:
    """Return the screen of both variants.

    A rank-1 term's vectors hold up to ``sqrt(s * kh)`` and ``sqrt(s * kw)`` in
    absolute sum (s: its singular value, at most sum|w|), so a term stays within
    ``sqrt(kh * kw) * sum|w| * max|x|`` and at most ``min(kh, kw)`` terms within
    ``kh * kw`` times that.
    """
    kh, kw = call.geometry.kernel
    return _Screen(call, float(kh * kw), float(kh * kw))


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
