"""Issue 12, `convcli batch` as a hostile user drives it: each case a real process.

Every case checks what `tests/hostile.py` checks: the exit code, one ``Error:``
line naming the culprit where it is an error, no traceback or Python warning,
no ``.tmp`` left, every input's sha256 unchanged, and exactly the files written.

Root reads and writes through ``chmod 000``: the cases that need a folder root
cannot list or write run convcli under ``setpriv`` without the capabilities
that let root do so (`run_without_dac`), so that the permission is real.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.hostile import (
    TIMEOUT,
    Run,
    assert_files,
    decodes,
    run_convcli,
    snapshot,
    start_convcli,
    wait_for,
    write_image,
)

SETPRIV = shutil.which("setpriv")
NO_DAC = ["--bounding-set", "-dac_override,-dac_read_search"]


def run_without_dac(args: list[str | Path], *, cwd: Path) -> Run:
    """Run convcli where permissions bind: as root, without CAP_DAC_* (setpriv)."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        if SETPRIV is None:
            pytest.skip("root ignores permissions and setpriv is missing")
        prefix = [SETPRIV, *NO_DAC, "--"]
    cmd = [*prefix, sys.executable, "-m", "convcli", *map(str, args)]
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1"}
    proc = subprocess.run(
        cmd, cwd=cwd, capture_output=True, env=env, timeout=TIMEOUT, check=False
    )
    return Run(
        [str(a) for a in args],
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )


def images(
    folder: Path, names: list[str], shape: tuple[int, ...] = (12, 16, 3)
) -> None:
    for i, name in enumerate(names):
        write_image(folder / name, shape, seed=i)


def failed_lines(run: Run) -> list[str]:
    return [line for line in run.out.splitlines() if line.startswith("failed: ")]


def all_decode(folder: Path, written: set[str]) -> None:
    for name in written:
        assert decodes(folder / name), name


# ---------------------------------------------------------------------------
# The issue's cases


def test_issue_12_case_3_manifest_that_is_an_input_is_refused(tmp_path: Path) -> None:
    images(tmp_path / "in", ["a.png", "b.png"])
    before = snapshot(tmp_path)
    r = run_convcli(
        ["batch", "in", "-k", "sobel", "-o", "out", "--manifest", "in/b.png"],
        cwd=tmp_path,
    )
    r.expect(2, error="in/b.png")
    assert "manifest" in r.err
    assert r.out == ""
    assert_files(tmp_path, before, written=set())
    assert not (tmp_path / "out").exists()


def test_issue_12_case_3_manifest_that_is_a_hard_link_to_an_input(
    tmp_path: Path,
) -> None:
    images(tmp_path / "in", ["a.png", "b.png"])
    os.link(tmp_path / "in" / "b.png", tmp_path / "run.jsonl")
    before = snapshot(tmp_path)
    r = run_convcli(
        ["batch", "in", "-k", "sobel", "-o", "out", "--manifest", "run.jsonl"],
        cwd=tmp_path,
    )
    r.expect(2, error="run.jsonl")
    assert "in/b.png" in r.err
    assert_files(tmp_path, before, written=set())


def test_issue_12_case_3_manifest_is_written_atomically_over_an_old_one(
    tmp_path: Path,
) -> None:
    images(tmp_path / "in", ["a.png", "b.png"])
    (tmp_path / "run.jsonl").write_text("an old manifest\n", encoding="utf-8")
    r = run_convcli(
        ["batch", "in", "-k", "sobel", "-o", "out", "--manifest", "run.jsonl"],
        cwd=tmp_path,
    )
    r.expect(0)
    lines = (tmp_path / "run.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["status"] for line in lines] == ["done", "done"]
    assert [p.name for p in tmp_path.glob(".*.tmp")] == []


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_issue_12_case_14_manifest_on_a_full_disk_is_a_failure_with_a_summary(
    tmp_path: Path, jobs: str
) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    images(tmp_path / "in", ["a.png", "b.png", "c.png"])
    before = snapshot(tmp_path)
    r = run_convcli(
        [
            "batch",
            "in",
            "-k",
            "sobel",
            "-o",
            "out",
            "-j",
            jobs,
            "--manifest",
            "/dev/full",
        ],
        cwd=tmp_path,
    )
    r.expect(1, error="/dev/full")
    assert "no space left on device" in r.err
    assert "done" in r.out  # the summary
    assert failed_lines(r) == []
    written = {"out/a.sobel.png", "out/b.sobel.png", "out/c.sobel.png"}
    assert_files(tmp_path, before, written=written)
    all_decode(tmp_path, written)


def test_issue_12_case_14_manifest_on_a_full_disk_with_json(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    images(tmp_path / "in", ["a.png", "b.png"])
    r = run_convcli(
        [
            "batch",
            "in",
            "-k",
            "sobel",
            "-o",
            "out",
            "--json",
            "--manifest",
            "/dev/full",
        ],
        cwd=tmp_path,
    )
    r.expect(1, error="cannot write the manifest")
    assert json.loads(r.out)["summary"]["done"] == 2


def float_tiff(path: Path, value: float) -> None:
    pixels = np.full((16, 16), value, np.float32)
    pixels[::2] = -value
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels, mode="F").save(path)


@pytest.mark.parametrize(
    ("extra", "tag"),
    [
        (["-k", "sobel", "--float", "--channels", "gray"], "sobel"),  # ~1e30 floats
        (["-k", "sobel", "--border", "constant", "--cval", "inf"], "sobel.constantinf"),
        (["-k", "big-bias.txt"], "big-bias"),  # bias: 1e300
    ],
    ids=["float-tiff-1e30", "cval-inf", "bias-1e300"],
)
@pytest.mark.parametrize("command", ["apply", "batch -j 1", "batch -j 2"])
def test_issue_12_case_23_no_python_warning_reaches_the_user(
    tmp_path: Path, extra: list[str], tag: str, command: str
) -> None:
    float_tiff(tmp_path / "in" / "f.tif", 1e30)
    float_tiff(tmp_path / "in" / "g.tif", 3e38)
    (tmp_path / "big-bias.txt").write_text("bias: 1e300\n1 1\n1 1\n", encoding="utf-8")
    before = snapshot(tmp_path)
    if command == "apply":
        args = ["apply", "in/f.tif", "in/g.tif", *extra, "-o", "out"]
    else:
        args = ["batch", "in", *extra, "-o", "out", "-j", command[-1]]
    r = run_convcli(args, cwd=tmp_path)
    r.expect(0)
    assert r.err == ""
    written = {f"out/f.{tag}.tif", f"out/g.{tag}.tif"}
    assert_files(tmp_path, before, written=written)
    all_decode(tmp_path, written)


def test_issue_12_case_25_unreadable_subfolder_is_a_reported_failure(
    tmp_path: Path,
) -> None:
    images(tmp_path / "in", ["a.png", "sub/b.png", "locked/c.png", "locked/d.png"])
    locked = tmp_path / "in" / "locked"
    before = snapshot(tmp_path)
    locked.chmod(0)
    try:
        r = run_without_dac(
            ["batch", "in", "-r", "-k", "sobel", "-o", "out", "--json"], cwd=tmp_path
        )
    finally:
        locked.chmod(0o755)
    r.expect(1)
    doc = json.loads(r.out)
    failed = [i for i in doc["items"] if i["status"] == "failed"]
    assert [i["input"] for i in failed] == ["in/locked"]
    assert "cannot list the folder: permission denied" in failed[0]["error"]
    assert doc["summary"]["failed"] == 1
    assert doc["summary"]["done"] == 2
    written = {"out/a.sobel.png", "out/sub/b.sobel.png"}
    assert_files(tmp_path, before, written=written)


def test_issue_12_case_25_unreadable_subfolder_in_the_table(tmp_path: Path) -> None:
    images(tmp_path / "in", ["a.png", "locked/c.png"])
    locked = tmp_path / "in" / "locked"
    before = snapshot(tmp_path)
    locked.chmod(0)
    try:
        r = run_without_dac(
            ["batch", "in", "-r", "-k", "sobel", "-o", "out"], cwd=tmp_path
        )
    finally:
        locked.chmod(0o755)
    r.expect(1)
    assert failed_lines(r) == [
        "failed: in/locked: cannot list the folder: permission denied; "
        "its images were not filtered"
    ]
    assert_files(tmp_path, before, written={"out/a.sobel.png"})


def test_issue_12_case_25_unreadable_input_folder_is_bad_input(tmp_path: Path) -> None:
    images(tmp_path / "in", ["a.png"])
    before = snapshot(tmp_path)
    (tmp_path / "in").chmod(0)
    try:
        r = run_without_dac(["batch", "in", "-k", "sobel", "-o", "out"], cwd=tmp_path)
    finally:
        (tmp_path / "in").chmod(0o755)
    r.expect(2, error="'in' is not readable")  # the parser checks it first
    assert_files(tmp_path, before, written=set())


# ---------------------------------------------------------------------------
# More hostile cases


def test_issue_12_batch_fifo_named_like_an_image_fails_without_hanging(
    tmp_path: Path,
) -> None:
    images(tmp_path / "in", ["a.png"])
    os.mkfifo(tmp_path / "in" / "x.png")
    (tmp_path / "in" / "y.png").symlink_to("x.png")  # a link to it, too
    before = snapshot(tmp_path)
    r = run_convcli(
        ["batch", "in", "-k", "sobel", "-o", "out"], cwd=tmp_path, timeout=60
    )
    r.expect(1)
    assert failed_lines(r) == [
        "failed: in/x.png: a FIFO, not an image file",
        "failed: in/y.png: a FIFO, not an image file",
    ]
    assert_files(tmp_path, before, written={"out/a.sobel.png"})


def test_issue_12_batch_files_that_vanish_or_become_folders_mid_run(
    tmp_path: Path,
) -> None:
    names = [f"p{i}.png" for i in range(6)]
    images(tmp_path / "in", names, shape=(500, 500, 3))
    env = {"OPENBLAS_NUM_THREADS": "1"}
    args = ["batch", "in", "-k", "gaussian:sigma=4", "-o", "out", "-j", "1", "--json"]
    proc = start_convcli(args, cwd=tmp_path, env=env)
    before = snapshot(tmp_path)
    wait_for(lambda: (tmp_path / "out" / "p0.gaussian-sigma4.png").exists())
    (tmp_path / "in" / "p5.png").unlink()  # gone between listing and reading
    (tmp_path / "in" / "p4.png").unlink()
    (tmp_path / "in" / "p4.png").mkdir()  # replaced by a folder
    for gone in ("in/p4.png", "in/p5.png"):
        del before[Path(gone)]
    out, err = proc.communicate(timeout=TIMEOUT)
    run = Run(args, proc.returncode, out, err).expect(1)
    items = {Path(i["input"]).name: i for i in json.loads(run.out)["items"]}
    assert items["p5.png"]["error"] == "in/p5.png: no such file or directory"
    assert items["p4.png"]["error"] == "in/p4.png: a folder, not an image file"
    done = [n for n, i in items.items() if i["status"] == "done"]
    assert sorted(done) == names[:4]
    written = {f"out/p{i}.gaussian-sigma4.png" for i in range(4)}
    assert_files(tmp_path, before, written=written)
    all_decode(tmp_path, written)


def test_issue_12_batch_unwritable_output_subfolder_fails_only_its_items(
    tmp_path: Path,
) -> None:
    images(tmp_path / "in", ["a.png", "ro/b.png", "ro/c.png", "rw/d.png"])
    (tmp_path / "out" / "ro").mkdir(parents=True)
    (tmp_path / "out" / "ro").chmod(0o555)
    before = snapshot(tmp_path)
    try:
        r = run_without_dac(
            ["batch", "in", "-r", "-k", "sobel", "-o", "out"], cwd=tmp_path
        )
    finally:
        (tmp_path / "out" / "ro").chmod(0o755)
    r.expect(1)
    lines = failed_lines(r)
    assert len(lines) == 2, r.out
    for name, line in zip(["b", "c"], lines, strict=True):
        want = f"failed: in/ro/{name}.png: out/ro/{name}.sobel.png: cannot write"
        assert line.startswith(want), line
        assert "permission denied" in line.lower()
    assert_files(tmp_path, before, written={"out/a.sobel.png", "out/rw/d.sobel.png"})


def test_issue_12_batch_many_more_jobs_than_cores(tmp_path: Path) -> None:
    names = [f"p{i:02d}.png" for i in range(20)]
    images(tmp_path / "in", names)
    before = snapshot(tmp_path)
    r = run_convcli(
        ["batch", "in", "-k", "sobel", "-o", "out", "--jobs", "64"], cwd=tmp_path
    )
    r.expect(0)
    written = {f"out/p{i:02d}.sobel.png" for i in range(20)}
    assert_files(tmp_path, before, written=written)
    all_decode(tmp_path, written)


def test_issue_12_batch_symlink_from_input_into_the_outputs_is_refused(
    tmp_path: Path,
) -> None:
    images(tmp_path / "in", ["a.png"])
    images(tmp_path / "out", ["a.sobel.png"])  # a previous run's output
    (tmp_path / "in" / "z.png").symlink_to(tmp_path / "out" / "a.sobel.png")
    before = snapshot(tmp_path)
    r = run_convcli(["batch", "in", "-k", "sobel", "-o", "out"], cwd=tmp_path)
    r.expect(2, error="out/a.sobel.png")
    assert "in/z.png" in r.err
    assert_files(tmp_path, before, written=set())


def test_issue_12_batch_output_hard_linked_to_an_input_is_refused(
    tmp_path: Path,
) -> None:
    images(tmp_path / "in", ["a.png", "b.png"])
    (tmp_path / "out").mkdir()
    os.link(tmp_path / "in" / "b.png", tmp_path / "out" / "a.sobel.png")
    before = snapshot(tmp_path)
    r = run_convcli(["batch", "in", "-k", "sobel", "-o", "out"], cwd=tmp_path)
    r.expect(2, error="out/a.sobel.png")
    assert "in/b.png" in r.err
    assert_files(tmp_path, before, written=set())


def test_issue_12_batch_output_folder_above_the_input_overwriting_an_input(
    tmp_path: Path,
) -> None:
    # in/in/a.png -> (out = .) ./in/a.sobel.png, which is itself an input
    images(tmp_path / "in", ["a.sobel.png", "in/a.png"])
    before = snapshot(tmp_path)
    r = run_convcli(["batch", "in", "-r", "-k", "sobel", "-o", "."], cwd=tmp_path)
    r.expect(2, error="in/a.sobel.png")
    assert "would overwrite the input" in r.err
    assert_files(tmp_path, before, written=set())


def test_issue_12_batch_with_no_images(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("no image here\n", encoding="utf-8")
    before = snapshot(tmp_path)
    r = run_convcli(["batch", "in", "-k", "sobel", "-o", "out", "--json"], cwd=tmp_path)
    r.expect(0)
    summary = json.loads(r.out)["summary"]
    assert (summary["items"], summary["done"], summary["failed"]) == (0, 0, 0)
    assert_files(tmp_path, before, written=set())


def test_issue_12_batch_manifest_that_is_an_output_is_refused(tmp_path: Path) -> None:
    images(tmp_path / "in", ["a.png", "b.png"])
    before = snapshot(tmp_path)
    r = run_convcli(
        ["batch", "in", "-k", "sobel", "-o", "out", "--manifest", "out/b.sobel.png"],
        cwd=tmp_path,
    )
    r.expect(2, error="out/b.sobel.png")
    assert "in/b.png" in r.err
    assert_files(tmp_path, before, written=set())


@pytest.mark.parametrize(
    "where", ["a folder", "a missing folder", "a FIFO with no reader"]
)
def test_issue_12_batch_unusable_manifest_is_bad_input_before_any_work(
    tmp_path: Path, where: str
) -> None:
    images(tmp_path / "in", ["a.png"])
    manifest = {
        "a folder": "in",
        "a missing folder": "nowhere/run.jsonl",
        "a FIFO with no reader": "fifo",
    }[where]
    if where == "a FIFO with no reader":
        os.mkfifo(tmp_path / "fifo")
    before = snapshot(tmp_path)
    r = run_convcli(
        ["batch", "in", "-k", "sobel", "-o", "out", "--manifest", manifest],
        cwd=tmp_path,
        timeout=60,
    )
    r.expect(2, error=f"{manifest}: cannot write the manifest")
    assert_files(tmp_path, before, written=set())


def test_issue_12_batch_skip_existing_where_an_output_is_a_folder(
    tmp_path: Path,
) -> None:
    images(tmp_path / "in", ["a.png", "b.png"])
    (tmp_path / "out" / "a.sobel.png").mkdir(parents=True)
    before = snapshot(tmp_path)
    r = run_convcli(
        ["batch", "in", "-k", "sobel", "-o", "out", "--skip-existing"], cwd=tmp_path
    )
    r.expect(2, error="out/a.sobel.png")
    assert "existing folder" in r.err
    assert_files(tmp_path, before, written=set())


def test_issue_12_batch_two_inputs_with_one_output_are_refused(tmp_path: Path) -> None:
    images(tmp_path / "in", ["a.jpg", "a.png", "b.png"])
    before = snapshot(tmp_path)
    r = run_convcli(
        ["batch", "in", "-k", "sobel", "-o", "out", "--float"], cwd=tmp_path
    )
    r.expect(2, error="out/a.sobel.tif")
    assert "in/a.jpg" in r.err
    assert "in/a.png" in r.err
    assert_files(tmp_path, before, written=set())


def test_issue_12_batch_manifest_cval_inf_is_strict_json(tmp_path: Path) -> None:
    images(tmp_path / "in", ["a.png"])
    r = run_convcli(
        ["batch", "in", "-k", "sobel", "-o", "out", "--border", "constant",
         "--cval", "inf", "--manifest", "run.jsonl", "--json"],
        cwd=tmp_path,
    )  # fmt: skip
    r.expect(0)

    def strict(text: str) -> object:
        def refuse(name: str) -> object:
            msg = f"not JSON: {name}"
            raise AssertionError(msg)

        return json.loads(text, parse_constant=refuse)

    record = strict((tmp_path / "run.jsonl").read_text(encoding="utf-8"))
    assert isinstance(record, dict)
    assert record["kernels"][0]["options"]["cval"] == "Infinity"  # as trace --json
    strict(r.out)


def test_issue_12_batch_manifest_is_whole_after_ctrl_c(tmp_path: Path) -> None:
    names = [f"p{i:02d}.png" for i in range(12)]
    images(tmp_path / "in", names, shape=(500, 500, 3))
    args = ["batch", "in", "-k", "gaussian:sigma=4", "-o", "out", "-j", "2",
            "--manifest", "run.jsonl", "--json"]  # fmt: skip
    proc = start_convcli(args, cwd=tmp_path, env={"OPENBLAS_NUM_THREADS": "1"})
    wait_for(lambda: any((tmp_path / "out").glob("*.png")))
    time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=TIMEOUT)
    run = Run(args, proc.returncode, out, err).expect(130)
    doc = json.loads(run.out)
    lines = (tmp_path / "run.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(doc["items"]) == doc["summary"]["done"] >= 1
    assert list(tmp_path.rglob("*.tmp")) == []
