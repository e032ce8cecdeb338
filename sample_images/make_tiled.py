"""Make ``coffee_gray_tiled.tif``: ``coffee_gray.png`` as a tiled, deflate-compressed TIFF.

    .venv/bin/python sample_images/make_tiled.py

The small stand-in, for the documentation's examples of ``convcli apply
--stream``, of the tiled TIFFs that images bigger than memory come as
(64 x 64 tiles, so even this 600 x 400 photo has several rows of them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

HERE = Path(__file__).resolve().parent


def main() -> None:
    """Write coffee_gray_tiled.tif beside this script."""
    with Image.open(HERE / "coffee_gray.png") as img:
        pixels = np.asarray(img.convert("L"))
    tifffile.imwrite(
        HERE / "coffee_gray_tiled.tif",
        pixels,
        tile=(64, 64),
        compression="zlib",
        photometric="minisblack",
        metadata=None,
    )


if __name__ == "__main__":
    main()
