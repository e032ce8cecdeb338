"""Issue 12, hostile users of kernels and machine-readable output (real processes).

Every case runs ``python -m convcli`` and checks what it left: the exit code, one
``Error:`` line naming the file or the reason, no traceback or Python warning, no
``.tmp``, every input unchanged, and exactly the files written (tests/hostile.py).
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from convcli.kernels import inline_name
from tests.hostile import (
    TIMEOUT,
    Run,
    assert_files,
    decodes,
    run_convcli,
    snapshot,
    write_image,
)


def strict_json(text: str) -> Any:
    """Parse ``text`` as strict JSON: ``NaN``, ``Infinity`` and ``-Infinity`` fail."""

    def refuse(name: str) -> None:
        msg = f"not strict JSON: {name}"
        raise AssertionError(msg)

    return json.loads(text, parse_constant=refuse)


def write(folder: Path, name: str, text: str | bytes) -> Path:
    path = folder / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    """An ``.npy`` version 1.0 header claiming ``shape`` (the data is up to the caller)."""
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
    header += " " * (-(len(header) + 11) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode()


def run_limited(args: list[str], *, cwd: Path, file_bytes: int) -> Run:
    """Run convcli with files limited to ``file_bytes`` (writing more fails: EFBIG)."""
    return run_convcli(args, cwd=cwd, file_bytes=file_bytes)


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    return write_image(tmp_path / "a.png")


def refused_by_apply(folder: Path, spec: str, culprit: str) -> Run:
    """``apply a.png -k SPEC`` must be exit 2 naming ``culprit``, nothing written."""
    before = snapshot(folder)
    r = run_convcli(["apply", "a.png", "-k", spec], cwd=folder).expect(2, error=culprit)
    assert_files(folder, before, written=set())
    return r


# ---------------------------------------------------------------------------
# Case 10: JSON kernels that broke the decoder


CASE_10 = {
    "nested_100000_deep": '{"weights": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "nested_900_deep": '{"weights": ' + "[" * 900 + "1" + "]" * 900 + "}",
    "integer_of_400_digits": '{"weights": [[1' + "0" * 399 + ", 1]]}",
    "integer_of_5000_digits": '{"weights": [[1' + "0" * 4999 + ", 1]]}",
    "params_a_list": '{"weights": [[1, 2]], "params": [1, 2]}',
    "params_sigma_an_object": '{"weights": [[1, 2]], "params": {"sigma": {"a": 1}}}',
}


@pytest.mark.parametrize("text", CASE_10.values(), ids=CASE_10.keys())
def test_issue_12_case_10_json_kernels_are_one_line_errors(
    tmp_path: Path, photo: Path, text: str
) -> None:
    write(tmp_path, "k.json", text)
    refused_by_apply(tmp_path, "k.json", "k.json")
    run_convcli(["kernels", "k.json"], cwd=tmp_path).expect(2, error="k.json")


def test_issue_12_case_10_integer_weights_float64_holds_are_read(
    tmp_path: Path,
) -> None:
    # Accepted: a 300-digit integer is finite as float64 (rounded to it).
    write(tmp_path, "k.json", '{"weights": [[1' + "0" * 299 + ", 0]]}")
    before = snapshot(tmp_path)
    r = run_convcli(["kernels", "k.json", "--json"], cwd=tmp_path).expect(0)
    assert strict_json(r.out)["filters"][0]["weights"] == [[1e299, 0.0]]
    # Refused: 309 digits beyond float64's largest (1.8e308), named with the file.
    write(tmp_path, "big.json", '{"weights": [[2' + "0" * 308 + ", 0]]}")
    r = run_convcli(["kernels", "big.json"], cwd=tmp_path).expect(2, error="big.json")
    assert "(309 digits) is beyond float64's range" in r.err
    assert_files(tmp_path, before, written={"big.json"})


# ---------------------------------------------------------------------------
# Case 11: an .npy header that claims more than the file holds


def test_issue_12_case_11_npy_header_claiming_74_gib(
    tmp_path: Path, photo: Path
) -> None:
    write(tmp_path, "huge.npy", npy_header((100_000, 100_000)) + bytes(64))
    start = time.monotonic()
    r = refused_by_apply(tmp_path, "huge.npy", "huge.npy")
    assert "claims shape (100000, 100000)" in r.err
    assert time.monotonic() - start < 30


@pytest.mark.parametrize(
    ("shape", "data", "message"),
    [
        ((3, 3), 64, "claims shape (3, 3) of float64 (72 bytes) but the file holds 64"),
        ((3, 3), 80, "but the file holds 80 bytes"),  # trailing bytes: altered
        ((1025, 1025), 8, "a kernel has at most 1048576"),
        ((0, 3), 0, "expected a non-empty 2-D or 4-D array; got shape (0, 3)"),
    ],
)
def test_issue_12_case_11_npy_header_checked_against_the_file(
    tmp_path: Path, shape: tuple[int, ...], data: int, message: str
) -> None:
    write(tmp_path, "k.npy", npy_header(shape) + bytes(data))
    before = snapshot(tmp_path)
    r = run_convcli(["kernels", "k.npy"], cwd=tmp_path).expect(2, error="k.npy")
    assert message in r.err
    assert_files(tmp_path, before, written=set())


# ---------------------------------------------------------------------------
# Case 12: generator parameters, and ranks of extreme kernels


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "gaussian:sigma=1e308",
            "sigma must be from 0.01 to 1000 (pixels); got 1e+308",
        ),
        (
            "gaussian:sigma=1e-300",
            "sigma must be from 0.01 to 1000 (pixels); got 1e-300",
        ),
        ("gaussian:sigma=100", "needs an automatic size of 601"),
        ("gaussian:size=1e999", "'1e999' is beyond float64's range"),
        ("log:sigma=1e-300", "sigma must be from 0.01 to 1000"),
        ("dog:sigma2=1e308", "sigma2 must be from 0.01 to 1000"),
        ("unsharp:amount=1e308", "amount must be from -1000 to 1000; got 1e+308"),
        ("box:size=1e308", "size must be a whole number from 1 to 255; got 1e+308"),
        ("motion:length=1e308", "length must be a whole number from 2 to 255"),
        ("motion:angle=1e308", "angle must be from -360 to 360; got 1e+308"),
        ("binomial:size=-1e308", "size must be a whole number from 2 to 255"),
    ],
)
def test_issue_12_case_12_every_generator_parameter_is_bounded(
    tmp_path: Path, photo: Path, spec: str, message: str
) -> None:
    r = refused_by_apply(tmp_path, spec, spec)
    assert message in r.err
    run_convcli(["kernels", spec], cwd=tmp_path).expect(2, error=message)


@pytest.mark.parametrize(
    ("spec", "rank"),
    [
        ("1e-300,2e-300;2e-300,4e-300", 1),
        ("1e-300,0;0,1e-300", 2),
        ("1e300,1e300;1e300,1e300", 1),
        ("1e300,0;0,-1e300", 2),
        ("gaussian:sigma=0.01", 1),
        ("gaussian:sigma=1000,size=255", 1),
        ("log:sigma=0.01", 2),  # a spike minus its mean
    ],
)
def test_issue_12_case_12_rank_of_finite_extreme_kernels(
    tmp_path: Path, spec: str, rank: int
) -> None:
    r = run_convcli(["kernels", spec, "--json"], cwd=tmp_path).expect(0)
    doc = strict_json(r.out)
    assert doc["rank"] == rank
    assert doc["separable"] is (rank == 1)
    run_convcli(["kernels", spec], cwd=tmp_path).expect(0)


# ---------------------------------------------------------------------------
# Case 21: JSON output is strict


@pytest.mark.parametrize(
    ("args", "key", "expected"),
    [
        (["-i", "1e308 1e308; 1e308 1e308", "-k", "1 1; 1 1"], "output", "Infinity"),
        (["-i", "1 2; 3 4", "-k", "1 1; 1 1", "--bias", "inf"], "output", "Infinity"),
        (["-i", "1 2; 3 4", "-k", "1 1; 1 1", "--bias", "-inf"], "bias", "-Infinity"),
        (["-i", "1 2; 3 4", "-k", "1 1; 1 1", "--bias", "nan"], "output", "NaN"),
        (["-i", "1e308 -1e308", "-k", "10 10"], "output", "NaN"),  # inf - inf
    ],
)
def test_issue_12_case_21_trace_json_is_strict(
    tmp_path: Path, args: list[str], key: str, expected: str
) -> None:
    before = snapshot(tmp_path)
    r = run_convcli(["trace", *args, "--json"], cwd=tmp_path).expect(0)
    doc = strict_json(r.out)
    assert np.ravel(doc[key]).tolist()[0] == expected
    assert float(np.ravel(doc[key])[0]) == float(expected) or expected == "NaN"
    for step in doc["steps"]:  # every number is a number or one of the three strings
        for value in (step["sum"], step["value"], step["bias"]):
            assert isinstance(value, float) or value in ("Infinity", "-Infinity", "NaN")
    assert_files(tmp_path, before, written=set())


def test_issue_12_case_21_trace_json_only_and_gif_are_strict(tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    args = ["trace", "-i", "1e308 1e308 1; 1e308 1e308 1", "-k", "1 1; 1 1"]
    r = run_convcli([*args, "--json", "--only", "0,1", "--gif", "t.gif"], cwd=tmp_path)
    doc = strict_json(r.expect(0).out)
    assert [s["value"] for s in doc["steps"]] == ["Infinity"]
    assert_files(tmp_path, before, written={"t.gif"})
    assert decodes(tmp_path / "t.gif")


@pytest.mark.parametrize(
    "args",
    [
        ["kernels", "--json"],
        ["kernels", "sobel", "--json"],
        ["kernels", "gaussian:sigma=2", "--json"],
        ["kernels", "1e300,1e300;1e300,-1e300", "--json"],
        ["kernels", "k.json", "--json"],
    ],
)
def test_issue_12_case_21_kernels_json_is_strict(
    tmp_path: Path, args: list[str]
) -> None:
    write(tmp_path, "k.json", '{"weights": [[1e300, 1e300]], "bias": 1e308}')
    before = snapshot(tmp_path)
    r = run_convcli(args, cwd=tmp_path).expect(0)
    doc = strict_json(r.out)
    for entry in doc if isinstance(doc, list) else [doc]:
        assert isinstance(entry["sum"], float)
        assert isinstance(entry["rank"], int)
    assert_files(tmp_path, before, written=set())


# ---------------------------------------------------------------------------
# Case 22: every kernel error names the file


@pytest.mark.parametrize(
    ("name", "text", "culprit"),
    [
        ("inf.txt", "1 1e999\n", "inf.txt:1:3: '1e999' is beyond float64's range"),
        ("bias.txt", "bias: 1e999\n1\n", "bias.txt:1:1: '1e999' is beyond"),
        ("f.json", '{"weights": [[1, 1e999]]}', "f.json: the number 1e999 is beyond"),
        (
            "x.json",
            '{"weights": [[1]], "params": {"sigma": "x"}}',
            "x.json: params.sigma",
        ),
        ("abc.json", '{"weights": [[1]], "params": "abc"}', "abc.json: 'params' must"),
        ("nan.json", '{"weights": [[1, NaN]]}', "nan.json: NaN is not a number"),
        ("big.txt", "1e308 1e308\n1e308 1e308\n", "big.txt: the weights are too large"),
        (
            "bank.txt",
            "--- a\n1 1\n--- b\n1e308 1e308\n",
            "bank.txt: the weights of filter 1",
        ),
        (
            "scale.txt",
            "scale: 1e300\n1e10 1\n",
            "scale.txt:1: scale 1e300 takes the weights",
        ),
        ("k.npy", None, "k.npy: the weights are too large"),
    ],
)
def test_issue_12_case_22_kernel_errors_name_the_file(
    tmp_path: Path, photo: Path, name: str, text: str | None, culprit: str
) -> None:
    if text is None:
        np.save(tmp_path / name, np.full((2, 2), 1e308))
    else:
        write(tmp_path, name, text)
    refused_by_apply(tmp_path, name, culprit)
    run_convcli(["trace", "-i", "1 2; 3 4", "-k", name], cwd=tmp_path).expect(
        2, error=culprit
    )


def test_issue_12_case_22_inline_kernel_of_1e308_names_the_spec(
    tmp_path: Path, photo: Path
) -> None:
    refused_by_apply(tmp_path, "1e308,1e308", "inline kernel '1e308,1e308'")


# ---------------------------------------------------------------------------
# Inline kernel names (case 4's kernel half)


def test_issue_12_case_4_two_inline_kernels_get_distinct_names(
    tmp_path: Path, photo: Path
) -> None:
    a, b = "1,0;0,-1", "0,1;-1,0"
    names = [inline_name([[1, 0], [0, -1]]), inline_name([[0, 1], [-1, 0]])]
    assert names == ["inline-3163ff", "inline-59739b"]  # stable: sha256, documented
    before = snapshot(tmp_path)
    run_convcli(["apply", "a.png", "-k", a, "-k", b], cwd=tmp_path).expect(0)
    assert_files(tmp_path, before, written={f"a.{n}.png" for n in names})


def test_issue_12_inline_names_hash_the_weights_not_the_spelling(
    tmp_path: Path,
) -> None:
    specs = ["1,0;0,-1", "1 0; 0 -1", "1.0,-0;0,-1e0", "2x2: 1 0 0 -1", "2: 1 0 0 -1"]
    names = set()
    for spec in specs:
        r = run_convcli(["kernels", spec, "--json"], cwd=tmp_path).expect(0)
        names.add(strict_json(r.out)["name"])
    assert names == {"inline-3163ff"}
    r = run_convcli(["kernels", "1,0;0,-1;0,0", "--json"], cwd=tmp_path).expect(0)
    assert strict_json(r.out)["name"] != "inline-3163ff"  # the shape counts too


def test_issue_12_kernel_name_longer_than_a_file_name_loads(tmp_path: Path) -> None:
    # Kept as given (output naming shortens it, see test_hostile_apply).
    write(tmp_path, "long.txt", "name: " + "n" * 300 + "\n1 0\n0 1\n")
    r = run_convcli(["kernels", "long.txt", "--json"], cwd=tmp_path).expect(0)
    assert strict_json(r.out)["name"] == "n" * 300
    run_convcli(["trace", "-i", "1 2; 3 4", "-k", "long.txt"], cwd=tmp_path).expect(0)


# ---------------------------------------------------------------------------
# trace --gif: the plan checks where the GIF goes


@pytest.fixture
def layer(tmp_path: Path) -> list[str]:
    write(tmp_path, "m.txt", "1 2 3\n4 5 6\n7 8 9\n")
    write(tmp_path, "k.txt", "1 0\n0 -1\n")
    return ["trace", "-i", "m.txt", "-k", "k.txt"]


@pytest.mark.parametrize(
    ("target", "culprit"),
    [
        ("m.txt", "--gif m.txt is the input -i m.txt"),
        ("k.txt", "--gif k.txt is the input -k k.txt"),
        ("./sub/../m.txt", "is the input -i m.txt"),
        ("hard.gif", "--gif hard.gif is the input -i m.txt"),  # a hard link
        ("soft.gif", "--gif soft.gif is the input -k k.txt"),  # a symbolic link
    ],
)
def test_issue_12_trace_gif_onto_an_input(
    tmp_path: Path, layer: list[str], target: str, culprit: str
) -> None:
    (tmp_path / "sub").mkdir()
    os.link(tmp_path / "m.txt", tmp_path / "hard.gif")
    (tmp_path / "soft.gif").symlink_to("k.txt")
    before = snapshot(tmp_path)
    run_convcli([*layer, "--gif", target], cwd=tmp_path).expect(2, error=culprit)
    assert_files(tmp_path, before, written=set())
    assert (tmp_path / "soft.gif").is_symlink()


def test_issue_12_trace_gif_onto_a_kernel_read_as_gif_named_text(
    tmp_path: Path,
) -> None:
    # A text kernel may be named k.gif; --gif k.gif must not replace it.
    write(tmp_path, "k.gif", "1 0\n0 -1\n")
    before = snapshot(tmp_path)
    args = ["trace", "-i", "1 2; 3 4", "-k", "k.gif", "--gif", "k.gif"]
    run_convcli(args, cwd=tmp_path).expect(2, error="--gif k.gif is the input -k k.gif")
    assert_files(tmp_path, before, written=set())


@pytest.mark.parametrize(
    ("target", "culprit"),
    [
        ("missing/t.gif", "missing/t.gif: cannot write in missing: No such file"),
        ("folder.gif", "folder.gif: is a folder"),
        ("folder", "folder: --gif writes a GIF"),
        ("/dev/null", "/dev/null: --gif writes a GIF"),
        ("null.gif", "null.gif: is not a regular file"),  # a link to /dev/null
        ("/proc/t.gif", "/proc/t.gif: cannot write in /proc"),  # root cannot either
        ("t.png", "t.png: --gif writes a GIF; give a name ending in .gif"),
    ],
)
def test_issue_12_trace_gif_into_an_unusable_path(
    tmp_path: Path, layer: list[str], target: str, culprit: str
) -> None:
    (tmp_path / "folder.gif").mkdir()
    (tmp_path / "folder").mkdir()
    (tmp_path / "null.gif").symlink_to(os.devnull)
    before = snapshot(tmp_path)
    run_convcli([*layer, "--gif", target], cwd=tmp_path).expect(2, error=culprit)
    assert_files(tmp_path, before, written=set())


def test_issue_12_trace_gif_into_a_read_only_folder(
    tmp_path: Path, layer: list[str]
) -> None:
    locked = tmp_path / "ro"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        if os.access(locked, os.W_OK):  # root: a mode does not stop it
            pytest.skip("this user writes into read-only folders (root)")
        before = snapshot(tmp_path)
        run_convcli([*layer, "--gif", "ro/t.gif"], cwd=tmp_path).expect(
            2, error="ro/t.gif: cannot write in ro: Permission denied"
        )
        assert_files(tmp_path, before, written=set())
    finally:
        locked.chmod(0o755)


def test_issue_12_trace_gif_write_that_fails_is_exit_1(tmp_path: Path) -> None:
    # Files are limited to 4 KiB: the GIF's write fails midway (EFBIG).
    before = snapshot(tmp_path)
    args = ["trace", "--demo", "cs231n", "--gif", "t.gif", "--summary"]
    r = run_limited(args, cwd=tmp_path, file_bytes=4096)
    r.expect(1, error="t.gif: cannot write: File too large")
    assert r.out == ""  # the text view is not printed after a failed write
    assert_files(tmp_path, before, written=set())


def test_issue_12_trace_gif_of_512_steps_in_bounded_memory(tmp_path: Path) -> None:
    # The largest trace (512 steps of a 16x16 input) once held every RGB frame:
    # gigabytes. Frames are now written one at a time.
    rng = np.random.default_rng(0)
    write(
        tmp_path,
        "m.txt",
        "\n".join(" ".join(map(str, r)) for r in rng.integers(0, 9, (16, 16))),
    )
    write(tmp_path, "k.txt", "--- a\n1 0\n0 -1\n--- b\n0 1\n-1 0\n")
    before = snapshot(tmp_path)
    args = ["trace", "-i", "m.txt", "-k", "k.txt", "--padding", "same", "--summary"]
    code = (
        "import resource, runpy, sys;"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30));"
        f"sys.argv = ['convcli', *{[*args, '--gif', 't.gif']!r}];"
        "runpy.run_module('convcli', run_name='__main__')"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        timeout=600,
        check=False,
        env={**os.environ, "COLUMNS": "120", "NO_COLOR": "1"},
    )
    Run(args, proc.returncode, proc.stdout.decode(), proc.stderr.decode()).expect(0)
    assert_files(tmp_path, before, written={"t.gif"})
    with Image.open(tmp_path / "t.gif") as gif:
        assert gif.n_frames == 2 * 16 * 16


# ---------------------------------------------------------------------------
# New hostile cases in the kernel and trace area


@pytest.mark.parametrize(
    ("make", "spec", "culprit"),
    [
        ("folder", "dir.txt", "dir.txt: is a folder, not a kernel file"),
        ("fifo", "fifo.txt", "fifo.txt: is a FIFO (named pipe), not a kernel file"),
        (None, "/dev/zero", "/dev/zero: is a character device, not a kernel file"),
        ("sparse", "sparse.txt", "sparse.txt: 2147483648 bytes is too large"),
        ("link", "loop.txt", "loop.txt"),  # a symlink to itself
    ],
)
def test_issue_12_new_kernel_file_that_is_no_regular_file(
    tmp_path: Path, photo: Path, make: str | None, spec: str, culprit: str
) -> None:
    path = tmp_path / spec
    if make == "folder":
        path.mkdir()
    elif make == "fifo":
        os.mkfifo(path)  # reading it would block for ever
    elif make == "sparse":
        with path.open("wb") as f:
            f.truncate(2 << 30)
    elif make == "link":
        path.symlink_to(spec)
    start = time.monotonic()
    refused_by_apply(tmp_path, spec, culprit)
    run_convcli(["trace", "-i", spec, "-k", "1"], cwd=tmp_path).expect(2, error=spec)
    assert time.monotonic() - start < 60


def test_issue_12_new_pickle_disguised_as_npy_never_runs(
    tmp_path: Path, photo: Path
) -> None:
    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (open, ("PWNED", "w"))

    write(tmp_path, "evil.npy", pickle.dumps(Payload()))
    np.save(
        tmp_path / "obj.npy", np.array([[{"a": 1}]], dtype=object), allow_pickle=True
    )
    np.savez(tmp_path / "zip", a=np.ones((2, 2)))
    (tmp_path / "zip.npz").rename(tmp_path / "zip.npy")
    for name, culprit in [
        ("evil.npy", "evil.npy: not a readable .npy array (the magic string"),
        ("obj.npy", "obj.npy: not a readable .npy array (it holds Python objects"),
        ("zip.npy", "zip.npy: not a readable .npy array"),
    ]:
        refused_by_apply(tmp_path, name, culprit)
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize(
    ("dtype", "culprit"),
    [
        (
            np.complex128,
            "c.npy: .npy holds dtype complex128; a kernel's weights are real",
        ),
        ([("a", "<f8"), ("b", "<i4")], "c.npy: .npy holds dtype [('a', '<f8')"),
        ("U3", "c.npy: .npy holds dtype <U3"),
        ("M8[s]", "c.npy: .npy holds dtype datetime64[s]"),
    ],
)
def test_issue_12_new_npy_of_other_dtypes(
    tmp_path: Path, photo: Path, dtype: Any, culprit: str
) -> None:
    np.save(tmp_path / "c.npy", np.zeros((2, 2), dtype=dtype))
    refused_by_apply(tmp_path, "c.npy", culprit)


def test_issue_12_new_npy_of_every_real_dtype_and_order(tmp_path: Path) -> None:
    weights = np.arange(6).reshape(2, 3)
    for dtype in ("<f2", ">f8", "<i1", ">u4", "?"):
        np.save(tmp_path / "k.npy", weights.astype(dtype))
        r = run_convcli(["kernels", "k.npy", "--json"], cwd=tmp_path).expect(0)
        got = strict_json(r.out)["filters"][0]["weights"]
        assert got == weights.astype(dtype).astype(float).tolist(), dtype
    np.save(tmp_path / "k.npy", np.asfortranarray(weights))
    r = run_convcli(["kernels", "k.npy", "--json"], cwd=tmp_path).expect(0)
    assert strict_json(r.out)["filters"][0]["weights"] == weights.tolist()


@pytest.mark.parametrize(
    ("text", "culprit"),
    [
        (
            '{"weights": [[1]], "weights": [[2]]}',
            "k.json: key 'weights' is given twice",
        ),
        ('{"filters": [{"weights": [[1]], "name": "a", "name": "b"}]}', "given twice"),
        (
            '{"weights": [[true, 2]]}',
            "k.json: weights: not a rectangular array of numbers (true",
        ),
        (
            '{"weights": [["1", 2]]}',
            'k.json: weights: not a rectangular array of numbers ("1"',
        ),
        ('{"weights": [[1]], "name": ["a"]}', "k.json: 'name' must be a string"),
        (
            '{"weights": [[1]], "name": "\\u001b[2J"}',
            "k.json: 'name' holds the control character",
        ),
        (
            '{"weights": [[1]], "params": {"sigma": true}}',
            "k.json: params.sigma must be a number",
        ),
        (
            '{"weights": [[1]], "bias": [1, [2]]}',
            "k.json: bias[1] must be a string or a number",
        ),
    ],
)
def test_issue_12_new_json_kernel_tricks(
    tmp_path: Path, photo: Path, text: str, culprit: str
) -> None:
    write(tmp_path, "k.json", text)
    refused_by_apply(tmp_path, "k.json", culprit)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("bom.txt", b"\xef\xbb\xbfname: k\n1 2\n3 4\n"),
        ("crlf.txt", b"name: k\r\n1 2\r\n3 4\r\n"),
        ("utf16.txt", "name: k\n1 2\n3 4\n".encode("utf-16")),
        ("bom.json", b'\xef\xbb\xbf{"name": "k", "weights": [[1, 2], [3, 4]]}'),
    ],
)
def test_issue_12_new_text_kernels_with_bom_crlf_or_utf16_are_read(
    tmp_path: Path, photo: Path, name: str, data: bytes
) -> None:
    write(tmp_path, name, data)
    before = snapshot(tmp_path)
    r = run_convcli(["kernels", name, "--json"], cwd=tmp_path).expect(0)
    doc = strict_json(r.out)
    assert (doc["name"], doc["filters"][0]["weights"]) == ("k", [[1, 2], [3, 4]])
    run_convcli(["apply", "a.png", "-k", name], cwd=tmp_path).expect(0)
    output = f"a.{Path(name).stem}.png"  # a kernel file names its outputs by its file
    assert_files(tmp_path, before, written={output})
    assert decodes(tmp_path / output)


@pytest.mark.parametrize(
    ("data", "culprit"),
    [
        (bytes(range(256)) * 8, "k.txt: not a text kernel file (not UTF-8 text)"),
        (b"1 2\x00\x00\n", "k.txt: not a text kernel file (it holds NUL bytes"),
        (
            "1 2\n".encode("utf-16-le"),
            "k.txt: not a text kernel file (it holds NUL bytes",
        ),
        (
            b"name: a\x1b]0;pwned\x07\n1\n",
            "k.txt:1: the name holds the control character",
        ),
        (
            b"--- \x1b[31mred\n1\n",
            "k.txt:1: the filter name holds the control character",
        ),
        (b"scale: 1/0\n1\n", "k.txt:1: '1/0' divides by zero"),
        (b"bias: nan\n1\n", "k.txt:1:1: weight 'nan' is not finite"),
        (
            b"1 " + b"9" * 400 + b"\n",
            "k.txt:1:3: '999999999999...999999999999 (400 characters)' is beyond",
        ),
    ],
)
def test_issue_12_new_text_kernel_garbage(
    tmp_path: Path, photo: Path, data: bytes, culprit: str
) -> None:
    write(tmp_path, "k.txt", data)
    r = refused_by_apply(tmp_path, "k.txt", culprit)
    assert "\x1b" not in r.err  # a control character is shown escaped, never sent


@pytest.mark.parametrize(
    ("spec", "culprit"),
    [
        (
            "gaussian:sigma=1,sigma=2",
            "gaussian:sigma=1,sigma=2: parameter 'sigma' is given twice",
        ),
        ("9" * 5000 + "x1: 1", "sizes and origins are at most 6 digits"),
        ("3x3+" + "1" * 5000 + "+1: 1 2 3 4 5 6 7 8 9", "at most 6 digits"),
        ("1," * 60000 + "1", None),  # 60001 values: a long, valid inline kernel
    ],
)
def test_issue_12_new_hostile_specs(
    tmp_path: Path, photo: Path, spec: str, culprit: str | None
) -> None:
    if culprit is None:
        r = run_convcli(["kernels", spec, "--json"], cwd=tmp_path).expect(0)
        assert strict_json(r.out)["shape"] == [1, 60001]
        return
    refused_by_apply(tmp_path, spec, culprit)


@pytest.mark.parametrize(
    ("args", "culprit"),
    [
        (
            ["-i", ";".join([" ".join(["1"] * 17)] * 17), "-k", "1"],
            "up to 16x16 per channel; got 17x17",
        ),
        (
            ["-i", "1 2; 3 4", "-k", "big.txt", "--padding", "32"],  # 4 steps
            "padded input up to 64x64 per channel; got 66x66",
        ),
        (
            ["-i", "1 2; 3 4", "-k", "1 1; 1 1", "--dilation", "99999999999999999999"],
            "dilation",
        ),
        (
            ["--demo", "cs231n", "--bias", "1,2,3"],
            "bias must be a scalar or have shape (2,)",
        ),
        (
            ["-i", "1 2; 3 4", "-k", "1 1; 1 1", "--bias", "1,2"],
            "bias must be a scalar or have shape (1,)",
        ),
        (
            ["-i", "many.txt", "-k", "bank.txt"],
            "at most 262144 products; this one has 1 steps x 300000 taps",
        ),
    ],
)
def test_issue_12_new_trace_sizes_are_bounded(
    tmp_path: Path, args: list[str], culprit: str
) -> None:
    # 300000 channels of 1x1: a 600 KB input file, and a bank over all of them.
    write(tmp_path, "many.txt", "1\n\n" * 300_000)
    write(tmp_path, "bank.txt", "--- a\n" + "1\n\n" * 300_000)
    write(tmp_path, "big.txt", ("1 " * 65 + "\n") * 65)  # 65x65
    before = snapshot(tmp_path)
    run_convcli(["trace", *args], cwd=tmp_path).expect(2, error=culprit)
    assert_files(tmp_path, before, written=set())


def test_issue_12_new_trace_gif_with_huge_frames_is_refused_first(
    tmp_path: Path,
) -> None:
    # 2000 channels of 2x2: the trace is small, a GIF frame would be 2000 grids tall.
    write(tmp_path, "m.txt", "1 2\n3 4\n\n" * 2000)
    write(tmp_path, "k.txt", "--- a\n" + "1\n\n" * 2000)
    before = snapshot(tmp_path)
    args = ["trace", "-i", "m.txt", "-k", "k.txt", "--gif", "t.gif"]
    r = run_convcli(args, cwd=tmp_path).expect(2, error="--gif would draw frames")
    assert r.out == ""
    assert_files(tmp_path, before, written=set())


@pytest.mark.parametrize(
    "args",
    [
        ["kernels", "--json"],
        ["kernels", "sobel"],
        ["trace", "--demo", "cs231n", "--json"],
        ["trace", "--demo", "cs231n"],
    ],
)
def test_issue_12_new_stdout_on_a_full_disk_is_exit_1(
    tmp_path: Path, args: list[str]
) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full (a device whose writes fail: disk full)")
    before = snapshot(tmp_path)
    with Path("/dev/full").open("wb") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "convcli", *args],
            cwd=tmp_path,
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=TIMEOUT,
            check=False,
            env={**os.environ, "COLUMNS": "120", "NO_COLOR": "1"},
        )
    r = Run(args, proc.returncode, "", proc.stderr.decode())
    r.expect(1, error="cannot write the output to stdout: No space left on device")
    assert_files(tmp_path, before, written=set())
