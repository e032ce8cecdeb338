"""The oracle's own tests: against ``np.pad`` and against numbers worked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from reference import BORDER_NAMES, reference_conv2d, resolve_padding, source_index


def _np_pad_axis(
    n: int, before: int, after: int, border: str, cval: float
) -> np.ndarray:
    values = np.arange(n, dtype=np.float64) + 10.0
    if border == "constant":
        return np.pad(values, (before, after), mode="constant", constant_values=cval)
    return np.pad(values, (before, after), mode=border)


@pytest.mark.parametrize("border", BORDER_NAMES)
@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_source_index_matches_np_pad(border: str, n: int) -> None:
    values = np.arange(n, dtype=np.float64) + 10.0
    for before, after in [
        (0, 0),
        (1, 0),
        (0, 1),
        (n, n),
        (2 * n + 1, 3 * n + 2),
        (7, 11),
    ]:
        expected = _np_pad_axis(n, before, after, border, cval=-3.0)
        got = []
        for i in range(-before, n + after):
            src = source_index(i, n, border)
            got.append(-3.0 if src is None else values[src])
        np.testing.assert_array_equal(
            got, expected, err_msg=f"{border} n={n} pads={before, after}"
        )


@pytest.mark.parametrize(
    ("border", "expected"),
    [
        ("constant", [None, None, None, 0, 1, 2, 3, None, None, None]),
        ("edge", [0, 0, 0, 0, 1, 2, 3, 3, 3, 3]),
        ("reflect", [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]),
        ("symmetric", [2, 1, 0, 0, 1, 2, 3, 3, 2, 1]),
        ("wrap", [1, 2, 3, 0, 1, 2, 3, 0, 1, 2]),
        ("zero", [None, None, None, 0, 1, 2, 3, None, None, None]),
        ("replicate", [0, 0, 0, 0, 1, 2, 3, 3, 3, 3]),
    ],
)
def test_source_index_by_hand(border: str, expected: list[int | None]) -> None:
    assert [source_index(i, 4, border) for i in range(-3, 7)] == expected


def test_source_index_long_pads_by_hand() -> None:
    # reflect on a b c: ... b | a b c | b a b c b a ...
    assert [source_index(i, 3, "reflect") for i in range(3, 10)] == [
        1,
        0,
        1,
        2,
        1,
        0,
        1,
    ]
    # symmetric on a b: a b | b a a b b a
    assert [source_index(i, 2, "symmetric") for i in range(2, 8)] == [1, 0, 0, 1, 1, 0]
    assert [
        source_index(i, 1, b)
        for b in ("reflect", "symmetric", "wrap", "edge")
        for i in (-5, 5)
    ] == [0] * 8


def test_source_index_rejects_unknown_border() -> None:
    with pytest.raises(ValueError, match="unknown border"):
        source_index(-1, 3, "mirror")


def _np_pad_conv(
    x,
    w,
    bias=None,
    *,
    stride=1,
    padding=0,
    dilation=1,
    border="constant",
    cval=0.0,
    flip=False,
):
    """A second, vectorized formulation: np.pad, then sliding windows and einsum."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    squeeze = x.ndim == 2 and w.ndim == 2
    x3 = x[:, :, None] if x.ndim == 2 else x
    if flip:
        w = w[..., ::-1, ::-1]
    kh, kw = w.shape[-2:]
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    (top, bottom), (left, right) = resolve_padding(
        padding, x3.shape[:2], (kh, kw), (sh, sw), (dh, dw)
    )
    pads = ((top, bottom), (left, right), (0, 0))
    mode = {"zero": "constant", "replicate": "edge"}.get(border, border)
    if mode == "constant":
        xp = np.pad(x3, pads, mode="constant", constant_values=cval)
    else:
        xp = np.pad(x3, pads, mode=mode)
    ext = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    win = sliding_window_view(xp, ext, axis=(0, 1))[
        ::sh, ::sw, :, ::dh, ::dw
    ]  # (H', W', C, kh, kw)
    if w.ndim == 2:
        out = np.einsum("ijcuv,uv->ijc", win, w)
    else:
        out = np.einsum("ijcuv,dcuv->ijd", win, w)
    if bias is not None:
        out = out + np.asarray(bias, dtype=np.float64)
    return out[:, :, 0] if squeeze else out


@pytest.mark.parametrize("border", [*BORDER_NAMES, "zero", "replicate"])
@pytest.mark.parametrize(
    ("shape", "wshape"),
    [
        ((6, 7), (3, 3)),
        ((1, 1), (3, 3)),
        ((1, 5), (2, 3)),
        ((4, 1), (3, 2)),
        ((2, 2), (4, 5)),
        ((5, 6, 3), (2, 4)),
        ((5, 6, 3), (2, 3, 3, 2)),
        ((5, 6), (3, 1, 2, 3)),
    ],
)
def test_reference_matches_np_pad(
    border: str, shape: tuple[int, ...], wshape: tuple[int, ...]
) -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=shape)
    w = rng.normal(size=wshape)
    # Paddings up to three times the image, plus "same" and "valid" where they fit.
    big = 3 * max(shape[:2]) + 1
    paddings = [
        0,
        1,
        (2, 0),
        ((0, 3), (2, 1)),
        ((big, big - 2), (big - 1, big)),
        "same",
    ]
    for padding in paddings:
        for stride, dilation in [(1, 1), (2, 1), ((1, 2), (2, 1)), (3, 2)]:
            kwargs = {
                "stride": stride,
                "padding": padding,
                "dilation": dilation,
                "border": border,
                "cval": 2.5,
            }
            try:
                expected = _np_pad_conv(x, w, **kwargs)
            except (
                ValueError
            ):  # sliding_window_view: window larger than the padded input
                with pytest.raises(ValueError, match="larger than the padded input"):
                    reference_conv2d(x, w, **kwargs)
                continue
            got = reference_conv2d(x, w, **kwargs)
            np.testing.assert_allclose(
                got, expected, rtol=1e-12, atol=1e-12, err_msg=str(kwargs)
            )


def test_reference_flip_and_bias_match_np_pad() -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(size=(6, 5, 2))
    w = rng.normal(size=(3, 2, 3, 2))
    for bias in (None, 1.5, [1.0, -2.0, 0.25]):
        kwargs = {"bias": bias, "flip": True, "padding": "same", "border": "symmetric"}
        np.testing.assert_allclose(
            reference_conv2d(x, w, **kwargs), _np_pad_conv(x, w, **kwargs), rtol=1e-12
        )


def test_reference_spec_window() -> None:
    window = np.array([[4, 0, 0], [0, 0, 0], [0, 0, -4]])
    kernel = np.array([[0, 0, 0], [0, 1, 1], [0, 1, 2]])
    out = reference_conv2d(window, kernel)
    assert out.shape == (1, 1)
    assert out[0, 0] == -8.0
    # flip=True: the kernel rotated by 180 degrees meets the 4 at the top left.
    assert reference_conv2d(window, kernel, flip=True)[0, 0] == 4 * 2 + -4 * 0


def test_reference_by_hand_borders() -> None:
    x = np.array([[1.0, 2.0, 3.0]])
    w = np.array([[1.0, 10.0, 100.0]])
    pad = ((0, 0), (1, 1))
    expected = {
        "constant": [
            5 + 10 + 200,
            1 + 20 + 300,
            2 + 30 + 500,
        ],  # 5 | 1 2 3 | 5 (cval 5)
        "edge": [1 + 10 + 200, 321, 2 + 30 + 300],  # 1 | 1 2 3 | 3
        "reflect": [2 + 10 + 200, 321, 2 + 30 + 200],  # 2 | 1 2 3 | 2
        "symmetric": [1 + 10 + 200, 321, 2 + 30 + 300],  # 1 | 1 2 3 | 3
        "wrap": [3 + 10 + 200, 321, 2 + 30 + 100],  # 3 | 1 2 3 | 1
    }
    for border, values in expected.items():
        out = reference_conv2d(x, w, padding=pad, border=border, cval=5.0)
        np.testing.assert_array_equal(out, [values], err_msg=border)


def test_reference_by_hand_shapes_stride_dilation() -> None:
    x = np.arange(9.0).reshape(3, 3)
    np.testing.assert_array_equal(
        reference_conv2d(x, np.ones((2, 2))), [[8, 12], [20, 24]]
    )
    # "same" with an even kernel pads (0, 1): the last row and column see one zero pad.
    np.testing.assert_array_equal(
        reference_conv2d(x, np.ones((2, 2)), padding="same"),
        [[8, 12, 7], [20, 24, 13], [13, 15, 8]],
    )
    # dilation 2: x[i, j] - x[i + 2, j + 2] = -12 everywhere.
    x5 = np.arange(25.0).reshape(5, 5)
    w = np.array([[1.0, 0.0], [0.0, -1.0]])
    np.testing.assert_array_equal(
        reference_conv2d(x5, w, dilation=2), np.full((3, 3), -12.0)
    )
    np.testing.assert_array_equal(
        reference_conv2d(x5, w, dilation=2, stride=2), np.full((2, 2), -12.0)
    )
    # stride (2, 3) with a 1x1 kernel picks rows 0, 2, 4 and columns 0, 3.
    np.testing.assert_array_equal(
        reference_conv2d(x5, [[2.0]], stride=(2, 3)), 2 * x5[::2, ::3]
    )
    # flip of [[1, 2], [3, 4]] is [[4, 3], [2, 1]].
    assert (
        reference_conv2d([[1.0, 0.0], [0.0, 0.0]], [[1, 2], [3, 4]], flip=True)[0, 0]
        == 4.0
    )


def test_reference_by_hand_channels_and_bias() -> None:
    x = np.arange(8.0).reshape(2, 2, 2)  # x[..., 0] = 0 2 4 6, x[..., 1] = 1 3 5 7
    bank = np.array([[[[2.0]], [[3.0]]], [[[1.0]], [[-1.0]]]])  # (2, 2, 1, 1)
    out = reference_conv2d(x, bank, bias=[0.5, 10.0])
    np.testing.assert_array_equal(out[..., 0], 2 * x[..., 0] + 3 * x[..., 1] + 0.5)
    np.testing.assert_array_equal(out[..., 1], np.full((2, 2), 9.0))
    depthwise = reference_conv2d(x, [[1.0, 1.0]], bias=1.0)
    assert depthwise.shape == (2, 1, 2)
    np.testing.assert_array_equal(depthwise[:, 0], [[3.0, 5.0], [11.0, 13.0]])
    gray_bank = reference_conv2d(x[..., 0], np.ones((3, 1, 2, 2)))
    assert gray_bank.shape == (1, 1, 3)
    np.testing.assert_array_equal(gray_bank, np.full((1, 1, 3), 12.0))
