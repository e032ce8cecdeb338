"""conv2d and its helpers against the float64 loop reference (SPEC sections 1-2)."""

from __future__ import annotations

import functools
import math
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from reference import reference_conv2d

import convcli
from convcli import ShapeError, conv2d, explain, output_size
from convcli.core import kernel_rank
from convcli.demos import cs231n

METHODS = ["direct", "separable", "fft", "auto"]
BORDERS = ["constant", "edge", "reflect", "symmetric", "wrap", "zero", "replicate"]
CANONICAL = {"zero": "constant", "replicate": "edge"}
PADDINGS = [0, 1, (1, 2), ((0, 2), (1, 0)), "same", "valid"]
STRIDES = [1, 2, (2, 3)]
DILATIONS = [1, 2, (1, 3)]


def _scale(x: Any, w: Any, cval: float = 0.0, bias: Any = None) -> float:
    """Largest magnitude an output value can reach: sum|w| * max|x| (+ cval, bias)."""
    xa = np.asarray(x, dtype=np.float64)
    top = max(float(np.abs(xa).max()), abs(cval))
    per_map = np.abs(np.asarray(w, dtype=np.float64))
    per_map = (
        per_map.reshape(per_map.shape[0], -1).sum(axis=1).max()
        if per_map.ndim == 4
        else per_map.sum()
    )
    extra = (
        0.0 if bias is None else float(np.abs(np.asarray(bias, dtype=np.float64)).max())
    )
    return max(float(per_map) * top + extra, 1e-12)


def assert_close(
    got: np.ndarray,
    expected: np.ndarray,
    scale: float,
    rtol: float = 1e-5,
    msg: str = "",
) -> None:
    assert got.shape == expected.shape, f"{msg}: shape {got.shape} != {expected.shape}"
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * scale, err_msg=msg)


def _nonsymmetric(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Distinct integer-ish weights, so any flip or transpose of the kernel changes the result."""
    n = math.prod(shape)
    values = rng.permutation(np.arange(1, n + 1) * rng.choice([-1, 1], n)) / 4
    return values.reshape(shape).astype(np.float32)


# Hypothesis strategies

small_floats = st.floats(-100, 100, allow_nan=False, allow_infinity=False, width=32)


def _image(
    dtype: Any = np.float64, max_side: int = 12
) -> st.SearchStrategy[np.ndarray]:
    shapes = st.one_of(
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=max_side),
        st.tuples(
            st.integers(1, max_side), st.integers(1, max_side), st.integers(1, 3)
        ),
    )
    return hnp.arrays(dtype, shapes, elements=small_floats)


paddings = st.one_of(
    st.integers(0, 4),
    st.tuples(st.integers(0, 4), st.integers(0, 4)),
    st.tuples(
        st.tuples(st.integers(0, 4), st.integers(0, 4)),
        st.tuples(st.integers(0, 4), st.integers(0, 4)),
    ),
    st.sampled_from(["same", "valid"]),
)


# ---------------------------------------------------------------------------
# The grid: every method x border x padding x stride x dilation


@functools.cache
def _grid_cases() -> list[tuple[str, np.ndarray, np.ndarray, dict[str, Any]]]:
    rng = np.random.default_rng(20240611)

    def img(*shape: int) -> np.ndarray:
        return rng.normal(size=shape).astype(np.float32)

    return [
        ("gray 3x3", img(9, 8), _nonsymmetric(rng, (3, 3)), {}),
        ("gray 2x2 cval", img(8, 9), _nonsymmetric(rng, (2, 2)), {"cval": -1.5}),
        ("gray 4x4", img(7, 10), _nonsymmetric(rng, (4, 4)), {}),
        ("gray 2x5 flip", img(9, 8), _nonsymmetric(rng, (2, 5)), {"flip": True}),
        ("gray 5x3 bias", img(10, 7), _nonsymmetric(rng, (5, 3)), {"bias": 0.75}),
        (
            "rgb depthwise",
            img(8, 9, 3),
            _nonsymmetric(rng, (3, 2)),
            {"bias": [1.0, -2.0, 0.5]},
        ),
        (
            "rgb bank",
            img(7, 8, 3),
            _nonsymmetric(rng, (2, 3, 2, 3)),
            {"bias": [0.25, -1.0], "flip": True},
        ),
        ("gray bank", img(8, 7), _nonsymmetric(rng, (3, 1, 3, 2)), {"cval": 2.0}),
        ("1x1 image", img(1, 1), _nonsymmetric(rng, (3, 3)), {"cval": 0.5}),
        ("2x2 image", img(2, 2), _nonsymmetric(rng, (2, 2)), {}),
        ("2x2x3 bank", img(2, 2, 3), _nonsymmetric(rng, (2, 3, 3, 3)), {}),
        (
            "uint8",
            rng.integers(0, 256, (6, 7)).astype(np.uint8),
            _nonsymmetric(rng, (3, 3)),
            {},
        ),
    ]


@functools.cache
def _grid_reference(
    case: int, border: str, padding: Any, stride: Any, dilation: Any
) -> np.ndarray | None:
    _, x, w, extra = _grid_cases()[case]
    try:
        return reference_conv2d(
            x,
            w,
            stride=stride,
            padding=padding,
            dilation=dilation,
            border=border,
            **extra,
        )
    except ValueError:
        return None  # the window does not fit the padded input


@pytest.mark.parametrize("dilation", DILATIONS, ids=str)
@pytest.mark.parametrize("stride", STRIDES, ids=str)
@pytest.mark.parametrize("padding", PADDINGS, ids=str)
@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("method", METHODS)
def test_matches_reference(
    method: str, border: str, padding: Any, stride: Any, dilation: Any
) -> None:
    for case, (label, x, w, extra) in enumerate(_grid_cases()):
        expected = _grid_reference(
            case, CANONICAL.get(border, border), padding, stride, dilation
        )
        kwargs = {
            "stride": stride,
            "padding": padding,
            "dilation": dilation,
            "border": border,
            **extra,
        }
        if expected is None:
            with pytest.raises(ShapeError, match="larger than the padded input"):
                conv2d(x, w, method=method, **kwargs)
            continue
        got = conv2d(x, w, method=method, **kwargs)
        assert got.dtype == np.float32, label
        scale = _scale(x, w, extra.get("cval", 0.0), extra.get("bias"))
        assert_close(got, expected, scale, msg=f"{label} {kwargs}")


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("cval", [0.0, 3.5, -np.pi])
def test_cval_flip_bias(method: str, flip: bool, cval: float) -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(7, 9, 2)).astype(np.float32)
    for w, bias in [
        (_nonsymmetric(rng, (3, 4)), 2.5),
        (_nonsymmetric(rng, (3, 4)), np.array([1.0, -1.0])),
        (_nonsymmetric(rng, (4, 2, 2, 3)), [0.5, 0.0, -3.0, 7.0]),
        (_nonsymmetric(rng, (4, 2, 2, 3)), -1.25),
    ]:
        kwargs = {
            "bias": bias,
            "padding": ((2, 1), (0, 3)),
            "border": "constant",
            "cval": cval,
            "flip": flip,
        }
        expected = reference_conv2d(x, w, **kwargs)
        got = conv2d(x, w, method=method, **kwargs)
        assert_close(got, expected, _scale(x, w, cval, bias), msg=str(kwargs))
    # flip=True is the same as passing the kernel rotated by 180 degrees.
    w = _nonsymmetric(rng, (3, 2))
    np.testing.assert_allclose(
        conv2d(x, w, flip=True, method=method, padding=1, border="reflect"),
        conv2d(x, np.rot90(w, 2), method=method, padding=1, border="reflect"),
        rtol=1e-5,
        atol=1e-5 * _scale(x, w),
    )


def test_flip_is_scipy_convolve() -> None:
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(12)
    x = rng.normal(size=(9, 10))
    w = rng.normal(size=(3, 5))
    got = conv2d(x, w, flip=True, padding=(1, 2), border="edge")
    np.testing.assert_allclose(
        got, ndimage.convolve(x, w, mode="nearest"), rtol=1e-10, atol=1e-10
    )


# ---------------------------------------------------------------------------
# scipy.ndimage.correlate as a second oracle

SCIPY_MODES = {
    "constant": "constant",
    "symmetric": "reflect",
    "reflect": "mirror",
    "edge": "nearest",
    "wrap": "wrap",
}


@pytest.mark.parametrize("border", list(SCIPY_MODES))
@pytest.mark.parametrize("method", METHODS)
def test_matches_scipy_correlate(method: str, border: str) -> None:
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(13)
    for shape in [(11, 13), (12, 9, 3), (4, 5)]:
        x = rng.normal(size=shape).astype(np.float32)
        for kshape in [(3, 3), (5, 3), (1, 5), (7, 7)]:
            w = _nonsymmetric(rng, kshape)
            pads = ((kshape[0] - 1) // 2, (kshape[1] - 1) // 2)
            got = conv2d(x, w, padding=pads, border=border, cval=1.25, method=method)
            w3 = w if x.ndim == 2 else w[:, :, None]
            expected = ndimage.correlate(
                x.astype(np.float64),
                w3.astype(np.float64),
                mode=SCIPY_MODES[border],
                cval=1.25,
            )
            assert_close(got, expected, _scale(x, w, 1.25), msg=f"{shape} {kshape}")


@pytest.mark.parametrize("border", BORDERS)
@pytest.mark.parametrize("method", METHODS)
def test_padding_larger_than_image(method: str, border: str) -> None:
    # numpy.pad repeats the reflection (or wrap) periodically when the pad is
    # longer than the image; 1-pixel axes too.
    rng = np.random.default_rng(26)
    for shape in [(3, 2), (1, 4), (2, 1, 2), (1, 1)]:
        x = rng.normal(size=shape).astype(np.float32)
        channels = x.shape[2] if x.ndim == 3 else 1
        for w, padding in [
            (_nonsymmetric(rng, (3, 2)), 7),
            (_nonsymmetric(rng, (5, 4)), ((9, 2), (0, 11))),
            (_nonsymmetric(rng, (2, channels, 2, 2)), (6, 5)),
        ]:
            for stride, dilation in [(1, 1), (3, 2), ((2, 5), (3, 1))]:
                kwargs = {
                    "padding": padding,
                    "border": border,
                    "stride": stride,
                    "dilation": dilation,
                    "cval": -2.0,
                }
                try:
                    expected = reference_conv2d(x, w, **kwargs)
                except ValueError:
                    with pytest.raises(
                        ShapeError, match="larger than the padded input"
                    ):
                        conv2d(x, w, method=method, **kwargs)
                    continue
                got = conv2d(x, w, method=method, **kwargs)
                assert_close(got, expected, _scale(x, w, -2.0), msg=f"{shape} {kwargs}")


@settings(max_examples=80)
@given(
    data=st.data(),
    method=st.sampled_from(METHODS),
    border=st.sampled_from(BORDERS),
    stride=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    flip=st.booleans(),
    workers=st.sampled_from([None, 1, 2, 3]),
)
def test_random_calls_match_reference(
    data: st.DataObject,
    method: str,
    border: str,
    stride: tuple[int, int],
    dilation: tuple[int, int],
    flip: bool,
    workers: int | None,
) -> None:
    x = data.draw(_image(np.float32), label="x")
    channels = 1 if x.ndim == 2 else x.shape[2]
    kh, kw = data.draw(st.tuples(st.integers(1, 5), st.integers(1, 5)), label="kernel")
    wshape = data.draw(
        st.sampled_from([(kh, kw), (1, channels, kh, kw), (3, channels, kh, kw)]),
        label="wshape",
    )
    w = data.draw(hnp.arrays(np.float32, wshape, elements=small_floats), label="w")
    padding = data.draw(paddings, label="padding")
    cval = data.draw(small_floats, label="cval")
    kwargs = {
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "border": border,
        "cval": cval,
        "flip": flip,
    }
    try:
        expected = reference_conv2d(x, w, **kwargs)
    except ValueError:
        with pytest.raises(ShapeError, match="larger than the padded input"):
            conv2d(x, w, method=method, **kwargs)
        return
    got = conv2d(x, w, method=method, workers=workers, **kwargs)
    assert got.dtype == np.float32
    assert_close(got, expected, _scale(x, w, cval), msg=str(kwargs))


# ---------------------------------------------------------------------------
# A larger image: several tiles, FFT overlap-save, one and two workers

LARGE_CASES = {
    "31x31 same reflect": ("w31", {"padding": "same", "border": "reflect"}),
    "15x15 pad7 wrap stride23": (
        "w15",
        {"padding": 7, "border": "wrap", "stride": (2, 3)},
    ),
    "15x15 same constant dil2": (
        "w15",
        {"padding": "same", "border": "constant", "cval": 0.5, "dilation": 2},
    ),
    "bank 9x9 same edge": (
        "bank9",
        {"padding": "same", "border": "edge", "bias": [1.0, -1.0]},
    ),
}


@functools.cache
def _large_inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(300257)
    return {
        "x": rng.uniform(0, 255, (300, 257, 3)).astype(np.float32),
        "w31": rng.normal(size=(31, 31)).astype(np.float32),
        "w15": rng.normal(size=(15, 15)).astype(np.float32),
        "bank9": rng.normal(size=(2, 3, 9, 9)).astype(np.float32),
    }


@functools.cache
def _large_reference(case: str) -> np.ndarray:
    data = _large_inputs()
    key, kwargs = LARGE_CASES[case]
    return reference_conv2d(data["x"], data[key], **kwargs)


@pytest.mark.parametrize("case", list(LARGE_CASES))
@pytest.mark.parametrize("method", METHODS)
def test_large_image(method: str, case: str) -> None:
    data = _large_inputs()
    key, kwargs = LARGE_CASES[case]
    x, w = data["x"], data[key]
    expected = _large_reference(case)
    scale = _scale(x, w, kwargs.get("cval", 0.0), kwargs.get("bias"))
    one = conv2d(x, w, method=method, workers=1, **kwargs)
    two = conv2d(x, w, method=method, workers=2, **kwargs)
    assert_close(one, expected, scale, msg=f"{method} workers=1")
    assert_close(two, expected, scale, msg=f"{method} workers=2")
    np.testing.assert_allclose(one, two, rtol=1e-6, atol=1e-6 * scale)


@pytest.mark.parametrize("case", list(LARGE_CASES))
def test_fft_in_batches_of_one_column_tile(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Wide images split each row band's column tiles into several FFT calls.
    monkeypatch.setattr(convcli.core.fft, "_FFT_BATCH_BYTES", 1)
    data = _large_inputs()
    key, kwargs = LARGE_CASES[case]
    x, w = data["x"], data[key]
    scale = _scale(x, w, kwargs.get("cval", 0.0), kwargs.get("bias"))
    got = conv2d(x, w, method="fft", workers=1, **kwargs)
    assert_close(got, _large_reference(case), scale, msg="fft one tile per call")


@pytest.mark.parametrize("method", METHODS)
def test_reused_buffers_hold_no_stale_values(method: str) -> None:
    # Each thread reuses its tile buffers; what an earlier call left there (here
    # +inf and -inf, whose sums warn) must never reach a later result, nor raise
    # a warning.
    rng = np.random.default_rng(4242)
    poisoned = np.full((64, 70, 3), np.inf, np.float32)
    poisoned[:, ::2] = -np.inf
    w = rng.normal(size=(5, 5)).astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        conv2d(poisoned, w, method=method, padding="same", workers=1)
    x = rng.normal(size=(40, 50, 3)).astype(np.float32)
    got = conv2d(x, w, method=method, padding="same", workers=1)
    expected = reference_conv2d(x, w, padding="same")
    assert np.isfinite(got).all()
    assert_close(got, expected, _scale(x, w), msg=method)


def test_concurrent_calls_from_several_threads() -> None:
    # batch may call conv2d from several threads at once; each call also runs its
    # own tiles on the shared pool.
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(28)
    images = [rng.uniform(0, 255, (160, 150, 3)).astype(np.float32) for _ in range(6)]
    w = rng.normal(size=(15, 15)).astype(np.float32)

    def run(args: tuple[np.ndarray, str]) -> np.ndarray:
        x, method = args
        return conv2d(x, w, padding="same", border="reflect", method=method, workers=2)

    jobs = [(x, method) for x in images for method in ("direct", "separable", "fft")]
    serial = [run(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(run, jobs))
    for (x, method), a, b in zip(jobs, serial, parallel, strict=True):
        np.testing.assert_allclose(
            b, a, rtol=1e-6, atol=1e-6 * _scale(x, w), err_msg=method
        )


# ---------------------------------------------------------------------------
# dtypes


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.bool_, np.float32])
def test_dtype_float32_out(method: str, dtype: type) -> None:
    rng = np.random.default_rng(14)
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    if dtype is np.bool_:
        x = rng.random((9, 8, 2)) < 0.5
    elif info is not None:
        x = rng.integers(info.min, info.max, (9, 8, 2), endpoint=True).astype(dtype)
    else:
        x = rng.normal(size=(9, 8, 2)).astype(dtype)
    w = _nonsymmetric(rng, (3, 2))
    got = conv2d(x, w, method=method, padding="same", border="symmetric")
    assert got.dtype == np.float32
    expected = reference_conv2d(x, w, padding="same", border="symmetric")
    assert_close(got, expected, _scale(x, w))
    bank = _nonsymmetric(rng, (2, 2, 3, 3))
    got = conv2d(x, bank, bias=[1, 2], method=method, padding=1)
    assert got.dtype == np.float32
    assert_close(
        got,
        reference_conv2d(x, bank, bias=[1, 2], padding=1),
        _scale(x, bank, bias=[1, 2]),
    )


@pytest.mark.parametrize("method", METHODS)
def test_float64_stays_float64(method: str) -> None:
    rng = np.random.default_rng(15)
    x = rng.normal(size=(12, 11, 2))
    cases = [
        (
            _nonsymmetric(rng, (3, 5)).astype(np.float64),
            {"padding": "same", "border": "reflect"},
        ),
        (
            rng.normal(size=(3, 2, 4, 2)),
            {"padding": (1, 2), "stride": 2, "border": "wrap"},
        ),
    ]
    for w, kwargs in cases:
        got = conv2d(x, w, method=method, **kwargs)
        assert got.dtype == np.float64
        expected = reference_conv2d(x, w, **kwargs)
        rtol = 1e-10 if method in ("direct", "separable") else 1e-5
        assert_close(got, expected, _scale(x, w), rtol=rtol, msg=str(kwargs))


def test_float32_weights_on_float64_image_stay_float64() -> None:
    x = np.linspace(0, 1, 30).reshape(5, 6)
    assert conv2d(x, np.ones((2, 2), np.float32)).dtype == np.float64
    assert conv2d(x.astype(np.float32), np.ones((2, 2))).dtype == np.float32


# ---------------------------------------------------------------------------
# Hand-worked cases


@pytest.mark.parametrize("method", METHODS)
def test_spec_worked_window(method: str) -> None:
    window = np.array([[4, 0, 0], [0, 0, 0], [0, 0, -4]])
    kernel = np.array([[0, 0, 0], [0, 1, 1], [0, 1, 2]])
    # 4*0 + 0*0 + 0*0 + 0*0 + 0*1 + 0*1 + 0*0 + 0*1 + -4*2 = -8
    out = conv2d(window, kernel, method=method)
    assert out.shape == (1, 1)
    assert out.dtype == np.float32
    if method == "direct":
        assert out[0, 0] == -8.0
    assert out[0, 0] == pytest.approx(-8.0, abs=1e-5)
    assert conv2d(window, kernel, method=method, flip=True)[0, 0] == pytest.approx(
        8.0, abs=1e-5
    )


# The cs231n demo of `convcli trace --demo cs231n`: x is (5, 5, 3), two filters of
# 3 x 3 x 3, biases 1 and 0. Its values live in convcli/demos.py; the output
# below pins them (and the first value is worked by hand further down).
_DEMO = cs231n()
CS231N_X = _DEMO.x.transpose(2, 0, 1)  # C x H x W, as the cs231n notes show it
CS231N_W = _DEMO.w
# Output maps D x H' x W'.
CS231N_OUT = np.array(
    [
        [[1, 2, 9], [8, 12, 12], [7, 8, 11]],
        [[2, 0, 2], [4, -3, -2], [-2, -3, -5]],
    ]
)


@pytest.mark.parametrize("method", METHODS)
def test_cs231n_demo(method: str) -> None:
    x = CS231N_X.transpose(1, 2, 0)  # (H, W, C) = (5, 5, 3)
    out = conv2d(x, CS231N_W, bias=(1, 0), padding=1, stride=2, method=method)
    assert out.shape == (3, 3, 2)
    expected = reference_conv2d(x, CS231N_W, bias=(1, 0), padding=1, stride=2)
    np.testing.assert_allclose(out, expected, atol=1e-4)
    np.testing.assert_allclose(out, CS231N_OUT.transpose(1, 2, 0), atol=1e-4)


def test_cs231n_first_value_by_hand() -> None:
    # Output (row 0, col 0) of filter 0 sees the padded window rows -1..1, cols -1..1:
    # only x[c, 0:2, 0:2] is not padding, and meets w[0, c, 1:3, 1:3].
    # c=0: 0*1 + 1*0 + 0*1 + 0*1 = 0
    # c=1: 0*1 + 0*0 + 0*1 + 1*1 = 1
    # c=2: 0*1 + 1*1 + 2*-1 + 0*-1 = -1
    # sum 0 + 1 - 1 = 0, plus bias 1 = 1.
    by_hand = (
        (0 * 1 + 1 * 0 + 0 * 1 + 0 * 1)
        + (0 * 1 + 0 * 0 + 0 * 1 + 1 * 1)
        + (0 * 1 + 1 * 1 + 2 * -1 + 0 * -1)
        + 1
    )
    assert by_hand == 1
    x = CS231N_X.transpose(1, 2, 0)
    out = conv2d(x, CS231N_W, bias=(1, 0), padding=1, stride=2, method="direct")
    assert out[0, 0, 0] == by_hand
    # Filter 1 at (row 1, col 1): window rows 1..3, cols 1..3 of x, no padding.
    window = CS231N_X[:, 1:4, 1:4]
    assert out[1, 1, 1] == np.sum(window * CS231N_W[1]) + 0 == -3


# ---------------------------------------------------------------------------
# separable and kernel_rank

SOBEL = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64)
GAUSS = np.outer([1, 4, 6, 4, 1], [1, 4, 6, 4, 1]) / 256.0
BOX = np.full((5, 5), 1 / 25)
LAPLACIAN = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64)
ZERO_ROWS = np.array([[0, 0, 0, 0], [1, 2, 3, 1], [0, 0, 0, 0]], dtype=np.float64)


@pytest.mark.parametrize(
    ("w", "rank"),
    [
        (SOBEL, 1),
        (SOBEL.T, 1),
        (GAUSS, 1),
        (BOX, 1),
        (ZERO_ROWS, 1),
        (LAPLACIAN, 2),
        (np.random.default_rng(16).normal(size=(5, 5)), 5),
        (np.random.default_rng(17).normal(size=(3, 6)), 3),
        (np.zeros((3, 3)), 0),
        (np.stack([np.stack([SOBEL, LAPLACIAN])]), 2),  # a bank: the largest slice rank
        ([[1, 2, 1], [2, 4, 2], [1, 2, 1]], 1),
    ],
)
def test_kernel_rank(w: Any, rank: int) -> None:
    assert kernel_rank(w) == rank


@pytest.mark.parametrize("border", ["constant", "reflect", "wrap"])
@pytest.mark.parametrize(
    "w",
    [
        SOBEL,
        GAUSS,
        BOX,
        LAPLACIAN,
        ZERO_ROWS,
        np.zeros((3, 3)),
        np.random.default_rng(18).normal(size=(5, 5)),
        np.random.default_rng(19).normal(size=(4, 7)),
    ],
    ids=[
        "sobel",
        "gauss",
        "box",
        "laplacian",
        "zero-rows",
        "zeros",
        "random5x5",
        "random4x7",
    ],
)
def test_separable_matches_reference(w: np.ndarray, border: str) -> None:
    rng = np.random.default_rng(20)
    x = rng.uniform(0, 255, (16, 15, 3)).astype(np.float32)
    for kwargs in [
        {"padding": "same"},
        {"padding": 2, "stride": (2, 1), "dilation": (1, 2)},
    ]:
        got = conv2d(x, w, method="separable", border=border, **kwargs)
        expected = reference_conv2d(x, w, border=border, **kwargs)
        assert_close(got, expected, _scale(x, w), msg=str(kwargs))
        got64 = conv2d(
            x.astype(np.float64), w, method="separable", border=border, **kwargs
        )
        assert_close(got64, expected, _scale(x, w), rtol=1e-10, msg=str(kwargs))


def test_separable_bank_mixed_ranks() -> None:
    rng = np.random.default_rng(21)
    x = rng.normal(size=(10, 11, 2)).astype(np.float32)
    bank = np.stack(
        [
            np.stack([SOBEL, LAPLACIAN]),
            np.stack([np.zeros((3, 3)), np.zeros((3, 3))]),  # an all-zero filter
            np.stack([np.zeros((3, 3)), SOBEL.T]),
            np.stack([rng.normal(size=(3, 3)), GAUSS[1:4, 1:4]]),
        ]
    )
    for method in METHODS:
        got = conv2d(
            x,
            bank,
            bias=[0.0, 1.0, 2.0, 3.0],
            padding=1,
            border="reflect",
            method=method,
        )
        expected = reference_conv2d(
            x, bank, bias=[0.0, 1.0, 2.0, 3.0], padding=1, border="reflect"
        )
        assert_close(got, expected, _scale(x, bank, bias=3.0), msg=method)


@pytest.mark.parametrize("variant", ["taps", "banded"])
@pytest.mark.parametrize("border", ["constant", "reflect", "wrap"])
def test_both_separable_variants_match_reference(
    variant: str, border: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # method="separable" runs by taps or by banded matrix products, whichever
    # the cost model says is cheaper; force each one over shapes, strides and
    # dilations, with row tiles and column blocks that do not divide evenly.
    def prefer(call: Any, rank: int) -> dict[str, float]:
        return (
            {"taps": 0.0, "banded": 1.0}
            if variant == "taps"
            else {"taps": 1.0, "banded": 0.0}
        )

    monkeypatch.setattr(convcli.core.separable, "_separable_costs", prefer)
    monkeypatch.setattr(convcli.core.separable, "_SEP_ROWS", 5)
    monkeypatch.setattr(convcli.core.separable, "_SEP_COLS", 7)
    rng = np.random.default_rng(77)
    gauss = np.outer([1.0, 3.0, 2.0, 0.5], [2.0, -1.0, 0.5, 4.0, 1.0])
    cases = [
        (rng.normal(size=(23, 41)), gauss),
        (rng.normal(size=(19, 30, 3)), gauss + 0.1 * _nonsymmetric(rng, (4, 5))),
        (
            rng.normal(size=(17, 25, 2)),
            np.stack(
                [
                    np.stack(
                        [gauss, LAPLACIAN[:, :2].repeat(3, 0)[:4].repeat(3, 1)[:, :5]]
                    )
                ]
                * 2
            ),
        ),
        (rng.normal(size=(1, 1)), np.ones((2, 3))),
    ]
    for x, w in cases:
        x = x.astype(np.float32)
        for stride, dilation, padding in [
            (1, 1, "same"),
            ((2, 3), 1, 2),
            (1, (2, 1), ((3, 0), (1, 4))),
        ]:
            kwargs = {
                "stride": stride,
                "dilation": dilation,
                "padding": padding,
                "border": border,
            }
            try:
                expected = reference_conv2d(x, w, **kwargs)
            except ValueError:
                continue
            got = conv2d(x, w, method="separable", **kwargs)
            assert_close(
                got, expected, _scale(x, w), msg=f"{variant} {x.shape} {kwargs}"
            )


@pytest.mark.parametrize("method", METHODS)
def test_all_zero_kernel_gives_bias(method: str) -> None:
    x = np.random.default_rng(22).normal(size=(6, 5, 2)).astype(np.float32)
    out = conv2d(x, np.zeros((3, 3)), bias=[1.0, 2.0], padding=1, method=method)
    np.testing.assert_array_equal(out, np.broadcast_to([1.0, 2.0], (6, 5, 2)))
    out = conv2d(x, np.zeros((2, 2, 3, 3)), bias=-4.0, method=method)
    np.testing.assert_array_equal(out, np.full((4, 3, 2), -4.0))


# ---------------------------------------------------------------------------
# Non-finite values


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("method", METHODS)
def test_nonfinite_weight_propagates_or_is_a_clear_error(
    method: str, bad: float
) -> None:
    # The spec makes NaN/inf weights an error of the kernel files; conv2d may either
    # propagate them (as numpy, scipy and torch do) or reject them with a message
    # naming w. It must not fail inside an SVD that the chosen method does not need.
    x = np.ones((5, 5), np.float32)
    w = np.ones((3, 3))
    w[1, 1] = bad
    error: ValueError | None = None
    try:
        out = conv2d(x, w, method=method)
    except ValueError as exc:
        error = exc
    if error is not None:
        # e.g. numpy.linalg.LinAlgError("SVD did not converge") is a ValueError too
        assert not isinstance(error, np.linalg.LinAlgError), (
            f"{type(error).__name__}: {error}"
        )
        assert re.search(r"\bw\b.*(finite|nan|inf)", str(error), re.IGNORECASE), str(
            error
        )
        return
    assert out.shape == (3, 3)
    assert not np.isfinite(out).any()


def test_nan_in_x_stays_local_with_auto() -> None:
    rng = np.random.default_rng(27)
    x = rng.normal(size=(120, 110)).astype(np.float32)
    x[60, 50] = np.nan
    w = rng.normal(size=(25, 25)).astype(np.float32)
    # Without the NaN the cost model picks fft; with it, auto keeps taps and says why.
    assert explain(np.nan_to_num(x), w, padding="same").method == "fft"
    chosen = explain(x, w, padding="same")
    assert chosen.method in ("direct", "separable")
    assert "NaN or inf" in chosen.reason
    out = conv2d(x, w, padding="same")
    expected = reference_conv2d(x, w, padding="same")
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    assert np.isnan(out).sum() == 25 * 25
    finite = ~np.isnan(expected)
    np.testing.assert_allclose(
        out[finite],
        expected[finite],
        rtol=1e-5,
        atol=1e-5 * _scale(np.nan_to_num(x), w),
    )


@pytest.mark.parametrize("method", ["auto", "direct", "separable"])
def test_nan_stays_local_with_a_long_separable_kernel(method: str) -> None:
    # The banded products that run long separable kernels would spread a NaN over
    # a 32x32 block; such an image runs by taps instead.
    x = np.random.default_rng(31).normal(size=(90, 100)).astype(np.float32)
    x[40, 50] = np.nan
    g = np.exp(-(np.linspace(-2, 2, 21) ** 2))
    w = np.outer(g, g)
    with np.errstate(invalid="ignore"):
        out = conv2d(x, w, padding="same", method=method)
    expected = reference_conv2d(x, w, padding="same")
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    assert np.isnan(out).sum() == 21 * 21


# ---------------------------------------------------------------------------
# explain()


@pytest.mark.parametrize(
    ("shape", "wshape", "kwargs"),
    [
        ((512, 512), (3, 3), {}),
        ((64, 80, 3), (31, 31), {"padding": "same"}),
        ((40, 41, 3), (4, 3, 5, 5), {"stride": 2, "padding": 1}),
        ((9, 9), (2, 1, 3, 3), {"dilation": 2}),
        ((200, 200), (15, 15), {"padding": "same", "border": "reflect"}),
    ],
)
def test_explain(
    shape: tuple[int, ...], wshape: tuple[int, ...], kwargs: dict[str, Any]
) -> None:
    rng = np.random.default_rng(23)
    x = np.zeros(shape, np.float32)
    w = rng.normal(size=wshape)
    info = explain(x, w, **kwargs)
    assert isinstance(info, convcli.Explanation)
    assert info.method in ("direct", "separable", "fft")
    assert info.output_shape == conv2d(x, w, **kwargs).shape
    assert set(info.costs) == {"direct", "separable", "fft"}
    assert all(cost >= 0 for cost in info.costs.values())
    assert info.taps == wshape[-2] * wshape[-1]
    assert info.rank == kernel_rank(w)
    assert isinstance(info.reason, str)
    assert info.reason
    for method in ("direct", "separable", "fft"):
        forced = explain(x, w, method=method, **kwargs)
        assert forced.method == method
        assert forced.output_shape == info.output_shape


def test_explain_examples() -> None:
    assert explain(np.zeros((512, 512)), np.ones((3, 3))).method == "separable"
    assert (
        explain(np.zeros((512, 512)), np.random.default_rng(0).random((31, 31))).method
        == "fft"
    )
    assert explain(np.zeros((512, 512)), np.ones((3, 3)), method="fft").method == "fft"


def test_kernel_memo_follows_the_weights_not_the_array() -> None:
    """Rank, choice and weights are memoized on the kernel's bytes: a kernel
    changed in place is a new kernel, and a caller's Explanation is its own."""
    rng = np.random.default_rng(5)
    x = rng.random((40, 40)).astype(np.float32)
    w = np.outer([1.0, 2.0, 1.0], [1.0, 0.0, -1.0])  # rank 1
    assert kernel_rank(w) == 1
    first = explain(x, w)
    first.costs["direct"] = -1.0  # must not leak into the next answer
    assert explain(x, w).costs["direct"] > 0
    for method in METHODS:
        np.testing.assert_allclose(
            conv2d(x, w, method=method), reference_conv2d(x, w), atol=1e-5
        )
    w[0, 0] = 5.0  # the same array, other weights: rank 2 now
    assert kernel_rank(w) == 2
    assert explain(x, w).rank == 2
    for method in METHODS:
        np.testing.assert_allclose(
            conv2d(x, w, method=method), reference_conv2d(x, w), atol=1e-5
        )
    flipped = conv2d(x, w, flip=True)  # flip is part of the memo's key
    np.testing.assert_allclose(flipped, reference_conv2d(x, w[::-1, ::-1]), atol=1e-5)
    assert w.flags.writeable  # the caller's array is never frozen


def test_kernel_memos_stay_small() -> None:
    """At most 256 kernels per memo, and none over 64 KiB (a large bank)."""
    from convcli.core import choose, geometry, separable

    x = np.zeros((8, 8, 32), np.float32)
    big = np.random.default_rng(1).random((64, 32, 3, 3))  # 147 KiB of float64
    conv2d(x, big)
    conv2d(x, big, method="separable")
    kept = [
        *(key[0][2] for key in geometry._WEIGHTS),
        *(key[0][2] for key in choose._CHOICES),
        *(key[2] for key in separable._RANKS),
        *(key[2] for key in separable._TERMS),
    ]
    assert kept
    assert all(len(values) <= 1 << 16 for values in kept)
    for i in range(300):
        conv2d(x[:, :, 0], np.full((3, 3), float(i)))
    for memo in (geometry._WEIGHTS, choose._CHOICES, separable._RANKS):
        assert len(memo) <= 256


def test_fft_choice_is_checked_against_each_image() -> None:
    """The method memo holds for one kernel and geometry; NaN in a later image
    still turns an FFT choice away."""
    w = np.random.default_rng(0).random((31, 31))
    clean = np.zeros((300, 300))
    assert explain(clean, w).method == "fft"
    dirty = clean.copy()
    dirty[10, 10] = np.nan
    info = explain(dirty, w)
    assert info.method in ("direct", "separable")
    assert "NaN" in info.reason
    assert explain(clean, w).method == "fft"


def test_explain_validates_like_conv2d() -> None:
    with pytest.raises(ValueError, match="stride must be >= 1"):
        explain(np.zeros((5, 5)), np.ones((3, 3)), stride=0)
    with pytest.raises(ValueError, match="method must be one of"):
        explain(np.zeros((5, 5)), np.ones((3, 3)), method="gpu")


# ---------------------------------------------------------------------------
# Errors

X5 = np.zeros((5, 5), np.float32)
K3 = np.ones((3, 3), np.float32)


ERROR_CASES = [
    (
        X5,
        K3,
        {"stride": 0},
        ValueError,
        r"stride must be >= 1 in both axes; got \(0, 0\)",
    ),
    (
        X5,
        K3,
        {"stride": (0, 2)},
        ValueError,
        r"stride must be >= 1 in both axes; got \(0, 2\)",
    ),
    (X5, K3, {"stride": -1}, ValueError, r"stride must be >= 1"),
    (
        X5,
        K3,
        {"stride": 1.5},
        TypeError,
        r"stride must be an int or a pair of ints; got 1\.5",
    ),
    (
        X5,
        K3,
        {"stride": True},
        TypeError,
        r"stride must be an int or a pair of ints; got True",
    ),
    (
        X5,
        K3,
        {"stride": (1, 2, 3)},
        TypeError,
        r"stride must be an int or a pair of ints",
    ),
    (
        X5,
        K3,
        {"stride": "2"},
        TypeError,
        r"stride must be an int or a pair of ints",
    ),
    (
        X5,
        K3,
        {"dilation": 0},
        ValueError,
        r"dilation must be >= 1 in both axes; got \(0, 0\)",
    ),
    (
        X5,
        K3,
        {"dilation": (1, 0)},
        ValueError,
        r"dilation must be >= 1 in both axes; got \(1, 0\)",
    ),
    (
        X5,
        K3,
        {"dilation": 2.0},
        TypeError,
        r"dilation must be an int or a pair of ints",
    ),
    (
        X5,
        K3,
        {"padding": -1},
        ValueError,
        r"padding must be >= 0 on every side; got -1",
    ),
    (
        X5,
        K3,
        {"padding": (1, -2)},
        ValueError,
        r"padding must be >= 0 on every side",
    ),
    (
        X5,
        K3,
        {"padding": ((0, 1), (-1, 0))},
        ValueError,
        r"padding must be >= 0 on every side",
    ),
    (
        X5,
        K3,
        {"padding": "full"},
        ValueError,
        r"padding must be .*\"same\" or \"valid\"; got 'full'",
    ),
    (X5, K3, {"padding": 1.5}, TypeError, r"padding must be an int >= 0.*got 1\.5"),
    (X5, K3, {"padding": True}, TypeError, r"padding must be an int >= 0"),
    (X5, K3, {"padding": (1, 2, 3)}, TypeError, r"padding must be an int >= 0"),
    (X5, K3, {"padding": ((1, 2), 3)}, TypeError, r"padding must be an int >= 0"),
    (X5, K3, {"padding": None}, TypeError, r"padding must be an int >= 0"),
    (
        X5,
        K3,
        {"border": "mirror"},
        ValueError,
        r"border must be one of constant, edge, reflect, symmetric, wrap.*got 'mirror'",
    ),
    (X5, K3, {"border": 3}, TypeError, r"border must be a string"),
    (
        X5,
        K3,
        {"method": "gpu"},
        ValueError,
        r"method must be one of auto, direct, separable, fft; got 'gpu'",
    ),
    (X5, K3, {"cval": "0"}, TypeError, r"cval must be a number"),
    (
        X5,
        K3,
        {"workers": 0},
        ValueError,
        r"workers must be an int >= 1 or None; got 0",
    ),
    (X5, K3, {"workers": 1.5}, ValueError, r"workers must be an int >= 1 or None"),
    (
        X5,
        np.ones(3),
        {},
        ShapeError,
        r"w has shape \(3,\); expected \(kh, kw\) or \(D, 1, kh, kw\) for x of shape \(5, 5\)",
    ),
    (X5, np.ones((1, 3, 3)), {}, ShapeError, r"w has shape \(1, 3, 3\)"),
    (
        np.zeros((32, 32, 3)),
        np.ones((2, 4, 3, 3)),
        {},
        ShapeError,
        r"w has shape \(2, 4, 3, 3\); expected \(kh, kw\) or \(D, 3, kh, kw\) for x of shape \(32, 32, 3\)",
    ),
    (
        X5,
        np.ones((2, 3, 3, 3)),
        {},
        ShapeError,
        r"w has shape \(2, 3, 3, 3\).*x of shape \(5, 5\)",
    ),
    (
        np.zeros(5),
        K3,
        {},
        ShapeError,
        r"x must have shape \(H, W\) or \(H, W, C\); got shape \(5,\)",
    ),
    (
        np.zeros((2, 2, 2, 2)),
        K3,
        {},
        ShapeError,
        r"x must have shape \(H, W\) or \(H, W, C\)",
    ),
    (
        np.zeros((0, 5)),
        K3,
        {},
        ShapeError,
        r"x must have at least one row, column and channel; got shape \(0, 5\)",
    ),
    (np.zeros((5, 5, 0)), K3, {}, ShapeError, r"x must have at least one row"),
    (
        X5,
        np.zeros((0, 3)),
        {},
        ShapeError,
        r"w must not be empty; got shape \(0, 3\)",
    ),
    (X5, np.zeros((0, 1, 3, 3)), {}, ShapeError, r"w must not be empty"),
    (
        X5.astype(complex),
        K3,
        {},
        TypeError,
        r"x must hold real numbers.*got dtype complex128",
    ),
    (
        np.array([[1, 2], [3, 4]], dtype=object),
        K3,
        {},
        TypeError,
        r"x must hold real numbers.*got dtype object",
    ),
    (
        X5,
        K3.astype(complex),
        {},
        TypeError,
        r"w must hold real numbers; got dtype complex128",
    ),
    (
        X5,
        np.ones((3, 3), dtype=object),
        {},
        TypeError,
        r"w must hold real numbers; got dtype object",
    ),
    (
        X5,
        K3,
        {"bias": [1.0, 2.0]},
        ShapeError,
        r"bias must be a scalar or have shape \(1,\), one value per output map; got shape \(2,\)",
    ),
    (
        np.zeros((5, 5, 3)),
        K3,
        {"bias": [1.0, 2.0]},
        ShapeError,
        r"bias must be a scalar or have shape \(3,\).*got shape \(2,\)",
    ),
    (
        np.zeros((5, 5, 3)),
        np.ones((4, 3, 3, 3)),
        {"bias": np.ones((4, 1))},
        ShapeError,
        r"have shape \(4,\).*got shape \(4, 1\)",
    ),
    (X5, K3, {"bias": 1j}, TypeError, r"bias must hold real numbers"),
    (
        X5,
        np.ones((7, 3)),
        {},
        ShapeError,
        r"kernel window 7x3 \(kernel 7x3, dilation \(1, 1\)\) is larger than the padded input 5x5",
    ),
    (
        X5,
        K3,
        {"dilation": 3},
        ShapeError,
        r"kernel window 7x7 .* larger than the padded input 5x5",
    ),
    (
        np.zeros((1, 1)),
        np.ones((2, 2)),
        {"padding": "valid"},
        ShapeError,
        r"larger than the padded input 1x1",
    ),
    (
        X5,
        np.ones((8, 3)),
        {"padding": 1},
        ShapeError,
        r"larger than the padded input 7x7",
    ),
]


def _error_id(case: tuple[Any, ...]) -> str:
    return re.sub(r"\W+", "-", case[4].replace("\\", "")).strip("-")[:48]


@pytest.mark.parametrize(
    ("x", "w", "kwargs", "error", "match"),
    ERROR_CASES,
    ids=[_error_id(c) for c in ERROR_CASES],
)
def test_errors(
    x: Any, w: Any, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        conv2d(x, w, **kwargs)


def test_shape_error_is_a_value_error() -> None:
    assert issubclass(ShapeError, ValueError)
    assert issubclass(ShapeError, convcli.ConvcliError)


def test_valid_and_same_are_accepted_case_insensitively() -> None:
    x = np.arange(20.0).reshape(4, 5)
    np.testing.assert_array_equal(
        conv2d(x, K3, padding="SAME"), conv2d(x, K3, padding="same")
    )
    np.testing.assert_array_equal(conv2d(x, K3, padding="Valid"), conv2d(x, K3))
    np.testing.assert_array_equal(
        conv2d(x, K3, padding=1, border="Reflect"),
        conv2d(x, K3, padding=1, border="reflect"),
    )


def test_numpy_integer_arguments() -> None:
    x = np.arange(30.0).reshape(5, 6)
    expected = reference_conv2d(x, K3, stride=2, padding=1, dilation=(1, 2))
    got = conv2d(
        x,
        K3,
        stride=np.int64(2),
        padding=np.array([1, 1]),
        dilation=np.array([1, 2]),
        cval=np.float32(0),
        workers=1,
    )
    np.testing.assert_allclose(got, expected, rtol=1e-12)


# ---------------------------------------------------------------------------
# Inputs are never modified, whatever their layout


def _layouts(x: np.ndarray) -> list[tuple[str, np.ndarray]]:
    readonly = x.copy()
    readonly.flags.writeable = False
    return [
        ("contiguous", x.copy()),
        ("read-only", readonly),
        (
            "strided view",
            np.repeat(np.repeat(x[:, ::-1], 2, axis=0), 2, axis=1)[::2, ::-2],
        ),
        ("fortran", np.asfortranarray(x)),
        ("transposed", np.ascontiguousarray(np.swapaxes(x, 0, 1)).swapaxes(0, 1)),
    ]


@pytest.mark.parametrize("method", METHODS)
def test_layouts_give_the_same_result_and_stay_unchanged(method: str) -> None:
    rng = np.random.default_rng(24)
    base = rng.normal(size=(9, 8, 3)).astype(np.float32)
    for w in [_nonsymmetric(rng, (3, 2)), _nonsymmetric(rng, (2, 3, 2, 2))]:
        w_views = [
            ("w contiguous", w),
            ("w strided", np.repeat(w, 2, axis=-1)[..., ::-2][..., ::-1]),
        ]
        w_ro = w.copy()
        w_ro.flags.writeable = False
        w_views.append(("w read-only", w_ro))
        w_views.append(("w fortran", np.asfortranarray(w)))
        expected = reference_conv2d(
            base, w, padding="same", border="reflect", stride=(1, 2)
        )
        for xname, x in _layouts(base):
            np.testing.assert_array_equal(x, base)
            for wname, wv in w_views:
                np.testing.assert_array_equal(wv, w)
                x_before, w_before = x.copy(), wv.copy()
                got = conv2d(
                    x,
                    wv,
                    padding="same",
                    border="reflect",
                    stride=(1, 2),
                    method=method,
                )
                assert_close(got, expected, _scale(base, w), msg=f"{xname} {wname}")
                np.testing.assert_array_equal(x, x_before)
                np.testing.assert_array_equal(wv, w_before)
                assert not np.shares_memory(got, x)


def test_sliced_views_of_x() -> None:
    rng = np.random.default_rng(25)
    big = rng.normal(size=(20, 18, 3)).astype(np.float32)
    w = _nonsymmetric(rng, (3, 3))
    for view in (
        big[::2, ::-1],
        big[3:15, 2:, 1],
        big[::-3, ::2, ::-1],
        big[:, :, 0].T,
    ):
        before = big.copy()
        for method in METHODS:
            got = conv2d(view, w, padding=1, border="symmetric", method=method)
            expected = reference_conv2d(view, w, padding=1, border="symmetric")
            assert_close(got, expected, _scale(view, w), msg=method)
        np.testing.assert_array_equal(big, before)


def test_bias_is_not_modified() -> None:
    bias = np.array([1.0, 2.0, 3.0])
    bias.flags.writeable = False
    conv2d(np.ones((4, 4, 3)), K3, bias=bias)
    np.testing.assert_array_equal(bias, [1.0, 2.0, 3.0])


def test_result_is_a_fresh_writable_array() -> None:
    x = np.ones((4, 4), np.float32)
    out = conv2d(x, np.ones((1, 1)))
    assert out.flags.writeable
    out[...] = 7
    np.testing.assert_array_equal(x, np.ones((4, 4)))


# ---------------------------------------------------------------------------
# Hypothesis properties on small arrays


@pytest.mark.parametrize("method", METHODS)
@given(
    x=_image(),
    kh=st.integers(1, 5),
    kw=st.integers(1, 5),
    border=st.sampled_from(BORDERS),
)
def test_identity_kernel_returns_x(
    x: np.ndarray, kh: int, kw: int, border: str, method: str
) -> None:
    # "same" puts the smaller half of the padding before: the centre tap is at (kh-1)//2.
    w = np.zeros((kh, kw))
    w[(kh - 1) // 2, (kw - 1) // 2] = 1.0
    out = conv2d(x, w, padding="same", border=border, cval=3.0, method=method)
    assert out.shape == x.shape
    np.testing.assert_allclose(
        out, x, rtol=1e-9, atol=1e-9 * max(float(np.abs(x).max()), 1.0)
    )


@given(
    data=st.data(),
    a=st.floats(-4, 4, width=32),
    b=st.floats(-4, 4, width=32),
    method=st.sampled_from(METHODS),
    border=st.sampled_from(BORDERS),
    stride=st.sampled_from(STRIDES),
)
def test_linearity(
    data: st.DataObject, a: float, b: float, method: str, border: str, stride: Any
) -> None:
    x = data.draw(_image(), label="x")
    y = data.draw(hnp.arrays(np.float64, x.shape, elements=small_floats), label="y")
    w = data.draw(
        hnp.arrays(
            np.float64,
            st.tuples(st.integers(1, 4), st.integers(1, 4)),
            elements=small_floats,
        ),
        label="w",
    )
    kwargs = {"padding": "same", "border": border, "stride": stride, "method": method}
    left = conv2d(a * x + b * y, w, **kwargs)
    right = a * conv2d(x, w, **kwargs) + b * conv2d(y, w, **kwargs)
    scale = _scale(np.abs(a * x) + np.abs(b * y) + np.abs(a * x + b * y), w) + 1.0
    np.testing.assert_allclose(left, right, rtol=1e-6, atol=1e-6 * scale)


@given(
    x=_image(),
    k=st.sampled_from([1, 3, 5]),
    data=st.data(),
    method=st.sampled_from(METHODS),
)
def test_shifted_delta_shifts_under_wrap(
    x: np.ndarray, k: int, data: st.DataObject, method: str
) -> None:
    half = k // 2
    dy = data.draw(st.integers(-half, half), label="dy")
    dx = data.draw(st.integers(-half, half), label="dx")
    w = np.zeros((k, k))
    w[half + dy, half + dx] = 1.0
    out = conv2d(x, w, padding=half, border="wrap", method=method)
    # out[i, j] = x[(i + dy) mod H, (j + dx) mod W]
    expected = np.roll(x, (-dy, -dx), axis=(0, 1))
    np.testing.assert_allclose(
        out, expected, rtol=1e-9, atol=1e-9 * max(float(np.abs(x).max()), 1.0)
    )


def _axis_padding(padding: Any, axis: int) -> Any:
    """The padding of one axis in output_size's form: int, (before, after) or a string."""
    if isinstance(padding, str | int):
        return padding
    part = padding[axis]
    return part if isinstance(part, int) else tuple(part)


@given(
    h=st.integers(1, 12),
    w_=st.integers(1, 12),
    channels=st.sampled_from([None, 1, 3]),
    kh=st.integers(1, 6),
    kw=st.integers(1, 6),
    depth=st.sampled_from([None, 1, 2]),
    stride=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    padding=paddings,
    method=st.sampled_from(METHODS),
)
def test_output_shape_is_output_size(
    h: int,
    w_: int,
    channels: int | None,
    kh: int,
    kw: int,
    depth: int | None,
    stride: tuple[int, int],
    dilation: tuple[int, int],
    padding: Any,
    method: str,
) -> None:
    x = np.ones((h, w_) if channels is None else (h, w_, channels), np.float32)
    c = 1 if channels is None else channels
    w = np.ones((kh, kw)) if depth is None else np.ones((depth, c, kh, kw))
    out_h = output_size(
        h, kh, stride=stride[0], padding=_axis_padding(padding, 0), dilation=dilation[0]
    )
    out_w = output_size(
        w_,
        kw,
        stride=stride[1],
        padding=_axis_padding(padding, 1),
        dilation=dilation[1],
    )
    kwargs = {
        "stride": stride,
        "dilation": dilation,
        "padding": padding,
        "method": method,
    }
    if out_h < 1 or out_w < 1:
        with pytest.raises(ShapeError, match="larger than the padded input"):
            conv2d(x, w, **kwargs)
        return
    out = conv2d(x, w, **kwargs)
    if depth is not None:
        assert out.shape == (out_h, out_w, depth)
    elif channels is None:
        assert out.shape == (out_h, out_w)
    else:
        assert out.shape == (out_h, out_w, channels)
    if padding == "same":
        assert (out_h, out_w) == (-(-h // stride[0]), -(-w_ // stride[1]))
    assert explain(x, w, **kwargs).output_shape == out.shape


@given(
    x=_image(np.float32),
    w=hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 4), st.integers(1, 4)),
        elements=small_floats,
    ),
    layout=st.sampled_from(["plain", "read-only", "view", "fortran"]),
    method=st.sampled_from(METHODS),
    border=st.sampled_from(BORDERS),
)
def test_inputs_unchanged(
    x: np.ndarray, w: np.ndarray, layout: str, method: str, border: str
) -> None:
    if layout == "read-only":
        x.flags.writeable = False
        w.flags.writeable = False
    elif layout == "view":
        x = np.repeat(x, 2, axis=0)[::2, ::-1]
        w = np.repeat(w, 2, axis=1)[::-1, ::2]
    elif layout == "fortran":
        x, w = np.asfortranarray(x), np.asfortranarray(w)
    x_copy, w_copy = x.copy(), w.copy()
    assume(x.shape[0] + 2 >= w.shape[0] and x.shape[1] + 2 >= w.shape[1])
    out = conv2d(x, w, padding=1, border=border, method=method)
    np.testing.assert_array_equal(x, x_copy)
    np.testing.assert_array_equal(w, w_copy)
    expected = reference_conv2d(x_copy, w_copy, padding=1, border=border)
    assert_close(out, expected, _scale(x_copy, w_copy))


# ---------------------------------------------------------------------------
# output_size


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        ((7, 3), {}, 5),
        ((7, 3), {"stride": 2}, 3),
        ((5, 3), {"stride": 2, "padding": 1}, 3),
        ((32, 5), {"padding": 2}, 32),
        ((227, 11), {"stride": 4}, 55),  # AlexNet conv1
        ((10, 4), {"stride": 3, "padding": "same"}, 4),
        ((10, 4), {"stride": 3, "padding": "valid"}, 3),
        ((10, 4), {"padding": "same"}, 10),
        ((10, 4), {"padding": "SAME"}, 10),
        ((1, 5), {"padding": "same"}, 1),
        ((9, 3), {"stride": 2, "padding": "same", "dilation": 3}, 5),
        ((7, 3), {"dilation": 2}, 3),
        ((7, 3), {"padding": (0, 2)}, 7),
        ((7, 3), {"padding": (2, 0), "stride": 2}, 4),
        ((3, 5), {}, -1),  # does not fit
        ((3, 5), {"padding": "valid"}, -1),
        ((2, 1), {"stride": 5}, 1),
    ],
)
def test_output_size(
    args: tuple[int, int], kwargs: dict[str, Any], expected: int
) -> None:
    assert output_size(*args, **kwargs) == expected


@pytest.mark.parametrize("n", range(1, 12))
@pytest.mark.parametrize("k", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("dilation", [1, 2])
def test_output_size_same_is_ceil(n: int, k: int, stride: int, dilation: int) -> None:
    assert output_size(n, k, stride=stride, padding="same", dilation=dilation) == -(
        -n // stride
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"stride": 0}, ValueError, r"stride must be >= 1"),
        ({"stride": 0, "padding": "same"}, ValueError, r"stride must be >= 1"),
        ({"dilation": 0}, ValueError, r"dilation must be >= 1"),
        ({"padding": -1}, ValueError, r"padding must be >= 0"),
        ({"stride": 1.5}, TypeError, r"stride must be an int"),
        ({"padding": (1, 2, 3)}, TypeError, r"padding must be"),
    ],
    ids=[
        "stride-0",
        "stride-0-same",
        "dilation-0",
        "padding-negative",
        "stride-float",
        "padding-triple",
    ],
)
def test_output_size_rejects_bad_arguments(
    kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    # output_size is public (convcli.__all__): it validates like conv2d instead of
    # dividing by zero or returning a float.
    with pytest.raises(error, match=match):
        output_size(5, 3, **kwargs)


def test_output_size_rejects_unknown_padding_string() -> None:
    with pytest.raises(
        ValueError,
        match=r"padding must be an int, a pair, \"same\" or \"valid\"; got 'full'",
    ):
        output_size(5, 3, padding="full")


def test_public_constants() -> None:
    assert convcli.BORDERS == ("constant", "edge", "reflect", "symmetric", "wrap")
    assert set(convcli.METHODS) == {"auto", "direct", "separable", "fft"}


def test_threads_env_caps_the_default_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    from convcli.core import tiles

    monkeypatch.setenv(tiles.THREADS_ENV, "1")
    assert tiles._default_workers() == 1
    monkeypatch.setenv(tiles.THREADS_ENV, "junk")
    assert tiles._default_workers() >= 1
    x = np.arange(64.0).reshape(8, 8)
    monkeypatch.setenv(tiles.THREADS_ENV, "1")
    np.testing.assert_allclose(
        conv2d(x, np.ones((3, 3))), reference_conv2d(x, np.ones((3, 3)))
    )


def test_a_zero_bias_is_not_added() -> None:
    """Zeros cost no pass over the output: a -0.0 result keeps its sign."""
    x = np.array([[-0.0, 1.0], [2.0, 3.0]], np.float32)
    out = conv2d(x, np.ones((1, 1)), bias=0.0)
    assert np.signbit(out[0, 0])
    out = conv2d(np.stack([x, x], axis=2), np.ones((1, 1)), bias=[0.0, -0.0])
    assert np.signbit(out[0, 0]).all()
    assert not np.signbit(conv2d(x, np.ones((1, 1)), bias=1e-30)[0, 0])
