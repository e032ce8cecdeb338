"""TIFF by bands: rows read segment by segment, bands written as a tiled BigTIFF."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from convcli.core import conv2d
from convcli.core.stream import stream_conv2d
from convcli.tiff_stream import StreamError, TiffRows, write_tiled


@pytest.mark.parametrize(
    ("shape", "dtype", "layout"),
    [
        ((100, 70, 3), np.uint8, {"tile": (32, 32)}),
        ((100, 70), np.uint16, {"tile": (16, 48)}),
        ((61, 33, 4), np.uint8, {"rowsperstrip": 7}),
        ((50, 20), np.uint8, {}),  # one strip
    ],
)
def test_rows_read_by_segments_equal_the_whole_page(
    tmp_path: Path, shape: tuple[int, ...], dtype: type, layout: dict
) -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype)
    photometric = "rgb" if len(shape) == 3 else "minisblack"
    extra = (
        {"extrasamples": ["unassalpha"]} if len(shape) == 3 and shape[2] == 4 else {}
    )
    tifffile.imwrite(
        tmp_path / "in.tif",
        x,
        photometric=photometric,
        compression="zlib",
        **layout,
        **extra,
    )
    whole = x if x.ndim == 3 else x[:, :, None]
    with TiffRows(tmp_path / "in.tif") as rows:
        assert rows.shape == whole.shape
        for first, stop in [
            (0, 1),
            (5, 40),
            (31, 33),
            (0, shape[0]),
            (shape[0] - 1, shape[0]),
        ]:
            np.testing.assert_array_equal(rows.read(first, stop), whole[first:stop])
        with pytest.raises(ValueError, match="outside the image"):
            rows.read(0, shape[0] + 1)


@pytest.mark.parametrize("border", ["reflect", "wrap", "constant"])
def test_a_streamed_filter_writes_the_whole_images_result(
    tmp_path: Path, border: str
) -> None:
    rng = np.random.default_rng(4)
    x = rng.integers(0, 256, (203, 157, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "in.tif", x, photometric="rgb", tile=(64, 64))
    k = rng.standard_normal((7, 5)).astype(np.float32)
    with TiffRows(tmp_path / "in.tif") as rows:
        bands = stream_conv2d(
            rows.read,
            rows.shape,
            rows.dtype,
            k,
            padding="same",
            border=border,
            band_rows=37,
        )
        write_tiled(tmp_path / "out.tif", (203, 157, 3), np.float32, bands, tile=64)
    got = tifffile.imread(tmp_path / "out.tif")
    want = conv2d(x, k, padding="same", border=border)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
    with tifffile.TiffFile(tmp_path / "out.tif") as tf:
        assert tf.is_bigtiff
        assert tf.pages[0].is_tiled
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "out.tif"]


@pytest.mark.parametrize("byteorder", ["<", ">"])
@pytest.mark.parametrize("compression", [None, "zlib"])
@pytest.mark.parametrize(
    ("shape", "dtype", "layout"),
    [
        ((90, 70, 3), np.uint8, {"tile": (32, 32)}),
        ((77, 50), np.uint16, {"tile": (16, 48)}),
        ((61, 33, 4), np.uint16, {"rowsperstrip": 7}),
    ],
)
def test_uncompressed_rows_read_in_place_equal_decoded_ones(
    tmp_path: Path,
    shape: tuple[int, ...],
    dtype: type,
    layout: dict,
    compression: str | None,
    byteorder: str,
) -> None:
    """Uncompressed segments are read row by row in place (no decode): the same rows."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype)
    path = tmp_path / "a.tif"
    tifffile.imwrite(path, x, byteorder=byteorder, compression=compression, **layout)
    whole = x if x.ndim == 3 else x[:, :, np.newaxis]
    with TiffRows(path) as rows:
        assert rows._raw == (compression is None)
        for first, stop in [
            (0, 1),
            (0, shape[0]),
            (5, 40),
            (31, 33),
            (shape[0] - 1, shape[0]),
        ]:
            got = rows.read(first, stop)
            assert got.dtype == np.dtype(dtype)  # native order
            np.testing.assert_array_equal(got, whole[first:stop])


def test_a_cut_uncompressed_tiff_is_named(tmp_path: Path) -> None:
    x = np.arange(64 * 64, dtype=np.uint16).reshape(64, 64)
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, x, tile=(16, 16))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with (
        TiffRows(path) as rows,
        pytest.raises(StreamError, match=r"cut\.tif: truncated"),
    ):
        rows.read(0, 64)


def test_a_failed_write_leaves_nothing(tmp_path: Path) -> None:
    def bands():
        yield 0, np.zeros((10, 8, 1), np.float32)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_tiled(tmp_path / "out.tif", (30, 8, 1), np.float32, bands(), tile=16)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="the bands cover 10 of 30 rows"):
        write_tiled(
            tmp_path / "out.tif",
            (30, 8, 1),
            np.float32,
            iter([(0, np.zeros((10, 8, 1), np.float32))]),
            tile=16,
        )
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "bad.tif").write_bytes(b"not a tiff")
    with pytest.raises(StreamError, match=r"bad\.tif: cannot read as TIFF"):
        TiffRows(tmp_path / "bad.tif")


@pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc (Linux)"
)
def test_peak_memory_is_set_by_the_band_not_the_image(tmp_path: Path) -> None:
    """A 6144 x 6144 gray image (144 MiB as float32) through bands of 64 rows."""
    big = tmp_path / "big.tif"
    with tifffile.TiffWriter(big, bigtiff=True) as writer:
        tile_row = np.tile(np.arange(256, dtype=np.uint8), (256, 1))
        writer.write(
            data=(tile_row for _ in range(24 * 24)),
            shape=(6144, 6144),
            dtype=np.uint8,
            tile=(256, 256),
        )
    script = f"""
import numpy as np
from convcli.core.stream import stream_conv2d
from convcli.tiff_stream import TiffRows, write_tiled
with TiffRows({str(big)!r}) as rows:
    bands = stream_conv2d(rows.read, rows.shape, rows.dtype, np.ones((5, 5), np.float32) / 25,
                          padding="same", border="reflect", band_rows=64)
    write_tiled({str(tmp_path / "out.tif")!r}, rows.shape, np.uint8,
                ((r0, np.clip(b, 0, 255)) for r0, b in bands))
# VmHWM: this process's own peak (ru_maxrss keeps the parent's across fork and exec)
with open("/proc/self/status") as status:
    print(next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) // 1024)
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
        env={
            "CONVCLI_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "PATH": "/usr/bin:/bin",
        },
    )
    peak_mib = int(done.stdout.split()[-1])
    whole_float32_mib = 6144 * 6144 * 4 // 2**20  # 144 MiB for the image in float32
    assert peak_mib < whole_float32_mib, done.stdout
    out = tifffile.imread(tmp_path / "out.tif")
    assert out.shape == (6144, 6144)
    assert int(out[3000, 128]) == 128  # a smooth ramp stays itself under a box blur
