"""`-` reads the image from stdin, `-o -` writes the one output to stdout: real processes."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
from hostile import run_convcli, write_image
from PIL import Image


def _pipe(
    args: list[str], stdin: bytes, cwd: Path
) -> subprocess.CompletedProcess[bytes]:
    """Run convcli with bytes on stdin; TMPDIR is the test's, to see what is left."""
    tmp = cwd / "tmpdir"
    tmp.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "convcli", *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp), "COLUMNS": "100"},
        timeout=120,
        check=False,
    )


def test_a_pipe_round_trip_equals_the_file_result(tmp_path: Path) -> None:
    src = write_image(tmp_path / "a.png", (40, 50, 3))
    run_convcli(
        ["apply", "a.png", "-k", "sobel", "-o", "file.png"], cwd=tmp_path
    ).expect(0)
    done = _pipe(["apply", "-", "-k", "sobel", "-o", "-"], src.read_bytes(), tmp_path)
    assert done.returncode == 0, done.stderr
    piped = np.asarray(Image.open(io.BytesIO(done.stdout)))
    np.testing.assert_array_equal(piped, np.asarray(Image.open(tmp_path / "file.png")))
    # the table went to stderr, naming stdin and stdout as given
    err = done.stderr.decode()
    assert "- x sobel" in err
    assert "->  -" in err
    assert "tmpdir" not in err
    assert list((tmp_path / "tmpdir").iterdir()) == []  # the temporary folder is gone
    # decoded by a second reader through a pipe, as a shell user would
    check = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys,io;from PIL import Image;"
            "print(Image.open(io.BytesIO(sys.stdin.buffer.read())).size)",
        ],
        input=done.stdout,
        capture_output=True,
        check=True,
    )
    assert check.stdout.strip() == b"(50, 40)"


def test_format_chooses_what_stdout_carries(tmp_path: Path) -> None:
    src = write_image(tmp_path / "a.png")
    for fmt, magic in [("jpeg", b"\xff\xd8"), ("tiff", b"II"), ("webp", b"RIFF")]:
        done = _pipe(
            ["apply", "-", "-k", "blur", "-o", "-", "--format", fmt],
            src.read_bytes(),
            tmp_path,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(magic), fmt
        assert Image.open(io.BytesIO(done.stdout)).size == (32, 24)


def test_stdin_into_a_folder_and_json_on_stderr(tmp_path: Path) -> None:
    src = write_image(tmp_path / "a.png")
    done = _pipe(["apply", "-", "-k", "blur", "-o", "out/"], src.read_bytes(), tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "stdin.blur.png").is_file()
    done = _pipe(
        ["apply", "-", "-k", "blur", "-o", "-", "--json"], src.read_bytes(), tmp_path
    )
    assert done.stdout.startswith(b"\x89PNG")
    assert b'"path": "-"' in done.stderr


def test_pipes_refuse_what_they_cannot_do(tmp_path: Path) -> None:
    src = write_image(tmp_path / "a.png")
    write_image(tmp_path / "b.png", seed=1)
    cases = [
        (["apply", "-", "-k", "sobel"], src.read_bytes(), "needs -o"),
        (
            ["apply", "-", "-", "-k", "sobel", "-o", "x/"],
            src.read_bytes(),
            "give - once",
        ),
        (["apply", "-", "-k", "sobel", "-o", "-"], b"not an image", "not an image"),
        (["apply", "-", "-k", "sobel", "-o", "-"], b"", "stdin is empty"),
        (
            ["apply", "a.png", "b.png", "-k", "sobel", "-o", "-"],
            b"",
            "-o - writes one image to stdout, but there are 2 outputs",
        ),
        (
            ["apply", "a.png", "-k", "sobel", "-o", "-", "--format", "xyz"],
            b"",
            "--format xyz",
        ),
    ]
    for args, data, message in cases:
        done = _pipe(args, data, tmp_path)
        err = done.stderr.decode()
        assert done.returncode == 2, (args, err)
        assert done.stdout == b"", args
        assert err.count("\n") == 1, err
        assert err.startswith("Error: "), (args, err)
        assert message in err, (args, err)
        assert "Traceback" not in err
    # a truncated image on stdin: the pair fails (exit 1), nothing on stdout
    done = _pipe(
        ["apply", "-", "-k", "sobel", "-o", "-"], src.read_bytes()[:200], tmp_path
    )
    assert done.returncode == 1
    assert done.stdout == b""
    assert "- (stdin)" in done.stderr.decode()
    assert "tmpdir" not in done.stderr.decode()
    assert list((tmp_path / "tmpdir").iterdir()) == []


def test_a_terminal_as_binary_stdout_is_refused(tmp_path: Path) -> None:
    import os

    write_image(tmp_path / "a.png")
    leader, follower = os.openpty()
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "convcli",
                "apply",
                "a.png",
                "-k",
                "sobel",
                "-o",
                "-",
            ],
            stdout=follower,
            stderr=subprocess.PIPE,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert done.returncode == 2
    assert done.stderr.decode().startswith("Error: -o -: stdout is a terminal")


def test_the_readmes_pipe_runs_as_written(tmp_path: Path) -> None:
    """The README's shell example, run by bash in a copy of the checkout's samples."""
    import os
    import re
    import shutil

    readme = Path(__file__).resolve().parents[1] / "README.md"
    blocks = re.findall(r"```sh\n(.*?)```", readme.read_text(encoding="utf-8"), re.S)
    lines = [
        line for block in blocks for line in block.splitlines() if "| convcli" in line
    ]
    assert lines, "the README shows a pipe"
    shutil.copytree(readme.parent / "sample_images", tmp_path / "sample_images")
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    for line in lines:
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", line],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (line, done.stderr.decode())
    with Image.open(tmp_path / "edges.png") as img:
        assert img.size == (600, 400)


def test_a_signal_while_stdout_is_written_leaves_a_whole_image(tmp_path: Path) -> None:
    """SIGTERM while a slow reader holds the pipe full: the image still ends whole."""
    import os
    import signal
    import time

    x = np.random.default_rng(2).integers(0, 256, (600, 800, 3), dtype=np.uint8)
    Image.fromarray(x).save(tmp_path / "a.png")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "convcli",
            "apply",
            "a.png",
            "-k",
            "blur",
            "-o",
            "-",
            "-q",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # The copy has begun; the pipe then fills. (os.read: communicate reads the
    # raw pipe, past anything a buffered read would keep.)
    first = os.read(proc.stdout.fileno(), 1024)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    rest, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    with Image.open(io.BytesIO(first + rest)) as img:
        img.load()
        assert img.size == (800, 600)
