"""Helpers for the hostile-user tests: run a real ``convcli`` process and check what it left.

Every hostile case asserts the same things: the exit code, a one-line ``Error:`` that
names the culprit, no ``Traceback``, no ``.tmp`` file left anywhere under the folder,
every input's sha256 unchanged, and exactly the set of files written.

    before = snapshot(tmp_path)
    r = run_convcli(["apply", "a.png", "-k", "sobel", "--montage", "a.png"], cwd=tmp_path)
    r.expect(2, error="a.png")
    assert_files(tmp_path, before, written=set())
"""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

TIMEOUT = 120.0


@dataclass
class Run:
    """What one ``convcli`` process did."""

    args: list[str]
    code: int
    out: str
    err: str

    def expect(self, code: int, *, error: str | None = None) -> Run:
        """Assert the exit code, no traceback or Python warning, and the error line.

        With ``error``, stderr must hold exactly one line starting ``Error:`` that
        contains ``error`` (a file name, a reason).
        """
        shown = f"args={self.args}\ncode={self.code}\nstdout:\n{self.out}\nstderr:\n{self.err}"
        assert self.code == code, shown
        for stream in (self.out, self.err):
            assert "Traceback" not in stream, shown
            assert "Warning:" not in stream, shown  # RuntimeWarning, UserWarning, ...
        if error is not None:
            lines = [
                line for line in self.err.splitlines() if line.startswith("Error:")
            ]
            assert len(lines) == 1, shown
            assert error in lines[0], shown
        return self


def run_convcli(
    args: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = TIMEOUT,
    file_bytes: int | None = None,
) -> Run:
    """Run ``python -m convcli ARGS`` in ``cwd`` and wait for it (no terminal).

    ``file_bytes`` limits every file the process writes (RLIMIT_FSIZE): a write
    past it fails with EFBIG, as on a full disk (Python ignores SIGXFSZ).
    """
    cmd = [sys.executable, "-m", "convcli", *map(str, args)]
    full_env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1", **(env or {})}

    def limit() -> None:
        if file_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))

    proc = subprocess.run(
        cmd,
        cwd=cwd,
        input=stdin,
        capture_output=True,
        env=full_env,
        timeout=timeout,
        check=False,
        preexec_fn=limit,
    )
    return Run(
        [str(a) for a in args],
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
    )


def start_convcli(
    args: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[str]:
    """Start ``python -m convcli ARGS`` in its own process group, for signal tests."""
    cmd = [sys.executable, "-m", "convcli", *map(str, args)]
    full_env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1", **(env or {})}
    return subprocess.Popen(
        cmd,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        start_new_session=True,
    )


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.02)


def descendants(pid: int) -> set[int]:
    """Every living process below ``pid`` (from /proc), for 'no process left behind'."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pids: Iterable[int]) -> set[int]:
    """The processes of ``pids`` that still exist and are not zombies."""
    left = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            left.add(pid)
    return left


def signal_group(proc: subprocess.Popen[str], sig: signal.Signals) -> None:
    """Send ``sig`` to the process group of ``proc`` (as a terminal's Ctrl-C does)."""
    os.killpg(proc.pid, sig)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[Path, str]:
    """Every regular file below ``folder`` with its sha256 (links not followed)."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            try:
                files[path.relative_to(folder)] = sha256(path)
            except OSError:  # unreadable on purpose
                files[path.relative_to(folder)] = "unreadable"
    return files


def assert_files(
    folder: Path, before: dict[Path, str], *, written: set[str] | Iterable[str]
) -> dict[Path, str]:
    """Assert: inputs unchanged, no ``.tmp`` left, and exactly ``written`` are new.

    ``written`` holds paths relative to ``folder`` (as strings). Returns the new
    snapshot.
    """
    after = snapshot(folder)
    leftovers = [p for p in after if p.name.endswith(".tmp")]
    assert leftovers == [], leftovers
    for path, digest in before.items():
        assert after.get(path) == digest, f"input {path} changed or vanished"
    new = {str(p) for p in after if p not in before}
    assert new == set(written), f"written {sorted(new)}, expected {sorted(written)}"
    return after


def write_image(
    path: Path, shape: tuple[int, ...] = (24, 32, 3), seed: int = 0
) -> Path:
    """Write a small random 8-bit image (the format from the ending)."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
    return path


def decodes(path: Path) -> bool:
    """Whether Pillow reads every pixel of ``path``."""
    try:
        with Image.open(path) as img:
            img.load()
    except Exception:  # any decoder failure means "not a whole image"
        return False
    return True
