"""The convolution types of `convcli trace`: groups, transposed, the demos, 80 columns.

Every number is checked against a slow loop written here (or the loop
reference of tests/reference.py), and against torch where it is installed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from convcli import ShapeError, render
from convcli.cli import app
from convcli.demos import DEMOS, load_demo
from convcli.tracing import TRACE_MAX_STEPS, trace
from convcli.tracing_transposed import trace_transposed

ENV = {"COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb"}


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setattr(render.console, "width", 80)
    return CliRunner()


def run(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, ["trace", *args], env=ENV)
    assert result.exit_code == 0, result.output
    return result.stdout


def fails(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, ["trace", *args], env=ENV)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def grouped_loop(x, w, bias, groups, stride=(1, 1), pads=(0, 0, 0, 0), dil=(1, 1)):
    """Grouped cross-correlation, one output value at a time (zeros around)."""
    x = np.asarray(x, dtype=float)
    height, width, channels = x.shape
    top, bottom, left, right = pads
    padded = np.zeros((height + top + bottom, width + left + right, channels))
    padded[top : top + height, left : left + width] = x
    depth, per_in, kh, kw = w.shape
    per_out = depth // groups
    out_h = (padded.shape[0] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    out_w = (padded.shape[1] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((out_h, out_w, depth))
    for d in range(depth):
        first = d // per_out * per_in
        for i in range(out_h):
            for j in range(out_w):
                total = 0.0
                for c in range(per_in):
                    for u in range(kh):
                        for v in range(kw):
                            total += (
                                padded[
                                    i * stride[0] + u * dil[0],
                                    j * stride[1] + v * dil[1],
                                    first + c,
                                ]
                                * w[d, c, u, v]
                            )
                out[i, j, d] = total + (bias[d] if bias is not None else 0.0)
    return out


def transposed_loop(x, w, bias, groups, stride, padding, output_padding, dilation):
    """Transposed convolution by its definition: every input value stamps its kernels."""
    x = np.asarray(x, dtype=float)
    height, width, channels = x.shape
    _, per_out, kh, kw = w.shape
    depth = per_out * groups
    per_in = channels // groups
    full_h = (height - 1) * stride[0] + dilation[0] * (kh - 1) + 1 + output_padding[0]
    full_w = (width - 1) * stride[1] + dilation[1] * (kw - 1) + 1 + output_padding[1]
    full = np.zeros((full_h, full_w, depth))
    for c in range(channels):
        group = c // per_in
        for i in range(height):
            for j in range(width):
                for e in range(per_out):
                    for u in range(kh):
                        for v in range(kw):
                            full[
                                i * stride[0] + u * dilation[0],
                                j * stride[1] + v * dilation[1],
                                group * per_out + e,
                            ] += x[i, j, c] * w[c, e, u, v]
    out = full[
        padding[0] : full_h - padding[0], padding[1] : full_w - padding[1]
    ].copy()
    return out + (np.asarray(bias) if bias is not None else 0.0)


# ---------------------------------------------------------------------------
# The library: groups and transposed against the loops


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 3),  # groups
    st.integers(1, 2),  # channels per group
    st.integers(1, 2),  # filters per group
    st.integers(1, 5),  # at most 6 filters x 9 x 9 outputs: under TRACE_MAX_STEPS
    st.integers(1, 5),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 2),
    st.integers(0, 2),
    st.integers(1, 2),
    st.integers(0, 2**32 - 1),
)
def test_grouped_trace_matches_the_loop(
    groups, per_in, per_out, height, width, kh, kw, stride, pad, dil, seed
) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, (height, width, groups * per_in)).astype(float)
    w = rng.integers(-2, 3, (groups * per_out, per_in, kh, kw)).astype(float)
    bias = rng.integers(-2, 3, groups * per_out).astype(float)
    if height + 2 * pad < dil * (kh - 1) + 1 or width + 2 * pad < dil * (kw - 1) + 1:
        with pytest.raises(ShapeError):
            trace(x, w, bias, stride=stride, padding=pad, dilation=dil, groups=groups)
        return
    t = trace(x, w, bias, stride=stride, padding=pad, dilation=dil, groups=groups)
    expected = grouped_loop(
        x, w, bias, groups, (stride, stride), (pad,) * 4, (dil, dil)
    )
    np.testing.assert_allclose(t.output.transpose(1, 2, 0), expected)
    assert t.groups == groups
    for step in t.steps:  # each step reads its group's channels only
        chans = t.channels_of(step.filter)
        assert len(chans) == per_in
        assert chans[0] == step.filter // per_out * per_in
        assert step.value == pytest.approx(expected[step.row, step.col, step.filter])


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 2),  # groups
    st.integers(1, 2),  # channels per group
    st.integers(1, 2),  # maps per group
    st.integers(1, 4),
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(1, 3),
    st.tuples(st.integers(1, 3), st.integers(1, 3)),
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.integers(1, 2), st.integers(1, 2)),
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
    st.integers(0, 2**32 - 1),
)
def test_transposed_trace_matches_the_loop_both_ways(
    groups, per_in, per_out, height, width, kh, kw, stride, padding, dil, op, seed
) -> None:
    op = tuple(min(o, max(s, d) - 1) for o, s, d in zip(op, stride, dil, strict=True))
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, (height, width, groups * per_in)).astype(float)
    w = rng.integers(-2, 3, (groups * per_in, per_out, kh, kw)).astype(float)
    bias = rng.integers(-2, 3, groups * per_out).astype(float)
    sizes = [
        (n - 1) * s - 2 * p + d * (k - 1) + o + 1
        for n, s, p, d, k, o in zip(
            (height, width), stride, padding, dil, (kh, kw), op, strict=True
        )
    ]
    options = {
        "stride": stride,
        "padding": padding,
        "output_padding": op,
        "dilation": dil,
        "groups": groups,
    }
    if min(sizes) < 1:
        with pytest.raises(ShapeError, match="cuts the whole output away"):
            trace_transposed(x, w, bias, **options)
        return
    if groups * per_out * sizes[0] * sizes[1] > TRACE_MAX_STEPS:
        with pytest.raises(ShapeError, match="at most 512 steps"):
            trace_transposed(x, w, bias, **options)
        return
    t = trace_transposed(x, w, bias, **options)
    expected = transposed_loop(x, w, bias, groups, stride, padding, op, dil)
    assert t.output.shape == (groups * per_out, *sizes)
    np.testing.assert_allclose(t.output.transpose(1, 2, 0), expected)
    # the second view: an ordinary convolution over the zero-inserted input
    np.testing.assert_allclose(t.conv.output.transpose(1, 2, 0), expected)
    assert len(t.stamps) == x.size


def test_transposed_trace_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3, 4))
    w = rng.standard_normal((4, 3, 3, 2))
    bias = rng.standard_normal(6)
    t = trace_transposed(
        x, w, bias, stride=(2, 3), padding=(1, 0), output_padding=(1, 2), groups=2
    )
    expected = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(x.transpose(2, 0, 1))[None],
        torch.from_numpy(w),
        torch.from_numpy(bias),
        stride=(2, 3),
        padding=(1, 0),
        output_padding=(1, 2),
        groups=2,
    )[0].numpy()
    np.testing.assert_allclose(t.output, expected, atol=1e-12)
    grouped = torch.nn.functional.conv2d(
        torch.from_numpy(x.transpose(2, 0, 1))[None],
        torch.from_numpy(rng.standard_normal((4, 2, 2, 2))),
        groups=2,
    )
    assert grouped.shape[1] == 4


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: trace(np.ones((4, 4, 4)), np.ones((3, 2, 3, 3)), groups=2),
            r"groups=2 needs C and D divisible by 2; got x \(4, 4, 4\)",
        ),
        (
            lambda: trace(np.ones((4, 4, 4)), np.ones((4, 4, 3, 3)), groups=2),
            r"w has shape \(4, 4, 3, 3\); expected \(D, 2, kh, kw\) \(D, C // groups",
        ),
        (
            lambda: trace(np.ones((4, 4, 3)), np.ones((3, 3)), groups=2),
            r"a 2-D kernel \(kh, kw\) filters each channel on its own and takes groups=1",
        ),
        (
            lambda: trace_transposed(
                np.ones((2, 2)), np.ones((3, 3)), output_padding=1
            ),
            r"output_padding 1 must be smaller than the stride \(1\) or the dilation",
        ),
        (
            lambda: trace_transposed(np.ones((2, 2, 3)), np.ones((2, 1, 3, 3))),
            "with C = 3 input channels; got w 2 x 1 x 3 x 3",
        ),
        (
            lambda: trace_transposed(np.ones((2, 2)), np.ones((3, 3)), padding=3),
            "padding 3, 3 cuts the whole output away",
        ),
        (
            lambda: trace_transposed(np.ones((2, 2)), np.ones((3, 3)), [1, 2]),
            r"bias must be one value or one per output map \(1\); got 2 values",
        ),
    ],
)
def test_impossible_layers_say_what_was_given(call, message) -> None:
    with pytest.raises(ValueError, match=message):
        call()


# ---------------------------------------------------------------------------
# The CLI


def test_groups_option_traces_a_grouped_bank(runner: CliRunner, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    x = rng.integers(0, 3, (4, 4, 4)).astype(float)
    w = rng.integers(-1, 2, (6, 2, 3, 3)).astype(float)
    kernel = tmp_path / "bank.npy"
    np.save(kernel, w)
    inline = " | ".join(
        "; ".join(" ".join(str(int(v)) for v in row) for row in x[:, :, c])
        for c in range(4)
    )
    doc = json.loads(
        run(runner, "-i", inline, "-k", str(kernel), "--groups", "2", "--json")
    )
    assert doc["groups"] == 2
    expected = grouped_loop(x, w, None, 2)
    np.testing.assert_allclose(np.array(doc["output"]).transpose(1, 2, 0), expected)
    text = run(runner, "-i", inline, "-k", str(kernel), "--groups", "2", "--summary")
    assert "w0, w1, w2 read channels 0-1; w3, w4, w5 read channels 2-3" in " ".join(
        text.split()
    )
    assert "6 x (18 + 1) = 114" in text
    error = fails(runner, "-i", inline, "-k", str(kernel), "--groups", "3")
    assert "groups=3 needs C and D divisible by 3" in error


def test_transpose_option_gives_pytorchs_output_both_ways(runner: CliRunner) -> None:
    args = ["-i", "1 2; 3 4", "-k", "1 0 0; 2 1 0; 3 2 1", "--transpose"]
    args += ["--stride", "2", "--padding", "1", "--output-padding", "1"]
    doc = json.loads(run(runner, *args, "--json"))
    x = np.array([[1, 2], [3, 4]], dtype=float)[:, :, None]
    w = np.array([[1, 0, 0], [2, 1, 0], [3, 2, 1]], dtype=float)[None, None]
    expected = transposed_loop(x, w, None, 1, (2, 2), (1, 1), (1, 1), (1, 1))
    assert np.array(doc["output"]).shape == (1, 4, 4)
    np.testing.assert_allclose(np.array(doc["output"]).transpose(1, 2, 0), expected)
    conv = doc["convolution"]
    np.testing.assert_allclose(np.array(conv["output"]).transpose(1, 2, 0), expected)
    assert len(doc["stamps"]) == 4
    assert doc["stamps"][3] == {
        "channel": 0,
        "row": 1,
        "col": 1,
        "value": 4.0,
        "rows": [2, 4],
        "cols": [2, 4],
    }
    text = run(runner, *args)
    assert "H' = (2 - 1)*2 - 2*1 + 1*(3 - 1) + 1 + 1 = 4" in text
    assert text.count("\nstamp ") == 4
    assert "stamp 4 of 4: x[1,1] = 4 stamps 4 x its kernel" in text
    assert text.count("(step ") == 16
    assert "1 zero inserted between the input values" in " ".join(text.split())
    # the flipped kernel is shown beside the given one
    assert re.search(r"w\s+flipped\n1 0 0\s+1 2 3\n2 1 0\s+0 1 2\n3 2 1\s+0 0 1", text)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--demo", "seed", "--output-padding", "1"],
            "--output-padding goes with --transpose",
        ),
        (
            ["--demo", "transposed", "--border", "reflect"],
            "a transposed convolution pads with zeros only",
        ),
        (["--demo", "transposed", "--padding", "same"], "not same"),
        (["--demo", "transposed", "--flip"], "--flip goes with a convolution"),
        (
            ["--demo", "depthwise-separable", "--only", "0,0"],
            "--demo depthwise-separable shows two layers; --only and --gif take one",
        ),
        (["--demo", "cs231n", "--only", "3,0"], "rows 0-2, cols 0-2, filters 0-1"),
        (["--demo", "cs231n", "--groups", "2"], "groups=2 needs"),
    ],
)
def test_new_options_refuse_what_they_cannot_show(
    runner: CliRunner, args: list[str], message: str
) -> None:
    assert message in fails(runner, *args)


def _demo_output(name: str, doc: dict) -> np.ndarray:
    """A demo's output recomputed by the loops of this file."""
    demo = load_demo(name)
    x = np.asarray(demo.x, dtype=float)
    x = x[:, :, None] if x.ndim == 2 else x
    w = np.asarray(demo.w, dtype=float)
    bias = np.asarray(demo.bias) if demo.bias else None
    if demo.transposed:
        w4 = w[None, None] if w.ndim == 2 else w
        s = demo.options.get("stride", 1)
        return transposed_loop(x, w4, bias, 1, (s, s), (0, 0), (0, 0), (1, 1))
    groups = demo.options.get("groups", 1)
    if w.ndim == 2:  # each channel through the same kernel
        w = np.repeat(w[None, None], x.shape[2], 0)
        groups = x.shape[2]
    top, bottom, left, right = (
        doc["padding"][0] + doc["padding"][1]
        if "padding" in doc
        else doc["layers"][0]["padding"][0] + doc["layers"][0]["padding"][1]
    )
    stride = tuple(doc.get("stride", [1, 1]))
    dil = tuple(doc.get("dilation", [1, 1]))
    out = grouped_loop(x, w, bias, groups, stride, (top, bottom, left, right), dil)
    if demo.then is not None:
        out = grouped_loop(out, demo.then, None, 1)
    return out


@pytest.mark.parametrize("name", sorted(DEMOS))
def test_every_demo_computes_what_the_loop_does_and_fits_80_columns(
    runner: CliRunner, name: str
) -> None:
    doc = json.loads(run(runner, "--demo", name, "--json"))
    got = doc["layers"][-1]["output"] if "layers" in doc else doc["output"]
    np.testing.assert_allclose(
        np.array(got).transpose(1, 2, 0), _demo_output(name, doc), atol=1e-12
    )
    text = run(runner, "--demo", name)
    widest = max(text.splitlines(), key=len)
    assert len(widest) <= 80, widest


def test_demo_text_follows_the_options_in_force(runner: CliRunner) -> None:
    out = run(runner, "--demo", "stride", "--stride", "3", "--summary")
    assert "stride 3: the window jumps 3 cells, so a 7x7 input gives 2x2" in out
    prose = " ".join(out.split())
    assert "With stride 3 the window moves 3 columns, then 3 rows" in prose
    assert "floor((7 - 3 + 2*0)/3) + 1 = 2 positions" in prose
    assert "With stride 2" not in prose
    out = run(runner, "--demo", "seed", "--flip", "--summary")
    prose = " ".join(out.split())
    # the rotated kernel meets the 4 in the corner: 4*2 + ... + -4*0 = 8
    assert "= 8. The kernel is rotated first (--flip)" in prose
    assert "= -8" not in prose
    out = run(runner, "--demo", "dilated", "--dilation", "3", "--summary")
    assert "dilation 3 (atrous): a 3x3 kernel with gaps covers 7x7" in out
    out = run(runner, "--demo", "cs231n", "--stride", "1", "--summary")
    assert "2 filters give an output of depth 2, 5x5x2" in " ".join(out.split())
    assert "(changed here: --stride)" in out


def test_trace_names_receptive_field_and_weight_sharing(runner: CliRunner) -> None:
    out = run(runner, "--demo", "cs231n", "--only", "0,0,0")
    prose = " ".join(out.split())
    assert "receptive field: x[0:2, 0:2, 0:3] and padding" in out
    assert "each filter's 27 weights are used at all 9 positions of its map" in prose
    assert "(weight sharing)" in prose
    # a fully connected layer from 5*5*3 inputs to 3*3*2 outputs, with biases
    assert f"75 x 18 + 18 = {75 * 18 + 18}" in prose
    assert "2 x (27 + 1) = 56" in prose
    out = run(runner, "--demo", "dilated", "--only", "2,2")
    assert "receptive field: x[2:7:2, 2:7:2]" in out  # every other cell of 5


def test_only_counts_from_zero_like_the_labels(runner: CliRunner) -> None:
    first = run(runner, "--demo", "cs231n", "--only", "0,0,0")
    assert "o[0,0,0] (step 1 of 18)" in first
    last = run(runner, "--demo", "cs231n", "--only", "2,2,1")
    assert "o[2,2,1] (step 18 of 18)" in last
    result = runner.invoke(app, ["trace", "--help"], env={**ENV, "COLUMNS": "200"})
    assert "counted from 0" in " ".join(result.stdout.split())


def test_step_waits_for_enter_on_a_terminal_and_q_quits(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not a terminal (the runner's stdin): every step, no prompt.
    out = run(runner, "--demo", "valid", "--step")
    assert out.count("(step ") == 9
    assert "Enter: next step" not in out
    # A terminal: Enter goes on, q stops and the summary follows.
    answers = iter(["", "q"])
    prompts = []

    def fake_input(prompt: str = "", **_: object) -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr("convcli.cli.trace._interactive", lambda: True)
    monkeypatch.setattr(render.console, "input", fake_input)
    out = run(runner, "--demo", "valid", "--step")
    assert out.count("(step ") == 2
    assert len(prompts) == 2
    assert "shapes" in out  # the summary still comes


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 3),  # groups
    st.integers(1, 2),  # channels per group
    st.integers(1, 2),  # filters (or maps) per group
    st.integers(2, 4),  # transposed: at most 6 x 9 x 9 steps
    st.integers(1, 2),
    st.integers(0, 1),
    st.integers(0, 2**32 - 1),
)
def test_trace_agrees_with_the_library(
    groups, per_in, per_out, side, stride, pad, seed
) -> None:
    """The traces lay out what convcli.conv2d and conv_transpose2d compute."""
    import convcli

    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, (side, side, groups * per_in)).astype(float)
    w = rng.integers(-2, 3, (groups * per_out, per_in, 2, 2)).astype(float)
    t = trace(x, w, stride=stride, padding=pad, groups=groups)
    np.testing.assert_array_equal(
        t.output.transpose(1, 2, 0),
        convcli.conv2d(x, w, stride=stride, padding=pad, groups=groups),
    )
    wt = rng.integers(-2, 3, (groups * per_in, per_out, 2, 2)).astype(float)
    op = min(1, stride - 1)
    tt = trace_transposed(
        x, wt, stride=stride, padding=pad, output_padding=op, groups=groups
    )
    np.testing.assert_allclose(
        tt.output.transpose(1, 2, 0),
        convcli.conv_transpose2d(
            x, wt, stride=stride, padding=pad, output_padding=op, groups=groups
        ),
    )
