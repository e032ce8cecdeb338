"""Make the synthetic test patterns in this folder (run from the repository root).

    python sample_images/make_patterns.py

Each pattern is small, exact and deterministic, so a filter's effect on it can
be predicted by hand: a step edge answers only to horizontal derivatives, a
checkerboard to both, a gradient to none but the second derivative's borders.

``teaching_7x7`` is the matrix to work through by hand (``convcli trace -i``): it is
written twice, as an 8-bit PNG holding the values as they are (0 and 9, so the image
looks black) and as a text matrix in the kernel text format.
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


def teaching_7x7() -> np.ndarray:
    """Return a bright 3x3 square of 9 in the middle of a 7x7 field of 0.

    The square keeps two rows and columns of 0 from every border, so a 3x3 kernel
    without padding (5x5 output) sees all of its edges, and a padding of 1 holds 0
    whatever the border mode: every mode gives the same 7x7 output, the 5x5 one
    framed by the bias.
    """
    img = np.zeros((7, 7), np.uint8)
    img[2:5, 2:5] = 9
    return img


def write_matrix(path: Path, matrix: np.ndarray, comment: str) -> None:
    """Write an integer matrix in the convcli text format.

    A ``# comment`` line, then one row per line, values separated by spaces.
    """
    rows = [" ".join(str(int(v)) for v in row) for row in matrix]
    path.write_text(f"# {comment}\n" + "\n".join(rows) + "\n", encoding="utf-8")


def main() -> None:
    """Write every pattern as a PNG beside this script, the teaching matrix also as text."""
    for name, make in [
        ("step_edge", step_edge),
        ("checkerboard", checkerboard),
        ("gradient", gradient),
        ("teaching_7x7", teaching_7x7),
    ]:
        Image.fromarray(make()).save(HERE / f"{name}.png", optimize=True)
    write_matrix(
        HERE / "teaching_7x7.txt",
        teaching_7x7(),
        "teaching_7x7: a 3x3 square of 9 on a 7x7 field of 0 "
        "(same values as teaching_7x7.png)",
    )


if __name__ == "__main__":
    main()
