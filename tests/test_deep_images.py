"""convcli.deep_images: 16-bit colour and gray+alpha PNG and TIFF, exact to the bit."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps

from convcli import deep_images, images
from convcli.images import ImageError

SIZES = [(1, 1), (3, 5), (17, 31)]
KINDS = {"gray+alpha": (1, True), "rgb": (3, False), "rgba": (3, True)}


def samples(
    hw: tuple[int, int], kind: str, seed: int = 0
) -> tuple[np.ndarray, np.ndarray | None]:
    """Random uint16 colour (H, W, C) and alpha, both ends of the range included."""
    colour, alpha = KINDS[kind]
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 65536, (*hw, colour), dtype=np.uint16)
    pixels.flat[0], pixels.flat[-1] = 0, 65535
    a = rng.integers(0, 65536, hw, dtype=np.uint16) if alpha else None
    return pixels, a


def write(
    path: Path, pixels: np.ndarray, alpha: np.ndarray | None, **options: object
) -> Path:
    fmt = images.FORMATS[path.suffix.lower()][0]
    return images.write_atomically(
        path,
        lambda stream: deep_images.write(stream, pixels, alpha, fmt=fmt, **options),
    )


def png_bytes(arr: np.ndarray) -> bytes:
    return bytes(imagecodecs.png_encode(arr))


def stacked(pixels: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    if alpha is None:
        return pixels
    return np.concatenate([pixels, alpha[:, :, np.newaxis]], axis=2)


# Round trips


@pytest.mark.parametrize("hw", SIZES)
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("ending", [".png", ".tif"])
def test_round_trip_is_exact_to_the_bit(
    tmp_path: Path, hw: tuple[int, int], kind: str, ending: str
) -> None:
    pixels, alpha = samples(hw, kind)
    path = write(tmp_path / f"a{ending}", pixels, alpha)
    header = deep_images.sniff(path)
    assert header is not None
    assert header.size == hw
    assert header.channels == pixels.shape[2] + (alpha is not None)
    assert header.alpha == (alpha is not None)
    assert header.frames == 1
    back = deep_images.read(path)
    assert back.pixels.dtype == np.uint16
    np.testing.assert_array_equal(back.pixels, pixels)
    if alpha is None:
        assert back.alpha is None
    else:
        assert back.alpha is not None
        np.testing.assert_array_equal(back.alpha, alpha)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_png_written_is_a_16_bit_png_other_decoders_read(
    tmp_path: Path, kind: str
) -> None:
    pixels, alpha = samples((4, 6), kind)
    path = write(tmp_path / "a.png", pixels, alpha)
    data = path.read_bytes()
    depth, ctype = data[24], data[25]
    assert depth == 16
    assert ctype == {"gray+alpha": 4, "rgb": 2, "rgba": 6}[kind]
    raw = imagecodecs.png_decode(data).reshape(4, 6, -1)
    np.testing.assert_array_equal(raw, stacked(pixels, alpha))
    with Image.open(path) as img:  # Pillow reads it too (in 8 bits)
        img.load()
        assert img.size == (6, 4)


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_tiff_written_is_a_16_bit_tiff_other_readers_read(
    tmp_path: Path, kind: str
) -> None:
    pixels, alpha = samples((4, 6), kind)
    path = write(tmp_path / "a.tiff", pixels, alpha)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        assert page.bitspersample == 16
        assert page.compression == 1  # uncompressed, as Pillow writes TIFFs
        if alpha is not None:
            assert tuple(page.extrasamples) == (2,)  # unassociated
        np.testing.assert_array_equal(
            page.asarray().reshape(4, 6, -1), stacked(pixels, alpha)
        )


@pytest.mark.parametrize("byteorder", ["<", ">"])
@pytest.mark.parametrize("bigtiff", [False, True])
def test_big_endian_and_bigtiff_files_read_exactly(
    tmp_path: Path, byteorder: str, bigtiff: bool
) -> None:
    pixels, alpha = samples((7, 9), "rgba", seed=3)
    path = tmp_path / "be.tif"
    tifffile.imwrite(
        path,
        stacked(pixels, alpha),
        photometric="rgb",
        extrasamples=["unassalpha"],
        byteorder=byteorder,
        bigtiff=bigtiff,
        metadata=None,
    )
    assert path.read_bytes()[:2] == (b"MM" if byteorder == ">" else b"II")
    header = deep_images.sniff(path)
    assert header is not None
    assert (header.size, header.channels) == ((7, 9), 4)
    back = deep_images.read(path)
    np.testing.assert_array_equal(back.pixels, pixels)
    np.testing.assert_array_equal(back.alpha, alpha)


@pytest.mark.parametrize("compression", ["lzw", "zlib", "packbits"])
def test_compressed_and_planar_tiffs_read_exactly(
    tmp_path: Path, compression: str
) -> None:
    pixels, _ = samples((11, 13), "rgb", seed=4)
    contig, planar = tmp_path / "c.tif", tmp_path / "p.tif"
    tifffile.imwrite(
        contig, pixels, photometric="rgb", compression=compression, metadata=None
    )
    tifffile.imwrite(
        planar,
        np.moveaxis(pixels, -1, 0),
        photometric="rgb",
        planarconfig="separate",
        compression=compression,
        metadata=None,
    )
    for path in (contig, planar):
        np.testing.assert_array_equal(deep_images.read(path).pixels, pixels)


def test_associated_alpha_is_divided_out(tmp_path: Path) -> None:
    colour = np.array([[[1000, 2000, 3000], [0, 0, 0]]], np.uint16)
    alpha = np.array([[32768, 0]], np.uint16)
    premultiplied = colour.copy()
    premultiplied[0, 0] = np.rint(colour[0, 0].astype(np.float64) * 32768 / 65535)
    path = tmp_path / "assoc.tif"
    tifffile.imwrite(
        path,
        np.concatenate([premultiplied, alpha[:, :, np.newaxis]], axis=2),
        photometric="rgb",
        extrasamples=["assocalpha"],
        metadata=None,
    )
    back = deep_images.read(path)
    np.testing.assert_allclose(back.pixels[0, 0], colour[0, 0], atol=1)
    np.testing.assert_array_equal(back.pixels[0, 1], [0, 0, 0])
    np.testing.assert_array_equal(back.alpha, alpha)


def test_the_pages_of_a_multi_page_tiff_are_counted_read_and_written(
    tmp_path: Path,
) -> None:
    frames = [samples((5, 4), "rgba", seed=s) for s in range(3)]
    path = tmp_path / "pages.tif"
    with path.open("wb") as stream:
        assert deep_images.write_pages(stream, iter(frames)) == 3
    header = deep_images.sniff(path)
    assert header is not None
    assert (header.frames, header.odd_page) == (3, None)
    for i, (pixels, alpha) in enumerate(frames):
        back = deep_images.read(path, frame=i)
        np.testing.assert_array_equal(back.pixels, pixels)
        np.testing.assert_array_equal(back.alpha, alpha)
    every = list(deep_images.pages(path))
    assert len(every) == 3
    for back, (pixels, alpha) in zip(every, frames, strict=True):
        np.testing.assert_array_equal(back.pixels, pixels)
        np.testing.assert_array_equal(back.alpha, alpha)
    with pytest.raises(
        ImageError, match=r"pages\.tif: has 3 frames \(0 to 2\); got frame 3"
    ):
        deep_images.read(path, frame=3)


def test_a_tiff_whose_pages_differ_says_which_page(tmp_path: Path) -> None:
    path = tmp_path / "sizes.tif"
    with tifffile.TiffWriter(path) as tif:
        for hw in [(5, 4), (5, 4), (6, 4)]:
            tif.write(samples(hw, "rgb")[0], photometric="rgb", metadata=None)
    header = deep_images.sniff(path)
    assert header is not None
    assert (header.size, header.frames, header.odd_page) == ((5, 4), 3, 2)


def test_write_pages_refuses_no_page() -> None:
    with pytest.raises(ValueError, match="at least one page; got none"):
        deep_images.write_pages(io.BytesIO(), [])


# Orientation, as Pillow applies it to every other image


@pytest.mark.parametrize("orientation", range(1, 9))
def test_tiff_orientation_is_applied_as_pillow_applies_it(
    tmp_path: Path, orientation: int
) -> None:
    pixels, _ = samples((5, 7), "rgb", seed=orientation)
    deep, flat = tmp_path / "deep.tif", tmp_path / "flat.tif"
    tag = [(274, 3, 1, orientation, True)]
    tifffile.imwrite(deep, pixels, photometric="rgb", extratags=tag, metadata=None)
    eight = (pixels >> 8).astype(np.uint8)
    tifffile.imwrite(flat, eight, photometric="rgb", extratags=tag, metadata=None)
    with Image.open(flat) as img:
        expected = np.asarray(ImageOps.exif_transpose(img))
    header = deep_images.sniff(deep)
    back = deep_images.read(deep)
    assert header is not None
    assert header.size == expected.shape[:2]
    np.testing.assert_array_equal((back.pixels >> 8).astype(np.uint8), expected)


def exif_block(orientation: int) -> bytes:
    """A little-endian TIFF structure holding one tag: Orientation."""
    return b"II*\x00" + struct.pack("<IHHHIHHI", 8, 1, 274, 3, 1, orientation, 0, 0)


def with_chunk(png: bytes, kind: bytes, body: bytes, *, after_idat: bool) -> bytes:
    chunk = struct.pack(">I", len(body)) + kind + body
    chunk += struct.pack(">I", zlib.crc32(kind + body))
    at = png.rindex(b"IEND") - 4 if after_idat else 33
    return png[:at] + chunk + png[at:]


@pytest.mark.parametrize("after_idat", [False, True])
def test_png_exif_orientation_is_applied_and_seen_in_the_header_only_before_the_pixels(
    tmp_path: Path, after_idat: bool
) -> None:
    pixels, _ = samples((2, 3), "rgb", seed=9)
    path = tmp_path / "turned.png"
    path.write_bytes(
        with_chunk(png_bytes(pixels), b"eXIf", exif_block(6), after_idat=after_idat)
    )
    back = deep_images.read(path)
    np.testing.assert_array_equal(back.pixels, np.rot90(pixels, -1))
    header = deep_images.sniff(path)
    assert header is not None
    # As Pillow: an eXIf chunk after the pixels is seen only when they are decoded.
    assert header.size == ((2, 3) if after_idat else (3, 2))


# ICC profiles


def test_icc_profiles_round_trip_and_pillow_reads_the_png_one(tmp_path: Path) -> None:
    profile = bytes(range(256)) * 9
    pixels, _ = samples((3, 4), "rgb")
    png = write(tmp_path / "icc.png", pixels, None, icc_profile=profile)
    tif = write(tmp_path / "icc.tif", pixels, None, icc_profile=profile)
    assert deep_images.read(png).icc_profile == profile
    assert deep_images.read(tif).icc_profile == profile
    with Image.open(png) as img:
        assert img.info["icc_profile"] == profile
    np.testing.assert_array_equal(deep_images.read(png).pixels, pixels)


def test_a_png_icc_profile_that_inflates_past_the_cap_is_refused(
    tmp_path: Path,
) -> None:
    pixels, _ = samples((3, 4), "rgb")
    bomb = b"ICC\x00\x00" + zlib.compress(b"\x00" * (deep_images.ICC_MAX_BYTES + 1))
    path = tmp_path / "iccbomb.png"
    path.write_bytes(with_chunk(png_bytes(pixels), b"iCCP", bomb, after_idat=False))
    with pytest.raises(ImageError, match=r"iccbomb\.png: the ICC profile is larger"):
        deep_images.read(path)


# Broken and hostile files


def test_a_truncated_16_bit_png_is_a_clean_error_naming_the_file(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(5)
    data = png_bytes(rng.integers(0, 65536, (64, 64, 3), dtype=np.uint16))
    for name, cut in [("half.png", len(data) // 2), ("end.png", len(data) - 20)]:
        path = tmp_path / name
        path.write_bytes(data[:cut])
        assert deep_images.sniff(path) is not None  # the header is whole
        with pytest.raises(ImageError) as caught:
            deep_images.read(path)
        message = str(caught.value)
        assert message.startswith(f"{path}: corrupt or truncated image (")
        assert "\n" not in message


def test_a_truncated_16_bit_tiff_is_a_clean_error_naming_the_file(
    tmp_path: Path,
) -> None:
    pixels, _ = samples((40, 50), "rgb", seed=6)
    for compression in (None, "lzw"):
        buffer = io.BytesIO()
        tifffile.imwrite(
            buffer, pixels, photometric="rgb", compression=compression, metadata=None
        )
        data = buffer.getvalue()
        path = tmp_path / f"cut-{compression}.tif"
        path.write_bytes(data[: len(data) // 2])
        with pytest.raises(ImageError, match=rf"{path.name}: corrupt or truncated"):
            deep_images.read(path)


def test_a_png_header_claiming_more_pixels_than_its_data_can_hold_is_refused(
    tmp_path: Path,
) -> None:
    small = png_bytes(np.zeros((2, 2, 3), np.uint16))
    # The same 2x2 data under a header of 60000 x 60000: 21.6 GB of pixels.
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", 60000, 60000, 16, 2, 0, 0, 0)
    forged = small[:8] + struct.pack(">I", 13) + ihdr
    forged += struct.pack(">I", zlib.crc32(ihdr)) + small[33:]
    path = tmp_path / "claims.png"
    path.write_bytes(forged)
    header = deep_images.sniff(path)
    assert header is not None
    assert header.size == (60000, 60000)
    with pytest.raises(
        ImageError, match=r"claims\.png: corrupt or truncated .*too few"
    ):
        deep_images.read(path, max_pixels=None)
    with pytest.raises(
        ImageError, match=r"claims\.png: .*more than the limit of 1,000"
    ):
        deep_images.read(path, max_pixels=1000)


def test_the_pixel_limit_is_checked_before_decoding(tmp_path: Path) -> None:
    pixels, _ = samples((40, 30), "rgb")
    for ending in (".png", ".tif"):
        path = write(tmp_path / f"big{ending}", pixels, None)
        with pytest.raises(
            ImageError, match=r"1,200 pixels, more than the limit of 1,199"
        ):
            deep_images.read(path, max_pixels=1199)
        assert deep_images.read(path, max_pixels=1200).pixels.shape == (40, 30, 3)


def test_a_tiff_whose_ifds_loop_is_not_sniffed_and_the_walk_ends(
    tmp_path: Path,
) -> None:
    pixels, _ = samples((3, 3), "rgb")
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pixels, photometric="rgb", metadata=None)
    data = bytearray(buffer.getvalue())
    first = struct.unpack("<I", data[4:8])[0]
    count = struct.unpack("<H", data[first : first + 2])[0]
    link = first + 2 + count * 12
    data[link : link + 4] = struct.pack("<I", first)  # the next IFD is itself
    path = tmp_path / "loop.tif"
    path.write_bytes(bytes(data))
    assert deep_images.sniff(path) is None


def test_a_page_of_another_kind_in_a_16_bit_tiff_is_a_clean_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "mixed.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(samples((4, 4), "rgb")[0], photometric="rgb", metadata=None)
        tif.write(np.zeros((4, 4, 3), np.uint8), photometric="rgb", metadata=None)
    with pytest.raises(ImageError, match=r"mixed\.tif: page 1 is not 16-bit colour"):
        deep_images.read(path, frame=1)


# The header sniff says no to everything else


def test_the_sniff_says_no_to_8_bit_images_and_16_bit_gray(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    rgb8 = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    for name in ("rgb8.png", "rgb8.tif", "rgb8.jpg", "rgb8.webp", "rgb8.gif"):
        Image.fromarray(rgb8).save(tmp_path / name)
    Image.fromarray(rgb8).convert("RGBA").save(tmp_path / "rgba8.png")
    Image.fromarray(rgb8).convert("LA").save(tmp_path / "la8.png")
    gray16 = rng.integers(0, 65536, (6, 5), dtype=np.uint16)
    Image.fromarray(gray16).save(tmp_path / "gray16.png")  # I;16: Pillow's own
    tifffile.imwrite(tmp_path / "gray16.tif", gray16, metadata=None)
    tifffile.imwrite(  # 16-bit CMYK: 4 samples, but not RGBA
        tmp_path / "cmyk16.tif",
        rng.integers(0, 65536, (6, 5, 4), dtype=np.uint16),
        photometric="separated",
        metadata=None,
    )
    tifffile.imwrite(  # signed 16-bit RGB
        tmp_path / "int16.tif",
        rng.integers(-100, 100, (6, 5, 3), dtype=np.int16),
        photometric="rgb",
        metadata=None,
    )
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.tif").write_bytes(b"II*\x00 not really")
    (tmp_path / "short.png").write_bytes(deep_images.PNG_SIGNATURE + b"\x00\x00")
    for path in sorted(tmp_path.iterdir()):
        assert deep_images.sniff(path) is None, path.name
    assert deep_images.sniff(tmp_path / "missing.png") is None
    assert deep_images.sniff(tmp_path) is None  # a folder
    with pytest.raises(ImageError, match=r"rgb8\.png: not a 16-bit colour"):
        deep_images.read(tmp_path / "rgb8.png")


def test_a_16_bit_png_with_a_palette_is_not_sniffed(tmp_path: Path) -> None:
    # Colour type 3 (palette) allows at most 8 bits: not a file this module reads.
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", 2, 2, 16, 3, 0, 0, 0)
    data = deep_images.PNG_SIGNATURE + struct.pack(">I", 13) + ihdr
    data += struct.pack(">I", zlib.crc32(ihdr))
    path = tmp_path / "palette16.png"
    path.write_bytes(data)
    assert deep_images.sniff(path) is None


# Writing


def test_write_refuses_what_it_does_not_write() -> None:
    stream = io.BytesIO()
    with pytest.raises(ValueError, match=r"uint16 pixels .*got uint8"):
        deep_images.write(stream, np.zeros((2, 2, 3), np.uint8), fmt="PNG")
    with pytest.raises(ValueError, match=r"PNG or TIFF; got JPEG"):
        deep_images.write(stream, np.zeros((2, 2, 3), np.uint16), fmt="JPEG")
    assert stream.getvalue() == b""


def test_holds_says_which_16_bit_outputs_are_written_here() -> None:
    assert deep_images.holds("PNG", channels=3, alpha=False)
    assert deep_images.holds("TIFF", channels=1, alpha=True)
    assert not deep_images.holds("PNG", channels=1, alpha=False)  # I;16: Pillow
    assert not deep_images.holds("JPEG", channels=3, alpha=False)


def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    target = tmp_path / "no.png"
    with pytest.raises(images.ImageError, match=r"no\.png: cannot write"):
        images.write_atomically(
            target,
            lambda stream: deep_images.write(
                stream, np.zeros((2, 2, 2), np.uint16), fmt="PNG"
            ),
        )
    assert list(tmp_path.iterdir()) == []


# The libraries are imported only when needed


def test_missing_names_the_library_that_does_not_import(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert deep_images.missing("PNG") is None
    assert deep_images.missing("TIFF") is None
    monkeypatch.setitem(sys.modules, "imagecodecs", None)
    monkeypatch.setitem(sys.modules, "tifffile", None)
    assert deep_images.missing("PNG") == "imagecodecs"
    assert deep_images.missing("TIFF") == "tifffile"


def test_8_bit_work_never_imports_the_16_bit_libraries(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(
        tmp_path / "a.png"
    )
    Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)).save(
        tmp_path / "a.tif"
    )
    code = (
        "import sys, convcli, convcli.deep_images as d\n"
        "assert d.sniff('a.png') is None and d.sniff('a.tif') is None\n"
        "print(sorted(m for m in ('imagecodecs', 'tifffile') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "[]"
