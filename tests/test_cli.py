"""The command line as a user drives it: CliRunner and a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from convcli.cli import app
from convcli.kernels import GENERATORS

ENV = {"COLUMNS": "160", "NO_COLOR": "1", "TERM": "dumb"}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_kernels_lists_the_catalogue(runner: CliRunner) -> None:
    result = runner.invoke(app, ["kernels"], env=ENV)
    assert result.exit_code == 0, result.output
    for name in [*GENERATORS, "sobel", "laplacian", "emboss"]:
        assert f" {name} " in result.output
    assert "separable" in result.output
    assert "sigma=1" in result.output  # gaussian's parameters


def test_kernels_json_lists_every_entry(runner: CliRunner) -> None:
    result = runner.invoke(app, ["kernels", "--json"], env=ENV)
    assert result.exit_code == 0, result.output
    entries = {e["name"]: e for e in json.loads(result.stdout)}
    assert set(GENERATORS) <= set(entries)
    assert entries["gaussian"]["separable"] is True
    assert entries["gaussian"]["sum"] == pytest.approx(1.0)
    assert entries["gaussian"]["parameters"] == {"sigma": 1.0, "size": 0}
    assert entries["sobel"]["shape"] == [2, 1, 3, 3]


def test_kernels_shows_one_kernel_with_signs(runner: CliRunner) -> None:
    result = runner.invoke(app, ["kernels", "sobel_x"], env=ENV)
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines()[1:4]]
    assert rows == [["-1", "0", "+1"], ["-2", "0", "+2"], ["-1", "0", "+1"]]
    assert "separable" in result.output
    assert "yes" in result.output


def test_kernels_shows_a_parametric_kernel_and_an_inline_matrix(
    runner: CliRunner,
) -> None:
    result = runner.invoke(app, ["kernels", "box:size=2"], env=ENV)
    assert result.exit_code == 0, result.output
    assert result.output.count("+0.25") == 4
    inline = runner.invoke(app, ["kernels", "0,-1,0;-1,5,-1;0,-1,0"], env=ENV)
    assert inline.exit_code == 0, inline.output
    assert "+5" in inline.output


def test_kernels_json_of_one_kernel_round_trips(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(app, ["kernels", "--json", "sobel"], env=ENV)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["combine"] == "magnitude"
    assert [f["name"] for f in doc["filters"]] == ["gx", "gy"]
    np.testing.assert_array_equal(
        doc["filters"][0]["weights"], [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    )
    (tmp_path / "copy.json").write_text(result.stdout, encoding="utf-8")
    again = runner.invoke(
        app, ["kernels", "--json", str(tmp_path / "copy.json")], env=ENV
    )
    assert json.loads(again.stdout)["filters"] == doc["filters"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["kernels", "sobl"], "Error: unknown kernel 'sobl'; did you mean sobel"),
        (
            ["kernels", "gaussian:sigma=-1"],
            "Error: gaussian:sigma=-1: sigma must be > 0; got -1",
        ),
        (
            ["kernels", "1,2;3"],
            "Error: inline kernel '1,2;3': row 2 has 1 values, expected 2",
        ),
    ],
)
def test_kernels_bad_input_exits_2_with_one_line(
    runner: CliRunner, args: list[str], message: str
) -> None:
    result = runner.invoke(app, args, env=ENV)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_malformed_kernel_file_names_the_line(
    runner: CliRunner, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("1 2 3\n4 5 6\n7 8\n", encoding="utf-8")
    result = runner.invoke(app, ["kernels", str(bad)], env=ENV)
    assert result.exit_code == 2, result.output
    assert f"Error: {bad}:3: row has 2 values, expected 3" in result.output


def test_unknown_option_is_a_plain_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(app, ["kernels", "--bogus"], env=ENV)
    assert result.exit_code == 2
    assert "No such option: --bogus" in result.output
    assert "╭" not in result.output  # no boxed panel


def test_version(runner: CliRunner) -> None:
    from convcli import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"convcli {__version__}"


def test_kernels_in_a_subprocess_with_debug_traceback(tmp_path: Path) -> None:
    env = {**os.environ, **ENV}
    ok = subprocess.run(
        [sys.executable, "-m", "convcli", "kernels", "laplacian"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "-4" in ok.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "convcli", "kernels", "nosuchkernel"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("Error: unknown kernel 'nosuchkernel'")
    assert bad.stdout == ""
    debug = subprocess.run(
        [sys.executable, "-m", "convcli", "--debug", "kernels", "nosuchkernel"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert debug.returncode != 0
    assert "Traceback" in debug.stderr
    assert "KernelError" in debug.stderr
