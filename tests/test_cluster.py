"""`convcli batch --scheduler` (issue 7): the same batch on a Dask LocalCluster.

Run as a user runs it, in a subprocess: the cluster's worker processes and
its logging stay out of the test process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("distributed")

ENV = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1"}


def _save(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _tree(root: Path) -> Path:
    rng = np.random.default_rng(77)
    src = root / "IN"
    for i in range(6):
        folder = src if i % 2 else src / "nested"
        _save(folder / f"p{i}.png", rng.integers(0, 256, (20, 24, 3), dtype=np.uint8))
    (src / "broken.png").write_text("not an image\n", encoding="utf-8")
    return src


def _batch(*args: str | Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "convcli", "batch", *map(str, args)]
    return subprocess.run(
        cmd, capture_output=True, text=True, env=ENV, timeout=timeout, check=False
    )


def _outputs(out: Path) -> dict[str, np.ndarray]:
    return {
        p.relative_to(out).as_posix(): np.asarray(Image.open(p))
        for p in sorted(out.rglob("*.png"))
    }


def test_local_cluster_gives_the_pool_s_outputs_and_exit_code(tmp_path: Path) -> None:
    src = _tree(tmp_path)
    pool, dask = tmp_path / "POOL", tmp_path / "DASK"
    by_pool = _batch(src, "-k", "sobel", "-o", pool, "-r", "-j", "2", "--json")
    by_dask = _batch(
        src,
        "-k",
        "sobel",
        "-o",
        dask,
        "-r",
        "-j",
        "2",
        "--scheduler",
        "local",
        "--json",
    )
    assert by_pool.returncode == 1, by_pool.stderr
    assert by_dask.returncode == 1, by_dask.stderr
    assert "Traceback" not in by_dask.stderr
    want, got = _outputs(pool), _outputs(dask)
    assert len(want) == 6
    assert got.keys() == want.keys()
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    items = json.loads(by_dask.stdout)["items"]
    status = {Path(i["input"]).name: i["status"] for i in items}
    assert status.pop("broken.png") == "failed"
    assert set(status.values()) == {"done"}
    assert list(dask.rglob(".*.tmp")) == []


def test_local_cluster_skip_existing_resumes(tmp_path: Path) -> None:
    src = _tree(tmp_path)
    out = tmp_path / "OUT"
    first = _batch(
        src, "-k", "blur", "-o", out, "-r", "--scheduler", "local", "-j", "2"
    )
    assert first.returncode == 1, first.stderr
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.png")}
    again = _batch(
        src,
        "-k",
        "blur",
        "-o",
        out,
        "-r",
        "--scheduler",
        "local",
        "-j",
        "2",
        "--skip-existing",
        "--json",
    )
    assert again.returncode == 1, again.stderr
    summary = json.loads(again.stdout)["summary"]
    assert (summary["skipped"], summary["done"], summary["failed"]) == (6, 0, 1)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.png")} == stamps


def test_unreachable_scheduler_exits_2_quickly(tmp_path: Path) -> None:
    src = _tree(tmp_path)
    start = time.perf_counter()
    result = _batch(
        src,
        "-k",
        "sobel",
        "-o",
        tmp_path / "OUT",
        "--scheduler",
        "tcp://127.0.0.1:9",
        "--scheduler-timeout",
        "1",
        timeout=60,
    )
    elapsed = time.perf_counter() - start
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(
        "Error: cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 1 s"
    ), result.stderr
    assert "Traceback" not in result.stderr
    assert elapsed < 20
    assert not any((tmp_path / "OUT").rglob("*.png"))


def _wait_for_first_output(run: subprocess.Popen[str], out: Path) -> None:
    """Return once the run has written its first output (it must still be running)."""
    deadline = time.monotonic() + 90
    while not (out.exists() and any(out.glob("*.png"))):
        assert run.poll() is None, run.communicate()
        assert time.monotonic() < deadline, "no output appeared"
        time.sleep(0.05)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dask(*args: str) -> subprocess.Popen[str]:
    dask = Path(sys.executable).with_name("dask")
    return subprocess.Popen(
        [str(dask), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**ENV, "OPENBLAS_NUM_THREADS": "1"},
    )


def test_issue_7_a_killed_worker_loses_no_item(tmp_path: Path) -> None:
    rng = np.random.default_rng(7007)
    src = tmp_path / "IN"
    base = rng.integers(0, 256, (400, 400, 3), dtype=np.uint8)
    for i in range(24):
        _save(src / f"p{i:02d}.png", np.roll(base, i, axis=1))
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = _dask(
        "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"
    )
    # Two workers without nannies: killing one kills its process for good.
    workers = [
        _dask("worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard")
        for _ in range(2)
    ]
    out = tmp_path / "OUT"
    try:
        cmd = [
            sys.executable,
            "-m",
            "convcli",
            "batch",
            str(src),
            "-k",
            "gaussian:sigma=4",
        ]
        cmd += [
            "-o",
            str(out),
            "--scheduler",
            address,
            "--scheduler-timeout",
            "30",
            "--json",
        ]
        with subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
        ) as run:
            _wait_for_first_output(run, out)
            workers[0].kill()  # mid-run: its item(s) in flight go to the other worker
            stdout, stderr = run.communicate(timeout=180)
        assert run.returncode == 0, stderr
        summary = json.loads(stdout)["summary"]
        assert (summary["done"], summary["failed"]) == (24, 0), stdout
        outputs = sorted(out.glob("*.png"))
        assert len(outputs) == 24
        for p in outputs:
            with Image.open(p) as im:
                im.load()  # a complete file: decodes to the end
                assert im.size == (400, 400)
        assert list(out.glob(".*.tmp")) == []
    finally:
        for proc in [*workers, scheduler]:
            proc.kill()
            proc.wait(timeout=30)


@pytest.mark.parametrize("to_group", [False, True], ids=["command", "group"])
def test_ctrl_c_cancels_and_exits_130(tmp_path: Path, to_group: bool) -> None:
    """Ctrl-C to the command, or to its process group as a terminal sends it.

    The group case: the local cluster's workers leave the signal to the
    command (`convcli.cluster.dask_setup`); they printed a traceback each.
    """
    import signal

    rng = np.random.default_rng(7070)
    src = tmp_path / "IN"
    base = rng.integers(0, 256, (400, 400, 3), dtype=np.uint8)
    for i in range(40):
        _save(src / f"p{i:02d}.png", np.roll(base, i, axis=0))
    out = tmp_path / "OUT"
    cmd = [sys.executable, "-m", "convcli", "batch", str(src), "-k", "gaussian:sigma=4"]
    cmd += ["-o", str(out), "--scheduler", "local", "-j", "2"]
    with subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        start_new_session=to_group,
    ) as run:
        _wait_for_first_output(run, out)
        if to_group:
            os.killpg(run.pid, signal.SIGINT)
        else:
            run.send_signal(signal.SIGINT)
        stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 130, stdout + stderr
    assert "interrupted" in stdout
    assert "Traceback" not in stderr, stderr
    outputs = sorted(out.glob("*.png"))
    assert 0 < len(outputs) < 40
    for p in outputs:
        with Image.open(p) as im:
            im.load()
    assert list(out.glob(".*.tmp")) == []
