"""Issue 12, `convcli apply`: its output plan, sizes and memory, against a hostile user.

Every case runs a real ``python -m convcli`` process (tests/hostile.py) and asserts
the exit code, one ``Error:`` line naming the culprit, no traceback or warning, no
``.tmp`` left, every input unchanged, and exactly the files written.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hostile import (
    Run,
    assert_files,
    decodes,
    run_convcli,
    snapshot,
    start_convcli,
    wait_for,
    write_image,
)
from PIL import Image

ROOT_USER = os.geteuid() == 0
BOX_CONSTANT = ["apply", "a.png", "-k", "box", "--border", "constant"]
FREI_CHEN_MONTAGE = [
    "apply",
    "a.png",
    "-k",
    "frei_chen",
    "-o",
    "o/",
    "--montage",
    "m.png",
]


@pytest.fixture
def a_png(tmp_path: Path) -> Path:
    return write_image(tmp_path / "a.png", (48, 64, 3))


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        return img.size


# ---------------------------------------------------------------------------
# The output plan: no input touched, no two outputs on one file


def test_issue_12_case_1_montage_onto_the_input_is_refused(
    tmp_path: Path, a_png: Path
) -> None:
    before = snapshot(tmp_path)
    r = run_convcli(
        ["apply", "a.png", "-k", "sobel", "--montage", "a.png"], cwd=tmp_path
    )
    r.expect(2, error="would overwrite the input a.png")
    assert_files(tmp_path, before, written=set())


def test_issue_12_case_2_an_output_that_is_a_later_input_is_refused(
    tmp_path: Path, a_png: Path
) -> None:
    write_image(tmp_path / "a.sobel.png", seed=5)
    before = snapshot(tmp_path)
    r = run_convcli(["apply", "a.png", "a.sobel.png", "-k", "sobel"], cwd=tmp_path)
    r.expect(2, error="a.sobel.png: the output of a.png x sobel would overwrite")
    assert_files(tmp_path, before, written=set())


def test_issue_12_case_5_two_inputs_of_one_name_into_one_folder_are_refused(
    tmp_path: Path,
) -> None:
    write_image(tmp_path / "d1" / "x.png", seed=1)
    write_image(tmp_path / "d2" / "x.png", seed=2)
    before = snapshot(tmp_path)
    r = run_convcli(
        ["apply", "d1/x.png", "d2/x.png", "-k", "sobel", "-o", "out/"], cwd=tmp_path
    )
    r.expect(2, error="out/x.sobel.png: d1/x.png x sobel and d2/x.png x sobel")
    assert_files(tmp_path, before, written=set())
    assert not (tmp_path / "out").exists()  # not even the folder


def test_issue_12_case_6_bank_filters_of_one_name_get_numbered(
    tmp_path: Path, a_png: Path
) -> None:
    bank = tmp_path / "dup.txt"
    bank.write_text(
        "--- a\n1 0\n0 -1\n--- a\n0 1\n-1 0\n--- a b\n1 1\n1 1\n--- a/b\n1 0\n0 1\n",
        encoding="utf-8",
    )
    before = snapshot(tmp_path)
    r = run_convcli(
        ["apply", "a.png", "-k", "dup.txt", "-o", "o/", "--json"], cwd=tmp_path
    )
    r.expect(0)
    names = ["a.dup.a.png", "a.dup.a-2.png", "a.dup.a-b.png", "a.dup.a-b-2.png"]
    assert_files(tmp_path, before, written={f"o/{n}" for n in names})
    for name in names:
        assert decodes(tmp_path / "o" / name)
    assert '"filter": "a/b"' in r.out  # the label keeps the filter's own name


def test_issue_12_case_7_a_bad_header_later_on_the_line_writes_nothing(
    tmp_path: Path, a_png: Path
) -> None:
    (tmp_path / "notimage.png").write_text("hello", encoding="utf-8")
    before = snapshot(tmp_path)
    r = run_convcli(
        ["apply", "a.png", "notimage.png", "-k", "sobel", "-o", "o/"], cwd=tmp_path
    )
    r.expect(2, error="notimage.png: not an image")
    assert_files(tmp_path, before, written=set())
    assert not (tmp_path / "o").exists()


def test_issue_12_case_7_truncated_pixels_fail_that_pair_and_the_rest_goes_on(
    tmp_path: Path, a_png: Path
) -> None:
    full = write_image(tmp_path / "whole.png", (200, 300, 3), seed=3).read_bytes()
    (tmp_path / "cut.png").write_bytes(full[: len(full) // 2])  # header fine
    (tmp_path / "whole.png").unlink()
    before = snapshot(tmp_path)
    r = run_convcli(
        ["apply", "cut.png", "a.png", "-k", "sobel", "-o", "o/"], cwd=tmp_path
    )
    r.expect(1, error="cut.png: corrupt or truncated image")
    assert_files(tmp_path, before, written={"o/a.sobel.png"})
    assert decodes(tmp_path / "o" / "a.sobel.png")
    assert "o/a.sobel.png" in r.out  # what was written
    assert "1 of 2 pairs done, 1 failed (cut.png x sobel); 1 outputs written" in r.out


@pytest.mark.parametrize(
    ("out", "culprit"),
    [
        ("/dev/null", "/dev/null: -o must be a folder or an image file"),
        ("/dev/stdout", "/dev/stdout: -o must be a folder or an image file"),
        ("afile", "afile: -o names an existing file without an image ending"),
        ("afile/sub", "afile: not a folder"),
        ("/proc/nope/dir", "/proc/nope/dir"),
        ("/sys/nope/", "/sys"),
        ("out.v2", "out.v2: -o has the ending '.v2', not an image ending"),
        ("d" * 300 + "/", "cannot make this folder: File name too long"),
    ],
)
def test_issue_12_case_8_unusable_outputs_are_one_line_exit_2(
    tmp_path: Path, a_png: Path, out: str, culprit: str
) -> None:
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    before = snapshot(tmp_path)
    r = run_convcli(["apply", "a.png", "-k", "sobel", "-o", out], cwd=tmp_path)
    r.expect(2, error=culprit)
    assert_files(tmp_path, before, written=set())


@pytest.mark.skipif(ROOT_USER, reason="root writes into read-only folders")
def test_issue_12_case_8_a_read_only_folder_is_one_line_exit_2(
    tmp_path: Path, a_png: Path
) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        before = snapshot(tmp_path)
        r = run_convcli(
            ["apply", "a.png", "-k", "sobel", "-o", "ro/sub/"], cwd=tmp_path
        )
        r.expect(2, error="ro: cannot write in this folder")
        assert_files(tmp_path, before, written=set())
    finally:
        ro.chmod(0o755)


def test_issue_12_case_8_a_write_that_fails_late_is_exit_1(tmp_path: Path) -> None:
    # Every check passed; then the disk refuses the bytes (a file-size limit,
    # as a full disk): that pair fails alone, exit 1, no partial file.
    write_image(tmp_path / "a.png", (120, 160, 3))
    write_image(tmp_path / "tiny.png", (2, 2, 3), seed=1)
    before = snapshot(tmp_path)
    r = run_convcli(
        ["apply", "a.png", "tiny.png", "-k", "sobel", "-o", "out/"],
        cwd=tmp_path,
        file_bytes=4096,
    )
    r.expect(1, error="out/a.sobel.png: cannot write")
    assert_files(tmp_path, before, written={"out/tiny.sobel.png"})


def test_issue_12_case_9_a_long_input_name_is_cut_to_fit(tmp_path: Path) -> None:
    from convcli.kernels import load_kernel
    from convcli.pipeline import output_path

    stem = "x" * 250
    write_image(tmp_path / f"{stem}.png")
    before = snapshot(tmp_path)
    r = run_convcli(["apply", f"{stem}.png", "-k", "sobel", "-o", "o/"], cwd=tmp_path)
    r.expect(0)
    name = output_path(Path(f"{stem}.png"), load_kernel("sobel"), None).name
    assert_files(tmp_path, before, written={f"o/{name}"})
    assert len(os.fsencode(name)) <= 255
    assert name.startswith("xxxx")
    assert ".sobel~" in name
    assert name.endswith(".png")
    assert decodes(tmp_path / "o" / name)


def test_issue_12_case_9_a_long_kernel_name_is_cut_to_fit(
    tmp_path: Path, a_png: Path
) -> None:
    # 125 two-byte letters (a kernel file is named after its file): a cut in the
    # middle of one must not leave half of it
    name = "é" * 125
    (tmp_path / f"{name}.txt").write_text("name: k\n1 0\n0 -1\n", encoding="utf-8")
    before = snapshot(tmp_path)
    r = run_convcli(["apply", "a.png", "-k", f"{name}.txt"], cwd=tmp_path)
    r.expect(0)
    (out,) = _new_names(tmp_path, before)
    raw = os.fsencode(Path(out).name)
    assert len(raw) <= 255
    raw.decode("utf-8")  # whole characters only
    assert Path(out).name.startswith("a.éé")
    assert decodes(tmp_path / out)


def _new_names(folder: Path, before: dict[Path, str]) -> list[str]:
    return [str(p) for p in snapshot(folder) if p not in before]


# ---------------------------------------------------------------------------
# Sizes: refused before any work


@pytest.mark.parametrize(
    ("args", "culprit"),
    [
        (["--padding", "100000", "--border", "constant"], "the output would be"),
        (["--dilation", "100000"], "the padded input would be"),
    ],
)
def test_issue_12_case_13_huge_padding_or_dilation_is_refused_at_once(
    tmp_path: Path, a_png: Path, args: list[str], culprit: str
) -> None:
    before = snapshot(tmp_path)
    t0 = time.monotonic()
    r = run_convcli(["apply", "a.png", "-k", "sobel", *args], cwd=tmp_path)
    r.expect(2, error=culprit)
    assert "more than" in r.err
    assert "a.png x sobel" in r.err
    assert time.monotonic() - t0 < 30  # nothing was computed
    assert_files(tmp_path, before, written=set())


@pytest.mark.parametrize(
    ("value", "culprit"),
    [
        ("99999999999999999999", "--dilation must be at most 2147483647"),
        ("1e13", "--dilation must be N or ROWS,COLS"),
        ("2147483647", "the padded input would be"),
        ("1,2147483647", "the padded input would be"),
    ],
)
def test_issue_12_case_16_absurd_dilation_is_refused_before_any_work(
    tmp_path: Path, a_png: Path, value: str, culprit: str
) -> None:
    before = snapshot(tmp_path)
    r = run_convcli(
        ["apply", "a.png", "-k", "sobel", "--dilation", value, "--method", "fft"],
        cwd=tmp_path,
        timeout=60,
    )
    r.expect(2, error=culprit)
    assert_files(tmp_path, before, written=set())


def test_issue_12_case_17_an_output_over_the_pixel_limit_is_refused(
    tmp_path: Path, a_png: Path
) -> None:
    before = snapshot(tmp_path)
    r = run_convcli(
        ["apply", "a.png", "-k", "sobel", "--padding", "5000", "--border", "constant"],
        cwd=tmp_path,
    )
    r.expect(2, error="the output would be 10046 x 10062 = 101,082,852 pixels")
    assert "limit of 89,478,485" in r.err
    assert "--max-pixels" in r.err
    assert_files(tmp_path, before, written=set())
    # --max-pixels is the limit of inputs and outputs alike: 48 x 64 = 3072 pixels
    r = run_convcli(
        [*BOX_CONSTANT, "--padding", "10", "--max-pixels", "4000"],
        cwd=tmp_path,
    )
    r.expect(2, error="the output would be 66 x 82 = 5,412 pixels")
    r = run_convcli(
        [*BOX_CONSTANT, "--padding", "2", "--max-pixels", "4000"],
        cwd=tmp_path,
    )
    r.expect(0)
    assert _size(tmp_path / "a.box-size3.p2.constant.png") == (66, 50)


def test_issue_12_case_18_a_bank_holds_one_map_at_a_time() -> None:
    """Beside what one 2-D kernel needs, a bank holds one more map: its running result.

    Process peaks on a 4K image are measured by bench/bench_memory.py; here the
    numpy allocations of the filtering alone, once the threads' tile buffers
    exist (a first call makes them).
    """
    from convcli.kernels import load_kernel
    from convcli.pipeline import ApplyOptions, filter_maps

    pixels = np.random.default_rng(0).random((384, 512, 3), dtype=np.float32)

    def peak(spec: str) -> float:
        kernel = load_kernel(spec)
        for _ in range(2):  # the second call: warm tile buffers
            tracemalloc.start()
            try:
                maps, _ = filter_maps(pixels, kernel, ApplyOptions())
                for _, values in maps:
                    del values
                most = tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
        return most / pixels.nbytes  # in maps of the image's size

    one_kernel = peak("sobel_x")
    assert peak("kirsch") <= one_kernel + 1.2  # 8 maps, combined by their maximum
    assert peak("frei_chen") <= one_kernel + 1.2  # 9 maps, stacked: one at a time
    assert peak("sobel") <= one_kernel + 1.2  # 2 maps, the magnitude


def test_issue_12_case_24_a_bank_into_one_file_says_it_needs_a_folder(
    tmp_path: Path, a_png: Path
) -> None:
    before = snapshot(tmp_path)
    r = run_convcli(
        ["apply", "a.png", "-k", "frei_chen", "-o", "edges.png"], cwd=tmp_path
    )
    r.expect(2, error="frei_chen is a bank that writes one image per filter")
    assert "give a folder, e.g. -o edges/" in r.err
    assert_files(tmp_path, before, written=set())


def test_issue_12_float_output_onto_an_input_is_refused(tmp_path: Path) -> None:
    write_image(tmp_path / "x.png")
    Image.fromarray(np.zeros((4, 4), np.float32)).save(tmp_path / "x.sobel.tif")
    before = snapshot(tmp_path)
    r = run_convcli(
        [
            "apply",
            "x.png",
            "x.sobel.tif",
            "-k",
            "sobel",
            "--float",
            "--channels",
            "gray",
        ],
        cwd=tmp_path,
    )
    r.expect(2, error="x.sobel.tif: the output of x.png x sobel would overwrite")
    assert_files(tmp_path, before, written=set())


def test_issue_12_an_output_hard_linked_to_the_input_is_refused(
    tmp_path: Path, a_png: Path
) -> None:
    (tmp_path / "o").mkdir()
    os.link(tmp_path / "a.png", tmp_path / "o" / "a.sobel.png")
    before = snapshot(tmp_path)
    r = run_convcli(["apply", "a.png", "-k", "sobel", "-o", "o"], cwd=tmp_path)
    r.expect(
        2,
        error="o/a.sobel.png: the output of a.png x sobel would overwrite the input a.png",
    )
    assert_files(tmp_path, before, written=set())


def test_issue_12_two_outputs_hard_linked_together_are_refused(tmp_path: Path) -> None:
    write_image(tmp_path / "a.png", seed=1)
    write_image(tmp_path / "b.png", seed=2)
    (tmp_path / "o").mkdir()
    write_image(tmp_path / "o" / "a.sobel.png", seed=3)
    os.link(tmp_path / "o" / "a.sobel.png", tmp_path / "o" / "b.sobel.png")
    before = snapshot(tmp_path)
    r = run_convcli(
        ["apply", "a.png", "b.png", "-k", "sobel", "-o", "o/"], cwd=tmp_path
    )
    r.expect(2, error="o/b.sobel.png: a.png x sobel and b.png x sobel would both write")
    assert_files(tmp_path, before, written=set())


def test_issue_12_the_montage_onto_an_output_or_over_the_limit_is_refused(
    tmp_path: Path, a_png: Path
) -> None:
    before = snapshot(tmp_path)
    r = run_convcli(
        ["apply", "a.png", "-k", "sobel", "-o", "o/", "--montage", "o/a.sobel.png"],
        cwd=tmp_path,
    )
    r.expect(2, error="o/a.sobel.png: a.png x sobel and --montage would both write")
    r = run_convcli(
        [*FREI_CHEN_MONTAGE, "--max-pixels", "20000"],
        cwd=tmp_path,
    )
    r.expect(2, error="m.png: the montage of 9 outputs would be")
    assert_files(tmp_path, before, written=set())


# ---------------------------------------------------------------------------
# More hostile cases: names, links, folders, races, tiny images


@pytest.mark.parametrize(
    "name", ["b c é.png", "[bold]a.png", "x\ny.png", "日本語の写真.png"]
)
def test_issue_12_odd_input_names_work(tmp_path: Path, name: str) -> None:
    write_image(tmp_path / name)
    before = snapshot(tmp_path)
    r = run_convcli(["apply", name, "-k", "sobel"], cwd=tmp_path)
    r.expect(0)
    out = name.replace(".png", ".sobel.png")
    assert_files(tmp_path, before, written={out})
    assert decodes(tmp_path / out)
    shown = out.replace("\n", "\\n")  # a newline in a table cell is shown escaped
    assert shown in r.out


def test_issue_12_a_name_that_is_not_utf8_works(tmp_path: Path) -> None:
    raw = os.fsdecode(b"\xff\xfe.png")
    write_image(tmp_path / raw)
    before = snapshot(tmp_path)
    r = run_convcli(["apply", raw, "-k", "sobel", "--json"], cwd=tmp_path)
    r.expect(0)
    assert_files(tmp_path, before, written={os.fsdecode(b"\xff\xfe.sobel.png")})


def test_issue_12_a_newline_in_a_bad_file_name_stays_on_one_error_line(
    tmp_path: Path,
) -> None:
    (tmp_path / "bad\nname.png").write_text("hello", encoding="utf-8")
    before = snapshot(tmp_path)
    r = run_convcli(["apply", "bad\nname.png", "-k", "sobel"], cwd=tmp_path)
    r.expect(2, error="bad\\nname.png: not an image")
    assert_files(tmp_path, before, written=set())


def test_issue_12_a_leading_dash_after_double_dash(tmp_path: Path) -> None:
    write_image(tmp_path / "-a.png")
    before = snapshot(tmp_path)
    run_convcli(["apply", "-k", "sobel", "--", "-a.png"], cwd=tmp_path).expect(0)
    assert_files(tmp_path, before, written={"-a.sobel.png"})


def test_issue_12_markup_in_a_filter_name_is_shown_as_text(
    tmp_path: Path, a_png: Path
) -> None:
    (tmp_path / "mark.txt").write_text("--- [/x]\n1 0\n0 -1\n--- y\n0 1\n-1 0\n")
    before = snapshot(tmp_path)
    r = run_convcli(["apply", "a.png", "-k", "mark.txt"], cwd=tmp_path)
    r.expect(0)
    assert "[/x]" in r.out
    assert_files(tmp_path, before, written={"a.mark.-x-.png", "a.mark.y.png"})


def test_issue_12_the_same_input_twice_is_refused(tmp_path: Path, a_png: Path) -> None:
    before = snapshot(tmp_path)
    r = run_convcli(["apply", "a.png", "./a.png", "-k", "sobel"], cwd=tmp_path)
    r.expect(2, error="an image or a kernel is given twice")
    assert_files(tmp_path, before, written=set())


def test_issue_12_the_same_kernel_twice_is_refused(tmp_path: Path, a_png: Path) -> None:
    before = snapshot(tmp_path)
    r = run_convcli(["apply", "a.png", "-k", "sobel", "-k", "sobel"], cwd=tmp_path)
    r.expect(2, error="a.sobel.png: a.png x sobel and a.png x sobel would both write")
    r = run_convcli(
        ["apply", "a.png", "-k", "gaussian:sigma=2", "-k", "gaussian:sigma=2.0"],
        cwd=tmp_path,
    )
    r.expect(2, error="a.gaussian-sigma2.png")
    assert_files(tmp_path, before, written=set())


def test_issue_12_a_symlink_to_another_input_gets_its_own_output(
    tmp_path: Path, a_png: Path
) -> None:
    (tmp_path / "s.png").symlink_to("a.png")
    before = snapshot(tmp_path)
    r = run_convcli(
        ["apply", "a.png", "s.png", "-k", "sobel", "-o", "o/"], cwd=tmp_path
    )
    r.expect(0)
    assert_files(tmp_path, before, written={"o/a.sobel.png", "o/s.sobel.png"})


def test_issue_12_o_equal_to_the_input_folder(tmp_path: Path) -> None:
    write_image(tmp_path / "d" / "a.png")
    before = snapshot(tmp_path)
    run_convcli(["apply", "d/a.png", "-k", "sobel", "-o", "d"], cwd=tmp_path).expect(0)
    assert_files(tmp_path, before, written={"d/a.sobel.png"})


def test_issue_12_a_folder_named_like_the_output_is_refused(
    tmp_path: Path, a_png: Path
) -> None:
    (tmp_path / "a.sobel.png").mkdir()
    before = snapshot(tmp_path)
    r = run_convcli(["apply", "a.png", "-k", "sobel"], cwd=tmp_path)
    r.expect(
        2, error="a.sobel.png: a folder is in the way of the output of a.png x sobel"
    )
    assert_files(tmp_path, before, written=set())


@pytest.mark.parametrize(
    ("make", "culprit"),
    [
        ("fifo", "f.png: not a regular file (a FIFO)"),
        ("folder", "f.png: is a folder, not an image"),
        ("loop", "f.png: cannot read: Too many levels of symbolic links"),
        ("dangling", "f.png: no such file"),
    ],
)
def test_issue_12_inputs_that_are_not_files_are_refused_without_hanging(
    tmp_path: Path, a_png: Path, make: str, culprit: str
) -> None:
    f = tmp_path / "f.png"
    if make == "fifo":
        os.mkfifo(f)
    elif make == "folder":
        f.mkdir()
    elif make == "loop":
        f.symlink_to("f.png")
    else:
        f.symlink_to("gone.png")
    before = snapshot(tmp_path)
    r = run_convcli(
        ["apply", "a.png", "f.png", "-k", "sobel"], cwd=tmp_path, timeout=60
    )
    r.expect(2, error=culprit)
    assert_files(tmp_path, before, written=set())


def test_issue_12_o_with_a_slash_is_a_folder_even_with_a_dot(
    tmp_path: Path, a_png: Path
) -> None:
    before = snapshot(tmp_path)
    run_convcli(
        ["apply", "a.png", "-k", "sobel", "-o", "run.v2/"], cwd=tmp_path
    ).expect(0)
    run_convcli(
        ["apply", "a.png", "-k", "box", "-o", "new/deep/b.png"], cwd=tmp_path
    ).expect(0)
    assert_files(tmp_path, before, written={"run.v2/a.sobel.png", "new/deep/b.png"})


def test_issue_12_sixteen_bit_into_jpeg_is_refused_before_writing(
    tmp_path: Path,
) -> None:
    x = np.random.default_rng(0).integers(0, 65536, (20, 30)).astype(np.uint16)
    Image.fromarray(x).save(tmp_path / "u16.png")
    write_image(tmp_path / "a.png")
    before = snapshot(tmp_path)
    r = run_convcli(
        ["apply", "a.png", "u16.png", "-k", "box", "-o", "o/"], cwd=tmp_path
    )
    r.expect(0)  # into a folder each keeps its own ending: 16-bit PNG
    r = run_convcli(["apply", "u16.png", "-k", "box", "-o", "u.jpg"], cwd=tmp_path)
    r.expect(2, error="u.jpg: JPEG cannot hold 16-bit gray")
    assert_files(tmp_path, before, written={"o/a.box-size3.png", "o/u16.box-size3.png"})


def test_issue_12_two_runs_on_one_output_leave_a_whole_file(tmp_path: Path) -> None:
    write_image(tmp_path / "big.png", (1200, 1600, 3))
    before = snapshot(tmp_path)
    runs = [
        start_convcli(["apply", "big.png", "-k", k, "-o", "same.png"], cwd=tmp_path)
        for k in ("sobel", "kirsch")
    ]
    for proc in runs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
    assert_files(tmp_path, before, written={"same.png"})
    assert decodes(tmp_path / "same.png")
    assert _size(tmp_path / "same.png") == (1600, 1200)


def test_issue_12_a_one_pixel_image_and_a_31x31_kernel(tmp_path: Path) -> None:
    write_image(tmp_path / "dot.png", (1, 1, 3))
    before = snapshot(tmp_path)
    r = run_convcli(["apply", "dot.png", "-k", "box:size=31"], cwd=tmp_path)
    r.expect(0)
    assert_files(tmp_path, before, written={"dot.box-size31.png"})
    assert _size(tmp_path / "dot.box-size31.png") == (1, 1)
    r = run_convcli(
        ["apply", "dot.png", "-k", "box:size=31", "--padding", "valid"], cwd=tmp_path
    )
    r.expect(2, error="kernel window 31x31 (kernel 31x31, dilation (1, 1)) is larger")


def test_issue_12_a_stride_larger_than_the_image(tmp_path: Path, a_png: Path) -> None:
    before = snapshot(tmp_path)
    r = run_convcli(["apply", "a.png", "-k", "sobel", "--stride", "1000"], cwd=tmp_path)
    r.expect(0)
    assert_files(tmp_path, before, written={"a.sobel.s1000.png"})
    assert _size(tmp_path / "a.sobel.s1000.png") == (1, 1)
    r = run_convcli(
        ["apply", "a.png", "-k", "sobel", "--stride", "99999999999999999999"],
        cwd=tmp_path,
    )
    r.expect(2, error="--stride must be at most 2147483647")


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["int", "term"]
)
def test_issue_12_a_signal_mid_bank_leaves_whole_files_and_a_summary(
    tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    write_image(tmp_path / "big.png", (1500, 2000, 3))
    before = snapshot(tmp_path)
    proc = start_convcli(
        ["apply", "big.png", "-k", "frei_chen", "-o", "o/"], cwd=tmp_path
    )
    try:
        first = tmp_path / "o" / "big.frei_chen.g1.png"
        wait_for(first.exists, timeout=60)
        os.killpg(proc.pid, sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert "convcli apply (interrupted): 0 of 1 pairs done" in out
    after = snapshot(tmp_path)
    assert [p for p in after if p.name.endswith(".tmp")] == []
    new = [p for p in after if p not in before]
    assert Path("o/big.frei_chen.g1.png") in new
    assert len(new) < 9
    for path in new:
        assert decodes(tmp_path / path), path
        assert f"wrote {path} before it was interrupted" in out
    assert {p: d for p, d in after.items() if p in before} == before


@pytest.mark.parametrize(
    "args",
    [
        ["apply", "a.png", "-k", "sobel", "-o", "out/"],
        ["apply", "a.png", "-k", "sobel", "-o", "out/", "--json"],
        ["batch", "in", "-k", "sobel", "-o", "out"],
        ["batch", "in", "-k", "sobel", "-o", "out", "--json"],
    ],
    ids=["apply", "apply-json", "batch", "batch-json"],
)
def test_issue_12_stdout_on_a_full_disk_is_one_line_exit_1(
    tmp_path: Path, args: list[str]
) -> None:
    write_image(tmp_path / "a.png")
    write_image(tmp_path / "in" / "a.png")
    before = snapshot(tmp_path)
    with open("/dev/full", "wb") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "convcli", *args],
            cwd=tmp_path,
            stdout=full,
            stderr=subprocess.PIPE,
            env={**os.environ, "COLUMNS": "120", "NO_COLOR": "1"},
            timeout=120,
            check=False,
        )
    r = Run(args, proc.returncode, "", proc.stderr.decode())
    r.expect(1, error="cannot write the output to stdout: No space left on device")
    # the images were written all the same; only the report was lost
    assert_files(tmp_path, before, written={"out/a.sobel.png"})


@pytest.mark.parametrize("command", ["apply", "kernels", "batch"])
def test_issue_12_control_characters_in_a_name_are_escaped_in_errors(
    tmp_path: Path, command: str
) -> None:
    name = "a\x1b[31mb\nc.png"
    args = {
        "apply": ["apply", name, "-k", "sobel"],
        "kernels": ["kernels", name],
        "batch": ["batch", name, "-k", "sobel", "-o", "out"],
    }[command]
    r = run_convcli(args, cwd=tmp_path)
    assert r.code == 2, r
    assert "\x1b" not in r.err, r.err
    errors = [line for line in r.err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, r.err
    assert "a\\x1b[31mb" in errors[0]  # escaped, whatever the message


def test_issue_12_a_32_bit_gray_tiff_into_jpeg_is_refused_by_the_plan(
    tmp_path: Path,
) -> None:
    # Pillow's mode I (32-bit) with 16-bit values is written as 16-bit gray: the
    # plan must refuse JPEG up front (exit 2, nothing written), not the write.
    Image.fromarray(np.arange(600, dtype=np.int32).reshape(20, 30) * 100).save(
        tmp_path / "deep.tif"
    )
    before = snapshot(tmp_path)
    run_convcli(
        ["apply", "deep.tif", "-k", "box", "-o", "out/deep.jpg"], cwd=tmp_path
    ).expect(2, error="JPEG cannot hold 16-bit gray")
    assert_files(tmp_path, before, written=set())
