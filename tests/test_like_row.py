"""apply's tables and --json say what --like set (issue 17, item 9)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from convcli.kernels import load_kernel
from convcli.names import LIKE_NAMES
from convcli.pipeline import ApplyOptions, like
from convcli.render.tables import LIKE_SET, like_text


@pytest.mark.parametrize("library", LIKE_NAMES)
def test_the_like_row_says_what_like_sets(library: str) -> None:
    text = LIKE_SET[library]
    even = load_kernel("2x2: 1,2 3,4")  # only an even kernel shows the anchor
    _, options = like(library, even, ApplyOptions())
    assert f"border {options.border}" in text
    assert text.endswith(f", {options.range}")
    if options.flip:
        assert text.startswith("flip")
    elif library != "pillow":  # Pillow flips the rows alone, by the weights
        assert text.startswith("no flip")
    larger_first = options.padding == ((1, 0), (1, 0))
    assert options.padding == "same" or larger_first
    anchor = text.split(", ")[2]
    flipped = options.flip  # the anchor of the kernel as written, before the turn
    assert ("k//2" if larger_first != flipped else "(k-1)//2") in anchor
    assert ("(k-1)//2" in anchor) == (larger_first == flipped)


def test_like_text_names_the_library() -> None:
    assert like_text("opencv") == (
        "opencv: no flip, border reflect (BORDER_REFLECT_101), anchor k//2, clip"
    )


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(
        [sys.executable, "-m", "convcli", "apply", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.fixture
def image(tmp_path: Path) -> Path:
    rng = np.random.default_rng(17)
    Image.fromarray(rng.integers(0, 256, (12, 16), dtype=np.uint8)).save(
        tmp_path / "a.png"
    )
    return tmp_path / "a.png"


def test_issue_17_apply_like_opencv_shows_what_it_set(image: Path) -> None:
    run = _run(image.parent, "a.png", "-k", "sobel", "-o", "out/", "--like", "opencv")
    assert run.returncode == 0, run.stderr
    rows = [line for line in run.stdout.splitlines() if "│ like" in line]
    assert len(rows) == 1, run.stdout
    assert (
        "opencv: no flip, border reflect (BORDER_REFLECT_101), anchor k//2, clip"
        in rows[0]
    )
    plain = _run(image.parent, "a.png", "-k", "sobel", "-o", "plain/")
    assert plain.returncode == 0, plain.stderr
    assert "│ like" not in plain.stdout
    assert "│ border" in plain.stdout


def test_many_outputs_name_the_like_library_in_the_title(image: Path) -> None:
    args = ["a.png", "-k", "sobel", "-k", "blur", "-o", "out/", "--like", "scipy"]
    run = _run(image.parent, *args)
    assert run.returncode == 0, run.stderr
    assert (
        run.stdout.splitlines()[0].strip() == "convcli apply: 2 outputs, --like scipy"
    )


def test_apply_json_has_like(image: Path) -> None:
    args = ["a.png", "-k", "sobel", "-k", "blur", "-o", "out/", "--json"]
    run = _run(image.parent, *args, "--like", "torch")
    assert run.returncode == 0, run.stderr
    outputs = json.loads(run.stdout)["inputs"][0]["outputs"]
    assert [o["like"] for o in outputs] == ["torch", "torch"]
    plain = _run(image.parent, *args[:-2], "plain/", "--json")
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout)["inputs"][0]["outputs"][0]["like"] is None
