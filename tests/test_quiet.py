"""`-q` and the one-line-per-output table, through real processes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hostile import decodes, run_convcli, write_image
from PIL import Image


def _images(folder: Path, n: int = 2) -> list[Path]:
    return [write_image(folder / f"img{i}.png", seed=i) for i in range(n)]


def test_quiet_apply_prints_nothing_on_success(tmp_path: Path) -> None:
    _images(tmp_path)
    run = run_convcli(
        [
            "apply",
            "img0.png",
            "img1.png",
            "-k",
            "sobel",
            "-k",
            "blur",
            "-o",
            "out/",
            "-q",
        ],
        cwd=tmp_path,
    ).expect(0)
    assert run.out == ""
    assert run.err == ""
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == [
        "img0.blur.png",
        "img0.sobel.png",
        "img1.blur.png",
        "img1.sobel.png",
    ]
    assert all(decodes(tmp_path / "out" / name) for name in written)


def test_quiet_apply_still_says_what_failed(tmp_path: Path) -> None:
    _images(tmp_path)
    good = (tmp_path / "img1.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(good[: len(good) // 2])  # a truncated PNG
    run = run_convcli(
        ["apply", "img0.png", "cut.png", "-k", "sobel", "-o", "out/", "-q"],
        cwd=tmp_path,
    ).expect(1, error="cut.png")
    assert run.out == ""
    assert [line for line in run.err.splitlines() if line] == [
        line for line in run.err.splitlines() if line.startswith("Error:")
    ]
    assert (tmp_path / "out" / "img0.sobel.png").is_file()


def test_quiet_batch_prints_nothing_on_success_and_errors_only(tmp_path: Path) -> None:
    _images(tmp_path / "in")
    run = run_convcli(
        ["batch", "in", "-k", "sobel", "-o", "out", "-q"], cwd=tmp_path
    ).expect(0)
    assert (run.out, run.err) == ("", "")
    assert len(list((tmp_path / "out").iterdir())) == 2
    (tmp_path / "in" / "bad.png").write_bytes(b"not a png at all")
    run = run_convcli(
        ["batch", "in", "-k", "blur", "-o", "out2", "-q"], cwd=tmp_path
    ).expect(1, error="bad.png")
    assert run.out == ""
    assert len(list((tmp_path / "out2").iterdir())) == 2


def test_many_outputs_give_one_line_each(tmp_path: Path) -> None:
    _images(tmp_path, 3)
    args = ["apply", "img0.png", "img1.png", "img2.png", "-k", "sobel", "-k", "blur"]
    run = run_convcli([*args, "-o", "out/"], cwd=tmp_path).expect(0)
    assert "convcli apply: 6 outputs" in run.out
    rows = [line for line in run.out.splitlines() if ".png" in line]
    assert len(rows) == 6
    for i in range(3):
        for kernel in ("sobel", "blur"):
            row = next(r for r in rows if f"out/img{i}.{kernel}.png" in r)
            assert f"img{i}.png" in row
            assert "24 x 32 x 3" in row
    assert len(run.out.splitlines()) < 15  # six full tables would be about 80 lines
    # the full tables stay for one pair, and for many under --explain
    one = run_convcli(["apply", "img0.png", "-k", "sobel", "-o", "one/"], cwd=tmp_path)
    assert "(H' x W' x C)" in one.expect(0).out
    full = run_convcli([*args, "-o", "full/", "--explain"], cwd=tmp_path).expect(0)
    assert full.out.count("(H' x W' x C)") == 6
    # the quiet and the verbose runs wrote the same pixels
    a = np.asarray(Image.open(tmp_path / "out" / "img2.blur.png"))
    b = np.asarray(Image.open(tmp_path / "full" / "img2.blur.png"))
    np.testing.assert_array_equal(a, b)


def test_messages_print_colon_words_as_written(tmp_path: Path) -> None:
    """rich would turn ':abc:' into an emoji; paths and specs must stay as typed."""
    run = run_convcli(["kernels", "Blur:abc:"], cwd=tmp_path).expect(2)
    assert "Blur:abc:" in run.err
    write_image(tmp_path / ":smile:.png")
    run = run_convcli(["apply", ":smile:.png", "-k", "blur"], cwd=tmp_path).expect(0)
    assert ":smile:.blur.png" in run.out
