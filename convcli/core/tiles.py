"""Row tiles: gathering the padded input a tile needs, scratch buffers, the thread pool.

Every method works on row tiles of the output. A tile gathers the rows and
columns of the padded input it needs straight from ``x`` (the border is built by
index arithmetic, so the whole padded image is never materialized), converts them
to the compute dtype once, and writes its rows of the output. Tiles are
independent, so they run on a small thread pool: numpy releases the GIL in its
loops, BLAS calls and FFTs.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import numpy.typing as npt

from convcli.core.geometry import (
    FloatArray,
    IntArray,
    _Call,
    _Geometry,
    border_index,
)
from convcli.workers import THREADS_ENV, cpus

# Bytes of padded input one tile of the direct and separable methods holds.
# Smaller tiles stay in the L2 cache (1 MiB a core here) but cost more numpy
# calls, each a GIL hand-off between the workers; 128 KiB to 4 MiB were timed on
# 512- to 4096-wide images and 1 MiB was the best or near it on every size.
_TILE_BYTES = 1 << 20
# Below this many multiply-adds a call runs in the calling thread only.
_MIN_PARALLEL_WORK = 1 << 23


class _Gatherer:
    """Copies the padded rows a tile needs from ``x`` into a float buffer."""

    def __init__(self, x: npt.NDArray[Any], g: _Geometry) -> None:
        self.x = x
        self.g = g
        height, width, _ = g.in_shape
        top, _, left, _ = g.pads
        self.width = g.padded_width
        # Columns [lo, hi) of the padded tile are x's columns [lo - left, hi - left).
        self.lo = min(left, self.width)
        self.hi = min(left + width, self.width)
        self.height = height
        self.top = top
        self._sides: tuple[IntArray, IntArray] | None = None

    def _side_columns(self) -> tuple[IntArray, IntArray]:
        """Source columns of the left and right padding (not for "constant").

        Computed at the first `fill`, after the tile buffers exist: a padding of
        10**8 columns then fails on the tile's allocation at once, before
        seconds of index arithmetic on its columns.
        """
        if self._sides is None:
            g = self.g
            small = g.padded_width - g.in_shape[1] <= _MEMO_SIDES
            self._sides = (_side_columns if small else _side_columns.__wrapped__)(g)
        return self._sides

    def fill(self, row0: int, out: FloatArray) -> None:
        """Fill ``out`` (rows, padded_width, C) with padded rows from ``row0``."""
        g = self.g
        n_rows = out.shape[0]
        first = row0 - self.top
        src: IntArray | None = None
        if first >= 0 and first + n_rows <= self.height:  # no padding rows
            rows = self.x[first : first + n_rows]
        else:
            find = _row_sources if n_rows <= _MEMO_SIDES else _row_sources.__wrapped__
            src, safe = find(first, n_rows, self.height, g.border)
            rows = self.x[safe]
        out[:, self.lo : self.hi] = rows[:, : self.hi - self.lo]
        if g.border == "constant":
            if self.lo:
                out[:, : self.lo] = g.cval
            if self.hi < self.width:
                out[:, self.hi :] = g.cval
            if src is not None:
                out[src < 0] = g.cval
        else:
            left_cols, right_cols = self._side_columns()
            if self.lo:
                out[:, : self.lo] = rows[:, left_cols]
            if self.hi < self.width:
                out[:, self.hi :] = rows[:, right_cols]


# Padding columns up to which `_side_columns` are memoized (a few KiB each).
_MEMO_SIDES = 4096


@functools.lru_cache(maxsize=256)
def _side_columns(g: _Geometry) -> tuple[IntArray, IntArray]:
    """Return the source columns of ``g``'s left and right padding, read-only.

    Memoized on the geometry for paddings up to `_MEMO_SIDES` columns: a
    program filtering many images of one size computes them once (they cost
    as much as a 3x3 pass over a 64x64 image).
    """
    width, left = g.in_shape[1], g.pads[2]
    lo, hi = min(left, g.padded_width), min(left + width, g.padded_width)
    sides = (
        border_index(np.arange(lo) - left, width, g.border),
        border_index(np.arange(hi, g.padded_width) - left, width, g.border),
    )
    for side in sides:
        side.flags.writeable = False
    return sides


@functools.lru_cache(maxsize=256)
def _row_sources(
    first: int, n_rows: int, height: int, border: str
) -> tuple[IntArray, IntArray]:
    """Return x's rows for padded rows ``first..first + n_rows``: -1 for constant, and >= 0.

    Memoized like `_side_columns` (a tile of padding rows recurs in every call
    on images of one size).
    """
    src = border_index(np.arange(first, first + n_rows), height, border)
    safe = np.maximum(src, 0)
    src.flags.writeable = False
    safe.flags.writeable = False
    return src, safe


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()
# Threads per CPU a call may use at most: the tiles are CPU-bound, so more
# would only wait (and a hostile ``workers=10**9`` would start thousands).
_THREADS_PER_CPU = 4


def _thread_cap() -> int:
    """Return the most threads one call uses, whatever ``workers`` asks for."""
    return _THREADS_PER_CPU * cpus()


def _executor() -> ThreadPoolExecutor:
    """Return the shared tile pool (its threads start as tiles need them)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(
                max_workers=_thread_cap(), thread_name_prefix="convcli"
            )
        return _POOL


def _default_workers() -> int:
    """Threads of one call with ``workers=None``: `THREADS_ENV` if set, else the CPUs.

    Never more than `_thread_cap`.
    """
    cap = os.environ.get(THREADS_ENV, "")
    if cap.isdigit() and int(cap) >= 1:
        return min(int(cap), _thread_cap())
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


def _serial_below(workers: int, macs: float) -> int:
    """Return 1 for a call too small to gain from threads, else ``workers``.

    Tiling for one thread: two tiles of a small image cost more (two gathers,
    twice the numpy calls) than the second thread could save.
    """
    return 1 if macs < _MIN_PARALLEL_WORK else workers


def _run_tiles(
    n_tiles: int,
    work: Callable[[int, int], None],
    workers: int,
    macs: float,
) -> None:
    """Run ``work(start, stop)`` over contiguous ranges of tiles on ``workers`` threads."""
    n = min(workers, n_tiles)
    if n <= 1 or macs < _MIN_PARALLEL_WORK:
        _quiet(work, 0, n_tiles)
        return
    executor = _executor()
    bounds = [round(i * n_tiles / n) for i in range(n + 1)]
    futures = [
        executor.submit(_quiet, work, a, b)
        for a, b in itertools.pairwise(bounds)
        if b > a
    ]
    for future in futures:
        future.result()


def _quiet(work: Callable[[int, int], None], start: int, stop: int) -> None:
    """Run ``work`` with numpy's floating-point warnings off, in this thread.

    NaN and inf follow IEEE arithmetic (see `conv2d`'s Notes) and are no
    reason to warn; numpy's error state belongs to each thread (a context
    variable), so every tile worker sets its own.
    """
    with np.errstate(all="ignore"):
        work(start, stop)


def _tile_rows(row_bytes: int, stride: int, extent: int, budget: int) -> int:
    """Output rows per tile so that the padded input of a tile stays near ``budget``."""
    rows = (budget // max(row_bytes, 1) - extent) // stride + 1
    return max(rows, 8)


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
