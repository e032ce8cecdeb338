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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pytest

pytest.importorskip("distributed")
import psutil  # type: ignore[import-untyped]  # distributed depends on it
import tifffile

if TYPE_CHECKING:
    from convcli.stream_cluster import DaskBands

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


def _read(folder: Path) -> dict[str, npt.NDArray[Any]]:
    """Every TIFF in ``folder`` by name, its pixels."""
    return {p.name: tifffile.imread(p) for p in sorted(folder.glob("*.tif"))}


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
    """Three images through one cluster, kept from pair to pair."""
    # 300 x 200 RGB: partial tiles of 16 on both sides; 43 bands of 7 rows, the last 6
    _tiff(tmp_path / "small.tif", (300, 200, 3), 16, seed=11)
    rng = np.random.default_rng(12)
    grey = rng.integers(0, 65536, (150, 130), dtype=np.uint16)  # 16-bit grey
    tifffile.imwrite(tmp_path / "grey16.tif", grey, tile=(32, 32))
    rgba = rng.integers(0, 256, (140, 120, 4), dtype=np.uint8)
    rgba[..., 3] = np.linspace(0, 255, 120).astype(np.uint8)  # alpha carried
    tifffile.imwrite(
        tmp_path / "rgba.tif", rgba, tile=(16, 16), photometric="rgb",
        extrasamples=["unassalpha"],
    )  # fmt: skip
    shapes = {"small": (300, 200, 3), "grey16": (150, 130), "rgba": (140, 120, 4)}
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
            "apply", *(f"{name}.tif" for name in shapes), *ks, "-o", f"{out}/",
            *extra, *how, "-q", cwd=tmp_path, env=env,
        )  # fmt: skip
        assert done.returncode == 0, f"{out}: {done.stderr}"
        assert done.stderr == "", done.stderr
        assert _temporaries(tmp_path / out) == []
    dask, streamed, memory = (_read(tmp_path / out) for out in runs)
    # each image: one output for the kernel, three for the bank
    assert len(dask) == 3 * 4, sorted(dask)
    assert dask.keys() == streamed.keys() == memory.keys()
    for name, got in dask.items():
        image = name.split(".")[0]
        assert got.shape == shapes[image], name
        assert got.dtype == (np.uint16 if image == "grey16" else np.uint8), name
        np.testing.assert_array_equal(got, streamed[name], err_msg=name)
        off = np.abs(got.astype(np.int64) - memory[name].astype(np.int64))
        assert off.max() <= 1, name  # float32 rounding at .5 boundaries
        if image == "rgba":
            np.testing.assert_array_equal(got[..., 3], rgba[..., 3], err_msg=name)
    if extra:  # rescale: each output's own range, found on the cluster, onto 0..peak
        for name, got in dask.items():
            colour = got[..., :3] if name.startswith("rgba") else got
            assert colour.max() == np.iinfo(got.dtype).max, name
            if "smooth" not in name:  # signed maps; a positive one is mapped from 0
                assert colour.min() == 0, name


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


@dataclass
class Cluster:
    """A scheduler's address, and its processes: the scheduler first, then the workers."""

    address: str
    procs: list[subprocess.Popen[bytes]]


@contextmanager
def _scheduler(tmp_path: Path, workers: int) -> Iterator[Cluster]:
    """A ``dask scheduler`` and ``workers`` one-thread workers, all killed at the end.

    The workers run without nannies (one killed is gone for good, not
    restarted) in a folder that is not the command's.
    """
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    elsewhere = tmp_path / "workers"
    elsewhere.mkdir()
    procs: list[subprocess.Popen[bytes]] = []
    scheduler = ["scheduler", "--host", "127.0.0.1", "--port", str(port)]
    try:
        procs.append(
            _dask(
                *scheduler,
                "--no-dashboard",
                log=tmp_path / "scheduler.log",
                cwd=elsewhere,
            )
        )
        logs = [tmp_path / f"worker{i}.log" for i in range(workers)]
        worker = ["worker", address, "--nthreads", "1", "--no-nanny", "--no-dashboard"]
        procs += [_dask(*worker, log=log, cwd=elsewhere) for log in logs]

        def registered() -> bool:
            return all(b"Registered to" in log.read_bytes() for log in logs)

        _wait_for("the workers registered", registered, procs)
        yield Cluster(address, procs)
    finally:  # however the test ends: no process left behind
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for proc in procs:
            proc.wait(timeout=30)


def _run_until_a_band_is_written(
    cluster: Cluster, args: list[str], out: Path, cwd: Path
) -> subprocess.Popen[bytes]:
    """Start ``convcli apply ARGS -o OUT --scheduler ...``; return once bands are written.

    The first row of the output's 256-row tiles is in its temporary file: the
    run is under way (it is checked to be still running).
    """
    cmd = [sys.executable, "-m", "convcli", "apply", *args, "-o", str(out)]
    cmd += ["--scheduler", cluster.address, "--scheduler-timeout", "30"]
    run = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=cwd
    )
    cluster.procs.append(run)  # killed at the end too
    _wait_for(
        "a band written", lambda: _growing(cwd / out.parent, 1 << 20), cluster.procs
    )
    assert run.poll() is None, "the run ended before it could be disturbed"
    return run


# 3200 x 2400 RGB, a 25 x 25 gaussian's 625 taps each (direct): 100 bands of 32 rows,
# seconds of work; the output's first 256-row tiles are 8 bands
BIG = ["big.tif", "-k", "gaussian:sigma=4", "--method", "direct", "--band-rows", "32"]


def test_a_killed_worker_loses_no_band(tmp_path: Path) -> None:
    _tiff(tmp_path / "big.tif", (3200, 2400, 3), 64, seed=22)
    with _scheduler(tmp_path, workers=2) as cluster:
        # relative paths: the workers find the input all the same
        run = _run_until_a_band_is_written(
            cluster, [*BIG, "-q"], Path("DASK/big.tif"), tmp_path
        )
        cluster.procs[1].kill()  # SIGKILL, mid-run: its bands go to the other
        _, stderr = run.communicate(timeout=120)
        assert run.returncode == 0, stderr.decode()
        assert stderr == b"", stderr.decode()  # not even Dask's warnings
        assert cluster.procs[2].poll() is None  # the other worker did the rest
    alone = _convcli(
        "apply", *BIG, "-q", "-o", "STREAM/big.tif", "--stream",
        cwd=tmp_path, env=ONE_BLAS,
    )  # fmt: skip
    assert alone.returncode == 0, alone.stderr
    got = tifffile.imread(tmp_path / "DASK" / "big.tif")
    want = tifffile.imread(tmp_path / "STREAM" / "big.tif")
    assert got.shape == (3200, 2400, 3)
    np.testing.assert_array_equal(got, want)
    assert _temporaries(tmp_path / "DASK") == []


def test_a_lost_scheduler_fails_the_pair_in_one_line(tmp_path: Path) -> None:
    _tiff(tmp_path / "big.tif", (3200, 2400, 3), 64, seed=23)
    with _scheduler(tmp_path, workers=1) as cluster:
        run = _run_until_a_band_is_written(
            cluster, BIG, tmp_path / "OUT" / "big.tif", tmp_path
        )
        cluster.procs[0].kill()  # the scheduler, mid-run
        stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 1, stdout + stderr
    assert stderr.decode() == (
        f"Error: big.tif x gaussian: lost the connection to the Dask scheduler at "
        f"{cluster.address} mid-run\n"
    )
    assert b"0 of 1 pairs done, 1 failed" in stdout
    assert list((tmp_path / "OUT").iterdir()) == []  # no output, no temporary file


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


# ---------------------------------------------------------------------------
# 5. The runner's bookkeeping, against a stand-in for Dask's client


class _Future:
    def __init__(self, value: object, error: BaseException | None = None) -> None:
        self.value, self.error = value, error
        self.status = "error" if error else "finished"

    def result(self) -> object:
        if self.error is not None:
            raise self.error
        return self.value


class _Client:
    """Runs each task at once; records what is cancelled."""

    def __init__(self, error: BaseException | None = None, workers: int = 1) -> None:
        self.error = error
        self.workers = workers
        self.submitted = 0
        self.cancelled: list[object] = []
        self.closed = False

    def nthreads(self) -> dict[str, int]:
        return {f"tcp://w{i}:1234": 1 for i in range(self.workers)}

    def scatter(self, job: object, **_: object) -> _Future:
        self.job = job
        return _Future(job)

    def submit(
        self, fn: object, shared: _Future, first: int, stop: int, **_: object
    ) -> _Future:
        self.submitted += 1
        return _Future((first, stop), self.error)

    def cancel(self, futures: list[object]) -> None:
        assert not self.closed, "cancelled through a closed client"
        self.cancelled += futures

    def close(self) -> None:
        self.closed = True


def _runner(client: _Client) -> DaskBands:
    from convcli.stream_cluster import DaskBands

    runner = DaskBands("tcp://example:8786")
    runner._client = client
    return runner


@dataclass(frozen=True)
class _Job:
    path: Path


def _first_stop(job: object, first: int, stop: int) -> tuple[int, int]:
    return first, stop


SPANS = [(0, 7), (7, 14), (14, 20)]


def test_the_last_band_releases_the_job_though_nobody_asks_past_it() -> None:
    client = _Client()
    runner = _runner(client)
    bands = runner(_first_stop, _Job(Path("a.tif")), SPANS)  # type: ignore[arg-type]
    assert [next(bands) for _ in SPANS] == SPANS  # as tifffile reads: no more
    assert len(client.cancelled) == 1  # the job scattered, with its last band
    assert client.job == _Job(Path("a.tif").absolute())  # found from any folder
    runner.close()
    assert client.closed
    assert len(client.cancelled) == 1


def test_close_cancels_what_a_reader_left_running_before_disconnecting() -> None:
    client = _Client()
    runner = _runner(client)
    bands = runner(_first_stop, _Job(Path("a.tif")), SPANS)  # type: ignore[arg-type]
    assert next(bands) == SPANS[0]
    runner.close()  # the bands' generator still open: closed first
    assert len(client.cancelled) == 2  # the band in flight and the job
    assert client.closed


def test_a_worker_that_cannot_read_the_input_names_it() -> None:
    from convcli.errors import ConvcliError

    missing = FileNotFoundError(2, "No such file or directory")
    runner = _runner(_Client(error=missing))
    bands = runner(_first_stop, _Job(Path("in/a.tif")), SPANS)  # type: ignore[arg-type]
    with pytest.raises(ConvcliError, match=r"^in/a\.tif: a Dask worker cannot read it"):
        next(bands)
    runner.close()


def test_two_bands_per_worker_thread_are_in_flight() -> None:
    client = _Client(workers=7)  # more than scheduler_info lists in some versions
    runner = _runner(client)
    spans = [(r, r + 1) for r in range(40)]
    bands = runner(_first_stop, _Job(Path("a.tif")), spans)  # type: ignore[arg-type]
    assert next(bands) == (0, 1)
    assert client.submitted == 14  # the window, before the first band comes back
    assert list(bands) == spans[1:]
    runner.close()
