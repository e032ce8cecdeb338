"""Make the photographs in this folder from the scikit-image wheel (run from the repository root).

    python sample_images/make_photos.py              # pip downloads the wheel
    python sample_images/make_photos.py WHEEL.whl    # or use a wheel you have

``coffee.png`` and ``astronaut.png`` are copied byte for byte out of
``skimage/data/`` in the wheel, after their SHA-256 is checked against the value
scikit-image's own ``skimage/data/_registry.py`` records, so a different file
stops the script instead of replacing a photo silently. ``coffee_gray.png`` is
the one derived file: ``coffee.png`` converted to 8-bit grey by Pillow
(``convert("L")``, L = 299/1000 R + 587/1000 G + 114/1000 B), same size.

scikit-image is only downloaded and read as a zip file, never installed.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent

REQUIREMENT = "scikit-image==0.26.0"

# output name -> (path inside the wheel, SHA-256 from skimage/data/_registry.py)
PHOTOS = {
    "coffee.png": (
        "skimage/data/coffee.png",
        "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
    ),
    "astronaut.png": (
        "skimage/data/astronaut.png",
        "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    ),
}


def download_wheel(folder: Path) -> Path:
    """Download the scikit-image wheel for this platform into ``folder`` with pip."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            str(folder),
            REQUIREMENT,
        ],
        check=True,
    )
    return next(folder.glob("scikit_image-*.whl"))


def read_photo(wheel: zipfile.ZipFile, member: str, sha256: str) -> bytes:
    """Return one file of the wheel, checked against its expected SHA-256."""
    data = wheel.read(member)
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        msg = f"{member}: SHA-256 {digest}, expected {sha256}"
        raise SystemExit(msg)
    return data


def grey(png: bytes) -> Image.Image:
    """Convert a colour PNG to 8-bit grey (Pillow's ITU-R 601-2 luma)."""
    with Image.open(io.BytesIO(png)) as img:
        return img.convert("L")


def write_photos(wheel_path: Path) -> None:
    """Write every photo, and the grey coffee, beside this script."""
    with zipfile.ZipFile(wheel_path) as wheel:
        photos = {
            name: read_photo(wheel, member, sha256)
            for name, (member, sha256) in PHOTOS.items()
        }
    for name, data in photos.items():
        (HERE / name).write_bytes(data)
    grey(photos["coffee.png"]).save(HERE / "coffee_gray.png", optimize=True)


def main() -> None:
    """Use the wheel named on the command line, or download it to a scratch folder."""
    if len(sys.argv) > 1:
        write_photos(Path(sys.argv[1]))
        return
    with tempfile.TemporaryDirectory() as scratch:
        write_photos(download_wheel(Path(scratch)))


if __name__ == "__main__":
    main()
