"""conv_transpose2d and output_size_transposed: PyTorch's transposed convolution.

The oracle is the scatter definition written as a float64 loop here: input
value ``x[i, j, c]`` stamps ``x[i, j, c] * w[c, :, u, v]`` onto output
``(i*s - p + u*d, j*s - p + v*d)``, the maps of c's group.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import convcli
from convcli import (
    ShapeError,
    conv2d,
    conv_transpose2d,
    output_size,
    output_size_transposed,
)


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (value[0], value[1])


def scatter_loop(
    x: Any,
    w: Any,
    bias: Any = None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> np.ndarray:
    """The transposed convolution by its definition: every input stamps the kernel."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    height, width, channels = x.shape
    _, per_out, kh, kw = w.shape
    per_in = channels // groups
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    (oh, ow), (dh, dw) = _pair(output_padding), _pair(dilation)
    out_h = (height - 1) * sh - 2 * ph + dh * (kh - 1) + oh + 1
    out_w = (width - 1) * sw - 2 * pw + dw * (kw - 1) + ow + 1
    out = np.zeros((out_h, out_w, per_out * groups))
    for i in range(height):
        for j in range(width):
            for c in range(channels):
                maps = slice(c // per_in * per_out, (c // per_in + 1) * per_out)
                for u in range(kh):
                    for v in range(kw):
                        r, t = i * sh - ph + u * dh, j * sw - pw + v * dw
                        if 0 <= r < out_h and 0 <= t < out_w:
                            out[r, t, maps] += x[i, j, c] * w[c, :, u, v]
    if bias is not None:
        out += bias
    return out


def assert_close(got: np.ndarray, expected: np.ndarray, rtol: float = 1e-10) -> None:
    assert got.shape == expected.shape
    scale = max(float(np.abs(expected).max(initial=0.0)), 1.0)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * scale)


def torch_transpose(x: np.ndarray, w: np.ndarray, bias: Any, **options: Any) -> Any:
    torch = pytest.importorskip("torch")
    return (
        torch.nn.functional.conv_transpose2d(
            torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None],
            torch.from_numpy(w),
            None if bias is None else torch.from_numpy(np.asarray(bias)),
            **options,
        )[0]
        .permute(1, 2, 0)
        .numpy()
    )


# ---------------------------------------------------------------------------
# By hand


def test_stride_spreads_the_stamps() -> None:
    x = np.array([[1, 2], [3, 4]])
    got = conv_transpose2d(x, np.ones((2, 2)), stride=2)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(
        got,
        [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]],
    )


def test_a_1x1_kernel_with_stride_stuffs_zeros() -> None:
    x = np.arange(1.0, 7.0).reshape(2, 3)
    got = conv_transpose2d(x, np.ones((1, 1)), stride=(2, 3), output_padding=(1, 2))
    expected = np.zeros((4, 9))
    expected[::2, ::3] = x
    np.testing.assert_array_equal(got, expected)


def test_an_asymmetric_kernel_is_not_flipped() -> None:
    # One input value stamps the kernel as it is, top-left at its position.
    x = np.zeros((3, 3))
    x[1, 1] = 2.0
    w = np.array([[1.0, 2.0], [3.0, 4.0]])
    got = conv_transpose2d(x, w)
    expected = np.zeros((4, 4))
    expected[1:3, 1:3] = 2 * w
    np.testing.assert_array_equal(got, expected)


def test_padding_crops_and_output_padding_extends_the_bottom_right() -> None:
    x = np.arange(1.0, 10.0).reshape(3, 3)
    w = np.arange(1.0, 10.0).reshape(3, 3)
    full = conv_transpose2d(x, w, stride=2)  # 7x7
    assert full.shape == (7, 7)
    np.testing.assert_array_equal(
        conv_transpose2d(x, w, stride=2, padding=1), full[1:-1, 1:-1]
    )
    extended = conv_transpose2d(x, w, stride=2, padding=1, output_padding=1)
    assert extended.shape == (6, 6)
    np.testing.assert_array_equal(extended[:5, :5], full[1:-1, 1:-1])
    np.testing.assert_array_equal(extended[5], full[6, 1:])
    # Past the last stamp, output_padding adds only the bias.
    only_bias = conv_transpose2d(
        x, np.ones((1, 1, 1, 1)), 0.5, stride=2, output_padding=1
    )
    assert only_bias.shape == (6, 6, 1)
    np.testing.assert_array_equal(only_bias[5, :, 0], 0.5)
    np.testing.assert_array_equal(only_bias[:, 5, 0], 0.5)


def test_the_loop_can_fail() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 2))
    w = rng.standard_normal((2, 3, 3, 2))
    expected = scatter_loop(x, w, stride=2, padding=1)
    flipped = conv_transpose2d(x, w[:, :, ::-1, ::-1].copy(), stride=2, padding=1)
    with pytest.raises(AssertionError):
        assert_close(flipped, expected)
    with pytest.raises(AssertionError):
        assert_close(conv_transpose2d(x, w, stride=2), expected)


# ---------------------------------------------------------------------------
# Against the loop, and properties over random shapes


CASES = [  # (C, D, groups)
    (1, 1, 1),
    (3, 4, 1),
    (4, 6, 2),
    (4, 4, 4),
    (3, 6, 3),
]


@pytest.mark.parametrize(("channels", "depth", "groups"), CASES, ids=str)
@pytest.mark.parametrize(
    ("stride", "padding", "output_padding", "dilation"),
    [(1, 0, 0, 1), (2, 1, 1, 1), ((3, 2), (2, 0), (2, 1), (1, 2)), (1, 1, 1, 2)],
    ids=str,
)
def test_matches_the_scatter_loop(
    channels: int,
    depth: int,
    groups: int,
    stride: Any,
    padding: Any,
    output_padding: Any,
    dilation: Any,
) -> None:
    rng = np.random.default_rng(15)
    x = rng.standard_normal((4, 5, channels))
    w = rng.standard_normal((channels, depth // groups, 3, 2))
    bias = rng.standard_normal(depth)
    options = {
        "stride": stride,
        "padding": padding,
        "output_padding": output_padding,
        "dilation": dilation,
        "groups": groups,
    }
    got = conv_transpose2d(x, w, bias, **options)
    assert got.dtype == np.float64
    assert_close(got, scatter_loop(x, w, bias, **options))


@st.composite
def transposed_calls(draw: st.DrawFn) -> dict[str, Any]:
    groups = draw(st.integers(1, 3))
    per_in, per_out = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    height, width = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    stride = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    dilation = draw(st.tuples(st.integers(1, 3), st.integers(1, 3)))
    output_padding = tuple(
        draw(st.integers(0, max(s, d) - 1))
        for s, d in zip(stride, dilation, strict=True)
    )
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    return {
        "x": rng.standard_normal((height, width, groups * per_in)),
        "w": rng.standard_normal((groups * per_in, per_out, kh, kw)),
        "bias": draw(st.sampled_from([None, -1.25, "per map"])),
        "stride": stride,
        "padding": draw(st.tuples(st.integers(0, 3), st.integers(0, 3))),
        "output_padding": output_padding,
        "dilation": dilation,
        "groups": groups,
    }


@given(call=transposed_calls())
def test_transposed_property(call: dict[str, Any]) -> None:
    x, w, bias = call.pop("x"), call.pop("w"), call.pop("bias")
    if bias == "per map":
        bias = np.linspace(-1, 1, w.shape[1] * call["groups"])
    sizes = [
        output_size_transposed(
            n,
            k,
            stride=call["stride"][axis],
            padding=call["padding"][axis],
            output_padding=call["output_padding"][axis],
            dilation=call["dilation"][axis],
        )
        for axis, (n, k) in enumerate(zip(x.shape[:2], w.shape[2:], strict=True))
    ]
    if min(sizes) < 1:
        with pytest.raises(ShapeError, match="crops the whole output"):
            conv_transpose2d(x, w, bias, **call)
        return
    got = conv_transpose2d(x, w, bias, **call)
    assert got.shape == (*sizes, w.shape[1] * call["groups"])
    assert_close(got, scatter_loop(x, w, bias, **call))
    got32 = conv_transpose2d(x.astype(np.float32), w, bias, **call)
    assert got32.dtype == np.float32
    assert_close(got32, got, rtol=1e-5)


@given(call=transposed_calls())
def test_it_is_the_adjoint_of_conv2d(call: dict[str, Any]) -> None:
    # <conv2d(a, w'), b> == <a, conv_transpose2d(b, w)> with w' the same array read
    # as conv2d's (D, C // groups) bank: conv2d maps the transposed output back.
    x, w, groups = call["x"], call["w"], call["groups"]
    (sh, sw), (ph, pw), (dh, dw) = call["stride"], call["padding"], call["dilation"]
    # The transposed call's output size, then conv2d from there back to x's size.
    n_h = output_size_transposed(
        x.shape[0], w.shape[2], stride=sh, padding=ph, dilation=dh
    )
    n_w = output_size_transposed(
        x.shape[1], w.shape[3], stride=sw, padding=pw, dilation=dw
    )
    if min(n_h, n_w) < 1:
        return
    rng = np.random.default_rng(1)
    a = rng.standard_normal((n_h, n_w, w.shape[1] * groups))
    options = {"stride": (sh, sw), "padding": (ph, pw), "dilation": (dh, dw)}
    forward = conv2d(a, w, groups=groups, **options)
    assert forward.shape == x.shape
    backward = conv_transpose2d(x, w, groups=groups, **options)
    assert backward.shape == a.shape
    left, right = float(np.sum(forward * x)), float(np.sum(a * backward))
    assert left == pytest.approx(right, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("n", range(1, 9))
@pytest.mark.parametrize(
    ("k", "stride", "padding", "dilation"),
    [(3, 2, 1, 1), (4, 2, 1, 1), (3, 3, 0, 2), (2, 1, 0, 1)],
)
def test_output_padding_picks_the_size_conv2d_came_from(
    n: int, k: int, stride: int, padding: int, dilation: int
) -> None:
    m = output_size(n, k, stride=stride, padding=padding, dilation=dilation)
    if m < 1:
        return
    base = output_size_transposed(
        m, k, stride=stride, padding=padding, dilation=dilation
    )
    op = n - base
    assert 0 <= op < stride or op < dilation
    back = output_size_transposed(
        m, k, stride=stride, padding=padding, output_padding=op, dilation=dilation
    )
    assert back == n
    y = conv_transpose2d(
        np.ones((m, m)),
        np.ones((k, k)),
        stride=stride,
        padding=padding,
        output_padding=op,
        dilation=dilation,
    )
    assert y.shape == (n, n)


# ---------------------------------------------------------------------------
# Shapes and dtypes


def test_a_2d_input_takes_a_one_channel_bank() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4))
    w = rng.standard_normal((1, 5, 2, 3))
    got = conv_transpose2d(x, w, stride=2)
    assert got.shape == (6, 9, 5)
    assert_close(got, scatter_loop(x[:, :, None], w, stride=2))


def test_a_2d_kernel_is_stamped_by_each_channel() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 4, 3))
    k = rng.standard_normal((3, 3))
    got = conv_transpose2d(x, k, [1.0, 2.0, 3.0], stride=2, padding=1)
    assert got.shape == (5, 7, 3)
    for c in range(3):
        alone = conv_transpose2d(x[:, :, c], k, stride=2, padding=1) + c + 1
        np.testing.assert_allclose(got[:, :, c], alone, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(
        conv_transpose2d(x, k, groups=3), conv_transpose2d(x, k)
    )


def test_depthwise_is_c_separate_transposes() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 4, 4)).astype(np.float32)
    w = rng.standard_normal((4, 1, 3, 3)).astype(np.float32)
    got = conv_transpose2d(x, w, stride=2, padding=1, output_padding=1, groups=4)
    assert got.dtype == np.float32
    assert got.shape == (10, 8, 4)
    for c in range(4):
        alone = conv_transpose2d(
            x[:, :, c], w[c, 0], stride=2, padding=1, output_padding=1
        )
        np.testing.assert_allclose(got[:, :, c], alone, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        (np.uint8, np.float32),
        (np.int64, np.float32),
        (np.bool_, np.float32),
        (np.float16, np.float32),
        (np.float32, np.float32),
        (np.float64, np.float64),
        (np.dtype(">f8"), np.float64),
    ],
    ids=str,
)
def test_dtypes_follow_conv2d(dtype: Any, expected: Any) -> None:
    x = np.arange(6).reshape(2, 3).astype(dtype)
    got = conv_transpose2d(x, np.ones((1, 2, 2, 2)), stride=2)
    assert got.dtype == expected
    assert got.dtype == conv2d(x, np.ones((2, 2))).dtype
    np.testing.assert_array_equal(got[::2, ::2, 1], x.astype(np.float64))


def test_weights_float32_cannot_hold_are_computed_in_float64() -> None:
    x = np.full((2, 2), 1e30, np.float32)
    w = np.full((1, 1, 1, 1), 1e-30)
    got = conv_transpose2d(x, w)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got[:, :, 0], 1.0, rtol=1e-6)


def test_inputs_are_not_modified_and_read_only_inputs_work() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 4, 2))
    w = rng.standard_normal((2, 3, 3, 3))
    x.flags.writeable = False
    w.flags.writeable = False
    x_copy, w_copy = x.copy(), w.copy()
    conv_transpose2d(x, w, 1.0, stride=2)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(w, w_copy)


@pytest.mark.parametrize("block_bytes", [None, 1 << 14])
def test_large_images_go_by_blocks_of_rows(
    block_bytes: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Blocks of input rows (a row makes 100 KiB of products: 4 blocks of 40 rows
    # by default, 130 of one row with 16 KiB) must join up exactly: the stamps
    # of one block reach into the next one's rows.
    from convcli.core import transpose

    if block_bytes is not None:
        monkeypatch.setattr(transpose, "_BLOCK_BYTES", block_bytes)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((130, 64, 4)).astype(np.float32)
    w = rng.standard_normal((4, 16, 5, 5)).astype(np.float32)
    got = conv_transpose2d(x, w, stride=2, padding=1)
    rows = [conv_transpose2d(x[a : a + 10], w, stride=2) for a in range(0, 130, 10)]
    full = np.zeros((2 * 129 + 5, 2 * 63 + 5, 16), np.float32)
    for n, part in enumerate(rows):
        full[20 * n : 20 * n + part.shape[0]] += part
    np.testing.assert_allclose(got, full[1:-1, 1:-1], rtol=1e-5, atol=1e-4)


def test_nan_reaches_its_stamp_only() -> None:
    x = np.zeros((4, 4, 2))
    x[1, 2, 1] = np.nan
    got = conv_transpose2d(x, np.ones((2, 1, 3, 3)), groups=2)
    assert np.isfinite(got[:, :, 0]).all()
    assert np.isnan(got[:, :, 1]).sum() == 9
    assert np.isnan(got[1:4, 2:5, 1]).all()


# ---------------------------------------------------------------------------
# output_size_transposed


def test_output_size_transposed_examples() -> None:
    assert output_size_transposed(3, 3, stride=2, padding=1) == 5
    assert output_size_transposed(3, 3, stride=2, padding=1, output_padding=1) == 6
    assert output_size_transposed(4, 4, stride=2, padding=1) == 8
    assert output_size_transposed(5, 3) == 7
    assert output_size_transposed(5, 3, dilation=3) == 11
    assert output_size_transposed(2, 1, padding=1) == 0  # crops everything


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"stride": 0}, ValueError, r"stride must be >= 1; got 0"),
        ({"padding": -1}, ValueError, r"padding must be >= 0; got -1"),
        ({"output_padding": -1}, ValueError, r"output_padding must be >= 0; got -1"),
        (
            {"stride": 2, "output_padding": 2},
            ValueError,
            r"output_padding must be smaller than stride or dilation in each axis; "
            r"got output_padding 2 with stride 2 and dilation 1",
        ),
        ({"dilation": 1.5}, TypeError, r"dilation must be an int; got 1\.5"),
        ({"padding": (1, 1)}, TypeError, r"padding must be an int; got \(1, 1\)"),
    ],
)
def test_output_size_transposed_errors(
    kwargs: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        output_size_transposed(4, 3, **kwargs)


# ---------------------------------------------------------------------------
# Errors: what was given and what is allowed


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "kwargs", "match"),
    [
        (
            (5, 5, 6),
            (6, 2, 3, 3),
            {"groups": 4},
            r"groups=4 needs C divisible by 4; got x \(5, 5, 6\) and w \(6, 2, 3, 3\)",
        ),
        (
            (5, 5, 3),
            (4, 2, 3, 3),
            {},
            r"w has shape \(4, 2, 3, 3\); expected \(kh, kw\) or \(3, D // groups, "
            r"kh, kw\) \(C, D // groups, kh, kw\) for x of shape \(5, 5, 3\) with groups=1",
        ),
        (
            (5, 5, 6),
            (3, 2, 3, 3),
            {"groups": 2},
            r"w has shape \(3, 2, 3, 3\); expected \(kh, kw\) or \(6, D // groups",
        ),
        ((5, 5, 3), (3, 3, 3), {}, r"w has shape \(3, 3, 3\); expected"),
        (
            (5, 5, 3),
            (3, 3),
            {"groups": 2},
            r"groups=2 needs w of shape \(C, D // 2, kh, kw\); a 2-D kernel \(kh, kw\) "
            r"is stamped by each channel on its own and takes groups=1 or groups=C \(3\)",
        ),
        ((5, 5, 1, 1), (1, 1, 3, 3), {}, r"x must have shape \(H, W\) or \(H, W, C\)"),
        ((0, 5), (1, 1, 3, 3), {}, r"got shape \(0, 5\)"),
        ((5, 5), (1, 0, 3, 3), {}, r"w must not be empty; got shape \(1, 0, 3, 3\)"),
        (
            (2, 2),
            (1, 1, 1, 1),
            {"padding": 1},
            r"padding \(1, 1\) crops the whole output: 2x2 before cropping",
        ),
        (
            (5, 5),
            (1, 1, 3, 3),
            {"bias": [1, 2]},
            r"bias must be a scalar or have shape \(1,\)",
        ),
    ],
)
def test_shapes_that_do_not_fit_say_both(
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    kwargs: dict[str, Any],
    match: str,
) -> None:
    with pytest.raises(ShapeError, match=match):
        conv_transpose2d(np.zeros(x_shape), np.ones(w_shape), **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (
            {"stride": 2, "output_padding": 2},
            ValueError,
            r"output_padding must be smaller than stride or dilation in each axis; "
            r"got output_padding \(2, 2\) with stride \(2, 2\) and dilation \(1, 1\)",
        ),
        (
            {"stride": (3, 1), "output_padding": (2, 1)},
            ValueError,
            r"got output_padding \(2, 1\) with stride \(3, 1\) and dilation \(1, 1\)",
        ),
        ({"stride": 0}, ValueError, r"stride must be >= 1 in both axes; got \(0, 0\)"),
        (
            {"dilation": (1, 0)},
            ValueError,
            r"dilation must be >= 1 in both axes; got \(1, 0\)",
        ),
        (
            {"padding": -1},
            ValueError,
            r"padding must be >= 0 in both axes; got \(-1, -1\)",
        ),
        (
            {"output_padding": (0, -1)},
            ValueError,
            r"output_padding must be >= 0 in both axes",
        ),
        (
            {"padding": "same"},
            TypeError,
            r"padding must be an int or a pair of ints; got 'same'",
        ),
        ({"groups": 0}, ValueError, r"groups must be >= 1; got 0"),
        ({"groups": 2.0}, TypeError, r"groups must be an int; got 2\.0"),
        (
            {"stride": 1.5},
            TypeError,
            r"stride must be an int or a pair of ints; got 1\.5",
        ),
    ],
)
def test_bad_arguments_say_what_was_given(
    kwargs: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        conv_transpose2d(np.zeros((4, 4, 2)), np.ones((2, 2, 3, 3)), **kwargs)


def test_output_padding_below_dilation_is_allowed() -> None:
    # PyTorch allows output_padding < stride OR < dilation.
    got = conv_transpose2d(
        np.ones((3, 3)), np.ones((2, 2)), output_padding=1, dilation=2
    )
    assert got.shape == (6, 6)


def test_bad_types() -> None:
    with pytest.raises(
        TypeError, match="w must hold real numbers; got dtype complex128"
    ):
        conv_transpose2d(np.ones((3, 3)), np.ones((2, 2), complex))
    with pytest.raises(TypeError, match="x must hold real numbers"):
        conv_transpose2d(np.ones((3, 3), complex), np.ones((2, 2)))
    with pytest.raises(ValueError, match="w must hold finite numbers"):
        conv_transpose2d(np.ones((3, 3)), np.array([[1.0, np.inf]]))


def test_exported_lazily_from_convcli() -> None:
    assert {"conv_transpose2d", "output_size_transposed"} <= set(convcli.__all__)
    assert convcli.conv_transpose2d is conv_transpose2d
    doc = conv_transpose2d.__doc__
    assert doc
    for name in (
        "x",
        "w",
        "bias",
        "stride",
        "padding",
        "output_padding",
        "dilation",
        "groups",
    ):
        assert f"{name} :" in doc, name
    assert "float32" in doc
    assert "float64" in doc


# ---------------------------------------------------------------------------
# PyTorch, where installed (not in CI)


@pytest.mark.parametrize(
    ("channels", "depth", "groups"), [*CASES, (8, 16, 4), (6, 6, 6)], ids=str
)
@pytest.mark.parametrize(
    "options",
    [
        {"stride": 2, "padding": 1, "output_padding": 1},
        {
            "stride": (3, 2),
            "padding": (2, 1),
            "output_padding": (1, 0),
            "dilation": (1, 2),
        },
        {"stride": 1, "padding": 2, "output_padding": 1, "dilation": 2},
        {},
    ],
    ids=str,
)
def test_against_torch(
    channels: int, depth: int, groups: int, options: dict[str, Any]
) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((6, 7, channels))
    w = rng.standard_normal((channels, depth // groups, 3, 4))
    bias = rng.standard_normal(depth)
    expected = torch_transpose(x, w, bias, groups=groups, **options)
    got = conv_transpose2d(x, w, bias, groups=groups, **options)
    assert_close(got, expected)
    got32 = conv_transpose2d(x.astype(np.float32), w, bias, groups=groups, **options)
    assert_close(got32, expected, rtol=1e-5)


@given(call=transposed_calls())
def test_against_torch_property(call: dict[str, Any]) -> None:
    pytest.importorskip("torch")
    x, w, bias = call.pop("x"), call.pop("w"), call.pop("bias")
    bias = None if bias is None else np.full(w.shape[1] * call["groups"], 0.25)
    try:
        got = conv_transpose2d(x, w, bias, **call)
    except ShapeError:
        with pytest.raises(RuntimeError):
            torch_transpose(x, w, bias, **call)
        return
    assert_close(got, torch_transpose(x, w, bias, **call))
