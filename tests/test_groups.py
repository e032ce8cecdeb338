"""conv2d with ``groups`` (PyTorch's grouped and depthwise convolution), every method.

The oracle is a float64 loop over output positions written here, from the
definition: filter d reads only the channels of its group ``d // (D // G)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from reference import reference_conv2d

import convcli
from convcli import ShapeError, conv2d, explain, output_size

METHODS = ["direct", "separable", "fft", "auto"]
BORDERS = ["constant", "edge", "reflect", "symmetric", "wrap"]


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (value[0], value[1])


def grouped_loop(
    x: np.ndarray,
    w: np.ndarray,
    bias: Any = None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> np.ndarray:
    """Grouped cross-correlation with zero padding, one output value at a time."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    height, width, channels = x.shape
    depth, per_in, kh, kw = w.shape
    assert per_in * groups == channels
    assert depth % groups == 0
    per_out = depth // groups
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    out_h = (height + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (width + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((out_h, out_w, depth))
    for d in range(depth):
        first = d // per_out * per_in  # the group's first channel
        for i in range(out_h):
            for j in range(out_w):
                total = 0.0 if bias is None else float(np.asarray(bias)[d])
                for c in range(per_in):
                    for u in range(kh):
                        for v in range(kw):
                            r, t = i * sh + u * dh - ph, j * sw + v * dw - pw
                            if 0 <= r < height and 0 <= t < width:
                                total += x[r, t, first + c] * w[d, c, u, v]
                out[i, j, d] = total
    return out


def assert_close(got: np.ndarray, expected: np.ndarray, x: Any, w: Any) -> None:
    """Equal within float32 rounding of the largest possible |output|."""
    assert got.shape == expected.shape
    scale = float(np.abs(x).max()) * float(
        np.abs(w).reshape(np.shape(w)[0], -1).sum(axis=1).max()
    )
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * max(scale, 1e-12))


# ---------------------------------------------------------------------------
# Against the loop


CASES = [  # (C, D, groups)
    (4, 6, 2),
    (6, 3, 3),
    (4, 4, 4),  # depthwise
    (3, 6, 3),  # depthwise with 2 filters per channel
    (2, 2, 1),
]


@pytest.mark.parametrize(("channels", "depth", "groups"), CASES, ids=str)
@pytest.mark.parametrize(
    ("stride", "padding", "dilation"),
    [(1, 0, 1), (2, 1, 1), ((2, 1), (0, 2), (1, 2))],
    ids=str,
)
@pytest.mark.parametrize("method", METHODS)
def test_grouped_matches_the_loop(
    channels: int,
    depth: int,
    groups: int,
    stride: Any,
    padding: Any,
    dilation: Any,
    method: str,
) -> None:
    rng = np.random.default_rng(15)
    x = rng.standard_normal((7, 8, channels))
    w = rng.standard_normal((depth, channels // groups, 3, 2))
    bias = rng.standard_normal(depth)
    got = conv2d(
        x,
        w,
        bias,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        method=method,
    )
    expected = grouped_loop(
        x, w, bias, stride=stride, padding=padding, dilation=dilation, groups=groups
    )
    assert got.dtype == np.float64
    assert_close(got, expected, x, w)


def test_the_loop_can_fail() -> None:
    # A grouped call computed as if every filter read every channel differs.
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 5, 4))
    w = rng.standard_normal((4, 2, 3, 3))
    grouped = grouped_loop(x, w, groups=2)
    mixed = conv2d(x, np.concatenate([w, w], axis=1))
    assert not np.allclose(grouped, mixed)
    with pytest.raises(AssertionError):
        assert_close(conv2d(x, w[:, ::-1].copy(), groups=2), grouped, x, w)


@pytest.mark.parametrize("method", METHODS)
def test_groups_is_a_block_diagonal_bank(method: str) -> None:
    # groups=G equals groups=1 with a (D, C) bank that is zero outside each group.
    rng = np.random.default_rng(2)
    x = rng.standard_normal((9, 10, 6)).astype(np.float32)
    w = rng.standard_normal((9, 2, 3, 3)).astype(np.float32)
    full = np.zeros((9, 6, 3, 3), np.float32)
    for d in range(9):
        g = d // 3
        full[d, 2 * g : 2 * g + 2] = w[d]
    got = conv2d(x, w, groups=3, method=method, padding=1)
    expected = conv2d(x, full, method="direct", padding=1)
    assert got.dtype == np.float32
    assert_close(got, expected, x, w)


# ---------------------------------------------------------------------------
# Properties over random shapes


@st.composite
def grouped_calls(draw: st.DrawFn) -> dict[str, Any]:
    groups = draw(st.integers(1, 3))
    per_in, per_out = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    height, width = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    return {
        "x": rng.standard_normal((height, width, groups * per_in)),
        "w": rng.standard_normal((groups * per_out, per_in, kh, kw)),
        "bias": draw(st.sampled_from([None, 0.5, "per map"])),
        "stride": draw(st.sampled_from([1, 2, (1, 3)])),
        "padding": draw(st.sampled_from([0, 1, (2, 0)])),
        "dilation": draw(st.sampled_from([1, 2, (2, 1)])),
        "border": draw(st.sampled_from(BORDERS)),
        "groups": groups,
    }


@given(call=grouped_calls(), method=st.sampled_from(METHODS))
def test_grouped_property(call: dict[str, Any], method: str) -> None:
    x, w, groups = call["x"], call["w"], call["groups"]
    bias = call["bias"]
    if bias == "per map":
        bias = np.arange(w.shape[0]) - 1.5
    kw_args = {k: call[k] for k in ("stride", "padding", "dilation", "border")}
    (sh, sw), (ph, pw) = _pair(call["stride"]), _pair(call["padding"])
    dh, dw = _pair(call["dilation"])
    shape = (
        output_size(x.shape[0], w.shape[2], stride=sh, padding=ph, dilation=dh),
        output_size(x.shape[1], w.shape[3], stride=sw, padding=pw, dilation=dw),
    )
    if min(shape) < 1:
        with pytest.raises(ShapeError, match="larger than the padded input"):
            conv2d(x, w, bias, groups=groups, method=method, **kw_args)
        return
    got = conv2d(x, w, bias, groups=groups, method=method, **kw_args)
    assert got.shape == (*shape, w.shape[0])
    # Oracle: the repository's reference on each group's channels and filters.
    per_in, per_out = x.shape[2] // groups, w.shape[0] // groups
    parts = [
        reference_conv2d(
            x[:, :, g * per_in : (g + 1) * per_in],
            w[g * per_out : (g + 1) * per_out],
            **kw_args,
        )
        for g in range(groups)
    ]
    expected = np.concatenate(parts, axis=2)
    if bias is not None:
        expected = expected + bias
    assert_close(got, expected, x, w)
    if call["border"] == "constant":
        geometry = {k: call[k] for k in ("stride", "padding", "dilation")}
        loop = grouped_loop(
            x,
            w,
            np.zeros(w.shape[0]) + (0 if bias is None else bias),
            **geometry,
            groups=groups,
        )
        assert_close(got, loop, x, w)


@given(call=grouped_calls())
def test_grouped_is_linear_and_leaves_inputs_alone(call: dict[str, Any]) -> None:
    x, w, groups = call["x"], call["w"], call["groups"]
    assume(min(x.shape[:2]) >= 3 and max(w.shape[2:]) <= 3)
    x_copy, w_copy = x.copy(), w.copy()
    a = conv2d(x, w, groups=groups, padding=1)
    b = conv2d(2 * x, w, groups=groups, padding=1)
    np.testing.assert_allclose(b, 2 * a, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(w, w_copy)


# ---------------------------------------------------------------------------
# Depthwise


@pytest.mark.parametrize("method", METHODS)
def test_depthwise_is_c_separate_convolutions(method: str) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((12, 11, 5)).astype(np.float32)
    w = rng.standard_normal((5, 1, 3, 4)).astype(np.float32)
    got = conv2d(x, w, groups=5, padding="same", border="reflect", method=method)
    for c in range(5):
        alone = conv2d(x[:, :, c], w[c, 0], padding="same", border="reflect")
        assert_close(got[:, :, c], alone, x, w)


@st.composite
def depthwise_calls(draw: st.DrawFn) -> dict[str, Any]:
    channels, per_channel = draw(st.integers(2, 4)), draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int16]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    shape = (draw(st.integers(3, 10)), draw(st.integers(3, 10)), channels)
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    if dtype != np.int16 and draw(st.booleans()):  # direct's NaN, inf and -0.0
        x.flat[rng.integers(0, x.size, 4)] = [np.inf, -np.inf, np.nan, -0.0]
    w = rng.standard_normal((channels * per_channel, 1, kh, kw))
    w[rng.random(w.shape) < draw(st.sampled_from([0.0, 0.4]))] = 0
    w[rng.random(w.shape) < draw(st.sampled_from([0.0, 0.3]))] = 1
    if draw(st.booleans()):
        w[0] = 0  # a filter of zeros
    return {
        "x": x,
        "w": w,
        "stride": draw(st.sampled_from([1, 2, (1, 2)])),
        "padding": draw(st.sampled_from([0, 1, 2])),
        "dilation": draw(st.sampled_from([1, (2, 1)])),
        "border": draw(st.sampled_from(BORDERS)),
        "cval": 0.0 if dtype == np.int16 else draw(st.sampled_from([0.0, np.inf])),
    }


@given(call=depthwise_calls())
def test_depthwise_direct_is_bit_for_bit_c_separate_kernels(
    call: dict[str, Any],
) -> None:
    # Small depthwise banks run all channels at once (`_direct_per_channel`):
    # the same products in the same order, zero weights skipped, as C calls
    # of a 2-D kernel; NaN, inf and the sign of zeros included.
    x, w = call.pop("x"), call.pop("w")
    channels = x.shape[2]
    per_channel = w.shape[0] // channels
    try:
        got = conv2d(x, w, groups=channels, method="direct", **call)
    except ShapeError:
        return
    for d in range(w.shape[0]):
        alone = conv2d(x[:, :, d // per_channel], w[d, 0], method="direct", **call)
        np.testing.assert_array_equal(got[:, :, d], alone)
        np.testing.assert_array_equal(np.signbit(got[:, :, d]), np.signbit(alone))


@pytest.mark.parametrize(
    ("shape", "at_once"), [((96, 96, 64), True), ((140, 130, 4), False)], ids=str
)
def test_depthwise_direct_in_tiles_and_threads(
    shape: tuple[int, int, int], at_once: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 96x96x64 with 5x5 (96x96 out) runs all channels at once, in two tiles on
    # two threads; 140x130 channel by channel: both are C separate kernels.
    import convcli.core

    runs = []
    per_channel = convcli.core._direct_per_channel

    def spy(*args: Any) -> None:
        runs.append(args)
        per_channel(*args)

    monkeypatch.setattr(convcli.core, "_direct_per_channel", spy)
    rng = np.random.default_rng(12)
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((shape[2], 1, 5, 5)).astype(np.float32)
    w[w < -1.5] = 0
    got = conv2d(x, w, groups=shape[2], method="direct", padding=2, workers=2)
    assert len(runs) == at_once
    for c in range(0, shape[2], 7):
        alone = conv2d(x[:, :, c], w[c, 0], method="direct", padding=2)
        np.testing.assert_array_equal(got[:, :, c], alone)


def test_depthwise_with_a_channel_multiplier() -> None:
    # groups=C with D = 2C: filters 2c and 2c+1 both read channel c.
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 7, 3))
    w = rng.standard_normal((6, 1, 3, 3))
    got = conv2d(x, w, groups=3)
    for d in range(6):
        alone = conv2d(x[:, :, d // 2], w[d, 0])
        np.testing.assert_allclose(got[:, :, d], alone, rtol=1e-12, atol=1e-12)


def test_a_2d_kernel_takes_groups_1_or_c() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 6, 3))
    k = rng.standard_normal((3, 3))
    same = conv2d(x, k)
    np.testing.assert_array_equal(conv2d(x, k, groups=3), same)
    stacked = np.broadcast_to(k, (3, 1, 3, 3))
    np.testing.assert_allclose(conv2d(x, stacked, groups=3), same, atol=1e-12)


def test_groups_1_is_the_plain_bank() -> None:
    rng = np.random.default_rng(6)
    x = rng.standard_normal((10, 10, 3)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3))
    np.testing.assert_array_equal(conv2d(x, w, groups=1), conv2d(x, w))


# ---------------------------------------------------------------------------
# Bias, dtypes, NaN, memo, explain


def test_bias_is_per_output_map_and_ints_compute_in_float32() -> None:
    x = np.arange(2 * 2 * 4, dtype=np.int16).reshape(2, 2, 4)
    w = np.ones((2, 2, 1, 1))
    got = conv2d(x, w, [10, 100], groups=2)
    assert got.dtype == np.float32
    # map 0 sums channels 0 and 1, map 1 sums channels 2 and 3
    np.testing.assert_array_equal(got[:, :, 0], x[:, :, 0] + x[:, :, 1] + 10)
    np.testing.assert_array_equal(got[:, :, 1], x[:, :, 2] + x[:, :, 3] + 100)
    assert conv2d(x.astype(np.float64), w, groups=2).dtype == np.float64


@pytest.mark.parametrize("method", METHODS)
def test_tiny_weights_compute_in_float64_per_group_and_round_once(method: str) -> None:
    # Weights float32 cannot hold make the call compute in float64; every group
    # computes so, and the one result is float32.
    rng = np.random.default_rng(11)
    x = rng.standard_normal((6, 7, 4)).astype(np.float32)
    w = rng.standard_normal((4, 2, 2, 2)) * 1e-39
    got = conv2d(x, w, groups=2, method=method)
    assert got.dtype == np.float32
    expected = grouped_loop(x, w, groups=2)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-44)
    assert np.abs(got).max() > 0


def test_a_2d_image_takes_groups_1_only_as_a_bank() -> None:
    x = np.arange(12.0).reshape(3, 4)
    assert conv2d(x, np.ones((2, 1, 1, 1)), groups=1).shape == (3, 4, 2)
    with pytest.raises(ShapeError, match=r"groups=2 needs C and D divisible by 2"):
        conv2d(x, np.ones((2, 1, 1, 1)), groups=2)


@pytest.mark.parametrize("method", METHODS)
def test_nan_stays_in_its_group(method: str) -> None:
    x = np.ones((6, 6, 4))
    x[2, 3, 0] = np.nan
    w = np.ones((4, 2, 3, 3))
    got = conv2d(x, w, groups=2, padding=1, method=method)
    assert np.isnan(got[:, :, :2]).sum() == 2 * 9
    assert np.isfinite(got[:, :, 2:]).all()
    np.testing.assert_allclose(got[1:-1, 1:-1, 2:], 18.0)


def test_memoized_weights_serve_grouped_and_plain_calls() -> None:
    # The same bytes as a (4, 2) bank on 2 channels and a grouped bank on 4.
    rng = np.random.default_rng(7)
    w = rng.standard_normal((4, 2, 3, 3))
    x2, x4 = rng.standard_normal((8, 8, 2)), rng.standard_normal((8, 8, 4))
    for _ in range(2):
        assert_close(conv2d(x2, w), grouped_loop(x2, w), x2, w)
        assert_close(conv2d(x4, w, groups=2), grouped_loop(x4, w, groups=2), x4, w)


def test_explain_takes_groups() -> None:
    x = np.zeros((64, 64, 8), np.float32)
    w = np.random.default_rng(8).standard_normal((16, 2, 3, 3))
    e = explain(x, w, groups=4)
    assert e.output_shape == (62, 62, 16)
    assert e.method in {"direct", "separable", "fft"}
    assert e.reason.startswith("4 groups of 2 input and 4 output maps each")
    assert set(e.costs) == {"direct", "separable", "fft"}
    assert explain(x, w, groups=4, method="fft").method == "fft"
    with pytest.raises(ShapeError, match="groups=3 needs C and D divisible by 3"):
        explain(x, w, groups=3)
    depthwise = explain(x, w[:8, :1], groups=8)
    assert depthwise.method == "direct"
    assert depthwise.reason.startswith(
        "8 groups of 1 input and 1 output maps each, all channels at once"
    )
    assert explain(x, w[:8, :1], groups=8, method="fft").reason == (
        "method='fft' was requested"
    )


def test_grouped_calls_run_on_threads() -> None:
    rng = np.random.default_rng(9)
    x = rng.standard_normal((300, 200, 4)).astype(np.float32)
    w = rng.standard_normal((4, 1, 5, 5)).astype(np.float32)
    one = conv2d(x, w, groups=4, workers=1)
    np.testing.assert_array_equal(conv2d(x, w, groups=4, workers=2), one)


# ---------------------------------------------------------------------------
# Errors: what was given and what is allowed


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "groups", "match"),
    [
        (
            (5, 5, 6),
            (8, 2, 3, 3),
            4,
            r"groups=4 needs C and D divisible by 4; got x \(5, 5, 6\) and w \(8, 2, 3, 3\)",
        ),
        (
            (5, 5, 6),
            (5, 3, 3, 3),
            2,
            r"groups=2 needs C and D divisible by 2; got x \(5, 5, 6\) and w \(5, 3, 3, 3\)",
        ),
        (
            (5, 5, 6),
            (4, 2, 3, 3),
            2,
            r"w has shape \(4, 2, 3, 3\); expected \(D, 3, kh, kw\) \(D, C // groups, "
            r"kh, kw\) for x of shape \(5, 5, 6\) with groups=2",
        ),
        (
            (5, 5, 6),
            (3, 3),
            2,
            r"groups=2 needs a bank w of shape \(D, C // 2, kh, kw\); a 2-D kernel "
            r"\(kh, kw\) filters each channel on its own and takes groups=1 or "
            r"groups=C \(6\); got x \(5, 5, 6\) and w \(3, 3\)",
        ),
        (
            (5, 5, 3),
            (2, 4, 3, 3),
            1,
            r"w has shape \(2, 4, 3, 3\); expected \(kh, kw\) or \(D, 3, kh, kw\) "
            r"for x of shape \(5, 5, 3\)",
        ),
        ((5, 5, 4), (4, 1, 3), 4, r"w has shape \(4, 1, 3\); expected"),
    ],
)
def test_impossible_groups_say_what_was_given(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], groups: int, match: str
) -> None:
    for method in METHODS:
        with pytest.raises(ShapeError, match=match):
            conv2d(np.zeros(x_shape), np.ones(w_shape), groups=groups, method=method)
    with pytest.raises(ValueError, match=match):
        explain(np.zeros(x_shape), np.ones(w_shape), groups=groups)


@pytest.mark.parametrize(
    ("groups", "error", "match"),
    [
        (0, ValueError, r"groups must be >= 1; got 0"),
        (-2, ValueError, r"groups must be >= 1; got -2"),
        (1.0, TypeError, r"groups must be an int; got 1\.0"),
        (True, TypeError, r"groups must be an int; got True"),
        ("2", TypeError, r"groups must be an int; got '2'"),
    ],
)
def test_groups_must_be_a_positive_int(groups: Any, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        conv2d(np.zeros((4, 4, 2)), np.ones((2, 1, 3, 3)), groups=groups)


def test_numpy_ints_are_groups_too() -> None:
    x = np.ones((4, 4, 2))
    got = conv2d(x, np.ones((2, 1, 3, 3)), groups=np.int64(2))
    np.testing.assert_array_equal(got, np.full((2, 2, 2), 9.0))


def test_bias_with_groups_names_the_maps() -> None:
    with pytest.raises(ShapeError, match=r"bias must be a scalar or have shape \(4,\)"):
        conv2d(np.zeros((4, 4, 2)), np.ones((4, 1, 3, 3)), [1, 2], groups=2)


def test_groups_is_exported_with_conv2d() -> None:
    assert "groups" in convcli.conv2d.__doc__
    assert "groups" in convcli.explain.__code__.co_varnames


# ---------------------------------------------------------------------------
# PyTorch, where installed (not in CI)


@pytest.mark.parametrize(
    ("channels", "depth", "groups"), [*CASES, (8, 16, 4), (16, 16, 16)], ids=str
)
@pytest.mark.parametrize("method", METHODS)
def test_against_torch(channels: int, depth: int, groups: int, method: str) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(10)
    x = rng.standard_normal((13, 11, channels))
    w = rng.standard_normal((depth, channels // groups, 3, 5))
    bias = rng.standard_normal(depth)
    options = {"stride": (2, 1), "padding": (1, 2), "dilation": (1, 2)}
    expected = (
        torch.nn.functional.conv2d(
            torch.from_numpy(x).permute(2, 0, 1)[None],
            torch.from_numpy(w),
            torch.from_numpy(bias),
            groups=groups,
            **options,
        )[0]
        .permute(1, 2, 0)
        .numpy()
    )
    got = conv2d(x, w, bias, groups=groups, method=method, **options)
    assert_close(got, expected, x, w)
    got32 = conv2d(
        x.astype(np.float32), w, bias, groups=groups, method=method, **options
    )
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, expected, rtol=1e-4, atol=1e-4 * 20)
