"""Issue 12, the numeric core: hostile values and geometry for every method.

Cases 28-31 and the core half of 16, then cases of our own. The contract: every
method ("direct", "separable" by taps or banded, "fft", "auto") gives the answer
of "direct" (NaN, +inf and -inf at the same places, finite values within
float32 rounding), and "direct" is the float64 sum over the non-zero taps
(`skip_reference` below), which agrees with the loop reference of
tests/reference.py wherever that one is finite (it multiplies zero weights too,
so ``0 * inf`` is NaN there). These are API tests: no process is needed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from reference import resolve_padding, source_index

import convcli
from convcli import ShapeError, conv2d, explain
from convcli.core.fft import _fft_size, _next_smooth

METHODS = ["direct", "separable", "fft", "auto"]
F32_MAX = float(np.finfo(np.float32).max)
F32_SUB = float(np.finfo(np.float32).smallest_subnormal)

LAPLACIAN = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], np.float64)
SOBEL = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float64)


def _gauss(n: int, sigma: float) -> np.ndarray:
    t = np.arange(n) - (n - 1) / 2
    g = np.exp(-(t**2) / (2 * sigma**2))
    return np.outer(g, g) / g.sum() ** 2


def _log(n: int, sigma: float) -> np.ndarray:
    """Laplacian of Gaussian, zero sum: rank 2."""
    t = np.arange(n) - (n - 1) / 2
    r2 = t[:, None] ** 2 + t[None, :] ** 2
    k = (r2 / sigma**2 - 2) * np.exp(-r2 / (2 * sigma**2))
    return k - k.mean()


def _dog(n: int) -> np.ndarray:
    return _gauss(n, 1.0) - _gauss(n, 2.0)


def _unsharp(n: int) -> np.ndarray:
    delta = np.zeros((n, n))
    delta[n // 2, n // 2] = 2.0
    return delta - _gauss(n, 1.5)


# ---------------------------------------------------------------------------
# References and comparisons


def skip_reference(
    x: Any,
    w: Any,
    bias: Any = None,
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    border: str = "constant",
    cval: float = 0.0,
) -> np.ndarray:
    """Float64 correlation summed over the non-zero weights only, tap by tap.

    The padded input is built with tests/reference.py's `source_index` (no
    ``np.pad``, no convcli); each non-zero weight then adds its shifted slice.
    A zero weight skips its value, so ``0 * inf`` adds nothing.
    """
    xa = np.asarray(x)
    with np.errstate(over="ignore"):
        x64 = xa.astype(np.float64)
    wa = np.asarray(w, dtype=np.float64)
    x3 = x64[:, :, None] if x64.ndim == 2 else x64
    squeeze = x64.ndim == 2 and wa.ndim == 2
    height, width, channels = x3.shape
    bank = wa.ndim == 4
    kh, kw = wa.shape[-2:]
    sh, sw = (stride, stride) if np.isscalar(stride) else stride
    dh, dw = (dilation, dilation) if np.isscalar(dilation) else dilation
    (top, bottom), (left, right) = resolve_padding(
        padding, (height, width), (kh, kw), (sh, sw), (dh, dw)
    )
    rows = [source_index(r - top, height, border) for r in range(height + top + bottom)]
    cols = [source_index(c - left, width, border) for c in range(width + left + right)]
    rsrc = np.array([-1 if r is None else r for r in rows])
    csrc = np.array([-1 if c is None else c for c in cols])
    padded = x3[np.ix_(np.maximum(rsrc, 0), np.maximum(csrc, 0))]
    padded[(rsrc < 0)[:, None] | (csrc < 0)[None, :]] = cval
    out_h = (len(rows) - dh * (kh - 1) - 1) // sh + 1
    out_w = (len(cols) - dw * (kw - 1) - 1) // sw + 1
    maps = wa.shape[0] if bank else channels
    out = np.zeros((out_h, out_w, maps))
    with np.errstate(all="ignore"):
        for u in range(kh):
            for v in range(kw):
                seen = padded[
                    u * dh : u * dh + (out_h - 1) * sh + 1 : sh,
                    v * dw : v * dw + (out_w - 1) * sw + 1 : sw,
                ]
                if not bank:
                    if wa[u, v] != 0:
                        out += wa[u, v] * seen
                    continue
                for d in range(maps):
                    for c in range(channels):
                        if wa[d, c, u, v] != 0:
                            out[:, :, d] += wa[d, c, u, v] * seen[:, :, c]
        if bias is not None:
            out += np.asarray(bias, dtype=np.float64)
    return out[:, :, 0] if squeeze else out


def _masks(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.isnan(a), np.isposinf(a), np.isneginf(a)


def _scale(x: Any, w: Any, cval: float = 0.0) -> float:
    """sum|w| (largest over maps) times the largest finite |x| or |cval|."""
    with np.errstate(over="ignore"):
        xa = np.abs(np.asarray(x).astype(np.float64))
    finite = xa[np.isfinite(xa)]
    top = float(finite.max()) if finite.size else 0.0
    if np.isfinite(cval):
        top = max(top, abs(cval))
    wa = np.abs(np.asarray(w, dtype=np.float64))
    per_map = (
        wa.reshape(wa.shape[0], -1).sum(axis=1).max() if wa.ndim == 4 else wa.sum()
    )
    return max(float(per_map) * top, 1e-300)


def assert_same(
    got: np.ndarray,
    expected: np.ndarray,
    scale: float,
    rtol: float,
    msg: str,
    where: np.ndarray | None = None,
) -> None:
    """NaN, +inf and -inf at the same places; finite values within float rounding.

    Finite values agree within ``rtol * scale`` plus one float32 subnormal step
    per weight (each product rounds there). ``where``: compare only there.
    """
    assert got.shape == expected.shape, f"{msg}: {got.shape} != {expected.shape}"
    with np.errstate(over="ignore"):
        rounded = expected.astype(got.dtype)  # float32 overflow: inf, as the result
    keep = np.ones(got.shape, bool) if where is None else where
    for name, a, b in zip(
        ("NaN", "+inf", "-inf"), _masks(got), _masks(rounded), strict=True
    ):
        bad = np.argwhere((a != b) & keep)
        assert not bad.size, f"{msg}: {name} differs at {bad[:5].tolist()}"
    finite = np.isfinite(rounded) & keep
    atol = rtol * scale + 1024 * F32_SUB
    np.testing.assert_allclose(
        got[finite], rounded[finite], rtol=rtol, atol=atol, err_msg=msg
    )


def _no_overflow(x: Any, w: Any, kwargs: dict[str, Any]) -> np.ndarray:
    """Outputs whose finite products stay far below float32's largest in sum.

    There direct's float32 sums cannot overflow on the way, so direct must give
    the float64 sum, rounded; elsewhere only direct itself is the reference.
    """
    with np.errstate(all="ignore"):
        xa = np.abs(np.asarray(x).astype(np.float64))
    xa[~np.isfinite(xa)] = 0
    cval = abs(float(kwargs.get("cval", 0.0)))
    sizes = {**kwargs, "cval": cval if np.isfinite(cval) else 0.0}
    total = skip_reference(xa, np.abs(np.asarray(w, np.float64)), **sizes)
    return np.asarray(total < F32_MAX / 4)


def check_every_method(
    x: Any, w: Any, bias: Any = None, *, rtol: float = 2e-5, **kwargs: Any
) -> np.ndarray:
    """Assert the contract for one call; return direct's result.

    direct is the float64 sum over non-zero weights, rounded, wherever its
    float32 sums cannot overflow; every other method gives direct's result.
    """
    cval = float(kwargs.get("cval", 0.0))
    scale = _scale(x, w, cval)
    expected = skip_reference(x, w, bias, **kwargs)
    direct = conv2d(x, w, bias, method="direct", **kwargs)
    safe = _no_overflow(x, w, kwargs)
    assert_same(direct, expected, scale, rtol, f"direct {kwargs}", where=safe)
    for method in ("separable", "fft", "auto"):
        got = conv2d(x, w, bias, method=method, **kwargs)
        assert got.dtype == direct.dtype, method
        assert_same(got, direct.astype(np.float64), scale, rtol, f"{method} {kwargs}")
    return direct


@pytest.fixture(params=["default tiles", "small tiles"])
def tiles(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run with the default tiling, or with many small tiles and column blocks."""
    if request.param == "small tiles":
        monkeypatch.setattr(convcli.core.tiles, "_TILE_BYTES", 2048)
        monkeypatch.setattr(convcli.core.separable, "_SEP_TILE_BYTES", 2048)
        monkeypatch.setattr(convcli.core.separable, "_SEP_ROWS", 5)
        monkeypatch.setattr(convcli.core.separable, "_SEP_COLS", 7)
        monkeypatch.setattr(convcli.core.fft, "_FFT_BATCH_BYTES", 1)
        monkeypatch.setattr(convcli.core.fft, "_FFT_MIN", 8)
    return str(request.param)


@pytest.fixture(params=["taps", "banded"])
def variant(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Force one of the two ways method="separable" runs."""
    slow = {"taps": "banded", "banded": "taps"}[request.param]

    def prefer(call: Any, rank: int) -> dict[str, float]:
        return {request.param: 0.0, slow: 1.0}

    monkeypatch.setattr(convcli.core.separable, "_separable_costs", prefer)
    return str(request.param)


def _poisoned(
    rng: np.random.Generator, shape: tuple[int, ...], count: int, dtype: Any
) -> np.ndarray:
    """Normal values with ``count`` each of NaN, +inf and -inf at random places."""
    x = rng.normal(size=shape).astype(dtype)
    flat = x.reshape(-1)
    spots = rng.choice(flat.size, 3 * count, replace=False)
    flat[spots[:count]] = np.nan
    flat[spots[count : 2 * count]] = np.inf
    flat[spots[2 * count :]] = -np.inf
    return x


KERNELS = {
    "laplacian (rank 2)": LAPLACIAN,
    "sobel (rank 1, zero column)": SOBEL,
    "gauss 7 (rank 1)": _gauss(7, 1.5),
    "log 9 (rank 2+)": _log(9, 1.4),
    "dog 11 (rank 2)": _dog(11),
    "unsharp 5 (rank 2)": _unsharp(5),
    "random 6x4 (rank 4)": np.random.default_rng(5).normal(size=(6, 4)),
}
GEOMETRIES = [
    {"padding": "same", "border": "constant"},
    {"padding": "same", "border": "reflect"},
    {"padding": 2, "border": "edge", "stride": 2},
    {"padding": ((3, 0), (1, 4)), "border": "wrap", "dilation": (2, 1)},
    {"padding": "same", "border": "symmetric", "stride": (1, 3), "dilation": 2},
]


# ---------------------------------------------------------------------------
# Case 28: compute dtype by kind and size


@pytest.mark.parametrize("method", METHODS)
def test_issue_12_case_28_big_endian_float64_computes_and_returns_float64(
    method: str,
) -> None:
    rng = np.random.default_rng(28)
    native = rng.normal(size=(40, 37, 2)) * 1e-3 + 1.0  # float32 would lose digits
    big = native.astype(">f8")
    w = rng.normal(size=(5, 4))
    got = conv2d(big, w, padding="same", border="reflect", method=method)
    assert got.dtype == np.float64
    assert got.dtype.isnative
    same = conv2d(native, w, padding="same", border="reflect", method=method)
    np.testing.assert_array_equal(got, same)
    expected = skip_reference(native, w, padding="same", border="reflect")
    rtol = 1e-12 if method in ("direct", "separable") else 1e-9
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * _scale(native, w))
    np.testing.assert_array_equal(big, native)  # never modified


@pytest.mark.parametrize("method", METHODS)
def test_issue_12_case_28_longdouble_computes_in_float64(method: str) -> None:
    rng = np.random.default_rng(281)
    x64 = rng.normal(size=(30, 33))
    ld = x64.astype(np.longdouble)
    w = rng.normal(size=(3, 3)).astype(np.longdouble)
    got = conv2d(ld, w, padding=1, method=method)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(
        got, conv2d(x64, w.astype(np.float64), padding=1, method=method)
    )


@pytest.mark.parametrize(
    "dtype", [np.float16, ">f4", "<f4", ">i2", np.uint64, np.int64, np.bool_]
)
def test_issue_12_case_28_small_floats_and_integers_stay_float32(dtype: Any) -> None:
    x = (np.arange(60).reshape(6, 10) % 7).astype(dtype)
    for method in METHODS:
        got = conv2d(x, LAPLACIAN, padding=1, method=method)
        assert got.dtype == np.float32, (dtype, method)
        assert got.dtype.isnative
        np.testing.assert_allclose(
            got, skip_reference(x, LAPLACIAN, padding=1), atol=1e-4
        )


# ---------------------------------------------------------------------------
# Case 29: separable and fft with inf under zero taps, rank >= 2


def test_issue_12_case_29_laplacian_with_one_inf_pixel() -> None:
    x = np.zeros((5, 5), np.float32)
    x[2, 2] = np.inf
    expected = np.array([[0, np.inf, 0], [np.inf, -np.inf, np.inf], [0, np.inf, 0]])
    for method in METHODS:
        got = conv2d(x, LAPLACIAN, method=method)
        np.testing.assert_array_equal(got, expected, err_msg=method)


@pytest.mark.parametrize(
    "name", ["log 9 (rank 2+)", "dog 11 (rank 2)", "unsharp 5 (rank 2)"]
)
def test_issue_12_case_29_auto_on_dog_log_unsharp_keeps_inf_local(name: str) -> None:
    rng = np.random.default_rng(29)
    x = rng.uniform(0, 255, (64, 70)).astype(np.float32)
    x[30, 33] = np.inf
    x[10, 5] = -np.inf
    w = KERNELS[name]
    # The issue: auto picks separable for these; whatever it picks now, the
    # result is direct's.
    assert explain(x, w, padding="same").method in ("direct", "separable", "fft")
    check_every_method(x, w, padding="same", border="reflect")


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=str)
@pytest.mark.parametrize("kernel", list(KERNELS))
def test_issue_12_case_29_nan_and_inf_pixels_every_method(
    kernel: str, geometry: dict[str, Any], tiles: str
) -> None:
    rng = np.random.default_rng(291)
    x = _poisoned(rng, (37, 41, 2), 4, np.float32)
    check_every_method(x, KERNELS[kernel], **geometry)


@pytest.mark.parametrize("geometry", GEOMETRIES[:3], ids=str)
def test_issue_12_case_29_both_separable_variants(
    variant: str, geometry: dict[str, Any], tiles: str
) -> None:
    rng = np.random.default_rng(292)
    x = _poisoned(rng, (45, 52), 6, np.float32)
    for w in (_log(9, 1.4), _gauss(15, 3.0), SOBEL):
        expected = skip_reference(x, w, **geometry)
        got = conv2d(x, w, method="separable", **geometry)
        assert_same(got, expected, _scale(x, w), 2e-5, f"{variant} {geometry}")


@pytest.mark.parametrize("geometry", GEOMETRIES[:3], ids=str)
def test_issue_12_case_29_banks_with_zero_weights(
    geometry: dict[str, Any], tiles: str
) -> None:
    rng = np.random.default_rng(293)
    x = _poisoned(rng, (29, 31, 3), 3, np.float32)
    bank = rng.normal(size=(4, 3, 3, 3))
    bank[0, :, 0, :] = 0  # a zero row in one filter
    bank[1, 1] = 0  # one channel unused by one filter
    bank[2] = LAPLACIAN  # zero corners
    bank[3, 0] = 0
    bank[3, 0, 1, 1] = 1.0  # one weight on channel 0
    bank[:, :, 2, 0] = 0  # one tap unused by every filter
    direct = check_every_method(x, bank, [0.5, -1.0, 0.0, 2.0], **geometry)
    # Zero weights skip their value (0 * inf counts as 0), as for a 2-D kernel.
    assert np.isfinite(direct).any()


def test_issue_12_case_29_direct_agrees_with_the_loop_reference_where_finite() -> None:
    from reference import reference_conv2d

    rng = np.random.default_rng(294)
    x = _poisoned(rng, (19, 23, 2), 3, np.float32)
    cases: list[tuple[Any, dict[str, Any]]] = [
        (LAPLACIAN, {"padding": "same"}),
        (_dog(7), {"padding": 1, "border": "reflect", "stride": 2}),
        (rng.normal(size=(2, 2, 3, 2)), {"padding": "same", "dilation": (1, 2)}),
    ]
    for w, kwargs in cases:
        with np.errstate(all="ignore"):
            loop = reference_conv2d(x, w, **kwargs)
        finite = np.isfinite(loop)
        assert finite.any()
        assert not finite.all()
        for method in METHODS:
            got = conv2d(x, w, method=method, **kwargs)
            np.testing.assert_allclose(
                got[finite],
                loop[finite],
                rtol=2e-5,
                atol=2e-5 * _scale(x, w),
                err_msg=f"{method} {kwargs}",
            )


# ---------------------------------------------------------------------------
# Case 30: non-finite cval


@pytest.mark.parametrize("cval", [np.nan, np.inf, -np.inf])
def test_issue_12_case_30_nonfinite_cval_stays_on_the_border(
    cval: float, tiles: str
) -> None:
    x = np.random.default_rng(30).normal(size=(100, 100)).astype(np.float32)
    for w in (np.ones((15, 15)), _gauss(15, 3.0), _log(9, 1.4)):
        direct = check_every_method(x, w, padding="same", border="constant", cval=cval)
        # Only windows that reach the padding: a ring as wide as the half kernel.
        inner = w.shape[0] // 2
        assert np.isfinite(direct[inner:-inner, inner:-inner]).all()
        assert not np.isfinite(direct[:inner]).any()


@pytest.mark.parametrize("method", METHODS)
def test_issue_12_case_30_nan_cval_ring_count(method: str) -> None:
    x = np.random.default_rng(300).normal(size=(100, 100)).astype(np.float32)
    got = conv2d(x, np.ones((15, 15)), padding="same", cval=np.nan, method=method)
    assert np.isnan(got).sum() == 100 * 100 - 86 * 86


@pytest.mark.parametrize("cval", [np.nan, np.inf])
def test_issue_12_case_30_nonfinite_cval_with_banks_strides_dilations(
    cval: float, tiles: str
) -> None:
    rng = np.random.default_rng(301)
    x = rng.normal(size=(33, 40, 2)).astype(np.float32)
    bank = rng.normal(size=(3, 2, 5, 5))
    bank[0, 1] = 0
    for kwargs in (
        {"padding": "same", "stride": 2},
        {"padding": ((4, 0), (0, 6)), "dilation": (2, 3)},
    ):
        check_every_method(x, bank, border="constant", cval=cval, **kwargs)
        check_every_method(x, _log(7, 1.2), border="constant", cval=cval, **kwargs)


@pytest.mark.parametrize("cval", [np.nan, -np.inf])
def test_issue_12_case_30_unused_nonfinite_cval_changes_nothing(cval: float) -> None:
    x = np.random.default_rng(302).normal(size=(40, 50)).astype(np.float32)
    w = _gauss(9, 2.0)
    for method in METHODS:
        plain = conv2d(x, w, padding="same", border="edge", method=method)
        got = conv2d(x, w, padding="same", border="edge", cval=cval, method=method)
        np.testing.assert_array_equal(got, plain)
        got = conv2d(x, w, padding=0, cval=cval, method=method)
        assert np.isfinite(got).all()


# ---------------------------------------------------------------------------
# Case 31: values up to float32's largest finite


@pytest.mark.parametrize(("value", "size"), [(1e36, 15), (1e37, 9), (1e35, 15)])
def test_issue_12_case_31_fft_does_not_overflow_on_large_finite_input(
    value: float, size: int
) -> None:
    rng = np.random.default_rng(31)
    w = rng.random((size, size))
    w /= w.sum()
    x = np.full((300, 300), value, np.float32)
    for method in METHODS:
        got = conv2d(x, w, padding="same", border="edge", method=method)
        assert np.isfinite(got).all(), method
        np.testing.assert_allclose(got, value, rtol=1e-5, err_msg=method)


@pytest.mark.parametrize(
    "top", [1e30, 1e36, 1e38, F32_MAX / 2, F32_MAX], ids=lambda v: f"{v:.3g}"
)
def test_issue_12_case_31_values_near_float32_max(top: float, tiles: str) -> None:
    rng = np.random.default_rng(311)
    x = (rng.uniform(-1, 1, (48, 57, 2)) * top).astype(np.float32)
    x[5, 7, 0] = np.float32(F32_MAX)
    x[20, 30, 1] = -np.float32(F32_MAX)
    # Normalised non-negative kernels: every exact result is within float32.
    for w in (_gauss(7, 1.5), np.ones((3, 3)) / 9, rng.random((5, 6)) / 15):
        direct = check_every_method(x, w, padding="same", border="reflect")
        assert np.isfinite(direct).all()


def test_issue_12_case_31_float32_sums_that_overflow_do_so_in_every_method() -> None:
    # Direct sums tap by tap in float32: where the products of values near
    # float32's largest overflow on the way, every method gives the same +-inf
    # or NaN (float64 input avoids it); everywhere else the exact sum.
    x = np.full((20, 24), F32_MAX / 2, np.float32)
    x[10:, :] = -F32_MAX / 2
    x[:, 12:] *= np.float32(1e-3)
    for w in (SOBEL, LAPLACIAN, np.ones((3, 3)), SOBEL.T):
        direct = check_every_method(x, w, padding=1, border="edge")
        assert not np.isfinite(direct).all()
        assert np.isfinite(direct).any()
    got = conv2d(x.astype(np.float64), LAPLACIAN, padding=1, border="edge")
    assert np.isfinite(got).all()


def test_issue_12_case_31_banks_near_float32_max() -> None:
    rng = np.random.default_rng(312)
    x = (rng.uniform(-1, 1, (30, 31, 2)) * 3e38).astype(np.float32)
    bank = rng.random((3, 2, 3, 3))
    bank /= bank.reshape(3, -1).sum(axis=1)[:, None, None, None]
    check_every_method(x, bank, padding="same", border="symmetric")


# ---------------------------------------------------------------------------
# Case 16 (core half): bounded size searches, absurd geometry


def test_issue_12_case_16_next_smooth_is_bounded_and_exact() -> None:
    def smooth(n: int) -> bool:
        for p in (2, 3, 5):
            while n % p == 0:
                n //= p
        return n == 1

    def counted(n: int) -> int:
        while not smooth(n) or (n % 2 and n > 16):
            n += 1
        return n

    assert [_next_smooth(n) for n in range(1, 3000)] == [
        counted(n) for n in range(1, 3000)
    ]
    start = time.perf_counter()
    for n in (10**13, 10**20, 2 * 10**20 + 1, 2**200 + 1):
        m = _next_smooth(n)
        assert n <= m < 2 * n
        assert smooth(m)
        assert m % 2 == 0
    assert _fft_size(2 * 10**20 + 1, 60) == _next_smooth(2 * 10**20 + 60)
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("dilation", [10**20, 99999999999999999999, 10**13])
@pytest.mark.parametrize("method", METHODS)
def test_issue_12_case_16_absurd_dilation_is_a_clear_shape_error(
    method: str, dilation: int
) -> None:
    x = np.zeros((50, 60), np.float32)
    start = time.perf_counter()
    with pytest.raises(
        ShapeError, match=r"would hold .* values; an array holds at most"
    ):
        conv2d(x, np.ones((3, 3)), dilation=dilation, padding="same", method=method)
    with pytest.raises(ShapeError, match="dilation"):
        explain(x, np.ones((3, 3)), dilation=dilation, padding="same")
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize("method", METHODS)
def test_issue_12_case_16_other_absurd_sizes(method: str) -> None:
    x = np.ones((4, 5), np.float32)
    start = time.perf_counter()
    with pytest.raises(ShapeError, match="the output would hold"):
        conv2d(x, np.ones((3, 3)), padding=10**20, method=method)
    with pytest.raises(ShapeError, match="larger than the padded input"):
        conv2d(x, np.ones((3, 3)), dilation=10**20, method=method)
    # A huge stride keeps one window: nothing absurd about it.
    got = conv2d(x, np.ones((3, 3)), stride=10**20, method=method)
    np.testing.assert_allclose(got, [[9.0]], rtol=1e-6)
    got = conv2d(x, np.ones((2, 2)), stride=(1, 10**20), dilation=(1, 3), method=method)
    np.testing.assert_allclose(got, [[4.0]] * 3, rtol=1e-6)
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize("method", METHODS)
def test_issue_12_case_16_large_dilation_fails_fast_on_memory(method: str) -> None:
    # Within int64 but far beyond any memory: numpy's MemoryError at once, not
    # seconds of index arithmetic on 10**8 padded columns first.
    x = np.zeros((50, 60), np.float32)
    start = time.perf_counter()
    for border in ("constant", "reflect"):
        with pytest.raises(MemoryError):
            conv2d(
                x,
                np.ones((3, 3)),
                dilation=10**8,
                padding="same",
                border=border,
                method=method,
            )
    assert time.perf_counter() - start < 2.0


# ---------------------------------------------------------------------------
# Cases of our own


@pytest.mark.parametrize("border", ["constant", "edge", "reflect", "symmetric", "wrap"])
def test_issue_12_own_1x1_image_with_a_huge_dilated_kernel(border: str) -> None:
    x = np.array([[3.0]], np.float32)
    rng = np.random.default_rng(41)
    for w, dilation in ((rng.normal(size=(31, 31)), 7), (rng.normal(size=(2, 9)), 50)):
        check_every_method(
            x, w, padding="same", border=border, dilation=dilation, cval=0.5
        )
    x[0, 0] = np.nan
    check_every_method(x, _log(9, 1.4), padding="same", border=border, dilation=3)


@pytest.mark.parametrize("method", METHODS)
def test_issue_12_own_negative_zero_and_signed_zero_cval(method: str) -> None:
    x = np.full((40, 45), -0.0, np.float32)
    got = conv2d(x, _log(9, 1.4), padding="same", cval=-0.0, method=method)
    np.testing.assert_array_equal(got, 0.0)
    x[::7, ::5] = 1.0
    check_every_method(x, SOBEL, padding="same", cval=-0.0)


def test_issue_12_own_subnormal_and_tiny_values(tiles: str) -> None:
    rng = np.random.default_rng(43)
    for top in (1e-40, 1e-44, 1e-30, 1e-20):
        x = (rng.uniform(-1, 1, (40, 47)) * top).astype(np.float32)
        for w in (_gauss(9, 2.0), rng.normal(size=(15, 15)), LAPLACIAN):
            direct = check_every_method(x, w, padding="same", border="reflect")
            assert np.isfinite(direct).all()
        x[10, 20] = np.nan  # tiny values and a NaN in the same tile
        check_every_method(x, _gauss(9, 2.0), padding="same")


def test_issue_12_own_weights_float32_cannot_hold() -> None:
    rng = np.random.default_rng(44)
    x = rng.uniform(1, 2, (30, 32)).astype(np.float32) * np.float32(1e30)
    for w in (np.full((3, 3), 1e-42), rng.normal(size=(5, 5)) * 1e-50):
        # float32 would make these 0 (or subnormal): the call runs in float64.
        direct = check_every_method(x, w, padding="same")
        assert direct.dtype == np.float32
        assert np.abs(direct).min() > 0
    big = np.ones((3, 3)) * 1e37  # near float32's largest: products would overflow
    x = np.full((6, 6), 1e-36, np.float32)
    for method in METHODS:
        got = conv2d(x, big, method=method)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, 90.0, rtol=1e-6)


def test_issue_12_own_integer_and_bool_extremes() -> None:
    u = np.array([[0, 2**64 - 1, 2**63], [1, 2**64 - 1, 0]] * 4, np.uint64)
    i = np.array([[-(2**63), 2**63 - 1, 0], [-1, -(2**63), 2**63 - 1]] * 4, np.int64)
    b = np.eye(8, 9, dtype=bool)
    for x in (u, i, b):
        for w in (LAPLACIAN, SOBEL, np.ones((2, 2))):
            direct = check_every_method(x, w, padding="same", border="wrap")
            assert direct.dtype == np.float32


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (7, 1), (1, 40)])
def test_issue_12_own_1x1_and_1xn_kernels(shape: tuple[int, int], tiles: str) -> None:
    rng = np.random.default_rng(46)
    x = _poisoned(rng, (33, 50, 3), 3, np.float32)
    w = rng.normal(size=shape)
    w[0, 0] = 0.0 if w.size > 1 else w[0, 0]
    for kwargs in ({"padding": "same"}, {"padding": 0, "stride": (2, 3)}):
        check_every_method(x, w, **kwargs)


def _views(base: np.ndarray) -> Iterator[tuple[str, np.ndarray]]:
    readonly = base.copy()
    readonly.flags.writeable = False
    yield "read-only", readonly
    yield "negative strides", np.ascontiguousarray(base[::-1, ::-1])[::-1, ::-1]
    yield "every other column", np.repeat(base, 2, axis=1)[:, ::2]
    yield "fortran", np.asfortranarray(base)
    yield "big-endian", base.astype(">f4")


@pytest.mark.parametrize("method", METHODS)
def test_issue_12_own_views_with_nan_are_never_written(method: str) -> None:
    rng = np.random.default_rng(47)
    base = _poisoned(rng, (41, 43, 2), 5, np.float32)
    base[0:3, 0:3] = 1e38  # large values are zeroed in tile buffers, never in x
    w = _log(7, 1.2)
    expected = conv2d(base, w, padding="same", border="reflect", method=method)
    for name, view in _views(base):
        before = view.copy()
        got = conv2d(view, w, padding="same", border="reflect", method=method)
        np.testing.assert_array_equal(got, expected, err_msg=name)
        np.testing.assert_array_equal(view, before, err_msg=name)


@pytest.mark.parametrize("method", METHODS)
def test_issue_12_own_all_nan_image_and_zero_kernel(method: str) -> None:
    x = np.full((30, 35), np.nan, np.float32)
    got = conv2d(x, LAPLACIAN, padding="same", method=method)
    assert np.isnan(got).all()
    # A zero kernel skips every value: its output is the bias.
    got = conv2d(x, np.zeros((5, 5)), bias=2.0, padding="same", method=method)
    np.testing.assert_array_equal(got, 2.0)
    got = conv2d(np.ones((9, 9)), np.ones((3, 3)), bias=np.nan, method=method)
    assert np.isnan(got).all()


def test_issue_12_own_nan_images_from_several_threads() -> None:
    # Each tile worker sets numpy's error state itself (it is per thread).
    rng = np.random.default_rng(48)
    # Large enough that every method runs its tiles on the pool.
    images = [_poisoned(rng, (400, 410), 20, np.float32) for _ in range(3)]
    w = _log(13, 2.0)

    def run(args: tuple[np.ndarray, str]) -> np.ndarray:
        x, method = args
        return conv2d(x, w, padding="same", method=method, workers=2)

    jobs = [(x, m) for x in images for m in ("direct", "separable", "fft")]
    serial = [run(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=3) as pool:
        parallel = list(pool.map(run, jobs))
    for (x, method), a, b in zip(jobs, serial, parallel, strict=True):
        np.testing.assert_array_equal(a, b, err_msg=method)
        assert_same(a, skip_reference(x, w, padding="same"), _scale(x, w), 2e-5, method)


def test_issue_12_own_bad_numbers_in_arguments_are_clear_errors() -> None:
    x = np.ones((5, 5), np.float32)
    with pytest.raises(ValueError, match="cval must fit in a float64"):
        conv2d(x, np.ones((3, 3)), padding=1, cval=10**400)
    huge = np.full((3, 3), np.longdouble(10) ** 400)
    if np.isfinite(huge).all():  # longdouble wider than float64 on this platform
        with pytest.raises(ValueError, match="within float64's range"):
            conv2d(x, huge)
    x_ld = np.ones((5, 5), np.longdouble)
    x_ld[2, 2] = (
        np.longdouble(10) ** 400 if np.finfo(np.longdouble).maxexp > 1024 else np.inf
    )
    got = conv2d(x_ld, np.ones((3, 3)), padding=1)
    assert got.dtype == np.float64
    assert np.isposinf(got[1:4, 1:4]).all()
    assert np.isfinite(got[0, 0])


# Values a hostile image may hold: ordinary ones, zeros of both signs, the
# extremes of float32 and every non-finite value.
HOSTILE_VALUES = [
    0.0,
    -0.0,
    1.0,
    -2.5,
    3e38,
    -3e38,
    F32_MAX,
    1e-40,
    np.nan,
    np.inf,
    -np.inf,
]


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    border=st.sampled_from(["constant", "edge", "reflect", "symmetric", "wrap"]),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
)
def test_issue_12_own_random_hostile_calls(
    data: st.DataObject,
    border: str,
    stride: tuple[int, int],
    dilation: tuple[int, int],
) -> None:
    shape = data.draw(
        st.tuples(st.integers(1, 14), st.integers(1, 14), st.integers(1, 2)),
        label="shape",
    )
    x = data.draw(
        hnp.arrays(
            np.float32,
            shape,
            elements=st.one_of(
                st.sampled_from(HOSTILE_VALUES),
                st.floats(-100, 100, width=32),
            ),
        ),
        label="x",
    )
    kh, kw = data.draw(st.tuples(st.integers(1, 5), st.integers(1, 5)), label="k")
    wshape = data.draw(st.sampled_from([(kh, kw), (2, shape[2], kh, kw)]), label="ws")
    w = data.draw(
        hnp.arrays(
            np.float64,
            wshape,
            elements=st.one_of(st.just(0.0), st.floats(-4, 4, width=32)),
        ),
        label="w",
    )
    cval = data.draw(
        st.sampled_from([0.0, 1.5, 3e38, 1e-40, np.nan, np.inf, -np.inf]), "cval"
    )
    padding = data.draw(st.sampled_from([0, 1, "same", ((2, 0), (0, 3))]), "padding")
    kwargs = {
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "border": border,
        "cval": cval,
    }
    try:
        expected = skip_reference(x, w, **kwargs)
    except ValueError:
        return
    if expected.size == 0 or min(expected.shape[:2]) < 1:
        with pytest.raises(ShapeError):
            conv2d(x, w, **kwargs)
        return
    check_every_method(x, w, **kwargs)


@pytest.mark.parametrize("method", METHODS)
def test_issue_12_own_absurd_thread_counts_are_capped(
    method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from convcli.core import tiles

    rng = np.random.default_rng(49)
    x = _poisoned(rng, (300, 320), 5, np.float32)
    w = _log(11, 1.8)
    expected = conv2d(x, w, padding="same", method=method, workers=1)
    cap = tiles._thread_cap()
    got = conv2d(x, w, padding="same", method=method, workers=10**9)
    assert_same(got, expected.astype(np.float64), _scale(x, w), 2e-5, method)
    monkeypatch.setenv(tiles.THREADS_ENV, "99999999999999999999")
    assert tiles._default_workers() == cap
    got = conv2d(x, w, padding="same", method=method)
    assert_same(got, expected.astype(np.float64), _scale(x, w), 2e-5, method)
    pool = [t for t in threading.enumerate() if t.name.startswith("convcli")]
    assert len(pool) <= cap
