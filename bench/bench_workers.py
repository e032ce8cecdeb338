"""What the tile thread pool gains: convcli.conv2d with workers=1 against workers=2.

    .venv/bin/python bench/bench_workers.py

One process, the same seeded inputs, one warm-up run, then the best of 9 runs
per cell (best, not median: noise on a shared machine only ever adds time). Prints a Markdown table.
"""

from __future__ import annotations

import os
import timeit

import numpy as np

import convcli


def best_ms(fn, repeat: int = 9) -> float:
    """Return the fastest of ``repeat`` single runs after a warm-up, in milliseconds."""
    fn()  # thread pool, per-thread buffers, page faults of the output
    return min(timeit.repeat(fn, number=1, repeat=repeat)) * 1e3


def main() -> None:
    """Print the table."""
    rng = np.random.default_rng(0)
    gauss5 = np.outer(*[np.exp(-(np.linspace(-2, 2, 5) ** 2))] * 2)
    cases = [
        ("512x512 f32", rng.random((512, 512), dtype=np.float32)),
        ("4096x4096 f32", rng.random((4096, 4096), dtype=np.float32)),
        ("3840x2160x3 f32", rng.random((2160, 3840, 3), dtype=np.float32)),
    ]
    kernels = [
        ("3x3 random, direct", rng.standard_normal((3, 3)), "direct"),
        ("5x5 gauss, separable", gauss5, "separable"),
        ("15x15 random, fft", rng.standard_normal((15, 15)), "fft"),
    ]
    print(f"cores usable: {len(os.sched_getaffinity(0))}\n")
    print("| image | kernel, method | workers=1 ms | workers=2 ms | gain |")
    print("|---|---|---|---|---|")
    for label, x in cases:
        for name, w, method in kernels:
            times = [
                best_ms(
                    lambda n=n, x=x, w=w, method=method: convcli.conv2d(
                        x,
                        w,
                        padding="same",
                        border="symmetric",
                        method=method,
                        workers=n,
                    )
                )
                for n in (1, 2)
            ]
            print(
                f"| {label} | {name} | {times[0]:.3g} | {times[1]:.3g} | "
                f"{times[0] / times[1]:.2f}x |"
            )


if __name__ == "__main__":
    main()
