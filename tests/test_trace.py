"""convcli.core.trace and the demos: the steps agree with conv2d and a loop reference."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import reference_conv2d

from convcli import ShapeError, conv2d
from convcli.core import output_size
from convcli.demos import DEMOS, load_demo
from convcli.tracing import (
    TRACE_MAX_STEPS,
    format_number,
    product_terms,
    size_formula,
    trace,
    trace_steps,
)
from convcli.tracing_transposed import trace_transposed


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


# ---------------------------------------------------------------------------
# The Trace: padded input, weights, output, labels of the layer


@pytest.mark.parametrize("border", ["constant", "edge", "reflect", "symmetric", "wrap"])
def test_padded_input_is_numpy_pad(border: str) -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 5, 2))
    t = trace(x, np.ones((3, 2)), padding=((2, 1), (0, 3)), border=border, cval=7.0)
    kwargs = {"constant_values": 7.0} if border == "constant" else {}
    expected = np.pad(x, ((2, 1), (0, 3), (0, 0)), mode=border, **kwargs)
    np.testing.assert_array_equal(t.padded, expected.transpose(2, 0, 1))
    np.testing.assert_array_equal(t.input, x.transpose(2, 0, 1))
    assert t.padding == (2, 1, 0, 3)


def test_every_window_is_a_slice_of_the_padded_input() -> None:
    rng = np.random.default_rng(5)
    x = rng.integers(-3, 4, (7, 6, 2)).astype(float)
    w = rng.integers(-2, 3, (3, 2, 3, 2)).astype(float)
    t = trace(x, w, stride=(2, 1), dilation=(1, 2), padding=1, border="wrap")
    for step in t.steps:
        rows, cols = t.taps(step)
        expected = t.padded[:, rows][:, :, cols]
        np.testing.assert_array_equal(step.window, expected)
        np.testing.assert_array_equal(step.products, expected * t.weights[step.filter])
        np.testing.assert_allclose(
            step.channel_sums, (expected * w[step.filter]).sum((1, 2))
        )
        assert step.sum == pytest.approx(sum(step.channel_sums))
        assert step.value == step.sum + step.bias


def test_bank_output_agrees_with_the_reference_and_conv2d() -> None:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(6, 5, 3))
    w = rng.normal(size=(4, 3, 2, 3))  # even, asymmetric kernel
    bias = [0.5, -1.0, 0.0, 2.0]
    t = trace(x, w, bias, stride=2, padding="same", border="symmetric")
    expected = reference_conv2d(
        x, w, bias, stride=2, padding="same", border="symmetric"
    )
    np.testing.assert_allclose(t.output.transpose(1, 2, 0), expected, atol=1e-12)
    np.testing.assert_allclose(
        t.output.transpose(1, 2, 0),
        conv2d(x, w, bias, stride=2, padding="same", border="symmetric"),
        atol=1e-12,
    )
    assert t.groups == 1
    assert t.depth == 4
    assert t.weights.shape == (4, 3, 2, 3)
    np.testing.assert_array_equal(t.bias, bias)


def test_depthwise_kernel_gives_one_filter_per_channel() -> None:
    x = np.arange(2 * 4 * 3, dtype=float).reshape(4, 3, 2)
    w = np.array([[1.0, 2.0], [3.0, 4.0]])
    t = trace(x, w)
    assert t.groups == 2
    assert t.weights.shape == (2, 1, 2, 2)
    assert [list(t.channels_of(d)) for d in range(2)] == [[0], [1]]
    assert all(np.asarray(s.window).shape == (1, 2, 2) for s in t.steps)
    np.testing.assert_allclose(t.output.transpose(1, 2, 0), reference_conv2d(x, w))


def test_flip_rotates_the_weights_the_steps_use() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(5, 5))
    w = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    t = trace(x, w, flip=True, padding=1)
    np.testing.assert_array_equal(t.weights[0, 0], w[::-1, ::-1])
    assert t.flip
    np.testing.assert_allclose(
        t.output[0], reference_conv2d(x, w[::-1, ::-1], padding=1), atol=1e-12
    )


def test_cs231n_counts() -> None:
    t = trace(np.zeros((5, 5, 3)), np.ones((2, 3, 3, 3)), [1, 0], stride=2, padding=1)
    assert t.parameters == 2 * 27 + 2
    assert t.multiply_adds == 3 * 3 * 2 * 27
    assert t.padded.shape == (3, 7, 7)
    assert t.kernel == (3, 3)


def test_json_document_has_the_spec_keys_and_shapes() -> None:
    rng = np.random.default_rng(9)
    x = rng.integers(0, 3, (5, 4, 2)).astype(float)
    w = rng.integers(-1, 2, (3, 2, 3, 3)).astype(float)
    doc = json.loads(json.dumps(trace(x, w, [1, 2, 3], stride=2, padding=1).to_json()))
    assert {"input", "weights", "bias", "stride", "padding", "output", "steps"} <= set(
        doc
    )
    assert np.shape(doc["input"]) == (2, 5, 4)
    assert np.shape(doc["weights"]) == (3, 2, 3, 3)
    assert doc["bias"] == [1, 2, 3]
    assert doc["stride"] == [2, 2]
    assert doc["padding"] == [[1, 1], [1, 1]]
    assert np.shape(doc["output"]) == (3, 3, 2)
    assert len(doc["steps"]) == 18
    assert set(doc["steps"][0]) == {
        "filter",
        "row",
        "col",
        "window",
        "products",
        "channel_sums",
        "sum",
        "bias",
        "value",
    }


# ---------------------------------------------------------------------------
# Numbers as a trace writes them


def test_product_terms_write_the_spec_example_exactly() -> None:
    window = [[4, 0, 0], [0, 0, 0], [0, 0, -4]]
    t = trace(window, [[0, 0, 0], [0, 1, 1], [0, 1, 2]])
    assert t.terms(t.steps[0], 0) == "4*0+0*0+0*0+0*0+0*1+0*1+0*0+0*1+-4*2=-8"


def test_product_terms_write_floats_short() -> None:
    assert (
        product_terms([[0.5, 1 / 3]], [[2, 0.1]], 1 + 1 / 30)
        == "0.5*2+0.3333*0.1=1.033"
    )
    assert format_number(-0.0) == "0"
    assert format_number(1e-7) == "1e-07"


@settings(max_examples=200)
@given(
    n=st.integers(1, 20),
    k=st.integers(1, 6),
    stride=st.integers(1, 4),
    before=st.integers(0, 3),
    after=st.integers(0, 3),
    dilation=st.integers(1, 3),
)
def test_size_formula_agrees_with_output_size(
    n: int, k: int, stride: int, before: int, after: int, dilation: int
) -> None:
    expected = output_size(
        n, k, stride=stride, padding=(before, after), dilation=dilation
    )
    text, result = size_formula(
        n, k, stride=stride, before=before, after=after, dilation=dilation
    )
    assert result == expected
    assert text.endswith(f"= {expected}")
    uneven = (n + before + after - dilation * (k - 1) - 1) % stride != 0
    assert text.startswith("floor(") == uneven


# ---------------------------------------------------------------------------
# Demos


def _grouped_reference(x, w, bias, groups, **options):
    """Each group's channels through its filters with the loop reference, stacked."""
    x3 = np.asarray(x, dtype=float)
    x3 = x3[:, :, None] if x3.ndim == 2 else x3
    per_in, per_out = x3.shape[2] // groups, w.shape[0] // groups
    maps = [
        reference_conv2d(
            x3[:, :, g * per_in : (g + 1) * per_in],
            w[g * per_out : (g + 1) * per_out],
            None,
            **options,
        )
        for g in range(groups)
    ]
    out = np.concatenate([m.reshape(*m.shape[:2], -1) for m in maps], axis=2)
    return out + (np.asarray(bias) if bias else 0)


def test_every_demo_traces_and_teaches_its_numbers() -> None:
    shapes = {
        "cs231n": (2, 3, 3),
        "seed": (1, 1, 1),
        "stride": (1, 3, 3),
        "dilated": (1, 3, 3),
        "same": (1, 5, 5),
        "valid": (1, 3, 3),
        "edge": (1, 4, 4),
        "transposed": (1, 5, 5),
        "grouped": (4, 2, 2),
        "depthwise-separable": (3, 2, 2),
        "pointwise": (2, 3, 3),
    }
    assert set(shapes) == set(DEMOS)
    for name, shape in shapes.items():
        demo = load_demo(name)
        if demo.transposed:
            t = trace_transposed(demo.x, demo.w, demo.bias or None, **demo.options)
            assert t.output.shape == shape, name
            continue
        t = trace(demo.x, demo.w, demo.bias or None, **demo.options)
        assert t.output.shape == shape, name
        options = dict(demo.options)
        groups = options.pop("groups", 1)
        w = np.asarray(demo.w)
        if groups > 1 and w.ndim == 4:
            expected = _grouped_reference(demo.x, w, demo.bias, groups, **options)
        else:
            expected = reference_conv2d(demo.x, w, demo.bias or None, **options)
        got = t.output.transpose(1, 2, 0)
        np.testing.assert_allclose(got, expected.reshape(got.shape))
        title, lesson = demo.explain([t, t] if demo.then is not None else t)
        assert title, name
        assert lesson, name
    assert load_demo("seed").x.shape == (3, 3)
    assert load_demo("dilation") is load_demo("dilated")  # the old name still works
    edge = load_demo("edge")
    assert trace(edge.x, edge.w).output[0].tolist() == [[0, 36, 36, 0]] * 4


def test_cs231n_demo_matches_its_description() -> None:
    demo = load_demo("cs231n")
    assert demo.x.shape == (5, 5, 3)
    assert set(np.unique(demo.x)) <= {0, 1, 2}
    assert demo.w.shape == (2, 3, 3, 3)
    assert set(np.unique(demo.w)) <= {-1, 0, 1}
    assert demo.bias == (1.0, 0.0)
    assert demo.options == {"stride": 2, "padding": 1}
    other = load_demo("cs231n", seed=5)
    assert not np.array_equal(other.x, demo.x)
    np.testing.assert_array_equal(other.x, load_demo("cs231n", seed=5).x)


def test_demo_errors() -> None:
    with pytest.raises(
        ValueError, match=r"unknown demo 'nope'; the demos are cs231n, seed"
    ):
        load_demo("nope")
    with pytest.raises(ValueError, match=r"cs231n demo only; edge has fixed values"):
        load_demo("edge", seed=1)
