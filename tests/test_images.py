"""Image loading, value mapping and atomic saving (convcli.images)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from convcli.images import ImageError, convert_channels, load, save, to_pixels


def _rng() -> np.random.Generator:
    return np.random.default_rng(606)


@pytest.mark.parametrize(
    ("mode", "channels", "alpha", "dtype"),
    [
        ("L", 1, False, np.uint8),
        ("LA", 1, True, np.uint8),
        ("RGB", 3, False, np.uint8),
        ("RGBA", 3, True, np.uint8),
        ("1", 1, False, np.uint8),
        ("I;16", 1, False, np.uint16),
    ],
)
def test_load_modes(
    tmp_path: Path, mode: str, channels: int, alpha: bool, dtype: type
) -> None:
    img = Image.new(mode, (5, 3))
    img.save(tmp_path / "x.png")
    pic = load(tmp_path / "x.png")
    assert pic.pixels.shape == (3, 5, channels)
    assert pic.pixels.dtype == dtype
    assert (pic.alpha is not None) == alpha
    if alpha:
        assert pic.alpha is not None
        assert pic.alpha.shape == (3, 5)


def test_values_survive_loading(tmp_path: Path) -> None:
    rgb = _rng().integers(0, 256, (4, 6, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(load(tmp_path / "rgb.png").pixels, rgb)
    deep = _rng().integers(0, 65536, (4, 6), dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    pic = load(tmp_path / "deep.png")
    assert pic.peak == 65535
    np.testing.assert_array_equal(pic.pixels[:, :, 0], deep)


def test_palette_becomes_rgb_or_rgba(tmp_path: Path) -> None:
    rgb = _rng().integers(0, 256, (6, 6, 3), dtype=np.uint8)
    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    pal.save(tmp_path / "p.png")
    pic = load(tmp_path / "p.png")
    assert pic.pixels.shape == (6, 6, 3)
    np.testing.assert_array_equal(pic.pixels, np.asarray(pal.convert("RGB")))
    pal.info["transparency"] = 0
    pal.save(tmp_path / "pt.png", transparency=0)
    assert load(tmp_path / "pt.png").alpha is not None


def test_float_and_int_modes(tmp_path: Path) -> None:
    f = _rng().random((3, 4)).astype(np.float32)
    Image.fromarray(f).save(tmp_path / "f.tif")
    pic = load(tmp_path / "f.tif")
    assert pic.pixels.dtype == np.float32
    assert pic.peak == 1.0
    np.testing.assert_array_equal(pic.pixels[:, :, 0], f)
    i = np.arange(12, dtype=np.int32).reshape(3, 4) * 1000
    Image.fromarray(i).save(tmp_path / "i.tif")
    assert load(tmp_path / "i.tif").peak == 65535


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    img = Image.new("L", (4, 2))
    img.putpixel((0, 0), 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.save(tmp_path / "o.jpg", exif=exif, quality=100)
    pic = load(tmp_path / "o.jpg")
    assert pic.pixels.shape == (4, 2, 1)


def test_gif_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("L", (3, 3), v) for v in (10, 200)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    assert load(tmp_path / "a.gif").pixels.shape == (3, 3, 3)  # P -> RGB


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        (None, r"missing\.png: no such file"),
        (b"this is not an image", r"bad\.png: not an image Pillow can read"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: bytes | None, pattern: str) -> None:
    name = "missing.png" if content is None else "bad.png"
    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(ImageError, match=pattern):
        load(tmp_path / name)


def test_truncated_png(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(_rng().integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(
        buf, "PNG"
    )
    (tmp_path / "cut.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match=r"cut\.png: corrupt or truncated image"):
        load(tmp_path / "cut.png")


def test_a_folder_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"is a folder, not an image"):
        load(tmp_path)


def test_decompression_bomb_limit(tmp_path: Path) -> None:
    Image.new("L", (100, 100)).save(tmp_path / "big.png")
    with pytest.raises(
        ImageError, match=r"big\.png: more pixels than the limit of 5000.*--max-pixels"
    ):
        load(tmp_path / "big.png", max_pixels=5000)
    assert load(tmp_path / "big.png", max_pixels=20000).shape == (100, 100, 1)


def test_convert_channels() -> None:
    from convcli.images import Picture

    rgb = Picture(np.array([[[255, 0, 0], [0, 255, 0]]], np.uint8), None, "RGB", 255.0)
    gray = convert_channels(rgb, "gray")
    np.testing.assert_array_equal(gray.pixels[:, :, 0], [[76, 150]])
    back = convert_channels(gray, "rgb")
    assert back.pixels.shape == (1, 2, 3)
    assert convert_channels(rgb, "keep") is rgb


def test_to_pixels() -> None:
    u8 = np.dtype(np.uint8)
    np.testing.assert_array_equal(
        to_pixels(np.array([-3.0, 2.5, 3.49, 999.0]), "clip", 255, u8), [0, 3, 3, 255]
    )
    np.testing.assert_array_equal(
        to_pixels(np.array([-3.0, 2.0]), "abs", 255, u8), [3, 2]
    )
    np.testing.assert_array_equal(
        to_pixels(np.array([-1.0, 0.0, 3.0]), "rescale", 255, u8), [0, 64, 255]
    )
    # no negative value: a magnitude, rescaled from 0
    np.testing.assert_array_equal(
        to_pixels(np.array([2.0, 4.0]), "rescale", 255, u8), [128, 255]
    )
    np.testing.assert_array_equal(
        to_pixels(np.array([7.0, 7.0]), "rescale", 255, u8), [255, 255]
    )
    np.testing.assert_array_equal(
        to_pixels(np.array([0.0, 0.0]), "rescale", 255, u8), [0, 0]
    )
    np.testing.assert_array_equal(
        to_pixels(np.array([-2.0, -2.0]), "rescale", 255, u8), [0, 0]
    )
    u16 = to_pixels(np.array([0.0, 1.0]), "rescale", 65535, np.dtype(np.uint16))
    assert u16.dtype == np.uint16
    np.testing.assert_array_equal(u16, [0, 65535])
    with pytest.raises(
        ImageError,
        match=r"range must be one of clip, abs, rescale, offset, gain; got 'wrap'",
    ):
        to_pixels(np.zeros(2), "wrap", 255, u8)


def test_save_formats_and_icc(tmp_path: Path) -> None:
    rgb = _rng().integers(0, 256, (5, 7, 3), dtype=np.uint8)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    for ext in (".png", ".tif", ".bmp", ".webp"):
        save(tmp_path / f"o{ext}", rgb, icc_profile=icc)
        with Image.open(tmp_path / f"o{ext}") as img:
            assert img.size == (7, 5)
            if ext in (".png", ".tif"):
                np.testing.assert_array_equal(np.asarray(img), rgb)
                assert img.info.get("icc_profile") == icc
    save(tmp_path / "o.jpg", rgb, quality=50)
    with Image.open(tmp_path / "o.jpg") as img:
        assert img.format == "JPEG"


def test_save_alpha_sixteen_bit_and_float(tmp_path: Path) -> None:
    rgb = np.zeros((2, 3, 3), np.uint8)
    alpha = np.full((2, 3), 9, np.uint8)
    save(tmp_path / "a.png", rgb, alpha=alpha)
    with Image.open(tmp_path / "a.png") as img:
        assert img.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(img)[:, :, 3], alpha)
    deep = np.full((2, 3, 1), 40000, np.uint16)
    save(tmp_path / "d.png", deep)
    assert load(tmp_path / "d.png").pixels.max() == 40000
    values = np.array([[[-1.5], [2.25]]], np.float32)
    save(tmp_path / "f.tif", values)
    np.testing.assert_array_equal(load(tmp_path / "f.tif").pixels, values)


@pytest.mark.parametrize(
    ("name", "pixels", "pattern"),
    [
        (
            "x.xyz",
            np.zeros((2, 2, 1), np.uint8),
            r"x\.xyz: unknown image ending '\.xyz'",
        ),
        (
            "x.jpg",
            np.zeros((2, 2, 1), np.uint16),
            r"x\.jpg: JPEG cannot hold 16-bit gray",
        ),
        (
            "x.png",
            np.zeros((2, 2, 1), np.float32),
            r"x\.png: float output is written as one-channel TIFF",
        ),
    ],
)
def test_save_refuses_what_a_format_cannot_hold(
    tmp_path: Path, name: str, pixels: np.ndarray, pattern: str
) -> None:
    with pytest.raises(ImageError, match=pattern):
        save(tmp_path / name, pixels)
    assert list(tmp_path.iterdir()) == []


def test_save_is_atomic_when_the_write_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "keep.png"
    target.write_bytes(b"old contents")

    def broken(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        fp.write(b"half an image")  # type: ignore[attr-defined]
        msg = "disk full"
        raise OSError(msg)

    monkeypatch.setattr(Image.Image, "save", broken)
    with pytest.raises(ImageError, match=r"keep\.png: cannot write: disk full"):
        # compress_level: Pillow's encoder
        save(target, np.zeros((2, 2, 1), np.uint8), compress_level=6)
    assert target.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_save_is_atomic_when_the_fast_png_write_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from convcli import deep_images

    target = tmp_path / "keep.png"
    target.write_bytes(b"old contents")
    real = deep_images.encode_png

    def broken(*args: object, **kwargs: object) -> bytes:
        real(*args, **kwargs)  # type: ignore[arg-type]
        msg = "disk full"
        raise OSError(msg)

    monkeypatch.setattr(deep_images, "encode_png", broken)
    with pytest.raises(ImageError, match=r"keep\.png: cannot write: disk full"):
        save(target, np.zeros((2, 2, 1), np.uint8))
    assert target.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.png"]


def test_save_into_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match=r"cannot write in"):
        save(tmp_path / "nope" / "x.png", np.zeros((2, 2, 1), np.uint8))


def test_outputs_get_ordinary_permissions(tmp_path: Path) -> None:
    import os

    mask = os.umask(0)
    os.umask(mask)
    save(tmp_path / "o.png", np.zeros((2, 2, 1), np.uint8))
    assert (tmp_path / "o.png").stat().st_mode & 0o777 == 0o666 & ~mask
