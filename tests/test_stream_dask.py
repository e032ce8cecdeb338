"""`convcli apply --scheduler`: a streamed TIFF's bands as tasks on a Dask cluster.

Run as a user runs it, in a subprocess (the cluster's processes and logging
stay out of the test process), and checked by its numbers: each output read
with tifffile and compared with the single-machine streamed run's, pixel for
pixel, and with the in-memory run's, within a grey level (float32 rounding).

The single-machine references run with one BLAS thread, as Dask's workers
do (their nanny sets ``OPENBLAS_NUM_THREADS=1``; the workers started here
get it too): the separable and direct methods multiply with OpenBLAS, whose
float32 sums round differently with another number of threads, a grey level
on a few pixels in a million. That is the engine's, not the cluster's.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

pytest.importorskip("distributed")
import psutil  # type: ignore[import-untyped]  # distributed depends on it
import tifffile

ENV = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1"}
ONE_BLAS = {
    **ENV,
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}

BANK = """\
name: trio
combine: stack
range: abs
--- dx
-1 0 1
-2 0 2
-1 0 1
--- dy
-1 -2 -1
0 0 0
1 2 1
--- smooth
1/16 2/16 1/16
2/16 4/16 2/16
1/16 2/16 1/16
"""
"""A bank of three filters, combine stack: three outputs, a pass over the bands each."""


def _convcli(
    *args: str | Path,
    cwd: Path | None = None,
    env: dict[str, str] = ENV,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "convcli", *map(str, args)]
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def _tiff(path: Path, shape: tuple[int, ...], tile: int, seed: int) -> Path:
    """Write a tiled TIFF of smooth shapes and noise (edges in every band)."""
    rng = np.random.default_rng(seed)
    h, w = shape[:2]
    y, x = np.mgrid[0:h, 0:w]
    wave = 127.5 + 100 * np.sin(x / 9.0) * np.cos(y / 13.0)
    pixels = wave[..., np.newaxis] + rng.normal(0, 20, shape)
    tifffile.imwrite(path, np.clip(pixels, 0, 255).astype(np.uint8), tile=(tile, tile))
    return path


def _read(folder: Path) -> dict[str, npt.NDArray[np.integer]]:
    """Every TIFF in ``folder`` by name, its pixels as signed ints (for differences)."""
    return {
        p.name: tifffile.imread(p).astype(np.int32)
        for p in sorted(folder.glob("*.tif"))
    }


def _temporaries(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.tmp")) if folder.exists() else []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------
# 1. A local cluster computes the bands the single machine does


@pytest.mark.parametrize(
    ("kernels", "extra"),
    [
        (["sobel", "trio.txt"], []),
        (["laplacian", "trio.txt"], ["--range", "rescale"]),
    ],
    ids=["clip-and-stack", "rescale"],
)
def test_local_cluster_gives_the_streamed_and_in_memory_outputs(
    tmp_path: Path, kernels: list[str], extra: list[str]
) -> None:
    # 300 x 200: partial tiles of 16 on both sides; 43 bands of 7 rows, the last of 6
    _tiff(tmp_path / "small.tif", (300, 200, 3), 16, seed=11)
    (tmp_path / "trio.txt").write_text(BANK, encoding="utf-8")
    ks = [a for k in kernels for a in ("-k", k)]
    runs = {
        "DASK": ["--scheduler", "local", "--band-rows", "7"],
        "STREAM": ["--stream", "--band-rows", "7"],
        "MEMORY": ["--no-stream"],
    }
    for out, how in runs.items():
        env = ENV if out == "DASK" else ONE_BLAS
        done = _convcli(
            "apply", "small.tif", *ks, "-o", f"{out}/", *extra, *how, "-q",
            cwd=tmp_path, env=env,
        )  # fmt: skip
        assert done.returncode == 0, f"{out}: {done.stderr}"
        assert done.stderr == "", done.stderr
        assert _temporaries(tmp_path / out) == []
    dask, streamed, memory = (_read(tmp_path / out) for out in runs)
    assert len(dask) == 4, sorted(dask)  # one output for the kernel, three for the bank
    assert dask.keys() == streamed.keys() == memory.keys()
    for name, got in dask.items():
        assert got.shape == (300, 200, 3), name
        np.testing.assert_array_equal(got, streamed[name], err_msg=name)
        assert np.abs(got - memory[name]).max() <= 1, name
        assert got.min() < 40, name  # not a flat image
        assert got.max() > 200, name
    if extra:  # rescale: each output's own range, found on the cluster, onto 0..255
        for name, got in dask.items():
            assert got.max() == 255, name
            if "smooth" not in name:  # signed maps; a positive one is mapped from 0
                assert got.min() == 0, name


# ---------------------------------------------------------------------------
# 2. A real scheduler, two workers, one killed mid-run


def _dask(*args: str, log: Path, cwd: Path) -> subprocess.Popen[bytes]:
    dask = Path(sys.executable).with_name("dask")
    with open(log, "wb") as sink:
        return subprocess.Popen(
            [str(dask), *args],
            stdout=subprocess.DEVNULL,
            stderr=sink,
            env=ONE_BLAS,
            cwd=cwd,
        )


def _wait_for(
    what: str, ready: Callable[[], bool], procs: Sequence[subprocess.Popen[bytes]]
) -> None:
    deadline = time.monotonic() + 60
    while not ready():
        dead = [p.args for p in procs if p.poll() is not None]
        assert not dead, f"exited before {what}: {dead}"
        assert time.monotonic() < deadline, f"no {what} within 60 s"
        time.sleep(0.05)


def _growing(folder: Path, size: int) -> bool:
    """Whether a temporary file in ``folder`` holds more than ``size`` bytes yet."""
    for p in _temporaries(folder):
        try:
            if p.stat().st_size > size:
                return True
        except FileNotFoundError:  # renamed into place in between
            pass
    return False


@contextmanager
def _reaped(procs: list[subprocess.Popen[bytes]]) -> Iterator[None]:
    """Kill and wait for every process in ``procs`` at the end, however the block ends."""
    try:
        yield
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for proc in procs:
            proc.wait(timeout=30)


def test_a_killed_worker_loses_no_band(tmp_path: Path) -> None:
    # 3200 x 2400 RGB, a 25 x 25 gaussian's 625 taps each (direct): 100 bands of 32
    # rows, seconds of work; the output's first 256-row tiles are 8 bands
    _tiff(tmp_path / "big.tif", (3200, 2400, 3), 64, seed=22)
    args = ["big.tif", "-k", "gaussian:sigma=4", "--method", "direct"]
    args += ["--band-rows", "32", "-q"]
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    elsewhere = tmp_path / "workers"  # the workers' folder is not the command's
    elsewhere.mkdir()
    procs: list[subprocess.Popen[bytes]] = []
    with _reaped(procs):
        scheduler = _dask(
            "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard",
            log=tmp_path / "scheduler.log", cwd=elsewhere,
        )  # fmt: skip
        procs.append(scheduler)
        # Without nannies: the killed worker is gone for good, not restarted.
        logs = [tmp_path / f"worker{i}.log" for i in range(2)]
        worker = ["worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard"]
        for log in logs:
            procs.append(
                _dask(*worker, log=log, cwd=elsewhere),
            )

        def registered() -> bool:
            return all(b"Registered to" in log.read_bytes() for log in logs)

        _wait_for("both workers registered", registered, procs)
        cmd = [sys.executable, "-m", "convcli", "apply", *args, "-o", "DASK/big.tif"]
        cmd += ["--scheduler", address, "--scheduler-timeout", "30"]
        run = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=ENV,
            cwd=tmp_path,
        )
        procs.append(run)
        # bands written: the first rows of 256-row tiles are in the file
        _wait_for("a band written", lambda: _growing(tmp_path / "DASK", 1 << 20), procs)
        assert run.poll() is None, "the run ended before a worker could be killed"
        procs[1].kill()  # SIGKILL, mid-run: its bands in flight go to the other
        _, stderr = run.communicate(timeout=120)
        assert run.returncode == 0, stderr.decode()
        assert stderr == b"", stderr.decode()
        assert procs[2].poll() is None  # the other worker did the rest
    alone = _convcli(
        "apply", *args, "-o", "STREAM/big.tif", "--stream", cwd=tmp_path, env=ONE_BLAS
    )
    assert alone.returncode == 0, alone.stderr
    got = tifffile.imread(tmp_path / "DASK" / "big.tif")
    want = tifffile.imread(tmp_path / "STREAM" / "big.tif")
    assert got.shape == (3200, 2400, 3)
    np.testing.assert_array_equal(got, want)
    assert _temporaries(tmp_path / "DASK") == []


# ---------------------------------------------------------------------------
# 3. Ctrl-C


@pytest.mark.parametrize("to", ["group", "command"])
def test_ctrl_c_exits_130_leaving_no_file_and_no_worker(
    tmp_path: Path, to: str
) -> None:
    """Ctrl-C at a terminal signals the whole process group; ``kill -INT`` the command."""
    _tiff(tmp_path / "big.tif", (2400, 1600, 3), 64, seed=33)
    out = tmp_path / "OUT"
    cmd = [
        sys.executable,
        "-m",
        "convcli",
        "apply",
        "big.tif",
        "-k",
        "gaussian:sigma=4",
    ]
    cmd += ["-o", "OUT/big.tif", "--scheduler", "local", "--band-rows", "20"]
    with subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        cwd=tmp_path,
        start_new_session=True,  # its own process group, as a terminal's job
    ) as run:
        try:
            deadline = time.monotonic() + 60
            while not _growing(out, 1 << 20):  # the cluster is up, bands are written
                assert run.poll() is None, run.communicate()
                assert time.monotonic() < deadline, "no band written within 60 s"
                time.sleep(0.05)
            children = psutil.Process(run.pid).children(recursive=True)
            if to == "group":
                os.killpg(run.pid, signal.SIGINT)
            else:
                run.send_signal(signal.SIGINT)
            stdout, stderr = run.communicate(timeout=60)
        finally:
            if run.poll() is None:
                os.killpg(run.pid, signal.SIGKILL)
    assert len(children) >= 2  # the local cluster's worker processes
    assert run.returncode == 130, stdout + stderr
    assert "interrupted" in stdout
    assert stderr == "", stderr  # no worker's traceback either
    assert list(out.iterdir()) == []  # no output, no temporary file
    _, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], [p.cmdline() for p in alive]


# ---------------------------------------------------------------------------
# 4. No scheduler there


def test_unreachable_scheduler_exits_2_quickly_writing_nothing(tmp_path: Path) -> None:
    _tiff(tmp_path / "small.tif", (30, 20, 3), 16, seed=44)
    port = _free_port()  # nothing listens there
    start = time.perf_counter()
    result = _convcli(
        "apply", "small.tif", "-k", "sobel", "-o", "OUT/",
        "--scheduler", f"tcp://127.0.0.1:{port}", "--scheduler-timeout", "1",
        cwd=tmp_path, timeout=60,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith(
        f"Error: cannot reach the Dask scheduler at tcp://127.0.0.1:{port} within 1 s"
    ), result.stderr
    assert result.stderr.count("\n") == 1, result.stderr  # one line
    assert result.stdout == ""
    assert elapsed < 20
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.tif"]
