"""Output names (issue 17, item 8): option tags, --name TEMPLATE, --format EXT.

Through real processes (`run_convcli`), with the units of `convcli.naming`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hostile import assert_files, decodes, run_convcli, snapshot, write_image

from convcli.errors import ConvcliError
from convcli.kernel_value import Kernel
from convcli.kernels import load_kernel
from convcli.naming import check_template, fill, fit, kernel_tag, option_tags
from convcli.plan import ApplyOptions, output_path

JPEG = b"\xff\xd8\xff"
PNG = b"\x89PNG"


@pytest.fixture
def a_png(tmp_path: Path) -> Path:
    return write_image(tmp_path / "a.png")


# ---------------------------------------------------------------------------
# Default names: a tag per option that is not the default


def test_issue_17_runs_with_different_options_do_not_overwrite_each_other(
    tmp_path: Path, a_png: Path
) -> None:
    runs = {
        "a.sobel.png": [],  # every option the default: the name of old
        "a.sobel.s2.png": ["--stride", "2"],
        "a.sobel.d2.png": ["--dilation", "2"],
        "a.sobel.edge.png": ["--border", "edge"],
        "a.sobel.constant5.png": ["--border", "constant", "--cval", "5"],
        "a.sobel.like-opencv.png": ["--like", "opencv"],
        "a.sobel.flip.png": ["--flip"],
        "a.sobel.valid.png": ["--padding", "valid"],
        "a.sobel.s2x3.p1.png": ["--stride", "2,3", "--padding", "1"],
    }
    before = snapshot(tmp_path)
    for args in runs.values():
        run_convcli(["apply", "a.png", "-k", "sobel", *args], cwd=tmp_path).expect(0)
    assert_files(tmp_path, before, written=set(runs))


def test_a_range_that_is_not_the_kernels_own_is_a_tag() -> None:
    k = Kernel("k", np.eye(3), range="clip")
    assert option_tags(k, ApplyOptions(range="clip")) == []
    assert option_tags(k, ApplyOptions(range="abs")) == ["abs"]
    # --like sets border, flip, padding and range: its own tag says it all
    assert option_tags(k, ApplyOptions(like="scipy", border="symmetric")) == [
        "like-scipy"
    ]


def test_float_output_keeps_its_name_gray_is_implied(tmp_path: Path) -> None:
    k = load_kernel("sobel")
    options = ApplyOptions(float_output=True, channels="gray")
    assert output_path(Path("a.png"), k, None, suffix=".tif", options=options) == (
        Path("a.sobel.tif")
    )
    assert option_tags(k, ApplyOptions(channels="gray")) == ["gray"]


def test_issue_17_a_kernel_file_is_named_after_its_file(
    tmp_path: Path, a_png: Path
) -> None:
    (tmp_path / "my_edges.txt").write_text("name: foo\n1 0\n0 -1\n", encoding="utf-8")
    before = snapshot(tmp_path)
    run_convcli(["apply", "a.png", "-k", "my_edges.txt"], cwd=tmp_path).expect(0)
    assert_files(tmp_path, before, written={"a.my_edges.png"})
    # the catalogue's files keep their names (their stems)
    assert kernel_tag(load_kernel("sobel")) == "sobel"
    assert kernel_tag(load_kernel("gaussian:sigma=3")) == "gaussian-sigma3"


# ---------------------------------------------------------------------------
# --name TEMPLATE


def test_issue_17_name_template_gives_what_it_says(tmp_path: Path, a_png: Path) -> None:
    before = snapshot(tmp_path)
    run_convcli(
        ["apply", "a.png", "-k", "gaussian:sigma=3", "--name", "{stem}_{kernel}.{ext}"],
        cwd=tmp_path,
    ).expect(0)
    run_convcli(
        ["apply", "a.png", "-k", "sobel", "--stride", "2", "-o", "o/", "--name",
         "{kernel}.{params}.{ext}"],
        cwd=tmp_path,
    ).expect(0)  # fmt: skip
    assert_files(tmp_path, before, written={"a_gaussian-sigma3.png", "o/sobel.s2.png"})


def test_name_n_counts_outputs_and_filter_names_a_banks_maps(
    tmp_path: Path, a_png: Path
) -> None:
    write_image(tmp_path / "b.png", seed=1)
    (tmp_path / "pair.txt").write_text("--- x\n1 0\n--- y\n0 1\n", encoding="utf-8")
    before = snapshot(tmp_path)
    run_convcli(
        ["apply", "a.png", "b.png", "-k", "sobel", "-k", "box", "-o", "o/", "--name",
         "{n:02}.{ext}"],
        cwd=tmp_path,
    ).expect(0)  # fmt: skip
    run_convcli(
        ["apply", "a.png", "-k", "pair.txt", "-o", "p/", "--name",
         "{stem}-{filter}.{ext}"],
        cwd=tmp_path,
    ).expect(0)  # fmt: skip
    assert_files(
        tmp_path,
        before,
        written={
            "o/01.png",
            "o/02.png",
            "o/03.png",
            "o/04.png",
            "p/a-x.png",
            "p/a-y.png",
        },
    )


def test_issue_17_a_template_that_makes_two_outputs_one_file_is_refused(
    tmp_path: Path, a_png: Path
) -> None:
    write_image(tmp_path / "b.png", seed=1)
    before = snapshot(tmp_path)
    r = run_convcli(
        [
            "apply",
            "a.png",
            "b.png",
            "-k",
            "sobel",
            "-o",
            "o/",
            "--name",
            "{kernel}.{ext}",
        ],
        cwd=tmp_path,
    )
    r.expect(2, error="o/sobel.png: a.png x sobel and b.png x sobel would both write")
    assert "--name '{kernel}.{ext}' gives them one name" in r.err
    (tmp_path / "in").mkdir()
    write_image(tmp_path / "in" / "c.png")
    write_image(tmp_path / "in" / "d.png", seed=1)
    before = snapshot(tmp_path)
    r = run_convcli(
        ["batch", "in", "-k", "sobel", "-o", "out", "--name", "x.{ext}"], cwd=tmp_path
    )
    r.expect(2, error="the output of both in/c.png and in/d.png")
    assert_files(tmp_path, before, written=set())
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("template", "error"),
    [
        ("{foo}.{ext}", "unknown field {foo}; the fields are {stem}, {kernel}"),
        ("{}.{ext}", "unknown field {}"),
        ("{stem!r}.{ext}", "write a field as {stem} or {stem:spec}"),
        ("sub/{stem}.{ext}", "a template names a file, not a path (no /)"),
        ("{stem}.{ext", "the fields are"),
        ("{stem}", "which has no image ending"),
        ("{stem}.jpg", "but --format is png"),
    ],
)
def test_a_bad_template_is_one_line_exit_2_nothing_written(
    tmp_path: Path, a_png: Path, template: str, error: str
) -> None:
    before = snapshot(tmp_path)
    args = ["apply", "a.png", "-k", "sobel", "-o", "o/", "--name", template]
    if template == "{stem}.jpg":
        args += ["--format", "png"]
    run_convcli(args, cwd=tmp_path).expect(2, error=error)
    assert_files(tmp_path, before, written=set())


def test_name_with_o_naming_one_file_is_refused(tmp_path: Path, a_png: Path) -> None:
    before = snapshot(tmp_path)
    r = run_convcli(
        ["apply", "a.png", "-k", "sobel", "-o", "x.png", "--name", "{stem}.{ext}"],
        cwd=tmp_path,
    )
    r.expect(2, error="-o x.png names the one output itself")
    assert_files(tmp_path, before, written=set())


def test_check_template_and_fill() -> None:
    assert check_template("{n:03}_{stem}.{ext}") == "{n:03}_{stem}.{ext}"
    with pytest.raises(ConvcliError, match=r"unknown field \{stem\.upper\}"):
        check_template("{stem.upper}.{ext}")
    with pytest.raises(ConvcliError, match="names nothing"):
        check_template("")
    values = {"stem": "a", "kernel": "sobel", "filter": "", "params": "", "ext": "png"}
    # an empty field takes a separator along
    assert fill("{stem}.{kernel}.{filter}.{params}.{ext}", values) == "a.sobel.png"
    assert fill("{stem}_{params}_{kernel}.{ext}", values) == "a_sobel.png"
    assert fill("{kernel}-{params}", values) == "sobel"
    assert fill("{params}-{kernel}.{ext}", values) == "sobel.png"


def test_a_long_template_name_is_cut_to_fit() -> None:
    name = fit("é" * 200 + ".png", 255)
    raw = os.fsencode(name)
    assert len(raw) <= 255
    raw.decode("utf-8")  # whole characters only
    assert name.endswith(".png")
    assert "~" in name
    options = ApplyOptions(name="{stem}{stem}.{ext}")
    path = output_path(
        Path("x" * 200 + ".png"), load_kernel("sobel"), None, options=options
    )
    assert len(os.fsencode(path.name)) <= 255


# ---------------------------------------------------------------------------
# --format EXT


def test_issue_17_format_jpeg_writes_jpeg_in_apply_and_batch(
    tmp_path: Path, a_png: Path
) -> None:
    (tmp_path / "in").mkdir()
    write_image(tmp_path / "in" / "c.png")
    before = snapshot(tmp_path)
    run_convcli(
        ["apply", "a.png", "-k", "sobel", "--format", "jpeg"], cwd=tmp_path
    ).expect(0)
    run_convcli(
        ["batch", "in", "-k", "sobel", "-o", "out", "--format", "JPG"], cwd=tmp_path
    ).expect(0)
    assert_files(tmp_path, before, written={"a.sobel.jpeg", "out/c.sobel.jpg"})
    for path in ("a.sobel.jpeg", "out/c.sobel.jpg"):
        assert (tmp_path / path).read_bytes()[:3] == JPEG
        assert decodes(tmp_path / path)


def test_issue_17_format_that_contradicts_o_is_refused(
    tmp_path: Path, a_png: Path
) -> None:
    before = snapshot(tmp_path)
    r = run_convcli(
        ["apply", "a.png", "-k", "sobel", "-o", "x.png", "--format", "jpeg"],
        cwd=tmp_path,
    )
    r.expect(2, error="-o x.png is a png file but --format is jpeg")
    r = run_convcli(["apply", "a.png", "-k", "sobel", "--format", "psd"], cwd=tmp_path)
    r.expect(2, error="--format psd: not an image format")
    r = run_convcli(
        ["apply", "a.png", "-k", "sobel", "--float", "--channels", "gray", "--format",
         "png"],
        cwd=tmp_path,
    )  # fmt: skip
    r.expect(2, error="--float writes TIFF")
    assert_files(tmp_path, before, written=set())
    # an -o whose ending agrees is fine (jpg and jpeg are one format)
    run_convcli(
        ["apply", "a.png", "-k", "sobel", "-o", "x.jpg", "--format", "jpeg"],
        cwd=tmp_path,
    ).expect(0)
    assert (tmp_path / "x.jpg").read_bytes()[:3] == JPEG


def test_format_with_stdout_still_chooses_its_format(
    tmp_path: Path, a_png: Path
) -> None:
    def stdout(*extra: str) -> bytes:
        cmd = [sys.executable, "-m", "convcli", "apply", "a.png", "-k", "sobel"]
        proc = subprocess.run(
            [*cmd, "-o", "-", *extra], cwd=tmp_path, capture_output=True, check=False
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert stdout()[:4] == PNG  # PNG by default, whatever the input
    assert stdout("--format", "jpeg")[:3] == JPEG


def test_a_template_onto_the_input_is_refused(tmp_path: Path, a_png: Path) -> None:
    before = snapshot(tmp_path)
    r = run_convcli(
        ["apply", "a.png", "-k", "sobel", "--name", "{stem}.{ext}"], cwd=tmp_path
    )
    r.expect(2, error="a.png: the output of a.png x sobel would overwrite the input")
    assert "choose another -o or --name" in r.err
    assert_files(tmp_path, before, written=set())


def test_a_kernel_file_is_named_from_its_path_not_the_disk(tmp_path: Path) -> None:
    # batch on a Dask cluster plans on one machine and writes on another
    k = Kernel("foo", np.eye(3), source="elsewhere/my_edges.txt")
    assert kernel_tag(k) == "my_edges"
    assert kernel_tag(Kernel("inline-3163ff", np.eye(3), source="inline")) == (
        "inline-3163ff"
    )
