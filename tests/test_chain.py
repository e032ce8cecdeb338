"""``--chain`` (issue 17, item 4): the kernels in order on each image, one output.

The reference is two `convcli.conv2d` calls in a row with apply's geometry
(padding same, border reflect), float32 between them, then the last kernel's
range mapping; the decoded output is compared within one level.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from convcli import conv2d
from convcli.cli import app
from convcli.kernels import load_kernel
from convcli.picture import to_pixels

ENV = {"COLUMNS": "120", "NO_COLOR": "1", "TERM": "dumb"}


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _apply(runner: CliRunner, *args: str | Path) -> Any:
    return runner.invoke(app, ["apply", *map(str, args)], env=ENV)


def _image(path: Path, shape: tuple[int, ...] = (23, 31, 3)) -> np.ndarray:
    x = np.random.default_rng(1717).integers(0, 256, shape, dtype=np.uint8)
    Image.fromarray(x).save(path)
    return x


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


def _step(x: np.ndarray, spec: str, stride: int) -> tuple[np.ndarray, Any]:
    """One kernel as apply runs it: 2-D, or a bank's 2-D filters combined."""
    kernel = load_kernel(spec)
    kw: dict[str, Any] = {"stride": stride, "padding": "same", "border": "reflect"}
    if not kernel.is_bank:
        return conv2d(x, kernel.weights, **kw).astype(np.float32), kernel
    assert kernel.combine == "magnitude"
    maps = [conv2d(x, w[0], **kw).astype(np.float64) for w in kernel.weights]
    return np.sqrt(sum(m**2 for m in maps)).astype(np.float32), kernel


def _chained(x: np.ndarray, specs: list[str], stride: int = 1) -> np.ndarray:
    values = x.astype(np.float32)
    for spec in specs:
        values, kernel = _step(values, spec, stride)
    gain = kernel.gains(255.0)[0]
    return to_pixels(values, kernel.range, 255, np.dtype(np.uint8), gain=gain)


@pytest.mark.parametrize(
    ("specs", "stride", "name"),
    [
        (["box", "blur"], 1, "a.box-size3+blur.png"),
        (["blur", "sobel"], 1, "a.blur+sobel.png"),
        (["blur", "sobel"], 2, "a.blur+sobel.s2.png"),
    ],
)
def test_chain_is_conv2d_in_a_row(
    runner: CliRunner, tmp_path: Path, specs: list[str], stride: int, name: str
) -> None:
    x = _image(tmp_path / "a.png")
    args: list[str | Path] = [tmp_path / "a.png", "--chain", "--stride", str(stride)]
    for spec in specs:
        args += ["-k", spec]
    result = _apply(runner, *args)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a.png", name])
    got = _read(tmp_path / name).astype(int)
    want = _chained(x, specs, stride).astype(int)
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1
    if stride == 2:  # two steps of stride 2 quarter each side
        assert got.shape[:2] == (6, 8)
        assert "step 1" in result.output
        assert "6 x 8 x 3" in result.output


def test_range_is_mapped_once_at_the_end(runner: CliRunner, tmp_path: Path) -> None:
    x = _image(tmp_path / "a.png")
    args = [tmp_path / "a.png", "-k", "blur", "-k", "sobel", "--chain"]
    result = _apply(runner, *args, "--range", "rescale")
    assert result.exit_code == 0, result.output
    values = x.astype(np.float32)
    for spec in ("blur", "sobel"):
        values, _ = _step(values, spec, 1)
    want = to_pixels(values, "rescale", 255, np.dtype(np.uint8)).astype(int)
    got = _read(tmp_path / "a.blur+sobel.rescale.png").astype(int)
    assert np.abs(got - want).max() <= 1


def test_names_follow_the_chain_and_its_options(
    runner: CliRunner, tmp_path: Path
) -> None:
    _image(tmp_path / "a.png")
    a = tmp_path / "a.png"
    assert _apply(runner, a, "-k", "blur", "-k", "sobel", "--chain").exit_code == 0
    assert _apply(runner, a, "-k", "sobel", "-k", "blur", "--chain").exit_code == 0
    result = _apply(
        runner,
        a,
        "-k",
        "gaussian:sigma=2",
        "-k",
        "sobel",
        "--chain",
        "--border",
        "edge",
    )
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.blur+sobel.png",
        "a.gaussian-sigma2+sobel.edge.png",
        "a.png",
        "a.sobel+blur.png",
    ]


def test_one_kernel_chain_is_no_chain(runner: CliRunner, tmp_path: Path) -> None:
    _image(tmp_path / "a.png")
    result = _apply(runner, tmp_path / "a.png", "-k", "sobel", "--chain")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a.sobel.png"]
    assert "step 1" not in result.output


def _refused(result: Any, tmp_path: Path, *words: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    for word in words:
        assert word in lines[0]
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_stacked_bank_only_last(runner: CliRunner, tmp_path: Path) -> None:
    _image(tmp_path / "a.png")
    a = tmp_path / "a.png"
    result = _apply(runner, a, "-k", "frei_chen", "-k", "blur", "--chain")
    _refused(result, tmp_path, "frei_chen", "last step")
    result = _apply(runner, a, "-k", "blur", "-k", "frei_chen", "--chain")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tmp_path.iterdir() if p.name != "a.png")
    assert len(names) == 9
    assert all(n.startswith("a.blur+frei_chen.") for n in names)


def test_chain_that_shrinks_to_nothing_is_refused(
    runner: CliRunner, tmp_path: Path
) -> None:
    _image(tmp_path / "a.png", (9, 9, 3))
    args = ["-k", "box:size=5", "-k", "box:size=5", "-k", "box:size=5"]
    result = _apply(runner, tmp_path / "a.png", *args, "--chain", "--padding", "valid")
    _refused(result, tmp_path, "step 3", "larger than the padded input")


def test_alpha_is_carried_when_the_size_stays(
    runner: CliRunner, tmp_path: Path
) -> None:
    rgba = np.random.default_rng(3).integers(0, 256, (12, 14, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "a.png")
    a = tmp_path / "a.png"
    result = _apply(runner, a, "-k", "blur", "-k", "sobel", "--chain", "--stride", "2")
    _refused(result, tmp_path, "step 1 (blur)", "alpha")
    result = _apply(runner, a, "-k", "blur", "-k", "sobel", "--chain")
    assert result.exit_code == 0, result.output
    got = _read(tmp_path / "a.blur+sobel.png")
    assert got.shape == (12, 14, 4)
    assert np.array_equal(got[:, :, 3], rgba[:, :, 3])


def test_every_frame_goes_through_the_chain(runner: CliRunner, tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    frames = [rng.integers(0, 256, (10, 12, 3), dtype=np.uint8) for _ in range(3)]
    pictures = [Image.fromarray(f) for f in frames]
    pictures[0].save(tmp_path / "a.png", save_all=True, append_images=pictures[1:])
    args = ["-k", "box", "-k", "box", "--chain"]
    result = _apply(runner, tmp_path / "a.png", *args)
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "a.box-size3+box-size3.png") as img:
        assert img.n_frames == 3
        for i, frame in enumerate(frames):
            img.seek(i)
            got = np.asarray(img.convert("RGB")).astype(int)
            assert np.abs(got - _chained(frame, ["box", "box"]).astype(int)).max() <= 1


def test_json_lists_the_steps(runner: CliRunner, tmp_path: Path) -> None:
    _image(tmp_path / "a.png", (40, 60, 3))
    args = ["-k", "gaussian:sigma=2", "-k", "sobel", "--chain", "--stride", "2"]
    result = _apply(runner, tmp_path / "a.png", *args, "--json")
    assert result.exit_code == 0, result.output
    (output,) = json.loads(result.stdout)["inputs"][0]["outputs"]
    assert output["path"].endswith("a.gaussian-sigma2+sobel.s2.png")
    assert output["shape"] == [10, 15, 3]
    assert output["chain"] == [
        {"kernel": "gaussian:sigma=2", "shape": [20, 30, 3]},
        {"kernel": "sobel", "shape": [10, 15, 3]},
    ]


def test_like_is_refused_with_a_chain(runner: CliRunner, tmp_path: Path) -> None:
    _image(tmp_path / "a.png")
    args = ["-k", "blur", "-k", "sobel", "--chain", "--like", "opencv"]
    _refused(_apply(runner, tmp_path / "a.png", *args), tmp_path, "--like")


def test_batch_chain_writes_one_output_per_image(
    runner: CliRunner, tmp_path: Path
) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    xs = {n: _image(src / f"{n}.png") for n in ("a", "b")}
    args = ["batch", str(src), "-o", str(out), "-k", "blur", "-k", "sobel", "--chain"]
    result = runner.invoke(app, [*args, "-q"], env=ENV)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert sorted(p.name for p in out.iterdir()) == [
        "a.blur+sobel.png",
        "b.blur+sobel.png",
    ]
    for n, x in xs.items():
        got = _read(out / f"{n}.blur+sobel.png").astype(int)
        assert np.abs(got - _chained(x, ["blur", "sobel"]).astype(int)).max() <= 1
    result = runner.invoke(app, [*args, "--json"], env=ENV)
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)["items"]
    assert sorted(len(i["outputs"]) for i in items) == [1, 1]
