"""Fit the constants of conv2d's cost model (method="auto") on this machine.

    .venv/bin/python bench/calibrate.py

Times each method of ``convcli.conv2d`` on one thread over a few sizes, divides by
the units the cost model counts (``convcli.core._estimate``), and prints the median
nanoseconds per unit. Paste them over the ``_NS_PER_*`` constants in
``convcli/core.py``, then check with ``bench/bench_core.py`` that ``auto`` picks
the fastest method.

Units:
- gather: one input value copied into a padded float tile (a 1x1 kernel's run,
  less one tap);
- direct tap: one multiply-add of one output value;
- separable tap: one 1-D tap (the vertical pass counts kh taps on every padded
  column, the horizontal pass kw on every kept one);
- FFT point: one point of ``N log2 N`` per transform of a tile;
- GEMM multiply-add: one in the per-tile matrix product of a filter bank.
"""

from __future__ import annotations

import math
import statistics
import timeit

import numpy as np

import convcli
from convcli import core


def best_ms(fn, repeat: int = 5) -> float:
    """Return the fastest of ``repeat`` single runs, in milliseconds."""
    return min(timeit.repeat(fn, number=1, repeat=repeat)) * 1e3


def per_unit(ms: float, units: float) -> float:
    """Return nanoseconds per unit."""
    return ms * 1e6 / units


def main() -> None:
    """Print the fitted constants."""
    rng = np.random.default_rng(0)
    kw = {"padding": "same", "border": "symmetric", "workers": 1}
    images = [rng.random((n, n), dtype=np.float32) for n in (512, 1024, 2048)]

    gather = []
    for x in images:
        ms = best_ms(lambda x=x: convcli.conv2d(x, [[1.5]], method="direct", **kw))
        gather.append(per_unit(ms, x.size) / 2)  # one gather, one tap of similar cost
    ns_pixel = statistics.median(gather)

    direct = []
    for x in images:
        for k in (3, 5, 7):
            w = rng.standard_normal((k, k)).astype(np.float32)
            ms = best_ms(lambda x=x, w=w: convcli.conv2d(x, w, method="direct", **kw))
            direct.append(per_unit(ms - ns_pixel * x.size / 1e6, x.size * k * k))
    ns_tap = statistics.median(direct)

    sep = []
    for x in images:
        for k in (3, 7, 15):
            g = np.exp(-(np.linspace(-2, 2, k) ** 2))
            w = np.outer(g, g[::-1] + 0.1).astype(np.float32)
            ms = best_ms(
                lambda x=x, w=w: convcli.conv2d(x, w, method="separable", **kw)
            )
            width = x.shape[1] + k - 1
            units = x.shape[0] * (k * width + k * x.shape[1])
            sep.append(per_unit(ms - ns_pixel * x.size / 1e6, units))
    ns_sep = statistics.median(sep)

    fft = []
    for x in images:
        for k in (15, 31, 63):
            w = rng.standard_normal((k, k)).astype(np.float32)
            ms = best_ms(lambda x=x, w=w: convcli.conv2d(x, w, method="fft", **kw), 3)
            n_h = core._fft_size(k, x.shape[0])
            n_w = core._fft_size(k, x.shape[1])
            tiles = x.size / ((n_h - k + 1) * (n_w - k + 1))
            points = tiles * n_h * n_w * math.log2(n_h * n_w) * 2  # forward + inverse
            fft.append(per_unit(ms - ns_pixel * x.size / 1e6, points))
    ns_fft = statistics.median(fft)

    gemm = []
    for shape, wshape in [
        ((512, 512, 3), (16, 3, 3, 3)),
        ((256, 256, 16), (32, 16, 3, 3)),
    ]:
        x = rng.random(shape, dtype=np.float32)
        w = rng.standard_normal(wshape).astype(np.float32)
        ms = best_ms(lambda x=x, w=w: convcli.conv2d(x, w, method="direct", **kw))
        px = shape[0] * shape[1]
        taps_c = wshape[1] * wshape[2] * wshape[3]
        copy_ms = ns_pixel * px * taps_c / 1e6  # the im2col copy
        gemm.append(per_unit(ms - copy_ms, px * taps_c * wshape[0]))
    ns_gemm = statistics.median(gemm)

    print("# fitted by bench/calibrate.py, one thread, float32")
    print(f"_NS_PER_PIXEL = {ns_pixel:.3g}")
    print(f"_NS_PER_TAP = {ns_tap:.3g}")
    print(f"_NS_PER_SEP_TAP = {ns_sep:.3g}")
    print(f"_NS_PER_FFT_POINT = {ns_fft:.3g}  # per transform: counted twice per tile")
    print(f"_NS_PER_GEMM_MAC = {ns_gemm:.3g}")
    print("spread (min..max):")
    for name, values in [
        ("pixel", gather),
        ("tap", direct),
        ("sep", sep),
        ("fft", fft),
        ("gemm", gemm),
    ]:
        print(f"  {name}: {min(values):.3g}..{max(values):.3g}")


if __name__ == "__main__":
    main()
