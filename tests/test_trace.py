"""convcli.core.trace_steps: the steps agree with conv2d and with a loop reference."""

from __future__ import annotations

import numpy as np
import pytest
from reference import reference_conv2d

from convcli import ShapeError, conv2d
from convcli.core import TRACE_MAX_STEPS, trace_steps


def _rebuild(steps: list, shape: tuple[int, ...]) -> np.ndarray:
    out = np.full(shape, np.nan)
    for s in steps:
        out[s.row, s.col, s.filter] = s.value
    return out


def test_spec_worked_window() -> None:
    window = [[4, 0, 0], [0, 0, 0], [0, 0, -4]]
    kernel = [[0, 0, 0], [0, 1, 1], [0, 1, 2]]
    (step,) = trace_steps(window, kernel)
    assert step.window == [[[4.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, -4.0]]]
    assert step.products == [[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, -8.0]]]
    assert step.sum == -8.0
    assert step.value == -8.0
    assert (step.filter, step.row, step.col) == (0, 0, 0)


def test_cs231n_case_agrees_with_conv2d_and_the_reference() -> None:
    rng = np.random.default_rng(231)
    x = rng.integers(0, 3, (5, 5, 3)).astype(float)
    w = rng.integers(-1, 2, (2, 3, 3, 3)).astype(float)
    bias = [1.0, 0.0]
    steps = trace_steps(x, w, bias, stride=2, padding=1)
    assert len(steps) == 2 * 3 * 3
    got = _rebuild(steps, (3, 3, 2))
    np.testing.assert_array_equal(got, conv2d(x, w, bias, stride=2, padding=1))
    np.testing.assert_array_equal(
        got, reference_conv2d(x, w, bias, stride=2, padding=1)
    )
    first = steps[0]
    assert np.asarray(first.window).shape == (3, 3, 3)
    assert first.value == first.sum + 1.0
    # the top-left window hangs over the zero padding by one row and column
    assert np.asarray(first.window)[:, 0, :].sum() == 0
    assert first.sum == float(np.sum(np.asarray(first.window) * w[0]))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"stride": (2, 3)},
        {"padding": "same", "border": "reflect"},
        {"padding": 2, "border": "wrap", "dilation": 2},
        {"padding": ((0, 1), (2, 0)), "border": "edge", "flip": True},
        {"padding": 1, "border": "constant", "cval": 5.0},
    ],
)
def test_steps_agree_with_conv2d(kwargs: dict) -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(6, 7, 2))
    for w in (rng.normal(size=(3, 2)), rng.normal(size=(3, 2, 2, 3))):
        expected = conv2d(x, w, **kwargs)
        steps = trace_steps(x, w, **kwargs)
        assert len(steps) == expected.size
        np.testing.assert_allclose(
            _rebuild(steps, expected.shape), expected, rtol=1e-12, atol=1e-12
        )


def test_gray_input_two_d_kernel() -> None:
    x = np.arange(16.0).reshape(4, 4)
    steps = trace_steps(x, np.ones((2, 2)), stride=2)
    assert [s.value for s in steps] == [10.0, 18.0, 42.0, 50.0]


def test_size_limits() -> None:
    with pytest.raises(
        ShapeError, match=r"up to 16x16 per channel; got 17x3 \(use `convcli apply`"
    ):
        trace_steps(np.zeros((17, 3)), np.ones((1, 1)))
    with pytest.raises(
        ShapeError,
        match=rf"at most {TRACE_MAX_STEPS} steps; this one has 3 x 16 x 16 = 768",
    ):
        trace_steps(np.zeros((16, 16)), np.ones((3, 1, 1, 1)))
