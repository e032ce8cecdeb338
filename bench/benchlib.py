"""What the bench scripts share (bench_apply.py, bench_batch.py, bench_huge.py, bench_memory.py).

The scripts run as ``.venv/bin/python bench/bench_X.py``, so this folder is the
first entry of their ``sys.path`` and they import this module by its name
(``from benchlib import ...``), as they import page_block.py. Loading it
imports the standard library only (numpy and Pillow are imported by the
functions that need them), so a script whose own memory must stay small, as
bench_memory.py's must, can use it too.

* Installing what a user gets: a wheel of the checkout built by this
  interpreter's pip and installed into a venv, fresh or kept with ``--venv``
  (``install_wheel``), with this environment minus the bytecode switches
  (``contender_env``); ``step`` runs each install step.
* Timing whole processes: ``Launcher`` starts each command from a small
  stdlib-only process (``LAUNCHER``) and answers its wall and CPU seconds and
  its own peak resident memory (``os.wait4``); ``Rounds`` runs timed rounds
  within a time budget.
* ImageMagick: its Sobel command lines and finding a real binary on PATH.
* The report: the machine (CPU model, memory, checkout), number formats,
  Markdown tables, writing the report.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

ROOT = Path(__file__).resolve().parent.parent

# ---------------------------------------------------------------- install

# Environment variables a contender's process must not see: without the first
# two Python writes and reuses bytecode beside the sources, as on a user's
# machine; the last two would let a venv's Python import from the checkout.
BYTECODE_VARS = ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
VENV_DROPPED_VARS = ("PYTHONPATH", "PYTHONHOME")


def contender_env(editable: bool, pycache: Path) -> dict[str, str]:
    """This environment without the bytecode switches (see ``BYTECODE_VARS``)."""
    drop = BYTECODE_VARS if editable else BYTECODE_VARS + VENV_DROPPED_VARS
    env = {k: v for k, v in os.environ.items() if k not in drop}
    if editable:  # keep the shared checkout free of __pycache__ folders
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def bytecode_set() -> str:
    """The bytecode switches set in this environment, as ``K=V, ...`` ('' if none)."""
    return ", ".join(f"{k}={os.environ[k]}" for k in BYTECODE_VARS if k in os.environ)


def step(
    argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> str:
    """Run an install step; stop the bench with its output if it fails."""
    print(f"$ {shlex.join(argv)}", file=sys.stderr)
    proc = subprocess.run(
        argv, capture_output=True, text=True, env=env, cwd=cwd, check=False
    )
    if proc.returncode != 0:
        msg = (
            f"{shlex.join(argv)} failed ({proc.returncode}):\n"
            f"{(proc.stdout + proc.stderr).strip()[-3000:]}"
        )
        raise SystemExit(msg)
    return proc.stdout


@dataclass
class VenvInstall:
    """The checkout's wheel installed into a venv: its paths and environment."""

    venv: Path
    python: Path
    convcli: Path
    wheel: Path
    env: dict[str, str]
    reused: (
        bool  # a venv kept by an earlier run (``--venv``): only the wheel reinstalled
    )
    kept: bool  # ``--venv``: the venv outlives the run

    @property
    def fresh_text(self) -> str:
        """'a fresh venv, VENV (deleted afterwards)', or '(kept for later runs ...)'."""
        return f"a fresh venv, {self.venv} " + (
            "(kept for later runs: `--venv`)" if self.kept else "(deleted afterwards)"
        )


def install_wheel(
    venv_arg: Path | None, tmp: Path, requirements: list[str]
) -> VenvInstall:
    """Build the checkout's wheel; install it with ``requirements`` into a venv.

    The venv is ``venv_arg`` (created if missing, else reused: the wheel is
    reinstalled ``--no-deps --force-reinstall``) or a fresh one in ``tmp``.
    Every step runs with ``contender_env``.
    """
    env = contender_env(False, tmp / "pycache")
    wheels = tmp / "wheel"
    step(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-w",
            str(wheels),
            ".",
        ],
        cwd=ROOT,
    )
    found = sorted(wheels.glob("convcli-*.whl"))
    if len(found) != 1:
        msg = f"pip wheel left {[p.name for p in found]} in {wheels}, not one convcli wheel"
        raise SystemExit(msg)
    wheel = found[0]
    venv = venv_arg.resolve() if venv_arg else tmp / "venv"
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q"]
    reused = python.exists() and (venv / "bin" / "convcli").exists()
    if reused:
        step([*pip, "--no-deps", "--force-reinstall", str(wheel)], env)
    else:
        step([sys.executable, "-m", "venv", str(venv)], env)
    step([*pip, str(wheel), *requirements], env)
    return VenvInstall(
        venv,
        python,
        venv / "bin" / "convcli",
        wheel,
        env,
        reused,
        venv_arg is not None,
    )


# ---------------------------------------------------------------- timing

# The launcher: a small stdlib-only process that starts every timed command, so
# that the bench's own memory is not counted into the child's peak. One JSON
# line per job on stdin, one answer per job on stdout.
LAUNCHER = '''\
"""Run the commands sent as JSON lines; answer wall and CPU seconds and each child's peak RSS."""

import json
import os
import subprocess
import sys
import time

folder = sys.argv[1]
out_path = os.path.join(folder, "launcher.stdout")
err_path = os.path.join(folder, "launcher.stderr")
for line in sys.stdin:
    job = json.loads(line)
    if job["out"]:
        try:
            os.unlink(job["out"])
        except FileNotFoundError:
            pass
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            job["argv"], stdin=subprocess.DEVNULL, stdout=out, stderr=err
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    with open(out_path, "rb") as f:
        stdout = f.read().decode(errors="replace")
    with open(err_path, "rb") as f:
        stderr = f.read().decode(errors="replace")
    answer = {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "maxrss_kib": usage.ru_maxrss,
        "returncode": proc.returncode,
        "stdout": stdout,
        "stderr": stderr[-2000:],
    }
    print(json.dumps(answer), flush=True)
'''


@dataclass
class Run:
    """One finished process: wall and CPU seconds, peak RSS in MiB, stdout."""

    wall: float
    cpu: float
    peak_mib: float
    stdout: str
    returncode: int = 0
    stderr: str = ""


class Launcher:
    """The launcher process (``LAUNCHER``), with the contenders' environment.

    ``error_tail``: how many characters of a failed command's stderr its error
    gives.
    """

    def __init__(self, folder: Path, env: dict[str, str], error_tail: int) -> None:
        script = folder / "launcher.py"
        script.write_text(LAUNCHER)
        self.error_tail = error_tail
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(script), str(folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=folder,
        )

    def run(self, argv: list[str], out: Path | None = None, check: bool = True) -> Run:
        """Run ``argv`` once (removing ``out`` first); raise if it fails and ``check``."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        job = {"argv": argv, "out": str(out) if out is not None else None}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            msg = f"the launcher exited ({self.proc.wait()}) running {shlex.join(argv)}"
            raise RuntimeError(msg)
        answer = json.loads(line)
        if answer["returncode"] != 0 and check:
            msg = (
                f"{shlex.join(argv)} failed ({answer['returncode']}): "
                f"{answer['stderr'].strip()[-self.error_tail :]}"
            )
            raise RuntimeError(msg)
        return Run(
            answer["wall"],
            answer["cpu"],
            answer["maxrss_kib"] / 1024,
            answer["stdout"],
            answer["returncode"],
            answer["stderr"],
        )

    def close(self) -> None:
        """End the launcher (it exits at the end of its input)."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class Rounds:
    """Up to ``repeat`` timed rounds, stopping early rather than pass ``budget`` seconds.

    Before each round the time left is compared with the last round's length.
    After the loop: ``stopped`` says why it stopped early ("" if it did not),
    ``seconds`` is the time all rounds took.
    """

    def __init__(self, repeat: int, budget: float) -> None:
        self.repeat = repeat
        self.budget = budget
        self.stopped = ""
        self.seconds = 0.0

    def __iter__(self) -> Iterator[int]:
        t_loop = time.perf_counter()
        last_round = 0.0
        for r in range(self.repeat):
            spent = time.perf_counter() - t_loop
            if r and spent + last_round > self.budget:
                self.stopped = (
                    f"stopped after {r} rounds: the next would pass the {self.budget:.0f} s "
                    f"budget ({spent:.0f} s spent, last round {last_round:.0f} s)"
                )
                break
            t_round = time.perf_counter()
            yield r
            last_round = time.perf_counter() - t_round
        self.seconds = time.perf_counter() - t_loop


def convcli_sobel(
    convcli: str, command: str, src: str | Path, out: str | Path
) -> list[str]:
    """``convcli COMMAND SRC -k sobel --range rescale -o OUT``, the timed Sobel."""
    return [
        convcli,
        command,
        str(src),
        "-k",
        "sobel",
        "--range",
        "rescale",
        "-o",
        str(out),
    ]


# ---------------------------------------------------------------- ImageMagick

# ImageMagick's Sobel command lines (bench_apply.py and bench_batch.py run them).
IM_LIGHTEN = [
    "-define",
    "convolve:scale=!",
    "-define",
    "morphology:compose=Lighten",
    "-morphology",
    "Convolve",
    "Sobel:>",
]
IM_MAGNITUDE = [
    "-define",
    "convolve:scale=50%!",
    "-bias",
    "50%",
    "(",
    "-clone",
    "0",
    "-morphology",
    "Convolve",
    "Sobel",
    ")",
    "(",
    "-clone",
    "0",
    "-morphology",
    "Convolve",
    "Sobel:90",
    ")",
    "-delete",
    "0",
    "-function",
    "Polynomial",
    "2,-2,0.5",
    "-compose",
    "plus",
    "-composite",
    "-evaluate",
    "pow",
    "0.5",
]


def is_script(path: str) -> bool:
    """Whether ``path`` is an interpreted script (starts with ``#!``)."""
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"#!"
    except OSError:
        return False


def imagemagick_version(exe: str) -> str | None:
    """The version line of ImageMagick at ``exe``, or None if it is something else."""
    try:
        proc = subprocess.run(
            [exe, "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"^Version: (ImageMagick \S+ \S+.*?)\s*$", proc.stdout, re.M)
    return m.group(1) if proc.returncode == 0 and m else None


def find_imagemagick() -> tuple[str, str, str] | None:
    """ImageMagick's ``magick`` or ``convert`` on PATH: (path, version line, note).

    Every candidate must print "Version: ImageMagick" for ``-version`` (a
    stand-in ``convert`` that only shows files does not). A shell-script
    wrapper is passed over for a real binary of the same name later on PATH, so
    that its own start is not timed.
    """
    for name in ("magick", "convert"):
        found: list[tuple[str, str]] = []
        for folder in os.get_exec_path():
            exe = os.path.join(folder, name)
            if not (os.path.isfile(exe) and os.access(exe, os.X_OK)):
                continue
            if any(os.path.samefile(exe, e) for e, _ in found):
                continue
            version = imagemagick_version(exe)
            if version:
                found.append((exe, version))
        for exe, version in found:
            if not is_script(exe):
                first = shutil.which(name)
                note = "" if first == exe else f" (first on PATH: {first}, a wrapper)"
                return exe, version, f"{exe} -> {os.path.realpath(exe)}{note}"
        if found:
            exe, version = found[0]
            return exe, version, f"{exe} (a script wrapper; its start is timed too)"
    return None


def imagemagick_limits(exe: str) -> str:
    """ImageMagick's memory, map and thread limits (from its policy.xml)."""
    try:
        text = subprocess.run(
            [exe, "-list", "resource"], capture_output=True, text=True, check=False
        ).stdout
    except OSError:
        return "unknown"
    found = re.findall(r"^\s*(Memory|Map|Thread):\s*(\S+)", text, re.M)
    return ", ".join(f"{k.lower()} {v}" for k, v in found) or "unknown"


# ---------------------------------------------------------------- the machine

# The thread-related environment variables of the ImageMagick and OpenCV peers.
PEER_THREAD_VARS = ("OMP_NUM_THREADS", "MAGICK_THREAD_LIMIT", "OPENCV_FOR_THREADS_NUM")


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    m = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    return m.group(1).strip() if m else "unknown"


def mem_total() -> str:
    """MemTotal from /proc/meminfo, in GiB."""
    try:
        m = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
    except OSError:
        return "unknown"
    return f"{int(m.group(1)) / 2**20:.0f} GiB" if m else "unknown"


def git_state() -> str:
    """The commit of the checkout, and whether convcli/ has uncommitted changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            [
                "git",
                "--no-optional-locks",
                "-C",
                str(ROOT),
                "status",
                "--porcelain",
                "--",
                "convcli",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" with uncommitted changes in convcli/" if dirty else "")


def thread_env(keys: Iterable[str]) -> str:
    """Those of ``keys`` set in the environment, as ``K=V, ...`` ('none set' if none)."""
    return (
        ", ".join(f"{k}={os.environ[k]}" for k in keys if k in os.environ) or "none set"
    )


# ---------------------------------------------------------------- output checks


def load_rgb(path: Path) -> np.ndarray:
    """A PNG as a float64 (H, W, 3) array."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), dtype=np.float64)


def diff(got: np.ndarray, want: np.ndarray) -> str:
    """Max and mean |difference| in 8-bit levels, and the share off by more than 1."""
    if got.shape != want.shape:
        return f"shape {got.shape} != {want.shape}"
    d = abs(got - want)
    return (
        f"max {d.max():.0f} (inside the 1-px border {d[1:-1, 1:-1].max():.0f}), "
        f"mean {d.mean():.3f}, {(d > 1).mean() * 100:.2g} % off by >1"
    )


# ---------------------------------------------------------------- the report


def parse_size(text: str) -> tuple[int, int]:
    """``WxH`` as (W, H)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m or int(m.group(1)) < 3 or int(m.group(2)) < 3:
        msg = f"not a size WxH (at least 3x3): {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return int(m.group(1)), int(m.group(2))


def median(values: list[float]) -> float | None:
    """The median, or None for no values."""
    return statistics.median(values) if values else None


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None if either is missing."""
    return a / b if a is not None and b else None


def fmt(seconds: float | None) -> str:
    """Seconds with 3 significant digits, '-' for None."""
    return "-" if seconds is None else f"{seconds:.3g}"


def fmt_mib(mib: float | None) -> str:
    """MiB with no decimals ('-' for None)."""
    return "-" if mib is None else f"{mib:.0f}"


def fmt_ratio(value: float | None) -> str:
    """A ratio with 2 decimals, '-' for None."""
    return "-" if value is None else f"{value:.2f}"


def md_table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table with padded columns."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return (
            "| "
            + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
            + " |"
        )

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def write_report(report: str, out: Path) -> None:
    """Print the Markdown report and write it to ``out``."""
    print(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    print(f"\nwritten to {out}", file=sys.stderr)
