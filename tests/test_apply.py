"""`convcli apply` as a user drives it; pixels checked against scipy.ndimage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from convcli.cli import app
from convcli.montage import montage_layout

ndimage = pytest.importorskip("scipy.ndimage")

ENV = {"COLUMNS": "120", "NO_COLOR": "1", "TERM": "dumb"}
SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float)
SOBEL_Y = SOBEL_X.T


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _rng() -> np.random.Generator:
    return np.random.default_rng(4040)


def _expected(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Correlate each channel like convcli apply's defaults: same size, border reflect."""
    x3 = x.astype(np.float64).reshape(*x.shape[:2], -1)
    return np.stack(
        [ndimage.correlate(x3[:, :, c], w, mode="mirror") for c in range(x3.shape[2])],
        axis=2,
    )


def _rescale(v: np.ndarray, peak: float = 255) -> np.ndarray:
    lo, hi = v.min(), v.max()
    lo = min(lo, 0.0)
    return np.clip(np.floor((v - lo) * peak / (hi - lo) + 0.5), 0, peak)


def _clip(v: np.ndarray, peak: float = 255) -> np.ndarray:
    return np.clip(np.floor(v + 0.5), 0, peak)


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


def _invoke(runner: CliRunner, *args: str) -> object:
    result = runner.invoke(app, ["apply", *args], env=ENV)
    return result


def test_gray_sobel_magnitude(runner: CliRunner, tmp_path: Path) -> None:
    x = _rng().integers(0, 256, (23, 31), dtype=np.uint8)
    Image.fromarray(x).save(tmp_path / "g.png")
    result = runner.invoke(
        app,
        ["apply", str(tmp_path / "g.png"), "-k", "sobel", "--range", "rescale"],
        env=ENV,
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / "g.sobel.rescale.png"  # --range: its tag
    gx, gy = _expected(x, SOBEL_X), _expected(x, SOBEL_Y)
    want = _rescale(np.sqrt(gx**2 + gy**2))[:, :, 0]
    got = _read(out).astype(float)
    assert np.abs(got - want).max() <= 1  # float32 against float64 rounding
    assert "23 x 31 x 1" in result.output
    assert "magnitude" in result.output


def test_rgb_blur_clip_and_explicit_out_file(runner: CliRunner, tmp_path: Path) -> None:
    x = _rng().integers(0, 256, (12, 9, 3), dtype=np.uint8)
    Image.fromarray(x).save(tmp_path / "c.png")
    out = tmp_path / "blurred.png"
    result = runner.invoke(
        app,
        ["apply", str(tmp_path / "c.png"), "-k", "box:size=3", "-o", str(out)],
        env=ENV,
    )
    assert result.exit_code == 0, result.output
    want = _clip(_expected(x, np.full((3, 3), 1 / 9)))
    assert np.abs(_read(out).astype(float) - want).max() <= 1


def test_rgba_alpha_is_carried_unfiltered(runner: CliRunner, tmp_path: Path) -> None:
    rgba = _rng().integers(0, 256, (8, 10, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    result = runner.invoke(
        app, ["apply", str(tmp_path / "a.png"), "-k", "sharpen"], env=ENV
    )
    assert result.exit_code == 0, result.output
    got = _read(tmp_path / "a.sharpen.png")
    assert got.shape == (8, 10, 4)
    np.testing.assert_array_equal(got[:, :, 3], rgba[:, :, 3])


def test_sixteen_bit_stays_sixteen_bit(runner: CliRunner, tmp_path: Path) -> None:
    x = _rng().integers(0, 65536, (9, 11), dtype=np.uint16)
    Image.fromarray(x).save(tmp_path / "d.png")
    result = runner.invoke(
        app,
        ["apply", str(tmp_path / "d.png"), "-k", "sobel_x", "--range", "rescale"],
        env=ENV,
    )
    assert result.exit_code == 0, result.output
    got = _read(tmp_path / "d.sobel_x.rescale.png")
    assert got.dtype in (np.uint16, np.int32)
    want = _rescale(_expected(x, SOBEL_X), 65535)[:, :, 0]
    assert np.abs(got.astype(float) - want).max() <= 1


def test_palette_input_gives_rgb(runner: CliRunner, tmp_path: Path) -> None:
    rgb = _rng().integers(0, 256, (10, 10, 3), dtype=np.uint8)
    pal = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.save(tmp_path / "p.png")
    result = runner.invoke(
        app, ["apply", str(tmp_path / "p.png"), "-k", "identity"], env=ENV
    )
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(
        _read(tmp_path / "p.identity.png"), np.asarray(pal.convert("RGB"))
    )


def test_json_shapes_follow_the_formula(runner: CliRunner, tmp_path: Path) -> None:
    Image.new("RGB", (17, 10)).save(tmp_path / "s.png")
    args = ["apply", str(tmp_path / "s.png"), "-k", "gaussian:sigma=1", "-k", "sobel"]
    args += [
        "--stride",
        "2,3",
        "--padding",
        "valid",
        "--json",
        "-o",
        str(tmp_path / "out"),
    ]
    result = runner.invoke(app, args, env=ENV)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    (entry,) = doc["inputs"]
    assert entry["shape"] == [10, 17, 3]
    shapes = {o["kernel"]: o["shape"] for o in entry["outputs"]}
    # gaussian sigma 1 is 7x7: floor((10-7)/2)+1 = 2, floor((17-7)/3)+1 = 4
    assert shapes["gaussian"] == [2, 4, 3]
    assert shapes["sobel"] == [4, 5, 3]
    for o in entry["outputs"]:
        assert Path(o["path"]).exists()
        assert o["method"] in ("direct", "separable", "fft")


def test_stack_writes_one_output_per_filter(runner: CliRunner, tmp_path: Path) -> None:
    Image.new("L", (6, 6), 50).save(tmp_path / "k.png")
    bank = tmp_path / "two.txt"
    bank.write_text("--- up\n1 0\n--- down\n0 1\n", encoding="utf-8")
    result = runner.invoke(
        app, ["apply", str(tmp_path / "k.png"), "-k", str(bank), "--json"], env=ENV
    )
    assert result.exit_code == 0, result.output
    outs = json.loads(result.stdout)["inputs"][0]["outputs"]
    assert [o["filter"] for o in outs] == ["up", "down"]
    assert {Path(o["path"]).name for o in outs} == {"k.two.up.png", "k.two.down.png"}


def test_float_output(runner: CliRunner, tmp_path: Path) -> None:
    x = _rng().integers(0, 256, (5, 6), dtype=np.uint8)
    Image.fromarray(x).save(tmp_path / "f.png")
    result = runner.invoke(
        app, ["apply", str(tmp_path / "f.png"), "-k", "laplacian", "--float"], env=ENV
    )
    assert result.exit_code == 0, result.output
    got = _read(tmp_path / "f.laplacian.tif")
    want = _expected(x, np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], float))[:, :, 0]
    np.testing.assert_allclose(got, want, atol=1e-3)


@pytest.mark.parametrize(
    ("make", "args", "message"),
    [
        ("missing", [], "no such file"),
        ("text", [], "not an image Pillow can read"),
        ("truncated", [], "corrupt or truncated image"),
        (
            "ok",
            ["-k", "box:size=9", "--padding", "valid"],
            "larger than the padded input",
        ),
        ("ok", ["--stride", "0"], "stride must be >= 1"),
        ("ok", ["--stride", "a"], "--stride must be N or ROWS,COLS"),
        ("ok", ["-k", "nosuch"], "unknown kernel 'nosuch'"),
        ("ok", ["--float"], "--float writes one-channel TIFFs"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    runner: CliRunner, tmp_path: Path, make: str, args: list[str], message: str
) -> None:
    src = tmp_path / "in.png"
    if make == "ok":
        Image.fromarray(_rng().integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(src)
    elif make == "text":
        src.write_text("hello", encoding="utf-8")
    elif make == "truncated":
        Image.fromarray(_rng().integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(src)
        src.write_bytes(src.read_bytes()[:200])
    before = sorted(p.name for p in tmp_path.iterdir())
    kernel = [] if "-k" in args else ["-k", "sobel"]
    result = runner.invoke(app, ["apply", str(src), *kernel, *args], env=ENV)
    # A header that reads but pixels that do not decode fail that pair: exit 1.
    assert result.exit_code == (1 if make == "truncated" else 2), result.output
    assert "Error:" in result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_never_overwrites_the_input(runner: CliRunner, tmp_path: Path) -> None:
    src = tmp_path / "same.png"
    Image.new("L", (4, 4), 7).save(src)
    before = src.read_bytes()
    result = runner.invoke(
        app, ["apply", str(src), "-k", "sobel", "-o", str(src)], env=ENV
    )
    assert result.exit_code == 2, result.output
    assert "would overwrite the input" in result.output
    assert src.read_bytes() == before


def test_one_output_file_for_several_outputs_is_refused(
    runner: CliRunner, tmp_path: Path
) -> None:
    Image.new("L", (4, 4)).save(tmp_path / "a.png")
    result = runner.invoke(
        app,
        [
            "apply",
            str(tmp_path / "a.png"),
            "-k",
            "sobel",
            "-k",
            "box",
            "-o",
            str(tmp_path / "x.png"),
        ],
        env=ENV,
    )
    assert result.exit_code == 2
    assert "give a folder" in result.output


def test_apply_in_a_subprocess_on_a_sample_photo(tmp_path: Path) -> None:
    sample = Path(__file__).resolve().parents[1] / "sample_images" / "coffee.png"
    env = {**os.environ, **ENV}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "convcli",
            "apply",
            str(sample),
            "-k",
            "sobel",
            "-o",
            str(tmp_path),
            "--explain",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = tmp_path / "coffee.sobel.png"
    with Image.open(out) as img:
        assert img.size == (600, 400)
    assert "400 x 600 x 3" in done.stdout
    assert "why" in done.stdout


# ---------------------------------------------------------------------------
# --like: the same kernel gives the peer library's result

ASYM3 = np.array([[1.0, 2.0, 0.0], [-1.0, 0.5, 3.0], [0.0, -2.0, 1.0]])
ASYM4 = np.array(
    [
        [1.0, 0.0, 2.0, -1.0],
        [0.5, 1.0, 0.0, 0.0],
        [0.0, 3.0, -1.0, 1.0],
        [2.0, 0.0, 0.0, 1.0],
    ]
)


def _float_image(path: Path, shape: tuple[int, int] = (13, 17)) -> np.ndarray:
    x = _rng().uniform(0, 1, shape).astype(np.float32)
    Image.fromarray(x).save(path)
    return x


def _kernel_file(tmp_path: Path, w: np.ndarray) -> str:
    path = tmp_path / "asym.txt"
    path.write_text(
        "\n".join(" ".join(f"{v:g}" for v in row) for row in w) + "\n", encoding="utf-8"
    )
    return str(path)


@pytest.mark.parametrize("w", [ASYM3, ASYM4], ids=["3x3", "4x4"])
def test_like_opencv_matches_filter2d(
    runner: CliRunner, tmp_path: Path, w: np.ndarray
) -> None:
    cv2 = pytest.importorskip("cv2")
    x = _float_image(tmp_path / "x.tif")
    args = [
        "apply",
        str(tmp_path / "x.tif"),
        "-k",
        _kernel_file(tmp_path, w),
        "--like",
        "opencv",
        "--float",
    ]
    result = runner.invoke(app, args, env=ENV)
    assert result.exit_code == 0, result.output
    got = _read(tmp_path / "x.asym.like-opencv.tif")
    want = cv2.filter2D(x, -1, w.astype(np.float32))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # uint8 in, uint8 out: OpenCV saturates (and rounds half to even): within 1
    u8 = _rng().integers(0, 256, (11, 12), dtype=np.uint8)
    Image.fromarray(u8).save(tmp_path / "u.png")
    args = [
        "apply",
        str(tmp_path / "u.png"),
        "-k",
        _kernel_file(tmp_path, w),
        "--like",
        "opencv",
    ]
    assert runner.invoke(app, args, env=ENV).exit_code == 0
    diff = _read(tmp_path / "u.asym.like-opencv.png").astype(int) - cv2.filter2D(
        u8, -1, w.astype(np.float32)
    ).astype(int)
    assert np.abs(diff).max() <= 1


@pytest.mark.parametrize("w", [ASYM3, ASYM4], ids=["3x3", "4x4"])
def test_like_scipy_matches_ndimage_correlate(
    runner: CliRunner, tmp_path: Path, w: np.ndarray
) -> None:
    x = _float_image(tmp_path / "x.tif")
    args = [
        "apply",
        str(tmp_path / "x.tif"),
        "-k",
        _kernel_file(tmp_path, w),
        "--like",
        "scipy",
        "--float",
    ]
    result = runner.invoke(app, args, env=ENV)
    assert result.exit_code == 0, result.output
    want = ndimage.correlate(x.astype(np.float64), w, mode="reflect")
    np.testing.assert_allclose(
        _read(tmp_path / "x.asym.like-scipy.tif"), want, rtol=1e-5, atol=1e-5
    )


def test_like_pillow_matches_imagefilter_kernel(
    runner: CliRunner, tmp_path: Path
) -> None:
    from PIL import ImageFilter

    u8 = _rng().integers(0, 256, (14, 15), dtype=np.uint8)
    Image.fromarray(u8).save(tmp_path / "p.png")
    w = np.array([[1.0, 2.0, 0.0], [0.0, 4.0, 1.0], [0.0, 0.0, 1.0]])
    args = [
        "apply",
        str(tmp_path / "p.png"),
        "-k",
        _kernel_file(tmp_path, w),
        "--like",
        "pillow",
    ]
    result = runner.invoke(app, args, env=ENV)
    assert result.exit_code == 0, result.output
    want = np.asarray(
        Image.fromarray(u8).filter(ImageFilter.Kernel((3, 3), w.ravel().tolist()))
    )
    got = _read(tmp_path / "p.asym.like-pillow.png")
    # Pillow copies its outermost pixels unfiltered: compare the interior
    assert np.abs(got[1:-1, 1:-1].astype(int) - want[1:-1, 1:-1].astype(int)).max() <= 1


def test_like_torch_matches_conv2d(runner: CliRunner, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    x = _float_image(tmp_path / "x.tif")
    args = [
        "apply",
        str(tmp_path / "x.tif"),
        "-k",
        _kernel_file(tmp_path, ASYM4),
        "--like",
        "torch",
        "--float",
    ]
    assert runner.invoke(app, args, env=ENV).exit_code == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch: even kernel with "same"
        t = torch.nn.functional.conv2d(
            torch.from_numpy(x)[None, None],
            torch.from_numpy(ASYM4.astype(np.float32))[None, None],
            padding="same",
        )
    np.testing.assert_allclose(
        _read(tmp_path / "x.asym.like-torch.tif"), t[0, 0].numpy(), rtol=1e-5, atol=1e-5
    )


def _imagemagick() -> str:
    """ImageMagick's convert (7's ``magick``, 6's ``convert`` or Debian's ``convert-im6.q16``)."""
    import shutil

    for name in ("magick", "convert", "convert-im6.q16"):
        convert = shutil.which(name)
        if convert is None:
            continue
        version = subprocess.run(
            [convert, "-version"], capture_output=True, text=True, check=False
        )
        if "Version: ImageMagick" in version.stdout:
            return convert
    pytest.skip("ImageMagick is not installed (.ci/run installs it)")


@pytest.mark.parametrize("w", [ASYM3, ASYM4], ids=["3x3", "4x4"])
def test_like_imagemagick_matches_morphology_convolve(
    runner: CliRunner, tmp_path: Path, w: np.ndarray
) -> None:
    convert = _imagemagick()
    u8 = _rng().integers(
        0, 40, (12, 13), dtype=np.uint8
    )  # small values: nothing clips at 255
    Image.fromarray(u8).save(tmp_path / "m.png")
    size = f"{w.shape[1]}x{w.shape[0]}"
    spec = f"{size}: " + " ".join(",".join(f"{v:g}" for v in row) for row in w)
    subprocess.run(
        [
            convert,
            str(tmp_path / "m.png"),
            "-morphology",
            "Convolve",
            spec,
            str(tmp_path / "im.png"),
        ],
        check=True,
    )
    args = [
        "apply",
        str(tmp_path / "m.png"),
        "-k",
        _kernel_file(tmp_path, w),
        "--like",
        "imagemagick",
    ]
    result = runner.invoke(app, args, env=ENV)
    assert result.exit_code == 0, result.output
    want = _read(tmp_path / "im.png")
    want = want if want.ndim == 2 else want[:, :, 0]
    assert (
        np.abs(
            _read(tmp_path / "m.asym.like-imagemagick.png").astype(int)
            - want.astype(int)
        ).max()
        <= 1
    )


def test_montage_tiles_every_output_with_labels(
    runner: CliRunner, tmp_path: Path
) -> None:
    Image.fromarray(_rng().integers(0, 256, (20, 30), dtype=np.uint8)).save(
        tmp_path / "m.png"
    )
    bank = tmp_path / "pair.txt"
    bank.write_text("--- a\n1 0\n--- b\n0 1\n--- c\n1 1\n", encoding="utf-8")
    sheet = tmp_path / "sheet.png"
    args = [
        "apply",
        str(tmp_path / "m.png"),
        "-k",
        str(bank),
        "--montage",
        str(sheet),
        "-o",
        str(tmp_path / "o"),
    ]
    result = runner.invoke(app, args, env=ENV)
    assert result.exit_code == 0, result.output
    layout = montage_layout([(20, 30)] * 3, ["m pair [a]", "m pair [b]", "m pair [c]"])
    with Image.open(sheet) as img:
        # 3 tiles: 2 columns, 2 rows of a label band above 20 x 30
        assert img.size == layout.size[::-1]
        assert (layout.columns, layout.rows) == (2, 2)
        tile = np.asarray(img.convert("L"))[layout.band : layout.band + 20, 0:30]
    np.testing.assert_array_equal(tile, _read(tmp_path / "o" / "m.pair.a.png"))


def test_alpha_premultiply_keeps_transparent_colour_out(
    runner: CliRunner, tmp_path: Path
) -> None:
    rgba = np.zeros((6, 8, 4), np.uint8)
    rgba[:, :4] = (0, 0, 0, 255)  # opaque black on the left
    rgba[:, 4:] = (255, 0, 0, 0)  # transparent red on the right
    Image.fromarray(rgba).save(tmp_path / "t.png")
    for mode, out in [("carry", "carry"), ("premultiply", "pre")]:
        args = [
            "apply",
            str(tmp_path / "t.png"),
            "-k",
            "box:size=3",
            "--alpha",
            mode,
            "-o",
            str(tmp_path / f"{out}.png"),
        ]
        result = runner.invoke(app, args, env=ENV)
        assert result.exit_code == 0, result.output
    carry, pre = _read(tmp_path / "carry.png"), _read(tmp_path / "pre.png")
    # Column 3 is opaque, next to the transparent red: carried, the red bleeds in.
    assert carry[2, 3, 0] == 85
    np.testing.assert_array_equal(carry[:, :, 3], rgba[:, :, 3])
    assert pre[2, 3, 0] == 0
    # premultiplied, alpha is filtered too: column 3 sees 6 of 9 opaque pixels
    assert pre[2, 3, 3] == 170
    assert pre[2, 0, 3] == 255


def test_alpha_premultiply_refuses_a_bank(runner: CliRunner, tmp_path: Path) -> None:
    Image.new("RGBA", (5, 5)).save(tmp_path / "b.png")
    result = runner.invoke(
        app,
        ["apply", str(tmp_path / "b.png"), "-k", "sobel", "--alpha", "premultiply"],
        env=ENV,
    )
    assert result.exit_code == 2
    assert "--alpha premultiply needs a 2-D kernel; sobel is a bank" in result.output


def test_decompression_bomb_limit_and_max_pixels(
    runner: CliRunner, tmp_path: Path
) -> None:
    Image.new("L", (300, 200)).save(tmp_path / "bomb.png")
    old = Image.MAX_IMAGE_PIXELS
    try:
        Image.MAX_IMAGE_PIXELS = 10_000  # stand-in for Pillow's 89 megapixels
        result = runner.invoke(
            app, ["apply", str(tmp_path / "bomb.png"), "-k", "box"], env=ENV
        )
        assert result.exit_code == 2, result.output
        assert "more pixels than the limit of 10000" in result.output
        assert not (tmp_path / "bomb.box.png").exists()
        raised = runner.invoke(
            app,
            [
                "apply",
                str(tmp_path / "bomb.png"),
                "-k",
                "box",
                "--max-pixels",
                "100000",
            ],
            env=ENV,
        )
        assert raised.exit_code == 0, raised.output
    finally:
        Image.MAX_IMAGE_PIXELS = old


def test_unknown_option_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    Image.new("L", (4, 4)).save(tmp_path / "u.png")
    result = runner.invoke(
        app, ["apply", str(tmp_path / "u.png"), "-k", "box", "--bogus"], env=ENV
    )
    assert result.exit_code == 2
    assert "No such option: --bogus" in result.output
    assert list(tmp_path.iterdir()) == [tmp_path / "u.png"]


def test_every_like_name_is_described() -> None:
    from convcli.names import LIKE_NAMES
    from convcli.pipeline import LIKES

    assert set(LIKES) == set(LIKE_NAMES)


def test_compress_level_trades_size_for_time(runner: CliRunner, tmp_path: Path) -> None:
    x = np.tile(np.arange(64, dtype=np.uint8), (64, 3)).reshape(64, 192)
    Image.fromarray(x).save(tmp_path / "z.png")
    sizes = {}
    for level in ("0", "9"):
        out = tmp_path / f"z{level}.png"
        args = [
            "apply",
            str(tmp_path / "z.png"),
            "-k",
            "identity",
            "--compress-level",
            level,
            "-o",
            str(out),
        ]
        result = runner.invoke(app, args, env=ENV)
        assert result.exit_code == 0, result.output
        np.testing.assert_array_equal(_read(out), x)
        sizes[level] = out.stat().st_size
    assert sizes["9"] < sizes["0"]
    bad = runner.invoke(
        app,
        ["apply", str(tmp_path / "z.png"), "-k", "identity", "--compress-level", "12"],
        env=ENV,
    )
    assert bad.exit_code == 2
