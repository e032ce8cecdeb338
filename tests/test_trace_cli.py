"""`convcli trace` as a user drives it: the view, --json, demos, errors, snapshots."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from convcli import conv2d, render
from convcli.cli import app
from convcli.demos import DEMOS

ENV = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}
SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("CONVCLI_UPDATE_SNAPSHOTS") == "1"


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setattr(render.console, "width", 100)
    return CliRunner()


def run(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, ["trace", *args], env=ENV)
    assert result.exit_code == 0, result.output
    return result.stdout


def fails(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, ["trace", *args], env=ENV)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.startswith("Error: "), result.stderr
    assert result.stdout == ""
    return result.stderr


def loop_conv(doc: dict) -> np.ndarray:
    """The test's own reference: pad with zeros, then one window per output value."""
    x = np.array(doc["input"], dtype=float)  # (C, H, W)
    w = np.array(doc["weights"], dtype=float)  # (D, C_in, kh, kw)
    (top, bottom), (left, right) = doc["padding"]
    sh, sw = doc["stride"]
    dh, dw = doc["dilation"]
    assert doc["border"] == "constant"
    channels, height, width = x.shape
    padded = np.full(
        (channels, height + top + bottom, width + left + right), doc["cval"]
    )
    padded[:, top : top + height, left : left + width] = x
    depth, c_in, kh, kw = w.shape
    out_h = (padded.shape[1] - dh * (kh - 1) - 1) // sh + 1
    out_w = (padded.shape[2] - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((depth, out_h, out_w))
    for d in range(depth):
        channels_read = range(channels) if c_in == channels else [d]
        for i in range(out_h):
            for j in range(out_w):
                total = doc["bias"][d]
                for ci, c in enumerate(channels_read):
                    for u in range(kh):
                        for v in range(kw):
                            total += (
                                padded[c, i * sh + u * dh, j * sw + v * dw]
                                * w[d, ci, u, v]
                            )
                out[d, i, j] = total
    return out


# ---------------------------------------------------------------------------
# What the spec and the issue ask for


def test_seed_demo_prints_the_worked_example_term_string(runner: CliRunner) -> None:
    out = run(runner, "--demo", "seed")
    assert "4*0+0*0+0*0+0*0+0*1+0*1+0*0+0*1+-4*2=-8\n" in out
    assert "o[0,0] = -8\n" in out


def test_cs231n_json_agrees_with_a_loop_reference(runner: CliRunner) -> None:
    doc = json.loads(run(runner, "--demo", "cs231n", "--json"))
    assert np.shape(doc["input"]) == (3, 5, 5)
    assert np.shape(doc["weights"]) == (2, 3, 3, 3)
    assert doc["bias"] == [1.0, 0.0]
    assert doc["stride"] == [2, 2]
    assert doc["padding"] == [[1, 1], [1, 1]]
    assert np.shape(doc["output"]) == (2, 3, 3)
    np.testing.assert_array_equal(loop_conv(doc), doc["output"])
    assert len(doc["steps"]) == 18
    for step in doc["steps"]:
        assert step["value"] == doc["output"][step["filter"]][step["row"]][step["col"]]
        assert step["sum"] == pytest.approx(np.sum(step["products"]))
        assert step["value"] == step["sum"] + doc["bias"][step["filter"]]
        window = np.array(step["window"])
        assert window.shape == (3, 3, 3)
        np.testing.assert_array_equal(
            np.array(step["products"]),
            window * np.array(doc["weights"][step["filter"]]),
        )


def test_cs231n_seed_draws_other_values(runner: CliRunner) -> None:
    fixed = json.loads(run(runner, "--demo", "cs231n", "--json"))
    drawn = json.loads(run(runner, "--demo", "cs231n", "--seed", "4", "--json"))
    assert drawn["input"] != fixed["input"]
    np.testing.assert_array_equal(loop_conv(drawn), drawn["output"])
    assert drawn == json.loads(run(runner, "--demo", "cs231n", "--seed", "4", "--json"))


CASES = [
    (
        "1 2 0 1; 3 1 0 2; 0 2 2 1; 1 0 3 1; 2 2 1 0",
        "1 0 -1; 2 0 -2; 1 0 -1",
        ["--stride", "2"],
    ),
    ("1 2 0 1; 3 1 0 2; 0 2 2 1; 1 0 3 1", "1 2; 3 4", ["--padding", "1", "--flip"]),
    (
        "1 2 0 1 5; 3 1 0 2 5; 0 2 2 1 5; 1 0 3 1 5; 2 2 1 0 5",
        "1 0 1; 0 1 0; 1 0 2",
        ["--dilation", "2", "--padding", "same", "--border", "reflect"],
    ),
    (
        "1 2 0; 3 1 0; 0 2 2 | 0 1 0; 1 0 1; 0 1 0",
        "1 -1; 2 0",
        ["--bias", "0.5", "--padding", "0,1", "--border", "edge"],
    ),
]


@pytest.mark.parametrize(("matrix", "kernel", "options"), CASES)
def test_inline_cases_agree_with_conv2d(
    runner: CliRunner, matrix: str, kernel: str, options: list[str]
) -> None:
    doc = json.loads(run(runner, "-i", matrix, "-k", kernel, *options, "--json"))
    x = np.array(doc["input"]).transpose(1, 2, 0)
    w = np.array([[float(v) for v in row.split()] for row in kernel.split(";")])
    kwargs: dict = {}
    for flag, value in zip(options, [*options[1:], ""], strict=True):
        if flag == "--stride":
            kwargs["stride"] = int(value)
        elif flag == "--padding":
            kwargs["padding"] = (
                value
                if value == "same"
                else tuple(int(p) for p in value.split(","))
                if "," in value
                else int(value)
            )
        elif flag == "--dilation":
            kwargs["dilation"] = int(value)
        elif flag == "--border":
            kwargs["border"] = value
        elif flag == "--bias":
            kwargs["bias"] = float(value)
        elif flag == "--flip":
            kwargs["flip"] = True
    expected = conv2d(x, w, **kwargs)
    got = np.array(doc["output"]).transpose(1, 2, 0)
    np.testing.assert_allclose(got, expected.reshape(got.shape), atol=1e-12)
    assert doc["flip"] == ("--flip" in options)


def test_bank_kernel_file_gives_depth_two(runner: CliRunner, tmp_path: Path) -> None:
    kernel = tmp_path / "pair.txt"
    kernel.write_text(
        "bias: 1 -1\n--- a\n1 0\n0 0\n\n0 0\n0 1\n--- b\n0 1\n1 0\n\n2 2\n2 2\n"
    )
    matrix = tmp_path / "x.txt"
    matrix.write_text("# two channels\n1 2 3\n4 5 6\n\n7 8 9\n1 1 1\n")
    doc = json.loads(run(runner, "-i", str(matrix), "-k", str(kernel), "--json"))
    x = np.array([[[1, 2, 3], [4, 5, 6]], [[7, 8, 9], [1, 1, 1]]], float).transpose(
        1, 2, 0
    )
    w = np.array(doc["weights"])
    assert w.shape == (2, 2, 2, 2)
    assert doc["bias"] == [1, -1]
    np.testing.assert_allclose(
        np.array(doc["output"]).transpose(1, 2, 0), conv2d(x, w, [1, -1])
    )
    view = run(runner, "-i", str(matrix), "-k", str(kernel), "--only", "0,1,1")
    assert "w1[:,:,1]" in view
    assert "o[0,1,1] = 8 + 38 + b1 (-1) = 45" in view  # 2*0+3*1+5*1+6*0; 2*(8+9+1+1)


def test_only_shows_one_step_and_json_keeps_one(runner: CliRunner) -> None:
    out = run(runner, "--demo", "cs231n", "--only", "2,1,1")
    assert out.count("(step ") == 1
    assert "o[2,1,1] (step 17 of 18)" in out  # filter 1 comes after the 9 of filter 0
    doc = json.loads(run(runner, "--demo", "cs231n", "--only", "2,1,1", "--json"))
    (step,) = doc["steps"]
    assert (step["row"], step["col"], step["filter"]) == (2, 1, 1)


def test_summary_shows_no_steps(runner: CliRunner) -> None:
    out = run(runner, "--demo", "cs231n", "--summary")
    assert "(step " not in out
    assert "H' = (5 - 3 + 2*1)/2 + 1 = 3" in out
    assert "2 x (27 + 1) = 56 (weights and 2 biases)" in out
    assert "486 multiply-adds" in out
    assert "output o" in out


def test_full_trace_fills_the_output_step_by_step(runner: CliRunner) -> None:
    out = run(runner, "--demo", "valid")
    assert out.count("(step ") == 9
    blocks = re.split(r"\n(?=o\[\d,\d\] \(step )", out)[1:]
    # the output map shows one more value in each step, and no '.' at the end
    dots = [block.split("\no\n")[1].split("\n\n")[0].count(".") for block in blocks]
    assert dots == [8, 7, 6, 5, 4, 3, 2, 1, 0]


def test_uneven_stride_warns(runner: CliRunner) -> None:
    out = run(runner, "--demo", "stride", "--stride", "3", "--summary")
    assert "floor((7 - 3 + 2*0)/3) + 1 = 2" in out
    assert "warning: stride 3 does not divide the rows evenly" in out


def test_bank_with_combine_says_trace_shows_each_map(runner: CliRunner) -> None:
    out = run(runner, "-i", "0 0 9 9; 0 0 9 9; 0 0 9 9", "-k", "sobel", "--summary")
    text = " ".join(out.split())
    assert "combines their maps (magnitude); a trace shows each map" in text
    assert "2 filters w0, w1" in out


def test_list_demos(runner: CliRunner) -> None:
    out = run(runner, "--list-demos")
    for name in DEMOS:
        assert f" {name} " in out
    assert set(DEMOS) >= {
        "cs231n",
        "dilated",
        "transposed",
        "grouped",
        "depthwise-separable",
        "pointwise",
    }


# ---------------------------------------------------------------------------
# Bad input: one line on stderr, exit 2


def test_input_larger_than_16_is_refused(runner: CliRunner) -> None:
    rows = ";".join([" ".join(["1"] * 17)] * 2)
    err = fails(runner, "-i", rows, "-k", "1")
    assert "up to 16x16 per channel; got 2x17 (use `convcli apply` for images)" in err


def test_too_many_steps_are_refused(runner: CliRunner, tmp_path: Path) -> None:
    bank = tmp_path / "bank.txt"
    bank.write_text("".join(f"--- f{d}\n1\n" for d in range(3)))
    rows = ";".join([" ".join(["1"] * 16)] * 16)
    err = fails(runner, "-i", rows, "-k", str(bank))
    assert "at most 512 steps; this one has 3 x 16 x 16 = 768" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give an input with -i and a kernel with -k, or a --demo"),
        (["-i", "1 2; 3 4"], "give an input with -i and a kernel with -k"),
        (["--demo", "nope"], "unknown demo 'nope'"),
        (["--seed", "3", "-i", "1", "-k", "1"], "--seed goes with --demo cs231n"),
        (["--demo", "edge", "--seed", "3"], "edge has fixed values"),
        (
            ["--demo", "cs231n", "--only", "3,0"],
            "--only 3,0,0 is outside the output: rows 0-2",
        ),
        (
            ["--demo", "cs231n", "--only", "a"],
            "--only must be ROW,COL or ROW,COL,FILTER",
        ),
        (
            ["--demo", "cs231n", "--bias", "x"],
            "--bias must be numbers separated by commas",
        ),
        (
            ["--demo", "cs231n", "--bias", "1,2,3"],
            "bias must be a scalar or have shape (2,)",
        ),
        (["--demo", "cs231n", "--stride", "0"], "stride must be >= 1"),
        (
            ["-i", "1 2; 3", "-k", "1"],
            "input matrix '1 2; 3': row 2 has 1 values, expected 2",
        ),
        (["-i", "1 2 | 3", "-k", "1"], "channel 2 is 1x1, expected 1x2 like channel 1"),
        (["-i", "photo.png", "-k", "1"], "photo.png: -i takes a small matrix"),
        (["-i", "nothere.txt", "-k", "1"], "nothere.txt: no such matrix file"),
        (
            ["-i", "1 2; 3 4", "-k", "1 1 1; 1 1 1; 1 1 1"],
            "is larger than the padded input 2x2",
        ),
        (
            ["-i", "1 2; 3 4 | 5 6; 7 8", "-k", "sobel"],
            "w has shape (2, 1, 3, 3); expected (kh, kw) or (D, 2, kh, kw)",
        ),
    ],
)
def test_bad_input_exits_2(runner: CliRunner, args: list[str], message: str) -> None:
    assert message in fails(runner, *args)


def test_bank_file_as_input_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    matrix = tmp_path / "m.txt"
    matrix.write_text("--- a\n1 2\n--- b\n3 4\n")
    err = fails(runner, "-i", str(matrix), "-k", "1")
    assert "m.txt: an input matrix has no '---' filters (found 2)" in err


# ---------------------------------------------------------------------------
# Plain text when piped, colour on a terminal, same text either way


def test_piped_output_is_plain_text_and_colour_only_adds_styles() -> None:
    cmd = [
        sys.executable,
        "-m",
        "convcli",
        "trace",
        "--demo",
        "cs231n",
        "--only",
        "0,0",
    ]
    env = {**os.environ, "COLUMNS": "100"}
    env.pop("NO_COLOR", None)
    env.pop("FORCE_COLOR", None)
    plain = subprocess.run(
        cmd, capture_output=True, text=True, env=env, check=True
    ).stdout
    assert "\x1b[" not in plain
    coloured = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env={**env, "FORCE_COLOR": "1", "TERM": "xterm-256color"},
        check=True,
    ).stdout
    assert "\x1b[" in coloured
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain


# ---------------------------------------------------------------------------
# Snapshots: the plain-text layout at 80 columns, which every line fits in.
# After an intended change, rerun with CONVCLI_UPDATE_SNAPSHOTS=1 and read the
# diff.

SNAPSHOT_CASES = {
    "cs231n_step_14": ["--demo", "cs231n", "--only", "1,1,1"],
    "seed": ["--demo", "seed"],
    "dilated_step_5": ["--demo", "dilated", "--only", "1,1"],
    "grouped_step": ["--demo", "grouped", "--only", "0,1,2"],
    "separable_summary": ["--demo", "depthwise-separable", "--summary"],
    "pointwise_step": ["--demo", "pointwise", "--only", "1,1,1"],
    "transposed_inline": [
        "-i",
        "1 2",
        "-k",
        "1 1; 1 1",
        "--transpose",
        "--stride",
        "2",
    ],
    "transposed_demo_summary": [
        "--demo",
        "transposed",
        "--padding",
        "1",
        "--output-padding",
        "1",
        "--summary",
    ],
    "stride3_summary": ["--demo", "stride", "--stride", "3", "--summary"],
    "depthwise_flip_reflect": [
        "-i",
        "1 2 3; 4 5 6; 7 8 9 | 0 0 0; 1 1 1; 0 0 0",
        "-k",
        "1 0; 0 -1",
        "--padding",
        "same",
        "--border",
        "reflect",
        "--flip",
        "--bias",
        "0.5",
        "--only",
        "2,2,1",
    ],
}


@pytest.mark.parametrize("name", sorted(SNAPSHOT_CASES))
def test_plain_text_snapshot(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setattr(render.console, "width", 80)
    result = CliRunner().invoke(
        app, ["trace", *SNAPSHOT_CASES[name]], env={**ENV, "COLUMNS": "80"}
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert max(len(line) for line in out.splitlines()) <= 80
    path = SNAPSHOTS / f"trace_{name}.txt"
    if UPDATE:
        path.write_text(out, encoding="utf-8")
    assert out == path.read_text(encoding="utf-8"), (
        f"{path} differs; see the test's comment"
    )


def test_gif_has_one_frame_per_step(runner: CliRunner, tmp_path: Path) -> None:
    from PIL import Image

    target = tmp_path / "steps.gif"
    out = run(runner, "--demo", "stride", "--gif", str(target), "--summary")
    assert f"animation of 9 steps: {target}" in out
    with Image.open(target) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == 9
    assert [p.name for p in tmp_path.iterdir()] == ["steps.gif"]


def test_gif_with_json_keeps_stdout_json(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "seed.gif"
    doc = json.loads(run(runner, "--demo", "seed", "--gif", str(target), "--json"))
    assert doc["output"] == [[[-8.0]]]
    assert target.is_file()


def test_gif_bad_name_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    err = fails(runner, "--demo", "seed", "--gif", str(tmp_path / "steps.png"))
    assert "--gif writes a GIF; give a name ending in .gif" in err
    assert list(tmp_path.iterdir()) == []
