"""Issue 12, cases 26 and 27: multi-frame inputs and 16-bit colour, through real processes.

Case 26: an animated GIF, WebP or APNG and a multi-page TIFF had only their first
frame filtered, silently. Now every frame is filtered and written as one animation
(GIF, WebP, PNG as APNG, TIFF pages) with its durations and loop; another output
format is an error naming the frame count and ``--frame N``.

Case 27: a 16-bit RGB(A) PNG or TIFF became 8-bit without a word. Now it is read by
imagecodecs or tifffile and written back in 16 bits (PNG, TIFF); 8-bit-only formats
get 8 bits, as before.

Every case checks what `tests/hostile.py` checks: the exit code, one ``Error:``
line naming the culprit where it is an error, no traceback or Python warning,
no ``.tmp`` left, every input's sha256 unchanged, and exactly the files written.
Pixel values are compared with an independent computation: scipy's correlate,
in float64, rounded half up and clipped as convcli maps values to pixels.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import tifffile
from PIL import Image
from scipy import ndimage

from tests.hostile import assert_files, run_convcli, snapshot

# filters/sharpen.txt: weights in eighths, so float32 sums are exact and the
# reference can round exactly as convcli does.
SHARPEN = np.array([[-2, -2, -2], [-2, 32, -2], [-2, -2, -2]], np.float64) / 16
ANIMATED_ENDINGS = "GIF, WebP, PNG, TIFF"


def expected(pixels: np.ndarray, peak: int) -> np.ndarray:
    """Sharpen (H, W, C) pixels as convcli apply does by default: reflect, clip."""
    out = np.empty(pixels.shape, np.float64)
    for c in range(pixels.shape[2]):
        # convcli's border "reflect" is scipy's "mirror" (d c b | a b c d)
        out[:, :, c] = ndimage.correlate(
            pixels[:, :, c].astype(np.float64), SHARPEN, mode="mirror"
        )
    return np.clip(np.floor(out + 0.5), 0, peak)


def random_frames(
    n: int, hw: tuple[int, int] = (20, 24), seed: int = 0
) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (*hw, 3), dtype=np.uint8) for _ in range(n)]


def save_animation(
    path: Path,
    frames: list[np.ndarray],
    *,
    durations: list[int] | None = None,
    loop: int | None = None,
    **options: object,
) -> Path:
    images = [Image.fromarray(f) for f in frames]
    if durations is not None:
        options["duration"] = durations
    if loop is not None:
        options["loop"] = loop
    images[0].save(path, save_all=True, append_images=images[1:], **options)
    return path


def read_frames(path: Path) -> tuple[list[np.ndarray], list[float | None], int | None]:
    """Every frame as Pillow composes it (RGB), each frame's duration, and the loop."""
    frames, durations = [], []
    with Image.open(path) as img:
        loop = img.info.get("loop")
        for i in range(getattr(img, "n_frames", 1)):
            img.seek(i)
            img.load()
            durations.append(img.info.get("duration"))
            frames.append(np.asarray(img.convert("RGB")))
    return frames, durations, loop


def png_header(path: Path) -> tuple[int, int]:
    """A PNG's bit depth and colour type, from its IHDR."""
    data = path.read_bytes()[:26]
    return data[24], data[25]


# Case 26: every frame, as an animation


@pytest.mark.parametrize("ending", [".gif", ".png", ".tif"])
def test_issue_12_case_26_animated_gif_filters_every_frame_and_keeps_durations_and_loop(
    tmp_path: Path, ending: str
) -> None:
    durations = [40, 70, 100, 130, 160, 190]
    src = save_animation(
        tmp_path / "a.gif", random_frames(6), durations=durations, loop=2
    )
    frames_in, _, _ = read_frames(src)
    before = snapshot(tmp_path)
    out = f"a.sharpen{ending}"
    run_convcli(["apply", "a.gif", "-k", "sharpen", "-o", out], cwd=tmp_path).expect(0)
    assert_files(tmp_path, before, written={out})
    frames_out, durations_out, loop_out = read_frames(tmp_path / out)
    assert len(frames_out) == 6
    if ending == ".tif":  # TIFF pages hold neither durations nor a loop
        assert (durations_out, loop_out) == ([None] * 6, None)
    else:
        assert [round(d or 0) for d in durations_out] == durations
        assert loop_out == 2
    if ending == ".gif":  # a palette per frame: close, not exact
        for got, want in zip(frames_out, frames_in, strict=True):
            err = np.abs(got.astype(int) - expected(want, 255))
            assert err.mean() < 12
        return
    for got, want in zip(frames_out, frames_in, strict=True):
        np.testing.assert_array_equal(got, expected(want, 255))


def test_issue_12_case_26_animated_webp_keeps_its_frames_durations_and_loop(
    tmp_path: Path,
) -> None:
    durations = [50, 80, 110, 140]
    save_animation(
        tmp_path / "w.webp",
        random_frames(4, seed=1),
        durations=durations,
        loop=0,
        lossless=True,
    )
    before = snapshot(tmp_path)
    run_convcli(["apply", "w.webp", "-k", "sharpen"], cwd=tmp_path).expect(0)
    assert_files(tmp_path, before, written={"w.sharpen.webp"})
    frames_out, durations_out, loop_out = read_frames(tmp_path / "w.sharpen.webp")
    assert len(frames_out) == 4
    assert durations_out == durations
    assert loop_out == 0


def test_issue_12_case_26_apng_to_png_stays_an_animation_exact(tmp_path: Path) -> None:
    frames = random_frames(5, seed=2)
    save_animation(tmp_path / "p.png", frames, durations=[30, 60, 90, 120, 150], loop=4)
    before = snapshot(tmp_path)
    run_convcli(["apply", "p.png", "-k", "sharpen"], cwd=tmp_path).expect(0)
    assert_files(tmp_path, before, written={"p.sharpen.png"})
    frames_out, durations_out, loop_out = read_frames(tmp_path / "p.sharpen.png")
    assert durations_out == [30.0, 60.0, 90.0, 120.0, 150.0]
    assert loop_out == 4
    for got, want in zip(frames_out, frames, strict=True):
        np.testing.assert_array_equal(got, expected(want, 255))


def test_issue_12_case_26_multi_page_tiff_filters_every_page(tmp_path: Path) -> None:
    pages = random_frames(3, seed=3)
    save_animation(tmp_path / "t.tif", pages)
    before = snapshot(tmp_path)
    run_convcli(["apply", "t.tif", "-k", "sharpen"], cwd=tmp_path).expect(0)
    assert_files(tmp_path, before, written={"t.sharpen.tif"})
    frames_out, _, _ = read_frames(tmp_path / "t.sharpen.tif")
    assert len(frames_out) == 3
    for got, want in zip(frames_out, pages, strict=True):
        np.testing.assert_array_equal(got, expected(want, 255))


@pytest.mark.parametrize(("ending", "fmt"), [(".jpg", "JPEG"), (".bmp", "BMP")])
def test_issue_12_case_26_an_animation_into_a_one_frame_format_is_refused(
    tmp_path: Path, ending: str, fmt: str
) -> None:
    save_animation(tmp_path / "a.gif", random_frames(12), durations=[50] * 12)
    before = snapshot(tmp_path)
    r = run_convcli(
        ["apply", "a.gif", "-k", "sharpen", "-o", f"x{ending}"], cwd=tmp_path
    )
    r.expect(2, error="a.gif")
    line = next(x for x in r.err.splitlines() if x.startswith("Error:"))
    assert line == (
        f"Error: a.gif has 12 frames; {fmt} holds one: use --frame N or an output "
        f"format that holds animation ({ANIMATED_ENDINGS})"
    )
    assert_files(tmp_path, before, written=set())


def test_issue_12_case_26_frame_n_takes_one_frame_into_any_format(
    tmp_path: Path,
) -> None:
    frames = random_frames(12, seed=4)
    save_animation(tmp_path / "a.gif", frames, durations=[50] * 12)
    frames_in, _, _ = read_frames(tmp_path / "a.gif")
    before = snapshot(tmp_path)
    run_convcli(
        ["apply", "a.gif", "-k", "sharpen", "--frame", "7", "-o", "seven.bmp"],
        cwd=tmp_path,
    ).expect(0)
    assert_files(tmp_path, before, written={"seven.bmp"})
    with Image.open(tmp_path / "seven.bmp") as img:
        got = np.asarray(img.convert("RGB"))
    np.testing.assert_array_equal(got, expected(frames_in[7], 255))


# Case 27: 16-bit colour stays 16-bit


def random16(hw: tuple[int, int], channels: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 65536, (*hw, channels), dtype=np.uint16)
    arr[0, 0], arr[-1, -1] = 0, 65535
    return arr


@pytest.mark.parametrize("channels", [3, 4])
def test_issue_12_case_27_16_bit_png_stays_16_bit_exact(
    tmp_path: Path, channels: int
) -> None:
    src = random16((21, 17), channels, seed=channels)
    (tmp_path / "deep.png").write_bytes(imagecodecs.png_encode(src))
    before = snapshot(tmp_path)
    run_convcli(["apply", "deep.png", "-k", "sharpen"], cwd=tmp_path).expect(0)
    assert_files(tmp_path, before, written={"deep.sharpen.png"})
    out = tmp_path / "deep.sharpen.png"
    assert png_header(out) == (16, 2 if channels == 3 else 6)
    got = imagecodecs.png_decode(out.read_bytes())
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got[:, :, :3], expected(src[:, :, :3], 65535))
    if channels == 4:  # alpha is carried through unfiltered
        np.testing.assert_array_equal(got[:, :, 3], src[:, :, 3])


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_issue_12_case_27_16_bit_tiff_stays_16_bit_exact(
    tmp_path: Path, byteorder: str
) -> None:
    src = random16((19, 23), 3, seed=7)
    tifffile.imwrite(
        tmp_path / "deep.tif",
        src,
        photometric="rgb",
        byteorder=byteorder,
        metadata=None,
    )
    before = snapshot(tmp_path)
    run_convcli(["apply", "deep.tif", "-k", "sharpen"], cwd=tmp_path).expect(0)
    assert_files(tmp_path, before, written={"deep.sharpen.tif"})
    with tifffile.TiffFile(tmp_path / "deep.sharpen.tif") as tif:
        page = tif.pages[0]
        assert page.bitspersample == 16
        got = page.asarray()
    np.testing.assert_array_equal(got, expected(src, 65535))


def test_issue_12_case_27_16_bit_colour_into_an_8_bit_format_is_reduced_as_before(
    tmp_path: Path,
) -> None:
    src = random16((10, 12), 3, seed=8)
    (tmp_path / "deep.png").write_bytes(imagecodecs.png_encode(src))
    before = snapshot(tmp_path)
    r = run_convcli(
        ["apply", "deep.png", "-k", "sharpen", "-o", "out.jpg", "--quality", "100"],
        cwd=tmp_path,
    ).expect(0)
    assert r.err == ""
    assert_files(tmp_path, before, written={"out.jpg"})
    with Image.open(tmp_path / "out.jpg") as img:
        assert (img.mode, img.size) == ("RGB", (12, 10))


def test_issue_12_case_27_without_imagecodecs_it_warns_in_one_line(
    tmp_path: Path,
) -> None:
    src = random16((8, 9), 3, seed=9)
    (tmp_path / "deep.png").write_bytes(imagecodecs.png_encode(src))
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "imagecodecs.py").write_text("raise ImportError('no imagecodecs here')\n")
    before = snapshot(tmp_path)
    r = run_convcli(
        ["apply", "deep.png", "-k", "sharpen", "-o", "out/"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(shim)},
    ).expect(0)
    assert_files(tmp_path, before, written={"out/deep.sharpen.png"})
    lines = r.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("warning: deep.png: 16-bit colour read as 8-bit")
    assert "imagecodecs" in lines[0]
    assert png_header(tmp_path / "out/deep.sharpen.png") == (8, 2)


# Own hostile cases


def test_own_case_a_gif_of_one_frame_is_an_ordinary_image(tmp_path: Path) -> None:
    save_animation(tmp_path / "one.gif", random_frames(1), durations=[100])
    before = snapshot(tmp_path)
    run_convcli(
        ["apply", "one.gif", "-k", "sharpen", "-o", "one.jpg"], cwd=tmp_path
    ).expect(0)
    assert_files(tmp_path, before, written={"one.jpg"})


def test_own_case_frames_times_pixels_count_against_the_pixel_limit(
    tmp_path: Path,
) -> None:
    # 300 frames of 40 x 40: 480,000 pixels in all, 1,600 per frame.
    save_animation(
        tmp_path / "long.gif", random_frames(300, (40, 40)), durations=[20] * 300
    )
    before = snapshot(tmp_path)
    r = run_convcli(
        ["apply", "long.gif", "-k", "sharpen", "--max-pixels", "479999"], cwd=tmp_path
    )
    r.expect(2, error="long.gif")
    assert "300 frames" in r.err
    assert "479,999" in r.err
    assert_files(tmp_path, before, written=set())
    run_convcli(
        ["apply", "long.gif", "-k", "sharpen", "--max-pixels", "480000"], cwd=tmp_path
    ).expect(0)
    assert_files(tmp_path, before, written={"long.sharpen.gif"})
    with Image.open(tmp_path / "long.sharpen.gif") as img:
        assert img.n_frames == 300


def test_own_case_tiff_pages_of_different_sizes_are_refused_then_taken_one_by_one(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(10)
    a = Image.fromarray(rng.integers(0, 256, (10, 12, 3), dtype=np.uint8))
    b = Image.fromarray(rng.integers(0, 256, (14, 12, 3), dtype=np.uint8))
    a.save(tmp_path / "mixed.tif", save_all=True, append_images=[b])
    before = snapshot(tmp_path)
    r = run_convcli(["apply", "mixed.tif", "-k", "sharpen"], cwd=tmp_path)
    r.expect(2, error="mixed.tif")
    assert "--frame N" in r.err
    assert_files(tmp_path, before, written=set())
    run_convcli(
        ["apply", "mixed.tif", "-k", "sharpen", "--frame", "1"], cwd=tmp_path
    ).expect(0)
    assert_files(tmp_path, before, written={"mixed.sharpen.frame1.tif"})
    with Image.open(tmp_path / "mixed.sharpen.frame1.tif") as img:
        assert (getattr(img, "n_frames", 1), img.size) == (1, (12, 14))


def test_own_case_a_truncated_animated_gif_fails_its_pair_and_the_rest_goes_on(
    tmp_path: Path,
) -> None:
    save_animation(tmp_path / "full.gif", random_frames(8, seed=11), durations=[50] * 8)
    data = (tmp_path / "full.gif").read_bytes()
    (tmp_path / "cut.gif").write_bytes(data[: len(data) - 60])  # the last frame is cut
    with Image.open(tmp_path / "cut.gif") as img:
        assert img.n_frames == 8  # every frame's header is there
    before = snapshot(tmp_path)
    r = run_convcli(
        ["apply", "cut.gif", "full.gif", "-k", "sharpen", "-o", "out/"], cwd=tmp_path
    )
    r.expect(1, error="cut.gif")
    assert "truncated" in r.err
    assert_files(tmp_path, before, written={"out/full.sharpen.gif"})


@pytest.mark.parametrize(
    ("name", "frames", "arg"),
    [("a.gif", 12, "12"), ("a.gif", 12, "99999999999"), ("s.png", 1, "1")],
)
def test_own_case_frame_out_of_range_is_refused_before_any_write(
    tmp_path: Path, name: str, frames: int, arg: str
) -> None:
    if frames > 1:
        save_animation(tmp_path / name, random_frames(frames), durations=[50] * frames)
    else:
        Image.fromarray(random_frames(1)[0]).save(tmp_path / name)
    before = snapshot(tmp_path)
    r = run_convcli(["apply", name, "-k", "sharpen", "--frame", arg], cwd=tmp_path)
    r.expect(2, error=name)
    assert f"--frame {arg}" in r.err
    assert f"0 to {frames - 1}" in r.err
    assert_files(tmp_path, before, written=set())


def test_own_case_a_negative_frame_is_a_usage_error(tmp_path: Path) -> None:
    Image.fromarray(random_frames(1)[0]).save(tmp_path / "s.png")
    before = snapshot(tmp_path)
    run_convcli(
        ["apply", "s.png", "-k", "sharpen", "--frame", "-1"], cwd=tmp_path
    ).expect(2, error="--frame")
    assert_files(tmp_path, before, written=set())


def test_own_case_frame_0_on_a_single_frame_image_is_the_image(tmp_path: Path) -> None:
    frame = random_frames(1, seed=12)[0]
    Image.fromarray(frame).save(tmp_path / "s.png")
    before = snapshot(tmp_path)
    run_convcli(
        ["apply", "s.png", "-k", "sharpen", "--frame", "0"], cwd=tmp_path
    ).expect(0)
    assert_files(tmp_path, before, written={"s.sharpen.frame0.png"})
    with Image.open(tmp_path / "s.sharpen.frame0.png") as img:
        np.testing.assert_array_equal(np.asarray(img), expected(frame, 255))


def test_own_case_a_16_bit_png_with_a_palette_is_a_clean_error(tmp_path: Path) -> None:
    # Colour type 3 (palette) allows at most 8 bits: the IHDR is invalid.
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", 4, 4, 16, 3, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr
    data += struct.pack(">I", zlib.crc32(ihdr))
    idat = zlib.compress(b"\x00" * 40)
    data += struct.pack(">I", len(idat)) + b"IDAT" + idat
    data += struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    data += struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    (tmp_path / "pal16.png").write_bytes(data)
    before = snapshot(tmp_path)
    run_convcli(["apply", "pal16.png", "-k", "sharpen"], cwd=tmp_path).expect(
        2, error="pal16.png"
    )
    assert_files(tmp_path, before, written=set())


def test_own_case_16_bit_gray_with_alpha_stays_16_bit(tmp_path: Path) -> None:
    src = random16((9, 11), 2, seed=13)
    (tmp_path / "la.png").write_bytes(imagecodecs.png_encode(src))
    before = snapshot(tmp_path)
    run_convcli(["apply", "la.png", "-k", "sharpen"], cwd=tmp_path).expect(0)
    assert_files(tmp_path, before, written={"la.sharpen.png"})
    out = tmp_path / "la.sharpen.png"
    assert png_header(out) == (16, 4)
    got = imagecodecs.png_decode(out.read_bytes())
    np.testing.assert_array_equal(got[:, :, :1], expected(src[:, :, :1], 65535))
    np.testing.assert_array_equal(got[:, :, 1], src[:, :, 1])


def test_own_case_rescale_uses_one_scale_for_every_frame(tmp_path: Path) -> None:
    # A dim frame and a bright one: with one scale for the animation the dim
    # frame stays dim (no flicker); each frame on its own would fill 0..255.
    dim = np.zeros((8, 8, 3), np.uint8)
    dim[4, 4] = 50
    bright = np.zeros((8, 8, 3), np.uint8)
    bright[4, 4] = 200
    save_animation(tmp_path / "two.png", [dim, bright], durations=[100, 100])
    before = snapshot(tmp_path)
    run_convcli(
        ["apply", "two.png", "-k", "identity", "--range", "rescale"], cwd=tmp_path
    ).expect(0)
    assert_files(tmp_path, before, written={"two.identity.rescale.png"})
    frames, _, _ = read_frames(tmp_path / "two.identity.rescale.png")
    assert frames[0].max() == 64  # 50 * 255 / 200, rounded
    assert frames[1].max() == 255


def test_own_case_a_stacked_bank_writes_every_frame_of_every_map(
    tmp_path: Path,
) -> None:
    from convcli.kernels import load_kernel
    from convcli.pipeline import output_tags

    tags = output_tags(load_kernel("frei_chen"))
    assert len(tags) == 9
    save_animation(
        tmp_path / "a.gif", random_frames(4, seed=14), durations=[60] * 4, loop=0
    )
    before = snapshot(tmp_path)
    r = run_convcli(["apply", "a.gif", "-k", "frei_chen", "-o", "maps/"], cwd=tmp_path)
    r.expect(0)
    written = {f"maps/a.frei_chen.{tag}.gif" for tag in tags}
    assert_files(tmp_path, before, written=written)
    for rel in written:  # one animation per filter, each with every frame
        frames, durations, loop = read_frames(tmp_path / rel)
        assert (len(frames), durations, loop) == (4, [60] * 4, 0)


def test_own_case_batch_filters_every_frame_of_an_animation(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    save_animation(
        tmp_path / "in" / "a.gif", random_frames(5, seed=16), durations=[70] * 5, loop=1
    )
    before = snapshot(tmp_path)
    run_convcli(
        ["batch", "in", "-k", "sharpen", "-o", "out", "--jobs", "1"], cwd=tmp_path
    ).expect(0)
    assert_files(tmp_path, before, written={"out/a.sharpen.gif"})
    frames, durations, loop = read_frames(tmp_path / "out" / "a.sharpen.gif")
    assert (len(frames), durations, loop) == (5, [70] * 5, 1)


def test_own_case_batch_frame_n_takes_one_frame_of_each_animation(
    tmp_path: Path,
) -> None:
    (tmp_path / "in").mkdir()
    frames = random_frames(4, seed=18)
    save_animation(tmp_path / "in" / "a.gif", frames, durations=[50] * 4, loop=0)
    before = snapshot(tmp_path)
    run_convcli(
        ["batch", "in", "-k", "blur", "-o", "out", "--frame", "2"], cwd=tmp_path
    ).expect(0)
    assert_files(tmp_path, before, written={"out/a.blur.frame2.gif"})
    out, _, _ = read_frames(tmp_path / "out" / "a.blur.frame2.gif")
    assert len(out) == 1
    single = tmp_path / "single.gif"
    with Image.open(tmp_path / "in" / "a.gif") as img:
        img.seek(2)
        img.convert("RGB").save(single)
    run_convcli(
        ["apply", "single.gif", "-k", "blur", "-o", "ref/"], cwd=tmp_path
    ).expect(0)
    np.testing.assert_array_equal(
        out[0], read_frames(tmp_path / "ref" / "single.blur.gif")[0][0]
    )


def test_own_case_a_16_bit_apng_is_read_in_8_bits_with_a_warning(
    tmp_path: Path,
) -> None:
    frames = random16((10, 12), 3, seed=17)[np.newaxis].repeat(3, axis=0)
    frames[1] //= 2
    frames[2] //= 3
    (tmp_path / "deep.png").write_bytes(imagecodecs.apng_encode(frames, delay=100))
    before = snapshot(tmp_path)
    r = run_convcli(["apply", "deep.png", "-k", "sharpen"], cwd=tmp_path).expect(0)
    assert r.err.splitlines() == [
        "warning: deep.png: 16-bit colour read as 8-bit: the frames of a 16-bit "
        "APNG are read by Pillow"
    ]
    assert_files(tmp_path, before, written={"deep.sharpen.png"})
    out, durations, _ = read_frames(tmp_path / "deep.sharpen.png")
    assert (len(out), durations) == (3, [100.0] * 3)


def test_own_case_json_says_how_many_frames_were_written(tmp_path: Path) -> None:
    save_animation(tmp_path / "a.gif", random_frames(5, seed=15), durations=[60] * 5)
    before = snapshot(tmp_path)
    r = run_convcli(["apply", "a.gif", "-k", "sharpen", "--json"], cwd=tmp_path).expect(
        0
    )
    assert_files(tmp_path, before, written={"a.sharpen.gif"})
    doc = json.loads(r.out)
    (entry,) = doc["inputs"]
    assert entry["frames"] == 5
    assert entry["outputs"][0]["frames"] == 5


@pytest.mark.parametrize(
    ("claim", "code", "error"),
    [
        (1_000_000, 2, "1,000,000 frames of 10 x 10"),  # refused from the header
        (50, 1, "corrupt or truncated"),  # found out at the third frame
    ],
)
def test_own_case_an_apng_that_lies_about_its_frame_count(
    tmp_path: Path, claim: int, code: int, error: str
) -> None:
    save_animation(tmp_path / "two.png", random_frames(2, (10, 10)), durations=[50, 50])
    data = bytearray((tmp_path / "two.png").read_bytes())
    at = data.index(b"acTL")  # num_frames, then num_plays, then the CRC
    data[at + 4 : at + 8] = struct.pack(">I", claim)
    data[at + 12 : at + 16] = struct.pack(">I", zlib.crc32(bytes(data[at : at + 12])))
    (tmp_path / "lies.png").write_bytes(bytes(data))
    before = snapshot(tmp_path)
    r = run_convcli(["apply", "lies.png", "-k", "sharpen", "-o", "out/"], cwd=tmp_path)
    r.expect(code, error="lies.png")
    assert error in r.err
    assert_files(tmp_path, before, written=set())
