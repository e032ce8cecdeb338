"""Fit the constants of conv2d's cost model (method="auto") on this machine.

    .venv/bin/python bench/calibrate.py

Times each method of ``convcli.conv2d`` with its default threads over a few image and
kernel sizes, and fits, by least squares, the nanoseconds per output value that
``convcli.core.choose._estimate`` models: a fixed part plus a part per unit of work.
Paste the printed lines over the constants in ``convcli/core/choose.py`` (the
separable and banded pair live in ``convcli/core/separable.py``), then check
with ``bench/check_auto.py`` that ``auto`` picks the fastest method. (On
2026-11-25 the fit gave the FFT a fixed part of 12 ns, inflated by two threads'
overhead on the 512x512 runs; 4 ns, set by hand, made check_auto.py's misses
go from 3 of 64 to 1 of 64.)

Units of work per output value:
- direct: kernel taps (non-zero ones);
- separable by taps: 1-D taps, the vertical pass counting every padded column
  (``k * padded_width / width + k`` for a k x k rank-1 kernel);
- separable by banded products: their multiply-adds, zeros of the band included;
- fft: ``N log2 N`` points of each transform (one forward, one inverse for a
  gray image) over the useful outputs of an N-point tile;
- bank, per weight of one filter (taps x C): the im2col copy, and the GEMM's
  multiply-add per filter.
"""

from __future__ import annotations

import math
import timeit

import numpy as np

import convcli
from convcli.core import fft as fft_method
from convcli.core import geometry, tiles
from convcli.core import separable as separable_method

SIDES = (512, 1024, 2048)
WORKERS = tiles._default_workers()  # as conv2d runs by default
OPTIONS = {"padding": "same", "border": "symmetric"}


def best_ns_per_px(x: np.ndarray, w: np.ndarray, method: str, repeat: int = 5) -> float:
    """Return the fastest of ``repeat`` runs, in nanoseconds per output value."""
    seconds = min(
        timeit.repeat(
            lambda: convcli.conv2d(x, w, method=method, **OPTIONS),
            number=1,
            repeat=repeat,
        )
    )
    return seconds * 1e9 / x.size


def best_ns_internal(x: np.ndarray, w: np.ndarray, runner, repeat: int = 5) -> float:
    """Like `best_ns_per_px`, for one of core's internal method runners."""
    call = geometry._check_call(x, w, None, 1, "same", 1, "symmetric", 0.0, False)
    out = np.empty((*call.geometry.out_shape, call.n_maps), call.dtype)
    seconds = min(
        timeit.repeat(lambda: runner(call, out, WORKERS), number=1, repeat=repeat)
    )
    return seconds * 1e9 / x.size


def fit(rows: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares ``ns = fixed + per_unit * units`` over (units, ns) rows."""
    units = np.array([r[0] for r in rows])
    ns = np.array([r[1] for r in rows])
    design = np.stack([np.ones_like(units), units], axis=1)
    (fixed, per_unit), *_ = np.linalg.lstsq(design, ns, rcond=None)
    return float(fixed), float(per_unit)


def main() -> None:
    """Print the fitted constants."""
    rng = np.random.default_rng(0)
    images = [rng.random((n, n), dtype=np.float32) for n in SIDES]

    direct = []
    for x in images:
        for k in (1, 3, 5, 7, 9):
            w = rng.standard_normal((k, k)).astype(np.float32) + 2.0
            direct.append((k * k, best_ns_per_px(x, w, "direct")))

    separable = []
    for x in images:
        for k in (3, 7, 15, 31):
            g = np.exp(-(np.linspace(-2, 2, k) ** 2)) + 0.1
            w = np.outer(g, g[::-1] + 0.5).astype(np.float32)
            width = x.shape[1] + k - 1
            units = k * width / x.shape[1] + k
            separable.append(
                (units, best_ns_internal(x, w, separable_method._separable_taps))
            )

    banded = []
    for x in images:
        for k in (9, 15, 31, 63):
            g = np.exp(-(np.linspace(-2, 2, k) ** 2)) + 0.1
            w = np.outer(g, g[::-1] + 0.5).astype(np.float32)
            width = x.shape[1] + k - 1
            rows_in = separable_method._SEP_ROWS - 1 + k
            macs = rows_in * width / x.shape[1] + separable_method._SEP_COLS - 1 + k
            banded.append(
                (macs, best_ns_internal(x, w, separable_method._separable_banded))
            )

    fft = []
    for x in images:
        for k in (15, 31, 63):
            w = rng.standard_normal((k, k)).astype(np.float32)
            n_h = fft_method._fft_size(k, x.shape[0])
            n_w = fft_method._fft_size(k, x.shape[1])
            points = n_h * n_w * math.log2(n_h * n_w) / ((n_h - k + 1) * (n_w - k + 1))
            fft.append((2 * points, best_ns_per_px(x, w, "fft", 3)))

    bank = []
    for shape, depth, k in [
        ((512, 512, 3), 16, 3),
        ((512, 512, 3), 16, 7),
        ((512, 512, 3), 16, 11),
        ((256, 256, 16), 32, 3),
        ((256, 256, 16), 32, 7),
        ((128, 128, 32), 64, 3),
        ((1024, 1024, 1), 8, 9),
    ]:
        x = rng.random(shape, dtype=np.float32)
        w = rng.standard_normal((depth, shape[2], k, k)).astype(np.float32)
        ns = best_ns_per_px(x, w, "direct") * shape[2]  # per pixel, not per value
        taps_c = k * k * shape[2]
        bank.append((depth, ns / taps_c))

    print(
        f"# fitted by bench/calibrate.py, {WORKERS} threads, float32, ns per output value"
    )
    print(f"_NS_DIRECT = ({fit(direct)[0]:.3g}, {fit(direct)[1]:.3g})")
    print(f"_NS_SEPARABLE = ({fit(separable)[0]:.3g}, {fit(separable)[1]:.3g})")
    print(f"_NS_BANDED = ({fit(banded)[0]:.3g}, {fit(banded)[1]:.3g})")
    print(f"_NS_FFT = ({fit(fft)[0]:.3g}, {fit(fft)[1]:.3g})")
    print(f"_NS_BANK = ({fit(bank)[0]:.3g}, {fit(bank)[1]:.3g})")
    for name, rows in [
        ("direct", direct),
        ("separable", separable),
        ("banded", banded),
        ("fft", fft),
        ("bank", bank),
    ]:
        fixed, per_unit = fit(rows)
        worst = max(abs(ns - (fixed + per_unit * u)) / ns for u, ns in rows)
        print(f"# {name}: worst relative misfit {worst:.0%} over {len(rows)} runs")


if __name__ == "__main__":
    main()
