"""Issue 17 item 6: signed maps at a fixed mid-grey, edge strengths at a fixed gain.

``offset`` and ``gain`` scale by the kernel's largest possible response
(`Kernel.gains`), never by the image: a flat image is mid-grey under the
Laplacian, and one edge gives one pixel value in every image of a batch.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from convcli import pipeline
from convcli.cli import app
from convcli.images import to_pixels
from convcli.kernels import Kernel, load_kernel
from convcli.picture import BOOST, ImageError

ENV = {"COLUMNS": "120", "NO_COLOR": "1", "TERM": "dumb"}
U8 = np.dtype(np.uint8)
U16 = np.dtype(np.uint16)

SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float)
SOBEL_Y = SOBEL_X.T
LAPLACIAN = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], float)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


def _correlate(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Float64 correlation with 'same' padding and border reflect, as apply's defaults."""
    kh, kw = w.shape
    p = np.pad(x.astype(np.float64), ((kh // 2,) * 2, (kw // 2,) * 2), mode="reflect")
    out = np.zeros(x.shape, np.float64)
    for u in range(kh):
        for v in range(kw):
            out += w[u, v] * p[u : u + x.shape[0], v : v + x.shape[1]]
    return out


def _half_up(y: np.ndarray, peak: float) -> np.ndarray:
    return np.clip(np.floor(y + 0.5), 0, peak)


def _one_output(folder: Path, stem: str) -> Path:
    (found,) = [p for p in folder.rglob(f"{stem}.*") if p.is_file()]
    return found


# --- the gain: against brute force over the corners of the input box ---------


def _corners(n: int, peak: float) -> np.ndarray:
    """Every input of n taps, each 0 or peak: (2**n, n)."""
    return np.array(list(itertools.product((0.0, peak), repeat=n)))


def _brute_gains(kernel: Kernel, peak: float) -> tuple[float, ...]:
    """The largest |output| over every 0/peak input, by trying them all."""
    w = kernel.weights if kernel.is_bank else kernel.weights[np.newaxis, np.newaxis]
    rows = w.reshape(w.shape[0], -1)
    bias = np.zeros(rows.shape[0]) + (np.asarray(kernel.bias) if kernel.bias else 0)
    outs = _corners(rows.shape[1], peak) @ rows.T + bias  # (corners, D)
    if not kernel.is_bank or kernel.combine == "stack":
        return tuple(float(v) for v in np.abs(outs).max(axis=0))
    if kernel.combine == "magnitude":
        return (float(np.sqrt((outs**2).sum(axis=1)).max()),)
    if kernel.combine == "sum":
        return (float(np.abs(outs.sum(axis=1)).max()),)
    return (float(np.abs(outs.max(axis=1)).max()),)  # max


@pytest.mark.parametrize(
    "name",
    [
        "laplacian",
        "laplacian8",
        "sobel_x",
        "sobel",
        "prewitt",
        "scharr",
        "roberts",
        "kirsch",
        "compass",
        "outline",
        "emboss",
        "frei_chen",
    ],
)
@pytest.mark.parametrize("peak", [255.0, 65535.0])
def test_catalogue_gains_equal_brute_force(name: str, peak: float) -> None:
    kernel = load_kernel(name)
    np.testing.assert_allclose(
        kernel.gains(peak), _brute_gains(kernel, peak), rtol=1e-12
    )


def test_hand_worked_gains() -> None:
    assert load_kernel("laplacian").gains(255) == (1020.0,)  # 255 * (1+1+1+1)
    assert load_kernel("sobel_x").gains(255) == (1020.0,)  # 255 * (1+2+1)
    # gx = 4 and gy = 2 at once: the ones of rows 2-3 and of column 3
    assert load_kernel("sobel").gains(1) == pytest.approx((20**0.5,))
    assert load_kernel("kirsch").gains(1) == (15.0,)  # three 5s
    # emboss: x - x' + 128; its largest is 255 + 128
    assert load_kernel("emboss").gains(255) == (383.0,)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("combine", ["magnitude", "sum", "max", "stack"])
def test_random_small_bank_gains_equal_brute_force(seed: int, combine: str) -> None:
    rng = np.random.default_rng(seed)
    kh, kw = (2, 2) if seed % 3 == 0 else (3, 3) if seed % 3 == 1 else (2, 3)
    depth = 2 if combine == "magnitude" else int(rng.integers(1, 4))
    weights = rng.normal(size=(depth, 1, kh, kw)).round(2)
    weights[rng.random(weights.shape) < 0.2] = 0.0
    bias = tuple(rng.normal(size=depth).round(1)) if seed % 2 else ()
    kernel = Kernel("k", weights, bias=bias, combine=combine)
    got, want = kernel.gains(1.0), _brute_gains(kernel, 1.0)
    if combine == "max":
        # exact when the largest |value| is a positive one, else a bound
        rows = weights.reshape(depth, -1)
        top = (_corners(kh * kw, 1.0) @ rows.T + (bias or 0)).max()
        assert got[0] >= want[0] - 1e-9
        if top >= want[0]:
            assert got[0] == pytest.approx(want[0], rel=1e-9)
        return
    np.testing.assert_allclose(got, want, rtol=1e-9)


def test_a_bank_over_channels_counts_every_channel() -> None:
    rng = np.random.default_rng(5)
    weights = rng.normal(size=(2, 3, 2, 2)).round(2)  # 2 filters over RGB
    kernel = Kernel("k", weights, combine="magnitude")
    np.testing.assert_allclose(kernel.gains(2.0), _brute_gains(kernel, 2.0), rtol=1e-9)


def test_magnitude_of_three_filters_is_bounded() -> None:
    rng = np.random.default_rng(9)
    kernel = Kernel("k", rng.normal(size=(3, 1, 3, 3)), combine="magnitude")
    (bound,) = kernel.gains(1.0)
    (exact,) = _brute_gains(kernel, 1.0)
    assert exact <= bound + 1e-9


def test_a_kernel_of_zeros_maps_to_the_zero_point() -> None:
    kernel = Kernel("zeros", np.zeros((3, 3)))
    assert kernel.gains(255) == (0.0,)
    v = np.array([0.0, 0.0])
    np.testing.assert_array_equal(to_pixels(v, "offset", 255, U8, gain=0.0), [128, 128])
    np.testing.assert_array_equal(to_pixels(v, "gain", 255, U8, gain=0.0), [0, 0])


# --- to_pixels: the formulas ----------------------------------------------


def test_offset_and_gain_formulas() -> None:
    g = 1020.0
    v = np.array([-g, -g / BOOST, -1.0, 0.0, 1.0, g / BOOST / 2, g / BOOST, g])
    want_offset = _half_up(127.5 + 127.5 * BOOST * v / g, 255)
    np.testing.assert_array_equal(to_pixels(v, "offset", 255, U8, gain=g), want_offset)
    assert want_offset[3] == 128
    want_gain = _half_up(255 * BOOST * v / g, 255)
    np.testing.assert_array_equal(to_pixels(v, "gain", 255, U8, gain=g), want_gain)
    # 16 bits: zero at 32768
    zero16 = to_pixels(np.zeros(3), "offset", 65535, U16, gain=4 * 65535.0)
    np.testing.assert_array_equal(zero16, [32768] * 3)
    assert zero16.dtype == np.uint16
    # floats are written as they are
    raw = np.array([-5.5, 0.25])
    np.testing.assert_array_equal(
        to_pixels(raw, "offset", 1.0, np.dtype(np.float32)), raw.astype(np.float32)
    )


def test_offset_without_a_gain_is_an_error() -> None:
    with pytest.raises(ImageError, match=r"range offset scales by the kernel's gain"):
        to_pixels(np.zeros(2), "offset", 255, U8)


# --- end to end --------------------------------------------------------------


def test_catalogue_defaults() -> None:
    for name in ("laplacian", "laplacian8", "log", "dog", "sobel_x", "farid_y"):
        assert load_kernel(name).range == "offset", name
    for name in ("sobel", "scharr", "prewitt", "farid", "roberts", "kirsch", "compass"):
        assert load_kernel(name).range == "gain", name
    assert load_kernel("emboss").range == "clip"
    assert load_kernel("outline").range == "abs"


@pytest.mark.parametrize("level", [0, 77, 255])
def test_constant_image_is_exactly_mid_grey_under_laplacian(
    runner: CliRunner, tmp_path: Path, level: int
) -> None:
    Image.fromarray(np.full((9, 13), level, np.uint8)).save(tmp_path / "c.png")
    result = runner.invoke(
        app, ["apply", str(tmp_path / "c.png"), "-k", "laplacian"], env=ENV
    )
    assert result.exit_code == 0, result.output
    got = _read(_one_output(tmp_path, "c.laplacian"))
    np.testing.assert_array_equal(got, np.full((9, 13), 128, np.uint8))


def test_constant_sixteen_bit_image_is_32768_under_laplacian(
    runner: CliRunner, tmp_path: Path
) -> None:
    Image.fromarray(np.full((5, 6), 40000, np.uint16)).save(tmp_path / "d.png")
    result = runner.invoke(
        app, ["apply", str(tmp_path / "d.png"), "-k", "laplacian"], env=ENV
    )
    assert result.exit_code == 0, result.output
    got = _read(_one_output(tmp_path, "d.laplacian"))
    assert got.dtype in (np.uint16, np.int32)
    np.testing.assert_array_equal(got, np.full((5, 6), 32768))


def _edge_images() -> tuple[np.ndarray, np.ndarray]:
    """Two gray images with the same 60 -> 140 step at column 8; the second also
    has a black-and-white square far from it, which a per-image scale would see."""
    low = np.full((16, 32), 60, np.uint8)
    low[:, 8:] = 140
    high = low.copy()
    high[4:12, 20:28] = 0
    high[6:10, 22:26] = 255
    return low, high


@pytest.mark.parametrize("kernel", ["sobel", "laplacian"])
def test_batch_maps_the_same_edge_to_the_same_value(
    runner: CliRunner, tmp_path: Path, kernel: str
) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    low, high = _edge_images()
    Image.fromarray(low).save(src / "low.png")
    Image.fromarray(high).save(src / "high.png")
    result = runner.invoke(
        app, ["batch", str(src), "-k", kernel, "-o", str(out)], env=ENV
    )
    assert result.exit_code == 0, result.output
    a = _read(_one_output(out, f"low.{kernel}"))
    b = _read(_one_output(out, f"high.{kernel}"))
    edge = np.s_[:, 5:12]  # the step and its neighbours, far from the square
    np.testing.assert_array_equal(a[edge], b[edge])
    assert a[edge].max() > (128 if kernel == "laplacian" else 0)  # the edge shows
    # the values are the formula's, from the kernel's gain
    w = {"sobel": None, "laplacian": LAPLACIAN}[kernel]
    if w is None:
        v = np.hypot(_correlate(low, SOBEL_X), _correlate(low, SOBEL_Y))
        want = _half_up(255 * BOOST * v / (20**0.5 * 255), 255)
    else:
        v = _correlate(low, w)
        want = _half_up(127.5 + 127.5 * BOOST * v / 1020, 255)
    assert np.abs(a.astype(float) - want).max() <= 1  # float32 against float64
    # ... where rescale, per image, would not
    result = runner.invoke(
        app,
        [
            "batch",
            str(src),
            "-k",
            kernel,
            "-o",
            str(tmp_path / "r"),
            "--range",
            "rescale",
        ],
        env=ENV,
    )
    assert result.exit_code == 0, result.output
    ra = _read(_one_output(tmp_path / "r", f"low.{kernel}"))
    rb = _read(_one_output(tmp_path / "r", f"high.{kernel}"))
    assert not np.array_equal(ra[edge], rb[edge])


def _rescale(v: np.ndarray, peak: float = 255) -> np.ndarray:
    """The per-image stretch: min(v, 0)..max(v) onto 0..peak, halves up."""
    lo, hi = min(v.min(), 0.0), v.max()
    return _half_up((v - lo) * peak / (hi - lo), peak)


@pytest.mark.parametrize("kernel", ["sobel", "laplacian", "sobel_x"])
def test_range_rescale_keeps_the_per_image_stretch(
    runner: CliRunner, tmp_path: Path, kernel: str
) -> None:
    x = np.random.default_rng(3).integers(0, 256, (17, 21), dtype=np.uint8)
    Image.fromarray(x).save(tmp_path / "g.png")
    result = runner.invoke(
        app,
        ["apply", str(tmp_path / "g.png"), "-k", kernel, "--range", "rescale"],
        env=ENV,
    )
    assert result.exit_code == 0, result.output
    if kernel == "sobel":
        v = np.hypot(_correlate(x, SOBEL_X), _correlate(x, SOBEL_Y))
    else:
        v = _correlate(x, LAPLACIAN if kernel == "laplacian" else SOBEL_X)
    got = _read(_one_output(tmp_path, f"g.{kernel}")).astype(float)
    assert np.abs(got - _rescale(v)).max() <= 1
    assert got.min() == 0
    assert got.max() == 255


def test_float_output_is_unchanged(runner: CliRunner, tmp_path: Path) -> None:
    x = np.random.default_rng(4).integers(0, 256, (7, 8), dtype=np.uint8)
    Image.fromarray(x).save(tmp_path / "f.png")
    out = tmp_path / "f.tif"
    result = runner.invoke(
        app,
        [
            "apply",
            str(tmp_path / "f.png"),
            "-k",
            "laplacian",
            "--float",
            "-o",
            str(out),
        ],
        env=ENV,
    )
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(_read(out), _correlate(x, LAPLACIAN), atol=1e-4)


def test_an_animation_under_a_fixed_range_needs_no_first_pass(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_first_pass(*args: object, **kwargs: object) -> tuple[float, float]:
        msg = "offset and gain need no first pass"
        raise AssertionError(msg)

    monkeypatch.setattr(pipeline, "_rescale_bounds", no_first_pass)
    flat = Image.fromarray(np.full((8, 8), 90, np.uint8))
    edge = np.full((8, 8), 90, np.uint8)
    edge[:, 4:] = 200
    flat.save(
        tmp_path / "a.png",
        save_all=True,
        append_images=[Image.fromarray(edge)],
        duration=100,
    )
    result = runner.invoke(
        app, ["apply", str(tmp_path / "a.png"), "-k", "laplacian"], env=ENV
    )
    assert result.exit_code == 0, result.output
    with Image.open(_one_output(tmp_path, "a.laplacian")) as img:
        assert getattr(img, "n_frames", 1) == 2
        img.seek(0)
        first = np.asarray(img.convert("L"))
        img.seek(1)
        second = np.asarray(img.convert("L"))
    np.testing.assert_array_equal(first, np.full((8, 8), 128))
    want = _half_up(127.5 + 127.5 * BOOST * _correlate(edge, LAPLACIAN) / 1020, 255)
    assert np.abs(second.astype(float) - want).max() <= 1
