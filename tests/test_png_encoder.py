"""The PNG encoder of single images: libpng's Paeth filter and zlib's RLE strategy.

Every PNG it writes must decode, in Pillow and in OpenCV (another decoder), to
exactly the pixels Pillow's own encoder wrote before; ``--compress-level`` keeps
Pillow's encoder.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from convcli import deep_images
from convcli.cli import app
from convcli.saving import save

RNG = np.random.default_rng(14)


def idat_rows(path: Path) -> list[int]:
    """Return the filter type byte of every row of a non-interlaced 8-bit PNG."""
    data = path.read_bytes()
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert header is not None
    width, height, depth, colour, _, _, interlace = header
    assert interlace == 0
    samples = {0: 1, 2: 3, 4: 2, 6: 4}[colour]
    stride = 1 + width * samples * depth // 8
    raw = zlib.decompress(idat)
    assert len(raw) == stride * height
    return [raw[row * stride] for row in range(height)]


def decoded(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The pixels as Pillow and as OpenCV read them (OpenCV's BGR(A) put back)."""
    pillow = np.asarray(Image.open(path))
    opencv = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert opencv is not None
    if pillow.ndim == 3 and pillow.shape[2] == 2:
        opencv = opencv[:, :, [0, 3]]  # OpenCV reads gray+alpha as BGRA
    elif opencv.ndim == 3:
        opencv = opencv[:, :, [2, 1, 0, 3][: opencv.shape[2]]]
    return pillow, opencv


def photo_like(h: int, w: int, c: int) -> np.ndarray:
    """Smooth gradients, a flat block and noise: both kinds of rows a filter meets."""
    y, x = np.mgrid[0:h, 0:w]
    base = (x * 255 // max(w - 1, 1) + y * 3) % 256
    img = np.stack([(base + 40 * k) % 256 for k in range(c)], axis=2).astype(np.uint8)
    img[h // 3 : h // 2, :, :] = 200
    img[: h // 4] = RNG.integers(0, 256, (h // 4, w, c), dtype=np.uint8)
    return img


@pytest.mark.parametrize(
    ("channels", "alpha"), [(1, False), (1, True), (3, False), (3, True)]
)
def test_saved_png_decodes_to_the_pixels_in_two_decoders(
    tmp_path: Path, channels: int, alpha: bool
) -> None:
    pixels = photo_like(37, 53, channels)
    a = RNG.integers(0, 256, (37, 53), dtype=np.uint8) if alpha else None
    out = save(tmp_path / "x.png", pixels, alpha=a)
    expected = pixels if a is None else np.concatenate([pixels, a[:, :, None]], axis=2)
    if expected.shape[2] == 1:
        expected = expected[:, :, 0]
    for reader in decoded(out):
        np.testing.assert_array_equal(reader, expected)
    assert set(idat_rows(out)) == {4}, "every row Paeth-filtered"


def test_compress_level_keeps_pillows_encoder_and_the_same_pixels(
    tmp_path: Path,
) -> None:
    pixels = photo_like(64, 80, 3)
    fast = save(tmp_path / "fast.png", pixels)
    pillow = save(tmp_path / "pillow.png", pixels, compress_level=6)
    assert set(idat_rows(fast)) == {4}
    assert set(idat_rows(pillow)) != {4}  # Pillow's adaptive choice mixes filters
    np.testing.assert_array_equal(decoded(fast)[0], decoded(pillow)[0])
    np.testing.assert_array_equal(decoded(fast)[1], decoded(pillow)[1])


def test_icc_profile_is_kept(tmp_path: Path) -> None:
    profile = b"\x00\x00\x02\x0cfake profile bytes" * 8
    out = save(tmp_path / "icc.png", photo_like(8, 8, 3), icc_profile=profile)
    with Image.open(out) as img:
        assert img.info["icc_profile"] == profile


def test_encode_png_sixteen_bit_and_levels() -> None:
    samples = RNG.integers(0, 65536, (9, 11, 3), dtype=np.uint16)
    for level in (None, 0, 9):
        data = deep_images.encode_png(samples, compress_level=level)
        back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(back[:, :, ::-1], samples)


def test_flat_image_stays_small(tmp_path: Path) -> None:
    # zlib's Huffman-only strategy would make this about 80x larger than
    # Pillow's level 6; RLE keeps runs.
    flat = np.zeros((512, 512, 3), np.uint8)
    flat[100:200, 50:400] = (30, 60, 200)
    fast = save(tmp_path / "flat.png", flat)
    pillow = save(tmp_path / "flat6.png", flat, compress_level=6)
    assert fast.stat().st_size <= 2 * pillow.stat().st_size


def test_apply_writes_the_same_pixels_as_pillow_did(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    Image.fromarray(photo_like(60, 90, 3)).save(src)
    runner = CliRunner()
    for name, extra in (("fast", []), ("pillow", ["--compress-level", "6"])):
        result = runner.invoke(
            app,
            [
                "apply",
                str(src),
                "-k",
                "sobel",
                "-o",
                str(tmp_path / f"{name}.png"),
                *extra,
            ],
        )
        assert result.exit_code == 0, result.output
    assert set(idat_rows(tmp_path / "fast.png")) == {4}
    for a, b in zip(
        decoded(tmp_path / "fast.png"), decoded(tmp_path / "pillow.png"), strict=True
    ):
        np.testing.assert_array_equal(a, b)
