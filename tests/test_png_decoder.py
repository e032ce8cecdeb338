"""The PNG decoder of `convcli.images.load`: libpng for plain 8-bit PNGs, Pillow else.

Whichever decodes, ``load`` must give exactly the pixels, alpha, mode and ICC
profile Pillow's own decoding gives (the reference here is Pillow called
directly), and a broken file must stay a one-line error naming it.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from convcli import deep_images, images
from convcli.cli import app
from convcli.picture import ImageError

RNG = np.random.default_rng(15)


def chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk with its length and CRC."""
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)


def insert_chunk(path: Path, kind: bytes, body: bytes, *, late: bool = False) -> None:
    """Put a chunk right after IHDR, or (``late``) right before IEND."""
    data = path.read_bytes()
    at = len(data) - 12 if late else 8 + 8 + 13 + 4
    path.write_bytes(data[:at] + chunk(kind, body) + data[at:])


def pillow_reference(path: Path) -> tuple[np.ndarray, np.ndarray | None, str]:
    """Pixels (H, W, C), alpha and mode as Pillow decodes the file itself."""
    with Image.open(path) as im:
        im = im.copy() if im.mode in ("L", "LA", "RGB", "RGBA") else im.convert("RGB")
    arr = np.asarray(im)
    if arr.ndim == 2:
        return arr[:, :, np.newaxis], None, im.mode
    if im.mode in ("LA", "RGBA"):
        return arr[:, :, :-1], arr[:, :, -1], im.mode
    return arr, None, im.mode


def noisy(h: int, w: int, c: int) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, c), dtype=np.uint8)


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_plain_pngs_decode_to_pillows_pixels_by_libpng(
    tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    channels = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}[mode]
    arr = noisy(37, 53, channels)
    path = tmp_path / f"{mode}.png"
    Image.fromarray(arr[:, :, 0] if channels == 1 else arr, mode).save(path)
    calls: list[Path] = []
    real = deep_images.decode_png8

    def spy(p: Path, hw: tuple[int, int]) -> np.ndarray | None:
        calls.append(p)
        return real(p, hw)

    monkeypatch.setattr(deep_images, "decode_png8", spy)
    picture = images.load(path)
    assert calls == [path]  # libpng decoded it
    pixels, alpha, pillow_mode = pillow_reference(path)
    np.testing.assert_array_equal(picture.pixels, pixels)
    assert picture.pixels.flags.writeable
    assert picture.mode == pillow_mode
    if alpha is None:
        assert picture.alpha is None
    else:
        assert picture.alpha is not None
        np.testing.assert_array_equal(picture.alpha, alpha)


def test_icc_profile_and_gamma_chunk(tmp_path: Path) -> None:
    """libpng must not apply a gAMA chunk (Pillow does not) and the ICC stays."""
    arr = noisy(20, 30, 3)
    path = tmp_path / "icc.png"
    icc = b"\0\0\x02\x0cfake profile bytes" * 3
    Image.fromarray(arr).save(path, icc_profile=icc)
    insert_chunk(path, b"gAMA", struct.pack(">I", 100000))  # gamma 1.0
    picture = images.load(path)
    np.testing.assert_array_equal(picture.pixels, arr)
    assert picture.icc_profile == icc


@pytest.mark.parametrize("late", [False, True])
def test_exif_rotation_is_applied_early_or_late(tmp_path: Path, late: bool) -> None:
    arr = noisy(10, 16, 3)
    path = tmp_path / "rotated.png"
    Image.fromarray(arr).save(path)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    insert_chunk(path, b"eXIf", exif.tobytes()[6:], late=late)  # no "Exif\0\0"
    picture = images.load(path)
    np.testing.assert_array_equal(picture.pixels, np.rot90(arr, -1))


@pytest.mark.parametrize(
    "make",
    [
        "palette",
        "palette-transparent",
        "gray-transparent",
        "rgb-transparent",
        "1-bit",
        "4-bit",
        "16-bit-gray",
    ],
)
def test_other_pngs_still_read_as_pillow_reads_them(tmp_path: Path, make: str) -> None:
    path = tmp_path / f"{make}.png"
    rgb = noisy(12, 9, 3)
    if make.startswith("palette"):
        im = Image.fromarray(rgb).quantize(16)
        im.save(path, transparency=3) if make.endswith("transparent") else im.save(path)
    elif make == "gray-transparent":
        Image.fromarray(rgb[:, :, 0]).save(path, transparency=int(rgb[0, 0, 0]))
    elif make == "rgb-transparent":
        Image.fromarray(rgb).save(path, transparency=tuple(int(v) for v in rgb[0, 0]))
    elif make == "1-bit":
        Image.fromarray(rgb[:, :, 0] > 128).save(path)
    elif make == "4-bit":
        Image.fromarray(rgb[:, :, 0] >> 4 << 4).save(path, bits=4)
    else:
        Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257).save(path)
    picture = images.load(path)
    with Image.open(path) as im:
        im.load()
        if im.mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        # L and RGB with a transparent colour load as they are (no alpha), as before
        ref = np.asarray(im.convert("L") if im.mode == "1" else im)
    ref = ref if ref.ndim == 3 else ref[:, :, np.newaxis]
    if picture.alpha is not None:
        ref, ref_alpha = ref[:, :, :-1], ref[:, :, -1]
        np.testing.assert_array_equal(picture.alpha, ref_alpha)
    np.testing.assert_array_equal(picture.pixels, ref)


@pytest.mark.parametrize("cut", [100, 400, -20])
def test_truncated_png_is_a_clean_error_naming_the_file(
    tmp_path: Path, cut: int
) -> None:
    path = tmp_path / "cut.png"
    Image.fromarray(noisy(64, 64, 3)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[:cut])
    with pytest.raises(ImageError) as info:
        images.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert message.count(str(path)) == 1  # named once, not wrapped twice
    assert "\n" not in message
    result = CliRunner().invoke(
        app, ["apply", str(path), "-k", "blur", "-o", str(tmp_path / "o.png")]
    )
    assert result.exit_code in (1, 2)
    assert "Traceback" not in result.output
    assert "cut.png" in result.output
    assert not (tmp_path / "o.png").exists()


def test_without_imagecodecs_pillow_decodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    arr = noisy(8, 8, 3)
    path = tmp_path / "plain.png"
    Image.fromarray(arr).save(path)
    monkeypatch.setattr(deep_images, "missing", lambda fmt: "imagecodecs")
    assert deep_images.decode_png8(path, (8, 8)) is None
    np.testing.assert_array_equal(images.load(path).pixels, arr)


def test_apply_output_is_the_same_with_either_decoder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "in.png"
    Image.fromarray(noisy(40, 50, 3)).save(path)
    runner = CliRunner()
    fast = tmp_path / "fast.png"
    assert (
        runner.invoke(
            app, ["apply", str(path), "-k", "sobel", "-o", str(fast)]
        ).exit_code
        == 0
    )
    monkeypatch.setattr(deep_images, "missing", lambda fmt: "imagecodecs")
    slow = tmp_path / "slow.png"
    result = runner.invoke(app, ["apply", str(path), "-k", "sobel", "-o", str(slow)])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(
        np.asarray(Image.open(fast)), np.asarray(Image.open(slow))
    )
