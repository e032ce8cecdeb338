"""A TIFF streamed band by band, as a user drives it: the in-memory result, the CLI, memory, stops.

`convcli.pipeline.apply_one` with ``stream=True`` and with ``stream=False``
give the same pixels over every geometry, border, range, alpha mode and
kernel kind; ``convcli apply --stream`` refuses what it cannot stream with
exit 2, writes a tiled BigTIFF, keeps its memory to the band, and leaves
nothing behind when it is stopped or its input is cut short.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from convcli.cli import app
from convcli.errors import ConvcliError
from convcli.kernels import load_kernel
from convcli.pipeline import ApplyOptions, apply_one

ENV = {"COLUMNS": "120", "NO_COLOR": "1", "TERM": "dumb"}
CONVCLI = [sys.executable, "-m", "convcli"]


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _tiff(
    path: Path,
    x: np.ndarray,
    *,
    tile: int | None = 16,
    rowsperstrip: int | None = None,
    compression: str | None = None,
) -> Path:
    """Write (H, W) or (H, W, C) as a tiled (or striped) TIFF; 2 and 4 channels with an alpha."""
    c = 1 if x.ndim == 2 else x.shape[2]
    layout: dict[str, Any] = (
        {"tile": (tile, tile)} if tile else {"rowsperstrip": rowsperstrip}
    )
    tifffile.imwrite(
        path,
        x,
        photometric="rgb" if c >= 3 else "minisblack",
        extrasamples=["unassalpha"] if c in (2, 4) else None,
        compression=compression,
        **layout,
    )
    return path


def _apply(runner: CliRunner, *args: str) -> Any:
    return runner.invoke(app, ["apply", *args], env=ENV)


def _streamed_row(text: str) -> str | None:
    """Return the ``streamed`` row of an apply table (None: filtered in memory)."""
    for line in text.splitlines():
        words = line.strip("│|┃ ").split()
        if words[:1] == ["streamed"]:
            return line
    return None


def _one_line_error(text: str) -> str:
    """Return the one ``Error:`` line of a run's output (and check there is no traceback)."""
    assert "Traceback" not in text, text
    errors = [line for line in text.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, text
    return errors[0]


# ---------------------------------------------------------------------------
# 1. Streamed and in memory: the same pixels


BORDERS = ["constant", "reflect", "symmetric", "edge", "wrap"]
PADDINGS = st.one_of(
    st.sampled_from(["same", "valid"]),
    st.integers(0, 30),
    st.tuples(
        st.tuples(st.integers(0, 30), st.integers(0, 30)),
        st.tuples(st.integers(0, 30), st.integers(0, 30)),
    ),
)
# 2-D odd and even sized, separable or not; banks combined (sobel: magnitude,
# compass: max) and stacked (frei_chen; a .npy of 1-channel filters); a bank
# over the image's C channels (a .npy of shape (D, C, kh, kw)), made per example.
KERNELS = [
    "box:size=4",
    "gaussian:sigma=1",
    "gaussian:sigma=3",  # 19 x 19: a halo taller than a tile and most bands
    "laplacian",
    "unsharp",
    "1,2;3,4;5,-6",
    "sobel",
    "compass",
    "frei_chen",
    "stacked.npy",
    "over-channels.npy",
]
# Kernels summing to 1: colour x alpha through them divides by an alpha that
# stays away from 0 (the others go with --alpha carry; banks refuse premultiply).
POSITIVE = {"box:size=4", "gaussian:sigma=1", "gaussian:sigma=3", "unsharp"}
BANKS = {"sobel", "compass", "frei_chen", "stacked.npy", "over-channels.npy"}


@settings(max_examples=150, deadline=None)
@given(
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    c=st.integers(1, 4),
    sixteen=st.booleans(),
    tiled=st.booleans(),
    rowsperstrip=st.sampled_from([1, 3, 5, 7, 11]),
    kspec=st.sampled_from(KERNELS),
    border=st.sampled_from(BORDERS),
    cval=st.sampled_from([0.0, 7.5, 200.0]),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=PADDINGS,
    band=st.sampled_from([None, 1, 2, 3, 5, 7, 13, 64]),
    value_range=st.sampled_from([None, "clip", "abs", "rescale", "offset", "gain"]),
    float_output=st.booleans(),
    alpha=st.sampled_from(["carry", "premultiply"]),
    channels=st.sampled_from(["keep", "keep", "gray", "rgb"]),
    method=st.sampled_from(["auto", "auto", "direct", "fft"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_streamed_pixels_equal_the_in_memory_ones(
    h: int,
    w: int,
    c: int,
    sixteen: bool,
    tiled: bool,
    rowsperstrip: int,
    kspec: str,
    border: str,
    cval: float,
    stride: tuple[int, int],
    dilation: tuple[int, int],
    padding: Any,
    band: int | None,
    value_range: str | None,
    float_output: bool,
    alpha: str,
    channels: str,
    method: str,
    seed: int,
) -> None:
    rng = np.random.default_rng(seed)
    dtype = np.uint16 if sixteen else np.uint8
    peak = float(np.iinfo(dtype).max)
    x = rng.integers(0, int(peak) + 1, (h, w, c), dtype=dtype)
    if kspec not in POSITIVE | BANKS:
        alpha = "carry"
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        src = _tiff(
            d / "in.tif",
            x if c > 1 else x[:, :, 0],
            tile=16 if tiled else None,
            rowsperstrip=rowsperstrip,
        )
        colour = (
            1 if channels == "gray" else 3 if channels == "rgb" else c - (c in (2, 4))
        )
        if kspec == "stacked.npy":
            np.save(d / kspec, rng.standard_normal((2, 1, 3, 2)).astype(np.float32))
        if kspec == "over-channels.npy":
            bank = rng.standard_normal((2, colour, 2, 3)).astype(np.float32)
            np.save(d / kspec, bank)
        kernel = load_kernel(str(d / kspec) if kspec.endswith(".npy") else kspec)
        common: dict[str, Any] = {
            "stride": stride,
            "dilation": dilation,
            "padding": padding,
            "border": border,
            "cval": cval,
            "range": value_range,
            "float_output": float_output,
            "alpha": alpha,
            "channels": channels,
            "method": method,
        }
        (d / "memory").mkdir()
        (d / "streamed").mkdir()
        try:
            whole = apply_one(
                src,
                kernel,
                ApplyOptions(stream=False, **common),
                d / "memory",
                folder=True,
            )
        except (ConvcliError, ValueError):
            # what memory refuses (a window bigger than the padded image, --float
            # of 3 channels, a bank over other channels...) streaming refuses too
            with pytest.raises((ConvcliError, ValueError)):
                apply_one(
                    src,
                    kernel,
                    ApplyOptions(stream=True, band_rows=band, **common),
                    d / "streamed",
                    folder=True,
                )
            assume(False)
        # An FFT's rounding noise (1e-7 of the map) is no pixel unless something
        # magnifies it: colour x alpha divided by an alpha filtered to near 0, or
        # rescale of a map whose true range is 0 (every window in the padding).
        # Memory itself gives noise there; `test_fft_rescale_streamed` has the rest.
        if whole.method == "fft":
            assume(not (alpha == "premultiply" and c in (2, 4)))
            assume((value_range or kernel.range) != "rescale" or float_output)
        streamed = apply_one(
            src,
            kernel,
            ApplyOptions(stream=True, band_rows=band, **common),
            d / "streamed",
            folder=True,
        )
        assert streamed.method == whole.method
        names = sorted(p.name for p in (d / "memory").iterdir())
        assert names == sorted(p.name for p in (d / "streamed").iterdir())
        assert [o.shape for o in streamed.outputs] == [o.shape for o in whole.outputs]
        scale = peak * float(np.abs(kernel.weights).sum()) + abs(cval)
        for name in names:
            want = tifffile.imread(d / "memory" / name)
            got = tifffile.imread(d / "streamed" / name)
            assert got.dtype == want.dtype, name
            assert got.shape == want.shape, name
            if float_output:
                assert got.dtype == np.float32
                finite = np.isfinite(want)
                np.testing.assert_array_equal(finite, np.isfinite(got))
                tol = 1e-5 * max(float(np.abs(want[finite]).max(initial=0)), scale)
                np.testing.assert_allclose(got[finite], want[finite], rtol=0, atol=tol)
                continue
            off = np.abs(got.astype(np.int64) - want.astype(np.int64))
            # float32 rounding at .5 boundaries: one level, and rarely (a 16-bit
            # level is 256 times finer: a bank's sums in another order, 1e-7 of
            # the map apart, cross more of its boundaries)
            assert off.max(initial=0) <= 1, (name, off.max())
            if whole.method != "fft":
                rare = off.size // (10 if got.dtype == np.uint16 else 100)
                assert np.count_nonzero(off) <= max(2, rare), name


@pytest.mark.parametrize("kspec", ["gaussian:sigma=3", "sobel", "log"])
@pytest.mark.parametrize("sixteen", [False, True])
def test_fft_rescale_streamed(tmp_path: Path, kspec: str, sixteen: bool) -> None:
    """FFT and rescale's first pass, on an image whose map has a true range."""
    dtype = np.uint16 if sixteen else np.uint8
    x = np.random.default_rng(9).integers(0, np.iinfo(dtype).max, (61, 47, 3), dtype)
    src = _tiff(tmp_path / "a.tif", x)
    kernel = load_kernel(kspec)
    options = {"method": "fft", "range": "rescale", "border": "wrap"}
    whole = apply_one(
        src, kernel, ApplyOptions(stream=False, **options), tmp_path / "m.tif"
    )
    streamed = apply_one(
        src,
        kernel,
        ApplyOptions(stream=True, band_rows=11, **options),
        tmp_path / "s.tif",
    )
    assert whole.method == streamed.method == "fft"
    want = tifffile.imread(tmp_path / "m.tif")
    got = tifffile.imread(tmp_path / "s.tif")
    assert got.dtype == want.dtype == dtype
    assert np.abs(got.astype(np.int64) - want).max() <= 1
    assert want.max() == np.iinfo(dtype).max  # rescaled to the full range


# ---------------------------------------------------------------------------
# 2. The command line


def test_stream_of_a_png_is_refused_naming_it(
    runner: CliRunner, tmp_path: Path
) -> None:
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "a.png")
    result = _apply(runner, str(tmp_path / "a.png"), "-k", "box", "--stream")
    assert result.exit_code == 2, result.output
    line = _one_line_error(result.output)
    assert "a.png" in line
    assert "--stream reads TIFF files only" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_a_streamed_input_with_a_png_output_is_refused_naming_both(
    runner: CliRunner, tmp_path: Path
) -> None:
    src = _tiff(tmp_path / "a.tif", np.zeros((20, 20), np.uint8))
    result = _apply(
        runner, str(src), "-k", "box", "--stream", "-o", str(tmp_path / "o.png")
    )
    assert result.exit_code == 2, result.output
    line = _one_line_error(result.output)
    assert "a.tif" in line
    assert "o.png" in line
    assert not (tmp_path / "o.png").exists()


def test_a_multi_page_tiff_streams_one_page_at_a_time(
    runner: CliRunner, tmp_path: Path
) -> None:
    pages = np.stack([np.full((20, 24), 10, np.uint8), np.full((20, 24), 90, np.uint8)])
    src = tmp_path / "pages.tif"
    tifffile.imwrite(src, pages, tile=(16, 16))
    result = _apply(
        runner, str(src), "-k", "box", "--stream", "-o", str(tmp_path / "o.tif")
    )
    assert result.exit_code == 2, result.output
    line = _one_line_error(result.output)
    assert "pages.tif has 2 pages" in line
    assert "--frame" in line
    assert not (tmp_path / "o.tif").exists()
    result = _apply(
        runner,
        str(src),
        "-k",
        "box",
        "--stream",
        "--frame",
        "1",
        "-o",
        str(tmp_path / "o.tif"),
    )
    assert result.exit_code == 0, result.output
    assert (tifffile.imread(tmp_path / "o.tif") == 90).all()  # the second page, boxed


def test_it_streams_when_the_float32_size_is_over_memory(
    runner: CliRunner, tmp_path: Path
) -> None:
    x = np.random.default_rng(1).integers(0, 256, (30, 20, 3), dtype=np.uint8)
    src = _tiff(tmp_path / "a.tif", x)  # 30 x 20 x 3 x 4 = 7200 bytes as float32
    over = _apply(
        runner,
        str(src),
        "-k",
        "box",
        "--memory",
        "7199",
        "-o",
        str(tmp_path / "o1.tif"),
    )
    assert over.exit_code == 0, over.output
    assert _streamed_row(over.output) is not None
    under = _apply(
        runner,
        str(src),
        "-k",
        "box",
        "--memory",
        "7200",
        "-o",
        str(tmp_path / "o2.tif"),
    )
    assert under.exit_code == 0, under.output
    assert _streamed_row(under.output) is None
    small = _apply(
        runner, str(src), "-k", "box", "--memory", "1KB", "-o", str(tmp_path / "o3.tif")
    )
    assert _streamed_row(small.output) is not None
    no = _apply(
        runner,
        str(src),
        "-k",
        "box",
        "--memory",
        "1KB",
        "--no-stream",
        "-o",
        str(tmp_path / "o4.tif"),
    )
    assert no.exit_code == 0, no.output
    assert _streamed_row(no.output) is None
    with tifffile.TiffFile(tmp_path / "o1.tif") as streamed:
        assert streamed.is_bigtiff
        assert streamed.pages[0].is_tiled
    with tifffile.TiffFile(tmp_path / "o4.tif") as in_memory:
        assert not in_memory.is_bigtiff
    first = tifffile.imread(tmp_path / "o1.tif")
    for other in ("o2.tif", "o3.tif", "o4.tif"):
        np.testing.assert_array_equal(tifffile.imread(tmp_path / other), first)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--memory", "12XB"], "--memory must be a size"),
        (["--memory", "0"], "--memory must be a size"),
        (["--memory", "nan"], "--memory must be a size"),
        (["--band-rows", "0"], "--band-rows"),
        (["--band-rows", "x"], "--band-rows"),
    ],
)
def test_bad_memory_and_band_rows_are_exit_2(
    runner: CliRunner, tmp_path: Path, args: list[str], message: str
) -> None:
    src = _tiff(tmp_path / "a.tif", np.zeros((20, 20), np.uint8))
    result = _apply(runner, str(src), "-k", "box", *args, "-o", str(tmp_path / "o.tif"))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o.tif").exists()


@pytest.mark.parametrize(
    ("compression", "want"), [(None, "NONE"), ("zlib", "ADOBE_DEFLATE"), ("lzw", "LZW")]
)
def test_the_output_is_a_tiled_bigtiff_compressed_as_the_input(
    runner: CliRunner, tmp_path: Path, compression: str | None, want: str
) -> None:
    x = np.random.default_rng(2).integers(0, 256, (300, 270, 3), dtype=np.uint8)
    src = _tiff(tmp_path / "a.tif", x, tile=64, compression=compression)
    result = _apply(
        runner,
        str(src),
        "-k",
        "identity",
        "--stream",
        "--band-rows",
        "37",
        "-o",
        str(tmp_path / "o.tif"),
    )
    assert result.exit_code == 0, result.output
    row = _streamed_row(result.output)
    assert row is not None
    assert re.search(r"\b9 bands? of 37 output rows", row), row
    with tifffile.TiffFile(tmp_path / "o.tif") as tif:
        assert tif.is_bigtiff
        page = tif.pages[0]
        assert page.is_tiled
        assert page.compression.name == want
        np.testing.assert_array_equal(page.asarray(), x)  # identity: the input itself


def test_json_of_a_streamed_run(runner: CliRunner, tmp_path: Path) -> None:
    x = np.random.default_rng(3).integers(0, 256, (50, 40), dtype=np.uint8)
    src = _tiff(tmp_path / "a.tif", x)
    result = _apply(
        runner,
        str(src),
        "-k",
        "sobel",
        "--stream",
        "--band-rows",
        "9",
        "--json",
        "-o",
        str(tmp_path) + "/",
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["failed"] == []
    (entry,) = doc["inputs"]
    assert entry["shape"] == [50, 40, 1]
    (out,) = entry["outputs"]
    written = Path(out["path"])
    assert written.parent == tmp_path
    assert written.name.startswith("a.sobel")
    assert out["shape"] == [50, 40, 1]
    assert out["kernel"] == "sobel"
    assert out["bands"] == [6, 9]  # 50 rows: 5 bands of 9 and one of 5
    with tifffile.TiffFile(written) as tif:  # streamed: a tiled BigTIFF
        assert tif.is_bigtiff
        assert tif.pages[0].shape == (50, 40)


@pytest.mark.parametrize("c", [1, 2, 3, 4])
def test_sixteen_bit_in_sixteen_bit_out(
    runner: CliRunner, tmp_path: Path, c: int
) -> None:
    x = np.random.default_rng(c).integers(0, 65536, (33, 21, c), dtype=np.uint16)
    src = _tiff(
        tmp_path / "a.tif", x if c > 1 else x[:, :, 0], tile=None, rowsperstrip=5
    )
    result = _apply(
        runner,
        str(src),
        "-k",
        "identity",
        "--stream",
        "--band-rows",
        "4",
        "-o",
        str(tmp_path / "o.tif"),
    )
    assert result.exit_code == 0, result.output
    got = tifffile.imread(tmp_path / "o.tif")
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got.reshape(x.shape), x)


def test_the_input_is_never_the_output(runner: CliRunner, tmp_path: Path) -> None:
    src = _tiff(tmp_path / "a.tif", np.arange(400, dtype=np.uint8).reshape(20, 20))
    before = hashlib.sha256(src.read_bytes()).hexdigest()
    (tmp_path / "hard.tif").hardlink_to(src)
    (tmp_path / "soft.tif").symlink_to(src)
    for out in ("a.tif", "hard.tif", "soft.tif"):
        result = _apply(
            runner, str(src), "-k", "box", "--stream", "-o", str(tmp_path / out)
        )
        assert result.exit_code == 2, result.output
        assert "would overwrite the input" in _one_line_error(result.output)
    assert hashlib.sha256(src.read_bytes()).hexdigest() == before
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["a.tif", "hard.tif", "soft.tif"]


@pytest.mark.parametrize(
    ("photometric", "shape", "extra"),
    [
        ("palette", (20, 20), {"colormap": np.zeros((3, 256), np.uint16)}),
        ("separated", (20, 20, 4), {}),  # CMYK
        ("miniswhite", (20, 20), {}),
        ("minisblack", (20, 20, 2), {"extrasamples": ["unspecified"]}),
    ],
)
def test_tiffs_whose_samples_are_not_gray_or_rgb_are_not_streamed(
    runner: CliRunner,
    tmp_path: Path,
    photometric: str,
    shape: tuple[int, ...],
    extra: dict,
) -> None:
    src = tmp_path / "odd.tif"
    tifffile.imwrite(
        src, np.zeros(shape, np.uint8), photometric=photometric, tile=(16, 16), **extra
    )
    result = _apply(
        runner, str(src), "-k", "box", "--stream", "-o", str(tmp_path / "o.tif")
    )
    assert result.exit_code == 2, result.output
    line = _one_line_error(result.output)
    assert "odd.tif" in line
    assert "--no-stream reads it in memory" in line
    assert not (tmp_path / "o.tif").exists()


# ---------------------------------------------------------------------------
# 3. Memory: set by the band, not the image


@pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc (Linux)"
)
def test_a_streamed_run_peaks_well_under_the_images_float32_size(
    tmp_path: Path,
) -> None:
    """6144 x 6144 gray (144 MiB as float32) through ``convcli apply --stream``, in a child."""
    big = tmp_path / "big.tif"
    ramp = np.tile(np.arange(256, dtype=np.uint8), (256, 1))
    with tifffile.TiffWriter(big, bigtiff=True) as writer:  # tile by tile, never whole
        writer.write(
            data=(ramp for _ in range(24 * 24)),
            shape=(6144, 6144),
            dtype=np.uint8,
            tile=(256, 256),
            compression="zlib",
        )
    script = f"""
import sys
from convcli.cli import main
sys.argv = ["convcli", "apply", {str(big)!r}, "-k", "box:size=5", "--stream",
            "--band-rows", "64", "-o", {str(tmp_path / "out.tif")!r}, "-q"]
try:
    main()
except SystemExit as end:
    code = end.code
# VmHWM: this process's own peak (ru_maxrss keeps the parent's across fork and exec)
with open("/proc/self/status") as status:
    peak = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
print(code, peak // 1024)
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    code, peak_mib = (int(n) for n in done.stdout.split()[-2:])
    assert code == 0, done.stderr
    whole_float32_mib = 6144 * 6144 * 4 // 2**20  # 144 MiB
    assert peak_mib < whole_float32_mib * 3 // 4, (peak_mib, done.stderr)
    with tifffile.TiffFile(tmp_path / "out.tif") as tif:
        page = tif.pages[0]
        assert page.shape == (6144, 6144)
        assert page.is_tiled
        rows = tif.pages[0].asarray()[3000:3002]
    np.testing.assert_array_equal(
        rows[:, 2:254], ramp[:2, 2:254]
    )  # a ramp stays itself


# ---------------------------------------------------------------------------
# 4. Stops and broken inputs: nothing left behind


def _slow_input(tmp_path: Path) -> Path:
    """A tiled 3072 x 3072 RGB TIFF (27 MiB), made a tile at a time."""
    src = tmp_path / "in" / "big.tif"
    src.parent.mkdir()
    tile = np.random.default_rng(5).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    with tifffile.TiffWriter(src, bigtiff=True) as writer:
        writer.write(
            data=(tile for _ in range(12 * 12)),
            shape=(3072, 3072, 3),
            dtype=np.uint8,
            tile=(256, 256),
            photometric="rgb",
        )
    return src


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)]
)
def test_a_stop_mid_run_leaves_no_output_and_no_temporary(
    tmp_path: Path, signum: int, code: int
) -> None:
    src = _slow_input(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen(
        [
            *CONVCLI,
            "apply",
            str(src),
            "-k",
            "gaussian:sigma=6",  # 37 x 37, tap by tap: 8 s on 2 cores, stopped at 0.2
            "--method",
            "direct",
            "--stream",
            "--band-rows",
            "8",
            "-o",
            str(out) + "/",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, **ENV},
    )
    try:
        deadline = time.monotonic() + 30
        while not any(p.suffix == ".tmp" for p in out.iterdir()):  # writing has begun
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no temporary file appeared"
            time.sleep(0.02)
        time.sleep(0.2)  # some bands written
        assert proc.poll() is None, "the run ended before the stop"
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr, stderr
    assert "interrupted" in stdout
    assert list(out.iterdir()) == []  # no output, no *.tmp
    with pytest.raises(ProcessLookupError):  # nothing of it left running
        os.killpg(proc.pid, 0)


def test_a_failed_write_names_the_output_and_leaves_nothing(tmp_path: Path) -> None:
    x = np.random.default_rng(8).integers(0, 256, (100, 90, 3), dtype=np.uint8)
    src = _tiff(tmp_path / "a.tif", x)  # 27 kB: read whole, under the limit
    out = tmp_path / "out"
    out.mkdir()
    args = ["apply", str(src), "-k", "box", "--stream", "--band-rows", "9"]
    script = f"""
import resource, signal, sys
from convcli.cli import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit: EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (50_000, 50_000))
sys.argv = ["convcli", *{args!r}, "-o", {str(out / "o.tif")!r}]
main()
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **ENV},
    )
    assert done.returncode == 1, done.stderr  # the pair failed
    line = _one_line_error(done.stderr)
    assert "o.tif: cannot write" in line
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("layout", ["tiled", "striped"])
def test_a_tiff_cut_short_fails_its_pair_in_one_line(
    runner: CliRunner, tmp_path: Path, layout: str
) -> None:
    x = np.random.default_rng(6).integers(0, 256, (200, 150, 3), dtype=np.uint8)
    whole = tmp_path / "whole.tif"
    _tiff(
        whole,
        x,
        tile=32 if layout == "tiled" else None,
        rowsperstrip=15,
        compression="zlib",
    )
    data = whole.read_bytes()
    cut = tmp_path / "cut.tif"
    # tifffile writes the header first: it stays whole, the last segments go
    cut.write_bytes(data[: len(data) * 2 // 3])
    out = tmp_path / "out"
    out.mkdir()
    result = _apply(
        runner,
        str(cut),
        "-k",
        "box",
        "--stream",
        "--band-rows",
        "16",
        "-o",
        str(out) + "/",
    )
    assert result.exit_code == 1, result.output  # a pair failed
    line = _one_line_error(result.output)
    assert "cut.tif" in line
    assert "truncated TIFF" in line
    assert list(out.iterdir()) == []
    corrupt = bytearray(data)
    corrupt[len(data) // 2 : len(data) // 2 + 500] = bytes(500)  # zeros in zlib data
    (tmp_path / "bad.tif").write_bytes(bytes(corrupt))
    result = _apply(
        runner, str(tmp_path / "bad.tif"), "-k", "box", "--stream", "-o", str(out) + "/"
    )
    assert result.exit_code == 1, result.output
    line = _one_line_error(result.output)
    assert "bad.tif" in line
    assert "corrupt TIFF segment" in line
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("keep", [4, 8, 60, 200])
def test_a_tiff_header_cut_short_is_exit_2_in_one_line(
    tmp_path: Path, keep: int
) -> None:
    whole = _tiff(
        tmp_path / "whole.tif", np.zeros((40, 30), np.uint8), tile=None, rowsperstrip=3
    )
    cut = tmp_path / "cut.tif"
    cut.write_bytes(whole.read_bytes()[:keep])
    done = subprocess.run(  # a process of its own: tifffile's log, if any, on stderr
        [
            *CONVCLI,
            "apply",
            str(cut),
            "-k",
            "box",
            "--stream",
            "-o",
            str(tmp_path / "o.tif"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **ENV},
    )
    assert done.returncode == 2, done.stderr
    line = _one_line_error(done.stderr)
    assert done.stderr.splitlines() == [line]  # tifffile's notes stay off stderr
    assert "cut.tif" in line
    assert not (tmp_path / "o.tif").exists()


# ---------------------------------------------------------------------------
# 5. Progress


@pytest.mark.parametrize("value_range", ["clip", "rescale"])
def test_progress_counts_rows_up_to_the_output_height(
    tmp_path: Path, value_range: str
) -> None:
    x = np.random.default_rng(7).integers(0, 256, (50, 30), dtype=np.uint8)
    src = _tiff(tmp_path / "a.tif", x)
    calls: list[tuple[str, int, int]] = []
    options = ApplyOptions(stream=True, band_rows=7, stride=2, range=value_range)
    done = apply_one(
        src,
        load_kernel("laplacian"),
        options,
        tmp_path / "o.tif",
        progress=lambda *a: calls.append(a),
    )
    out_h = done.outputs[0].shape[0]
    assert out_h == 25
    stages = ["range", "filter"] if value_range == "rescale" else ["filter"]
    assert [
        s for i, (s, _, _) in enumerate(calls) if i == 0 or calls[i - 1][0] != s
    ] == stages
    for stage in stages:
        rows = [r for s, r, _ in calls if s == stage]
        assert rows == [7, 14, 21, 25]  # after each band, in order
        assert {t for s, _, t in calls if s == stage} == {out_h}


def test_a_stop_between_bands_closes_them_at_once(tmp_path: Path) -> None:
    """Ctrl-C in the progress bar's drawing: the bands in flight end before apply_one returns."""
    from convcli import streaming

    x = np.random.default_rng(10).integers(0, 256, (120, 40), dtype=np.uint8)
    src = _tiff(tmp_path / "a.tif", x)
    closed: list[str] = []

    def runner(fn: Any, job: Any, spans: Any) -> Any:
        try:
            yield from streaming.run_local(fn, job, spans, threads=2)
        finally:
            closed.append(fn.__name__)

    def progress(stage: str, done: int, total: int) -> None:
        if done >= 10:
            raise KeyboardInterrupt

    for value_range in ("rescale", "clip"):  # in the first pass, in the writing
        closed.clear()
        options = ApplyOptions(stream=True, band_rows=5, range=value_range)
        with pytest.raises(KeyboardInterrupt):
            apply_one(
                src,
                load_kernel("box"),
                options,
                tmp_path / "o.tif",
                progress=progress,
                runner=runner,
            )
        assert closed == [
            "band_extremes" if value_range == "rescale" else "compute_band"
        ]
        running = [
            t for t in threading.enumerate() if t.name.startswith("convcli-band")
        ]
        assert running == []
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tif"]
