"""Check the choices of conv2d(method="auto") against the measured fastest method.

    .venv/bin/python bench/check_auto.py

Times every applicable method on a grid of images (256x256 to 1920x1080x3) and
kernels (3x3 to 31x31, dense random and rank-1 Gaussian), and lists each case
where the method ``auto`` picks is more than 15 % slower than the fastest one.
Run it after changing the cost model's constants (bench/calibrate.py).
"""

from __future__ import annotations

import timeit

import numpy as np

import convcli

OPTIONS = {"padding": "same", "border": "symmetric"}
SLACK = 1.15  # a choice this much slower than the fastest counts as a miss


def best_ms(fn, repeat: int = 3) -> float:
    """Return the fastest of ``repeat`` single runs, in milliseconds."""
    return min(timeit.repeat(fn, number=1, repeat=repeat)) * 1e3


def main() -> None:
    """Print the misses and a count."""
    rng = np.random.default_rng(0)
    misses, total, worst = 0, 0, 1.0
    for shape in [(256, 256), (512, 512), (2048, 2048), (1080, 1920, 3)]:
        x = rng.random(shape, dtype=np.float32)
        for k in (3, 5, 7, 9, 11, 15, 21, 31):
            gauss = np.exp(-(np.linspace(-2, 2, k) ** 2))
            kernels = {
                "dense": rng.standard_normal((k, k)).astype(np.float32),
                "rank-1": np.outer(gauss, gauss).astype(np.float32),
            }
            for kind, w in kernels.items():
                methods = ["fft"] + (["direct"] if k < 21 else [])
                methods += ["separable"] if kind == "rank-1" else []
                times = {
                    m: best_ms(
                        lambda m=m, w=w, x=x: convcli.conv2d(x, w, method=m, **OPTIONS)
                    )
                    for m in methods
                }
                pick = convcli.explain(x, w, **OPTIONS).method
                fastest = min(times, key=times.__getitem__)
                total += 1
                ratio = times.get(pick, float("inf")) / times[fastest]
                if ratio > SLACK:
                    misses += 1
                    worst = max(worst, ratio)
                    shown = {m: round(t, 1) for m, t in times.items()}
                    print(
                        f"miss: {shape} {k}x{k} {kind}: auto {pick}, fastest {fastest} {shown}"
                    )
    print(
        f"{total} cases, {misses} where auto is over {SLACK:.2f}x the fastest (worst {worst:.2f}x)"
    )


if __name__ == "__main__":
    main()
