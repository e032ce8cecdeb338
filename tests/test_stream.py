"""`stream_conv2d`: bands of rows give the whole image's result, seams and edges alike."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convcli.core import conv2d
from convcli.core.stream import stream_conv2d
from convcli.names import BORDERS


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 17),  # height
    st.integers(1, 9),  # width
    st.integers(1, 3),  # channels
    st.integers(1, 5),  # kh (even ones too)
    st.integers(1, 4),  # kw
    st.booleans(),  # a bank of 2 filters, else a 2-D kernel
    st.integers(1, 3),  # stride
    st.integers(1, 2),  # dilation
    st.sampled_from([0, 1, 3, "same", "valid"]),
    st.sampled_from(BORDERS),
    st.sampled_from([1, 2, 3, 5, 7, 64]),  # band rows: 1, primes, more than the image
    st.integers(0, 2**32 - 1),
)
def test_bands_give_the_whole_images_result(
    height, width, channels, kh, kw, bank, stride, dilation, padding, border, band, seed
) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (height, width, channels)).astype(np.uint8)
    w = rng.standard_normal((2, channels, kh, kw) if bank else (kh, kw))
    options = {
        "stride": stride,
        "dilation": dilation,
        "padding": padding,
        "border": border,
        "cval": 7.5,
    }
    try:
        whole = conv2d(x, w, **options)
    except ValueError:  # the window does not fit: the stream refuses it alike
        with pytest.raises(ValueError, match="larger than the padded input"):
            list(stream_conv2d(lambda a, b: x[a:b], x.shape, x.dtype, w, **options))
        return
    reads: list[tuple[int, int]] = []

    def read_rows(first: int, stop: int) -> np.ndarray:
        reads.append((first, stop))
        return x[first:stop]

    bands = list(
        stream_conv2d(read_rows, x.shape, x.dtype, w, band_rows=band, **options)
    )
    got = np.concatenate([b for _, b in bands])
    assert [r0 for r0, _ in bands] == list(range(0, whole.shape[0], band))
    np.testing.assert_allclose(got, whole.reshape(got.shape), rtol=1e-5, atol=1e-3)
    # Each read is at most a band's rows and halo (a wrapped edge reads two runs):
    # the band, not the image.
    span = dilation * (kh - 1) + 1
    assert all(stop - first <= (band - 1) * stride + span for first, stop in reads)


def test_a_band_reads_only_its_rows_and_halo() -> None:
    height, width = 1000, 8
    x = np.arange(height * width, dtype=np.float32).reshape(height, width, 1)
    reads: list[tuple[int, int]] = []

    def read_rows(first: int, stop: int) -> np.ndarray:
        reads.append((first, stop))
        return x[first:stop]

    k = np.ones((5, 5), dtype=np.float32)
    out = np.concatenate(
        [
            b
            for _, b in stream_conv2d(
                read_rows,
                x.shape,
                x.dtype,
                k,
                padding="same",
                border="symmetric",
                band_rows=100,
            )
        ]
    )
    np.testing.assert_array_equal(out, conv2d(x, k, padding="same", border="symmetric"))
    assert len(reads) == 10
    assert max(stop - first for first, stop in reads) <= 100 + 4
    assert reads[0] == (0, 102)  # the top edge's rows come from the image itself
    assert reads[-1] == (898, 1000)


def test_bad_bands_and_readers_say_what_is_wrong() -> None:
    x = np.zeros((4, 4, 1))
    with pytest.raises(ValueError, match="band_rows must be a whole number >= 1"):
        list(
            stream_conv2d(
                lambda a, b: x[a:b], x.shape, x.dtype, np.ones((3, 3)), band_rows=0
            )
        )
    with pytest.raises(ValueError, match=r"read_rows\(0, 4\) gave shape \(2, 4, 1\)"):
        list(
            stream_conv2d(
                lambda a, b: x[:2], x.shape, x.dtype, np.ones((3, 3)), padding=1
            )
        )
