"""Make the synthetic test patterns in this folder (run from the repository root).

    python sample_images/make_patterns.py

Each pattern is small, exact and deterministic, so a filter's effect on it can
be predicted by hand: a step edge answers only to horizontal derivatives, a
checkerboard to both, a gradient to none but the second derivative's borders.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent


def step_edge(size: int = 128) -> np.ndarray:
    """Dark left half, bright right half."""
    img = np.zeros((size, size), np.uint8)
    img[:, size // 2 :] = 200
    return img


def checkerboard(size: int = 128, cell: int = 16) -> np.ndarray:
    """Black and white squares of ``cell`` pixels."""
    rows, cols = np.indices((size, size)) // cell
    return np.where((rows + cols) % 2 == 0, 230, 25).astype(np.uint8)


def gradient(size: int = 128) -> np.ndarray:
    """Ramp from 0 to 255, left to right."""
    ramp = np.linspace(0, 255, size).round().astype(np.uint8)
    return np.tile(ramp, (size, 1))


def main() -> None:
    """Write every pattern as a PNG beside this script."""
    for name, make in [
        ("step_edge", step_edge),
        ("checkerboard", checkerboard),
        ("gradient", gradient),
    ]:
        Image.fromarray(make()).save(HERE / f"{name}.png", optimize=True)


if __name__ == "__main__":
    main()
