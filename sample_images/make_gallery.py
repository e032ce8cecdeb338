"""Make the gallery of the README and the docs: one sample photo through several kernels, side by side.

    .venv/bin/python sample_images/make_gallery.py

Runs each kernel with convcli's own apply pipeline (the defaults of
``convcli apply``: padding same, border reflect, each kernel's own range:
``gain`` for sobel and kirsch, ``offset`` for laplacian, ``clip`` for the rest)
and tiles the results with ``convcli.images.montage`` into
docs/images/gallery.png.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from convcli.images import load, montage
from convcli.kernels import load_kernel
from convcli.pipeline import ApplyOptions, apply_one

HERE = Path(__file__).resolve().parent
PHOTO = HERE / "coffee.png"
GALLERY = HERE.parent / "docs" / "images" / "gallery.png"
KERNELS = [
    "identity",
    "gaussian:sigma=3",
    "sharpen",
    "motion:length=15,angle=30",
    "sobel",
    "laplacian",
    "emboss",
    "kirsch",
]


def main() -> None:
    """Write docs/images/gallery.png."""
    tiles = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in KERNELS:
            result = apply_one(PHOTO, load_kernel(spec), ApplyOptions(), Path(tmp))
            tiles.append((spec, load(result.outputs[0].path).pixels))
    montage(GALLERY, tiles, columns=4, width=240)
    print(f"wrote {GALLERY}")


if __name__ == "__main__":
    main()
