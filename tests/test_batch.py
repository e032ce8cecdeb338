"""`convcli batch` (issue 6): a generated folder tree through the CLI, and the library.

The trees are built in ``tmp_path`` from ``default_rng`` pixels. Outputs are
compared as decoded arrays (Pillow), never as encoded bytes; pixels are checked
against ``convcli apply`` and against ``scipy.ndimage``.

An unreadable file: a ``chmod 000`` file, wherever that locks it (a probe
decides, `_chmod_locks`). Root reads such a file anyway, and neither stand-in
the brief offers stands in: a dangling symbolic link fails as "broken symbolic
link", and a folder named ``x.png`` is walked as a folder. The tree keeps
both; for root,
`test_unreadable_file_is_a_failed_item` raises the OS's ``EACCES`` by hand,
with ``--jobs 1`` so that the stand-in applies in this process.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from convcli.batch import (
    Interrupted,
    Item,
    ItemResult,
    Plan,
    find_images,
    manifest_line,
    process_item,
    run,
)
from convcli.cli import app
from convcli.errors import ConvcliError
from convcli.kernels import load_kernel
from convcli.pipeline import ApplyOptions

ndimage = pytest.importorskip("scipy.ndimage")

ENV = {"COLUMNS": "160", "NO_COLOR": "1", "TERM": "dumb"}

# Input (relative to IN) -> its output under OUT for `-k sobel`.
GOOD = {
    "rgb.png": "rgb.sobel.png",
    "été photo ü.png": "été photo ü.sobel.png",
    "folder.png/inner.png": "folder.png/inner.sobel.png",
    "sub/gray.png": "sub/gray.sobel.png",
    "sub/photo.jpg": "sub/photo.sobel.jpg",
    "sub/deep/d16.tif": "sub/deep/d16.sobel.tif",
    "sub/deep/b.bmp": "sub/deep/b.sobel.bmp",
    "sub/deep/w.webp": "sub/deep/w.sobel.webp",
}
# Input -> words of the one-line reason it fails with.
BAD = {
    "notes.png": "not an image Pillow can read",
    "trunc.png": "corrupt or truncated image",
    "dangling.png": "broken symbolic link (to ",
}
LOCKED = {"sub/locked.png": "permission denied"}  # where chmod 000 locks it


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _batch(runner: CliRunner, *args: str | Path) -> Any:
    return runner.invoke(app, ["batch", *map(str, args)], env=ENV)


def _save(path: Path, array: np.ndarray, **params: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **params)


def _read(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        img.load()
        return np.asarray(img)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _entries(root: Path) -> set[str]:
    """Every file and folder under root (hidden ones too), relative, with '/'."""
    found = set()
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            found.add(Path(folder, name).relative_to(root).as_posix())
    return found


def _files(root: Path) -> set[str]:
    return {p for p in _entries(root) if (root / p).is_file()}


def _temporaries(root: Path) -> list[str]:
    return sorted(p for p in _entries(root) if p.endswith(".tmp"))


def _input_hashes(root: Path) -> dict[str, str]:
    """sha256 of every readable regular file under root, hidden ones included."""
    return {
        p: _sha256(root / p)
        for p in _entries(root)
        if (root / p).is_file()
        and not (root / p).is_symlink()
        and os.access(root / p, os.R_OK)
    }


def _chmod_locks(folder: Path) -> bool:
    """Whether a chmod 000 file is unreadable here (not to root, as a rule)."""
    probe = folder / "probe"
    probe.write_bytes(b"")
    probe.chmod(0)
    try:
        probe.open("rb").close()
    except PermissionError:
        return True
    finally:
        probe.unlink()
    return False


def _make_tree(root: Path) -> tuple[Path, dict[str, str]]:
    """The issue's tree: formats, two levels, bad files, hidden and odd names.

    Returns the folder and its bad files, each with words of its reason.
    """
    rng = np.random.default_rng(606)
    src = root / "IN"

    def rgb() -> np.ndarray:
        return rng.integers(0, 256, (9, 12, 3), dtype=np.uint8)

    _save(src / "rgb.png", rgb())
    _save(src / "été photo ü.png", rgb())
    _save(src / "folder.png" / "inner.png", rgb())  # a folder with an image ending
    _save(src / "sub" / "gray.png", rng.integers(0, 256, (9, 12), dtype=np.uint8))
    _save(src / "sub" / "photo.jpg", rgb(), quality=90)
    sixteen = rng.integers(0, 65536, (9, 12), dtype=np.uint16)
    _save(src / "sub" / "deep" / "d16.tif", sixteen)
    _save(src / "sub" / "deep" / "b.bmp", rgb())
    _save(src / "sub" / "deep" / "w.webp", rgb(), lossless=True)
    (src / "trunc.png").write_bytes((src / "rgb.png").read_bytes()[:80])
    (src / "notes.png").write_text("not a picture\n", encoding="utf-8")
    (src / "readme.txt").write_text("ignored: no image ending\n", encoding="utf-8")
    _save(src / ".hidden.png", rgb())
    _save(src / ".cache" / "inside.png", rgb())
    _save(src / "sub" / ".also-hidden.jpg", rgb())
    (src / "dangling.png").symlink_to(src / "missing.png")
    if not _chmod_locks(root):
        return src, BAD
    _save(src / "sub" / "locked.png", rgb())
    (src / "sub" / "locked.png").chmod(0)
    return src, BAD | LOCKED


def _make_clean(root: Path, n: int = 4) -> Path:
    """Only good gray PNGs, 1x1 and 2x2 among them."""
    rng = np.random.default_rng(707)
    src = root / "CLEAN"
    shapes = [(1, 1), (2, 2), (7, 9), (10, 6)] + [(8, 8)] * max(0, n - 4)
    for i, shape in enumerate(shapes[:n]):
        folder = src if i % 2 == 0 else src / "nested"
        _save(folder / f"g{i}.png", rng.integers(0, 256, shape, dtype=np.uint8))
    return src


# ---------------------------------------------------------------------------
# The whole tree through the CLI


def test_issue_6_tree_is_mirrored_and_bad_files_are_listed(
    runner: CliRunner, tmp_path: Path
) -> None:
    src, bad = _make_tree(tmp_path)
    out = tmp_path / "OUT"
    before = _input_hashes(src)
    result = _batch(runner, src, "-k", "sobel", "-o", out, "-r")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    # The mirrored tree, exactly: no hidden folder, no .tmp, nothing for the
    # text file or the failed items (the dangling link among them).
    folders = {"sub", "sub/deep", "folder.png"}
    assert _entries(out) == set(GOOD.values()) | folders
    assert _temporaries(out) == []
    # One line per bad file: its path and the reason.
    failed = [line for line in result.output.splitlines() if line.startswith("failed:")]
    assert len(failed) == len(bad), result.output
    for name, reason in bad.items():
        lines = [line for line in failed if str(src / name) + ":" in line]
        assert len(lines) == 1, (name, result.output)
        assert reason in lines[0]
    for ignored in ("readme.txt", "hidden", "inside.png"):
        assert ignored not in result.output
    assert _input_hashes(src) == before


def test_outputs_equal_convcli_apply(runner: CliRunner, tmp_path: Path) -> None:
    src, _ = _make_tree(tmp_path)
    out, by_apply = tmp_path / "OUT", tmp_path / "APPLY"
    result = _batch(runner, src, "-k", "sobel", "-o", out, "-r")
    assert result.exit_code == 1, result.output
    inputs = [str(src / name) for name in GOOD]
    applied = runner.invoke(
        app, ["apply", *inputs, "-k", "sobel", "-o", str(by_apply)], env=ENV
    )
    assert applied.exit_code == 0, applied.output
    for output in GOOD.values():
        want = _read(by_apply / Path(output).name)
        got = _read(out / output)
        assert got.dtype == want.dtype, output
        np.testing.assert_array_equal(got, want, err_msg=output)
    assert _read(out / GOOD["sub/deep/d16.tif"]).dtype == np.uint16


def test_box_blur_equals_scipy_uniform_filter(
    runner: CliRunner, tmp_path: Path
) -> None:
    src = _make_clean(tmp_path)
    out = tmp_path / "OUT"
    result = _batch(runner, src, "-k", "box:size=3", "--range", "clip", "-o", out, "-r")
    assert result.exit_code == 0, result.output
    names = sorted(_files(src))
    assert _files(out) == {n.replace(".png", ".box-size3.png") for n in names}
    for name in names:
        x = _read(src / name).astype(np.float64)
        # convcli's border reflect (dcb|abcd|cba) is scipy's mirror. The sums
        # k/9 of whole numbers are never within 1/18 of a .5, so float32 and
        # float64 round alike: floor(v + 0.5) then clip, as images.to_pixels.
        mean = ndimage.uniform_filter(x, size=3, mode="mirror")
        box = ndimage.correlate(x, np.full((3, 3), 1 / 9), mode="mirror")
        np.testing.assert_allclose(mean, box, atol=1e-9)
        want = np.clip(np.floor(mean + 0.5), 0, 255).astype(np.uint8)
        got = _read(out / name.replace(".png", ".box-size3.png"))
        np.testing.assert_array_equal(got, want, err_msg=name)


def test_json_is_one_document_on_stdout(runner: CliRunner, tmp_path: Path) -> None:
    src, bad = _make_tree(tmp_path)
    out = tmp_path / "OUT"
    result = _batch(runner, src, "-k", "sobel", "-o", out, "-r", "--json")
    assert result.exit_code == 1, result.output
    assert result.stderr == ""
    doc = json.loads(result.stdout)
    assert set(doc) == {"items", "summary"}
    items = {Path(i["input"]).relative_to(src).as_posix(): i for i in doc["items"]}
    assert set(items) == set(GOOD) | set(bad)
    for name, output in GOOD.items():
        assert items[name]["status"] == "done"
        assert items[name]["outputs"] == [str(out / output)]
        assert items[name]["error"] == ""
    for name, reason in bad.items():
        assert items[name]["status"] == "failed"
        assert items[name]["outputs"] == []
        assert reason in items[name]["error"]
        assert "\n" not in items[name]["error"]
    summary = doc["summary"]
    assert summary["items"] == len(GOOD) + len(bad)
    assert (summary["done"], summary["failed"]) == (len(GOOD), len(bad))
    assert summary["interrupted"] is False


def test_clean_tree_exits_0(runner: CliRunner, tmp_path: Path) -> None:
    src = _make_clean(tmp_path)
    result = _batch(runner, src, "-k", "sobel", "-o", tmp_path / "OUT", "-r")
    assert result.exit_code == 0, result.output
    assert "failed:" not in result.output
    assert len(_files(tmp_path / "OUT")) == len(_files(src))


def test_unreadable_file_is_a_failed_item(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _make_clean(tmp_path)
    locked = src / "nested" / "locked.png"
    _save(locked, np.zeros((3, 3), np.uint8))
    if _chmod_locks(tmp_path):
        locked.chmod(0)
    else:  # root reads a chmod 000 file: raise what the OS gives anyone else
        real_open = builtins.open

        def refuse(file: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(file, str | Path) and Path(file) == locked:
                raise PermissionError(13, "Permission denied", str(file))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", refuse)
    result = _batch(runner, src, "-k", "sobel", "-o", tmp_path / "OUT", "-r", "-j1")
    assert result.exit_code == 1, result.output
    assert f"failed: {locked}: permission denied" in result.output
    assert "Traceback" not in result.output
    assert "locked" not in " ".join(_files(tmp_path / "OUT"))
    assert len(_files(tmp_path / "OUT")) == len(_files(src)) - 1


# ---------------------------------------------------------------------------
# Options


def test_skip_existing_rewrites_nothing(runner: CliRunner, tmp_path: Path) -> None:
    src = _make_clean(tmp_path)
    out = tmp_path / "OUT"
    first = _batch(runner, src, "-k", "sobel", "-o", out, "-r")
    assert first.exit_code == 0, first.output

    def stats() -> dict[str, tuple[int, int]]:
        return {
            p: ((out / p).stat().st_mtime_ns, (out / p).stat().st_ino)
            for p in _files(out)
        }

    before = stats()
    again = _batch(
        runner, src, "-k", "sobel", "-o", out, "-r", "--skip-existing", "--json"
    )
    assert again.exit_code == 0, again.output
    doc = json.loads(again.stdout)
    assert [i["status"] for i in doc["items"]] == ["skipped"] * len(before)
    assert doc["summary"]["skipped"] == len(before)
    assert stats() == before

    gone = sorted(before)[1]
    (out / gone).unlink()
    third = _batch(
        runner, src, "-k", "sobel", "-o", out, "-r", "--skip-existing", "--json"
    )
    assert third.exit_code == 0, third.output
    status = {
        Path(i["outputs"][0]).relative_to(out).as_posix(): i["status"]
        for i in json.loads(third.stdout)["items"]
    }
    assert status == {p: "done" if p == gone else "skipped" for p in before}
    after = stats()
    assert after.keys() == before.keys()
    assert {p: s for p, s in after.items() if p != gone} == {
        p: s for p, s in before.items() if p != gone
    }


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_fail_fast_stops_at_the_first_failure(
    runner: CliRunner, tmp_path: Path, jobs: str
) -> None:
    rng = np.random.default_rng(808)
    src = tmp_path / "IN"
    for i in range(30):
        _save(src / f"b{i:02d}.png", rng.integers(0, 256, (6, 6), dtype=np.uint8))
    # A truncated PNG, first in line: it fails as fast as a good PNG is done.
    # (A text file would make its worker import every Pillow plugin first,
    # while the other worker finishes the whole folder.)
    (src / "a-first.png").write_bytes((src / "b00.png").read_bytes()[:60])
    out = tmp_path / "OUT"
    args = [src, "-k", "sobel", "-o", out, "--fail-fast", "--jobs", jobs, "--json"]
    result = _batch(runner, *args)
    assert result.exit_code == 1, result.output
    doc = json.loads(result.stdout)
    assert doc["items"][0]["input"] == str(src / "a-first.png")
    assert doc["items"][0]["status"] == "failed"
    assert len(doc["items"]) < 31
    assert doc["summary"]["not_started"] == 31 - len(doc["items"])
    if jobs == "1":
        assert len(doc["items"]) == 1
        assert _files(out) == set()


def test_jobs_1_and_2_give_the_same_outputs(runner: CliRunner, tmp_path: Path) -> None:
    src, _ = _make_tree(tmp_path)
    one, two = tmp_path / "ONE", tmp_path / "TWO"
    assert _batch(runner, src, "-k", "sobel", "-o", one, "-r", "-j", "1").exit_code == 1
    assert _batch(runner, src, "-k", "sobel", "-o", two, "-r", "-j", "2").exit_code == 1
    assert _files(one) == _files(two) == set(GOOD.values())
    for name in _files(one):
        np.testing.assert_array_equal(
            _read(one / name), _read(two / name), err_msg=name
        )


def test_glob_restricts_and_ignores_case(runner: CliRunner, tmp_path: Path) -> None:
    rng = np.random.default_rng(909)
    src = tmp_path / "IN"
    for name in ("a.png", "B.PNG", "c.jpg", "d.bmp", "e.Png"):
        _save(src / name, rng.integers(0, 256, (5, 5, 3), dtype=np.uint8))
    out = tmp_path / "OUT"
    result = _batch(runner, src, "-k", "sobel", "-o", out, "--glob", "*.png")
    assert result.exit_code == 0, result.output
    assert _files(out) == {"a.sobel.png", "B.sobel.PNG", "e.sobel.Png"}
    out2 = tmp_path / "OUT2"
    result = _batch(
        runner, src, "-k", "sobel", "-o", out2, "--glob", "*.PNG", "--glob", "C*"
    )
    assert result.exit_code == 0, result.output
    assert _files(out2) == {"a.sobel.png", "B.sobel.PNG", "e.sobel.Png", "c.sobel.jpg"}


def test_out_inside_in_is_not_fed_back(runner: CliRunner, tmp_path: Path) -> None:
    src = _make_clean(tmp_path, n=2)
    out = src / "results"
    for _ in range(2):
        result = _batch(runner, src, "-k", "sobel", "-o", out, "-r", "--json")
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        assert len(doc["items"]) == 2
        assert not any("results" in i["input"] for i in doc["items"])
    assert _files(out) == {"g0.sobel.png", "nested/g1.sobel.png"}
    assert not [p for p in _entries(src) if ".sobel.sobel" in p]


@pytest.mark.parametrize("spelling", ["same", "dot", "parent"])
def test_out_equal_to_in_exits_2(
    runner: CliRunner, tmp_path: Path, spelling: str
) -> None:
    src = _make_clean(tmp_path, n=2)
    out = {"same": src, "dot": src / ".", "parent": src / "nested" / ".."}[spelling]
    before = _entries(src)
    result = _batch(runner, src, "-k", "sobel", "-o", out)
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ")
    assert "output folder is the input folder" in result.output
    assert "Traceback" not in result.output
    assert _entries(src) == before


@pytest.mark.parametrize("kind", ["file", "missing"])
def test_in_not_a_folder_exits_2(runner: CliRunner, tmp_path: Path, kind: str) -> None:
    src = tmp_path / "one.png"
    if kind == "file":
        _save(src, np.zeros((2, 2), np.uint8))
    result = _batch(runner, src, "-k", "sobel", "-o", tmp_path / "OUT")
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"Error: {src}: not a folder")
    assert "Traceback" not in result.output
    assert not (tmp_path / "OUT").exists()


def test_manifest_has_a_line_per_item(runner: CliRunner, tmp_path: Path) -> None:
    src = _make_clean(tmp_path)
    (src / "nested" / "bad.png").write_text("no", encoding="utf-8")
    out, manifest = tmp_path / "OUT", tmp_path / "run.jsonl"
    result = _batch(
        runner, src, "-k", "box:size=3", "-k", "sobel", "-o", out, "-r",
        "--border", "edge", "--manifest", manifest,
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    lines = manifest.read_text(encoding="utf-8").splitlines()
    records = {
        Path(r["input"]).relative_to(src).as_posix(): r for r in map(json.loads, lines)
    }
    assert len(lines) == len(records) == len(_files(src))
    bad = records.pop("nested/bad.png")
    assert bad["status"] == "failed"
    assert "not an image" in bad["error"]
    assert bad["outputs"] == bad["sha256"] == []
    for name, record in records.items():
        assert record["status"] == "done"
        assert record["input_bytes"] == (src / name).stat().st_size
        outputs = [Path(p) for p in record["outputs"]]
        assert [p.name for p in outputs] == [
            Path(name).stem + ".box-size3.edge.png",  # --border edge: its tag
            Path(name).stem + ".sobel.edge.png",
        ]
        assert record["sha256"] == [_sha256(p) for p in outputs]
        assert record["output_bytes"] == [p.stat().st_size for p in outputs]
        assert [k["name"] for k in record["kernels"]] == ["box", "sobel"]
        for kernel in record["kernels"]:
            assert kernel["options"]["border"] == "edge"
            assert kernel["options"]["padding"] == "same"
            assert kernel["options"]["range"] in ("clip", "gain")  # resolved


def test_issue_6_manifest_records_kernel_parameters(tmp_path: Path) -> None:
    entries = []
    for spec in ("gaussian:sigma=3", "gaussian:sigma=1"):
        plan = Plan(((load_kernel(spec), ApplyOptions()),))
        line = manifest_line(ItemResult(tmp_path / "a.png", "done"), plan)
        entries.append(json.loads(line)["kernels"][0])
    assert entries[0] != entries[1]
    assert entries[0]["params"]["sigma"] == 3
    assert entries[1]["params"]["sigma"] == 1


def test_two_inputs_with_one_output_clash(runner: CliRunner, tmp_path: Path) -> None:
    rng = np.random.default_rng(1010)
    src = tmp_path / "IN"
    _save(src / "a.jpg", rng.integers(0, 256, (6, 6), dtype=np.uint8))
    _save(src / "a.png", rng.integers(0, 256, (6, 6), dtype=np.uint8))
    _save(src / "b.png", rng.integers(0, 256, (6, 6), dtype=np.uint8))
    out = tmp_path / "OUT"
    result = _batch(runner, src, "-k", "sobel", "-o", out, "--float", "--json")
    # Issue 12: two planned outputs that are one file stop the run before it
    # starts (exit 2, both inputs named, nothing written).
    assert result.exit_code == 2, result.output
    error = result.stderr
    assert str(src / "a.png") in error
    assert str(src / "a.jpg") in error
    assert str(out / "a.sobel.tif") in error
    assert not out.exists()


# ---------------------------------------------------------------------------
# Ctrl-C


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 RGB 800x800 PNGs (one image's bytes, copied): a run of a few seconds."""
    src = tmp_path_factory.mktemp("big") / "IN"
    rng = np.random.default_rng(1111)
    _save(src / "img00.png", rng.integers(0, 256, (800, 800, 3), dtype=np.uint8))
    for i in range(1, 40):
        shutil.copyfile(src / "img00.png", src / f"img{i:02d}.png")
    return src


def _wait_for(
    condition: Callable[[], bool], proc: subprocess.Popen[str], every: float = 0.01
) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(
                f"the moment never came (exit {proc.returncode}):\n{out}\n{err}"
            )
        time.sleep(every)


@pytest.mark.parametrize("to", ["main process", "process group"])
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_exits_130_and_leaves_whole_files(
    big_tree: Path, tmp_path: Path, jobs: str, to: str
) -> None:
    out = tmp_path / "OUT"
    before = _input_hashes(big_tree)
    # One BLAS thread per process: with threads, OpenBLAS on two cores shared by
    # two workers makes each image ~10x slower, which only slows the test.
    env = {**os.environ, **ENV, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "convcli", "batch", str(big_tree)]
    cmd += ["-k", "gaussian:sigma=3", "-o", str(out), "--jobs", jobs]
    with subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group, as a terminal's job
    ) as proc:
        _wait_for(lambda: any(out.glob("*.png")), proc)
        if to == "process group":  # what Ctrl-C in a terminal does
            os.killpg(proc.pid, signal.SIGINT)
        else:  # kill -INT PID
            proc.send_signal(signal.SIGINT)
        try:
            stdout, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail("convcli batch did not stop after Ctrl-C")
    assert proc.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr
    assert "interrupted" in stdout
    assert _temporaries(out) == []
    outputs = sorted(out.glob("*.png"))
    assert 1 <= len(outputs) < 40
    assert _files(out) == {p.name for p in outputs}
    for path in outputs:
        assert _read(path).shape == (800, 800, 3)
    assert _input_hashes(big_tree) == before


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="ascii")
    except OSError:
        return []
    return [int(child) for child in text.split()]


def _forkserver_handles_sigint(pid: int) -> bool:
    """Whether the forkserver child of ``pid`` runs, catching or ignoring SIGINT."""
    bit = 1 << (signal.SIGINT - 1)
    for child in _children(pid):
        try:
            if b"forkserver" not in Path(f"/proc/{child}/cmdline").read_bytes():
                continue
            status = Path(f"/proc/{child}/status").read_text(encoding="ascii")
        except OSError:
            continue
        masks = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return bool((int(masks["SigCgt"], 16) | int(masks["SigIgn"], 16)) & bit)
    return False


@pytest.mark.skipif(
    not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists(),
    reason="needs Linux /proc/PID/task/TID/children",
)
@pytest.mark.parametrize("to", ["process group", "main process"])
def test_issue_6_ctrl_c_while_workers_start_prints_no_traceback(
    big_tree: Path, tmp_path: Path, to: str
) -> None:
    out = tmp_path / "OUT"
    env = {**os.environ, **ENV, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "convcli", "batch", str(big_tree)]
    cmd += ["-k", "gaussian:sigma=3", "-o", str(out), "--jobs", "2"]
    with subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # its own process group, as a terminal's job
    ) as proc:
        # The forkserver has set up Python's signal handling and, at this
        # point, is importing convcli.batch (its preload) for the first worker.
        _wait_for(lambda: _forkserver_handles_sigint(proc.pid), proc, every=0.002)
        time.sleep(0.03)  # Ctrl-C from a person, not at the very instant of exec
        if to == "process group":  # what Ctrl-C in a terminal does
            os.killpg(proc.pid, signal.SIGINT)
        else:  # kill -INT PID
            proc.send_signal(signal.SIGINT)
        try:
            stdout, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail("convcli batch did not stop after Ctrl-C")
    assert proc.returncode == 130, stdout + stderr
    assert "interrupted" in stdout
    assert _temporaries(out) == []
    assert "Traceback" not in stderr, stderr


# ---------------------------------------------------------------------------
# The library


def _names(items: list[Item], root: Path) -> list[str]:
    return [item.path.relative_to(root).as_posix() for item in items]


def test_find_images_survives_a_symlink_loop(tmp_path: Path) -> None:
    src = tmp_path / "IN"
    _save(src / "a.png", np.zeros((2, 2), np.uint8))
    _save(src / "sub" / "b.png", np.zeros((2, 2), np.uint8))
    (src / "sub" / "up").symlink_to(src, target_is_directory=True)  # sub/up -> IN
    (src / "sub" / "here").symlink_to(".", target_is_directory=True)
    items = find_images(src, tmp_path / "OUT", recursive=True)
    assert _names(items, src) == ["a.png", "sub/b.png"]
    assert [i.relative.as_posix() for i in items] == ["a.png", "sub/b.png"]
    assert [i.out_dir for i in items] == [tmp_path / "OUT", tmp_path / "OUT" / "sub"]


def test_find_images_leaves_hidden_entries_out(tmp_path: Path) -> None:
    src = tmp_path / "IN"
    for name in (".a.png", ".h/b.png", "sub/.c.png", "sub/.h/d.png", "e.png"):
        _save(src / name, np.zeros((2, 2), np.uint8))
    assert _names(find_images(src, tmp_path / "OUT", recursive=True), src) == ["e.png"]


def test_find_images_order_is_deterministic(tmp_path: Path) -> None:
    names = ["b.png", "a.png", "C.png", "sub2/z.png", "sub1/y.png", "sub1/deep/x.png"]
    rng = np.random.default_rng(1212)
    found = []
    for tree in ("one", "two", "three"):  # the same files, created in other orders
        src = tmp_path / tree
        for i in rng.permutation(len(names)):
            _save(src / names[i], np.zeros((1, 1), np.uint8))
        found.append(_names(find_images(src, tmp_path / "OUT", recursive=True), src))
    assert found[0] == found[1] == found[2]
    assert sorted(found[0]) == sorted(names)
    by_folder: dict[Path, list[str]] = {}
    for name in found[0]:
        by_folder.setdefault(Path(name).parent, []).append(Path(name).name)
    assert all(files == sorted(files) for files in by_folder.values())


def test_find_images_not_recursive_and_globs(tmp_path: Path) -> None:
    src = tmp_path / "IN"
    for name in ("a.PNG", "b.jpeg", "c.txt", "sub/d.png"):
        _save(src / name, np.zeros((2, 2), np.uint8), format="PNG")
    out = tmp_path / "OUT"
    assert _names(find_images(src, out), src) == ["a.PNG", "b.jpeg"]
    assert _names(find_images(src, out, globs=["*.png"]), src) == ["a.PNG"]
    assert _names(find_images(src, out, recursive=True, globs=["*.P*"]), src) == [
        "a.PNG",
        "sub/d.png",
    ]
    assert _names(find_images(src, src / "sub", recursive=True), src) == [
        "a.PNG",
        "b.jpeg",
    ]


def test_find_images_refuses_bad_folders(tmp_path: Path) -> None:
    with pytest.raises(ConvcliError, match=r"missing: not a folder"):
        find_images(tmp_path / "missing", tmp_path / "OUT")
    with pytest.raises(ConvcliError, match=r"the output folder is the input folder"):
        find_images(tmp_path, tmp_path / "x" / "..")


def test_process_item_reports_a_vanished_file(tmp_path: Path) -> None:
    plan = Plan(((load_kernel("sobel"), ApplyOptions()),))
    gone = tmp_path / "gone.png"
    result = process_item(Item(gone, Path("gone.png"), tmp_path / "OUT"), plan)
    assert result.status == "failed"
    assert result.error == f"{gone}: no such file or directory"
    assert result.outputs == []


def _interrupted(call: Callable[[], object]) -> Interrupted:
    """Return the Interrupted that call raises; a bare KeyboardInterrupt fails the test.

    (pytest.raises would let a KeyboardInterrupt stop the whole session.)
    """
    try:
        call()
    except KeyboardInterrupt:
        pytest.fail("a bare KeyboardInterrupt escaped run(), not Interrupted")
    except Interrupted as stop:
        return stop
    pytest.fail("run() returned; Interrupted expected")


def test_run_keeps_input_order_and_raises_interrupted(tmp_path: Path) -> None:
    src = _make_clean(tmp_path, n=6)
    items = find_images(src, tmp_path / "OUT", recursive=True)
    plan = Plan(((load_kernel("box:size=3"), ApplyOptions()),))
    results = run(items, plan, jobs=2)
    assert [r.input for r in results] == [i.path for i in items]
    assert {r.status for r in results} == {"done"}

    def stop(_: ItemResult) -> None:
        raise KeyboardInterrupt

    caught = _interrupted(
        lambda: run(items, Plan(plan.pairs, skip_existing=True), jobs=1, on_item=stop)
    )
    assert [r.input for r in caught.results] == [items[0].path]
    assert caught.results[0].status == "skipped"


def test_issue_6_ctrl_c_during_the_clash_check_is_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _make_clean(tmp_path)
    items = find_images(src, tmp_path / "OUT", recursive=True)
    plan = Plan(((load_kernel("sobel"), ApplyOptions()),))
    calls = []
    real_outputs = Plan.outputs

    def outputs(self: Plan, item: Item) -> list[Path]:
        calls.append(item)
        if len(calls) == 2:  # Ctrl-C while the second item's paths are worked out
            raise KeyboardInterrupt
        return real_outputs(self, item)

    monkeypatch.setattr(Plan, "outputs", outputs)
    assert _interrupted(lambda: run(items, plan, jobs=1)).results == []


def test_worker_environment_caps_threads_and_restores(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from convcli.workers import worker_environment

    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("CONVCLI_THREADS", raising=False)
    with worker_environment(1):
        assert os.environ["CONVCLI_THREADS"] == "1"
        assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
        assert os.environ["OMP_NUM_THREADS"] == "1"
    assert os.environ["OMP_NUM_THREADS"] == "7"
    assert "CONVCLI_THREADS" not in os.environ


def test_reuse_freed_memory_takes_on_glibc() -> None:
    import platform

    from convcli.workers import reuse_freed_memory

    took = reuse_freed_memory()
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert took
    else:
        assert took in (True, False)


def test_threads_per_worker_share_the_cpus() -> None:
    from convcli.workers import cpus, threads_per_worker

    assert threads_per_worker(1) == cpus()
    assert threads_per_worker(cpus()) == 1
    assert threads_per_worker(10 * cpus()) == 1


def test_out_that_cannot_be_a_folder_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    src = _make_clean(tmp_path)
    blocker = tmp_path / "afile"
    blocker.write_text("a file where the output folder would go\n", encoding="utf-8")
    result = _batch(runner, src, "-k", "sobel", "-o", blocker)
    assert result.exit_code == 2, result.output
    assert f"Error: {blocker}: cannot create the output folder" in result.output
    assert "Traceback" not in result.output


def test_one_ctrl_c_delivered_twice_still_finishes_running_items(
    big_tree: Path, tmp_path: Path
) -> None:
    # `timeout -s INT` signals the process and then its group: two SIGINTs
    # within SAME_CTRL_C seconds are one Ctrl-C, not the "stop now" second one.
    out = tmp_path / "OUT"
    env = {**os.environ, **ENV, "OPENBLAS_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "convcli", "batch", str(big_tree), "-o", str(out)]
    cmd += ["-k", "gaussian:sigma=3", "-k", "sobel", "--jobs", "2", "--json"]
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    ) as proc:
        _wait_for(lambda: out.exists() and any(out.glob("*.png")), proc, every=0.02)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.1)  # past Python's signal flag, well within SAME_CTRL_C
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    summary = json.loads(stdout)["summary"]
    # every item on disk is whole: both kernels' outputs, and reported as done
    assert len(list(out.glob("*.png"))) == 2 * summary["done"]
    assert _temporaries(out) == []
