"""Issue 17: `convcli kernels` never cuts a digit and fits the terminal's width.

One kernel's weights are read back from what is printed (as a grid, as
integers times ``1/d``, or in blocks of columns) and compared with the
kernel's own; the catalogue is checked line by line at 80 columns and others.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import convcli
from convcli.cli import app
from convcli.render.kernels import _column_blocks, integer_form, sum_text

PLAIN = {"NO_COLOR": "1", "TERM": "dumb"}


def run_kernels(args: list[str], columns: int) -> str:
    """Run ``convcli kernels ARGS`` in a real process at ``columns``; its stdout."""
    env = {**os.environ, **PLAIN, "COLUMNS": str(columns)}
    env.pop("FORCE_COLOR", None)
    result = subprocess.run(
        [sys.executable, "-m", "convcli", "kernels", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def _numbers(line: str) -> list[str] | None:
    """The line's words if every one is a number, else None."""
    words = line.split()
    try:
        [float(w) for w in words]
    except ValueError:
        return None
    return words or None


def printed_weights(output: str, title: str) -> tuple[np.ndarray, bool]:
    """Read a 2-D kernel's weights back from ``convcli kernels NAME``.

    ``title`` is the first thing printed, maybe wrapped (``NAME: description``).
    Returns the weights and whether they were written exactly (integers
    times ``1/d``, or whole numbers), so compared bit for bit.
    """
    lines = output.splitlines()
    start, seen = 0, ""
    while seen != "".join(title.split()):
        seen += "".join(lines[start].split())
        start += 1
    end = next(i for i, x in enumerate(lines) if x.split()[:1] == ["shape"])
    body = lines[start:end]
    text = "\n".join(body)
    prose = " ".join(text.split())  # notes may wrap
    scale = re.search(r"\b1/(\d+) times\b", prose)
    denominator = int(scale[1]) if scale else 1
    if "in blocks of columns" in prose:
        cells: dict[tuple[int, int], str] = {}
        for chunk in re.split(r"\n\s*\n", text):
            rows = [w for w in map(_numbers, chunk.splitlines()) if w]
            header = [int(c) for c in rows[0]]
            for row in rows[1:]:
                r = int(row[0])
                assert len(row) == len(header) + 1, chunk
                cells.update({(r, c): v for c, v in zip(header, row[1:], strict=True)})
        kh = 1 + max(r for r, _ in cells)
        kw = 1 + max(c for _, c in cells)
        assert len(cells) == kh * kw, "a weight is missing"
        words = [[cells[r, c] for c in range(kw)] for r in range(kh)]
    else:
        words = [w for w in map(_numbers, body) if w]
    exact = bool(scale) or all(float(w).is_integer() for row in words for w in row)
    if scale:
        values = [[int(w) / denominator for w in row] for row in words]
    else:
        values = [[float(w) for w in row] for row in words]
    return np.array(values), exact


def assert_weights_shown(output: str, spec: str) -> None:
    """Every weight of ``spec`` is in the output, to the digits printed."""
    kernel = convcli.load_kernel(spec)
    weights = kernel.weights
    title = f"{kernel.name}: {kernel.description}".rstrip(": ")
    shown, exact = printed_weights(output, title)
    assert shown.shape == weights.shape
    if exact:
        np.testing.assert_array_equal(shown, weights)
    else:  # 4 significant digits
        np.testing.assert_allclose(shown, weights, rtol=5e-4, atol=0)


def assert_fits(output: str, columns: int) -> None:
    long = [line for line in output.splitlines() if len(line) > columns]
    assert not long, f"lines over {columns} columns: {long}"


@pytest.mark.parametrize("columns", [60, 80])
def test_issue_17_a_wide_gaussian_keeps_every_digit(columns: int) -> None:
    out = run_kernels(["gaussian:sigma=2"], columns)
    assert "+4.92e-06" in out  # the corner weight, cut to +4.9 before
    assert "in blocks of columns" in out
    assert_weights_shown(out, "gaussian:sigma=2")
    assert_fits(out, columns)


def test_issue_17_the_same_through_the_cli_runner() -> None:
    env = {**PLAIN, "COLUMNS": "60"}
    result = CliRunner().invoke(app, ["kernels", "gaussian:sigma=2"], env=env)
    assert result.exit_code == 0, result.output
    assert "+4.92e-06" in result.output
    assert_weights_shown(result.output, "gaussian:sigma=2")
    assert_fits(result.output, 60)


@pytest.mark.parametrize(
    ("spec", "columns", "scale"),
    [
        ("binomial:size=7", 60, "1/4096 times"),
        ("box:size=31", 80, "1/961 times, in blocks of columns"),
        ("motion:angle=30", 60, "1/13 times"),
    ],
)
def test_issue_17_integers_times_a_scale_when_exact(
    spec: str, columns: int, scale: str
) -> None:
    out = run_kernels([spec], columns)
    assert scale in out
    kernel = convcli.load_kernel(spec)
    shown, exact = printed_weights(out, f"{kernel.name}: {kernel.description}")
    assert exact
    np.testing.assert_array_equal(shown, kernel.weights)
    assert_fits(out, columns)


@pytest.mark.parametrize(
    ("spec", "columns"),
    [
        ("gaussian:sigma=5", 80),  # 31x31
        ("gaussian:sigma=2", 20),
        ("log:sigma=1.4", 40),
        ("binomial:size=31", 100),  # a scale of 2**-60: too fine for integers
        ("1e300,-1e300;2.5e-300,0", 20),
        ("1e300,-1e300;2.5e-300,0", 12),
        ("0.1,0.2,0.3", 12),
    ],
)
def test_issue_17_hostile_kernels_and_widths(spec: str, columns: int) -> None:
    out = run_kernels([spec], columns)
    assert_weights_shown(out, spec)
    if columns >= 20:
        assert_fits(out, columns)


def test_issue_17_a_file_scaled_by_a_fraction_is_shown_in_integers(
    tmp_path: Path,
) -> None:
    # scale: 1/7 multiplies by the float nearest 1/7; 6 * that is not 6 / 7
    path = tmp_path / "sevenths.txt"
    path.write_text("scale: 1/7\n" + "1 2 3 4 5 6 7 8 9 10 11\n" * 3)
    weights = convcli.load_kernel(str(path)).weights
    assert any(n / 7 != w for n, w in zip(range(1, 12), weights[0], strict=True))
    out = run_kernels([str(path)], 40)
    assert "1/7 times" in out
    shown, exact = printed_weights(out, "sevenths")
    assert exact
    assert shown.tolist() == [[n / 7 for n in range(1, 12)]] * 3
    np.testing.assert_allclose(shown, weights, rtol=1e-15)
    assert_fits(out, 40)


def test_issue_17_a_kernel_that_fits_is_drawn_as_before() -> None:
    out = run_kernels(["box:size=2"], 80)
    assert out.splitlines()[1:3] == ["+0.25  +0.25", "+0.25  +0.25"]
    assert "times" not in out
    assert "blocks" not in out


def test_issue_17_a_number_wider_than_the_terminal_is_not_cut() -> None:
    out = run_kernels(["1e-300,1"], 5)
    assert "+1e-300" in out.split()
    assert_weights_shown(out, "1e-300,1")


def test_issue_17_a_bank_sums_each_filter_and_says_how_it_combines() -> None:
    out = run_kernels(["frei_chen"], 80)
    assert re.search(r"^sum +0 \(g1 to g8\), 3 \(g9\)$", out, flags=re.MULTILINE)
    assert re.search(r"^combine +stack$", out, flags=re.MULTILINE)
    sobel = run_kernels(["sobel"], 80)
    assert re.search(r"^sum +0 \(each filter\)$", sobel, flags=re.MULTILINE)
    # side by side, as many filters as fit
    assert re.search(r"^filter gx +filter gy$", sobel, flags=re.MULTILINE)
    assert_fits(out, 80)


def test_issue_17_a_2d_kernel_shows_no_combine() -> None:
    out = run_kernels(["sobel_x"], 80)
    assert "combine" not in out
    assert re.search(r"^separable +yes$", out, flags=re.MULTILINE)


# ---------------------------------------------------------------------------
# The catalogue


def _catalogue_checks(out: str, *, whole_words: bool) -> None:
    words = out.split()
    for kernel in convcli.list_kernels():
        assert kernel.name in words, kernel.name
        if not whole_words:
            continue
        # the description's words, all of them, in order, after the name
        at = words.index(kernel.name)
        for word in kernel.description.split():
            assert word in words[at:], f"{kernel.name}: {word!r} cut"
            at = words.index(word, at) + 1


@pytest.mark.parametrize("columns", [80, 60, 120, 200])
def test_issue_17_the_catalogue_fits_and_cuts_nothing(columns: int) -> None:
    out = run_kernels([], columns)
    assert_fits(out, columns)
    _catalogue_checks(out, whole_words=True)


def test_issue_17_the_catalogue_at_80_columns_is_two_lines_a_kernel() -> None:
    out = run_kernels([], 80)
    kernels = convcli.list_kernels()
    assert len(out.splitlines()) <= 2 * len(kernels) + 6  # 227 lines before
    lines = out.splitlines()
    header = lines[0]
    assert header.split() == [
        "name",
        "shape",
        "separable",
        "sum",
        "parameters,",
        "combine",
    ]
    # the sums are right-aligned under "sum", 0 as any other number
    end = header.index("sum") + len("sum")
    facts = {line.split()[0]: line for line in lines[1:] if line.startswith(" ")}
    facts = {k.name: facts[k.name] for k in kernels}
    for line in facts.values():
        assert line[end - 1] != " ", line
        assert line[end : end + 2] in ("", "  "), line
    assert facts["gaussian"][:end].split()[-1] == "1"
    assert facts["laplacian"][:end].split()[-1] == "0"
    assert facts["sobel"][:end].endswith("0 each")
    assert facts["frei_chen"][:end].endswith("varies")
    assert "sums 0 (g1 to g8), 3 (g9)" in " ".join(out.split())
    for k in kernels:
        assert ("combine" in facts[k.name]) == k.is_bank, k.name
    assert "sigma=1, size=0" in facts["gaussian"]


def test_issue_17_a_wide_terminal_shows_one_line_a_kernel() -> None:
    out = run_kernels([], 200)
    lines = out.splitlines()
    kernels = convcli.list_kernels()
    assert len(lines) == 1 + len(kernels) + 1  # header, kernels, the count
    assert lines[0].split()[-1] == "description"
    for k, line in zip(kernels, lines[1:], strict=False):
        assert line.split()[0] == k.name
        assert line.endswith(k.description)


def test_issue_17_the_catalogue_on_a_narrow_terminal_writes_facts_as_prose() -> None:
    out = run_kernels([], 40)
    assert_fits(out, 40)
    _catalogue_checks(out, whole_words=True)
    assert "shape 3x3, separable yes, sum 0" in out  # sobel_x
    tiny = run_kernels([], 20)
    assert_fits(tiny, 20)
    _catalogue_checks(tiny, whole_words=False)


def test_issue_17_the_catalogue_through_the_cli_runner() -> None:
    env = {**PLAIN, "COLUMNS": "80"}
    result = CliRunner().invoke(app, ["kernels"], env=env)
    assert result.exit_code == 0, result.output
    assert_fits(result.output, 80)
    _catalogue_checks(result.output, whole_words=True)


# ---------------------------------------------------------------------------
# The helpers


def test_integer_form_is_exact_or_nothing() -> None:
    n, d = integer_form(np.array([[1, 4, 6, 4, 1]]) / 16)
    assert d == 16
    assert n.tolist() == [[1, 4, 6, 4, 1]]
    n, d = integer_form(np.full((2, 2), 1 / 273))
    assert (d, n.tolist()) == (273, [[1, 1], [1, 1]])
    assert (n / d == 1 / 273).all()
    g = convcli.load_kernel("gaussian:sigma=2").weights
    assert integer_form(g) is None
    assert integer_form(np.array([[1.0, -2.0]])) is None  # integers already
    assert integer_form(np.array([[1 / 1_000_003]])) is None  # denominator too big
    assert integer_form(np.array([[1e20 + 0.5]])) is None
    one = integer_form(np.array([[1e14 + 0.5]]))  # 2e14 + 1 halves: written whole
    assert one is not None
    assert one[1] == 2
    rng = np.random.default_rng(17)
    for _ in range(50):
        d = int(rng.integers(2, 5000))
        n = rng.integers(-500, 500, size=(3, 4))
        for w in (n / d, n * (1 / d)):  # divided, or times a scale: both exact
            found = integer_form(w)
            assert found is not None
            whole, scale = found
            assert ((whole / scale == w) | (whole * (1 / scale) == w)).all()
            assert (whole * d == n * scale).all()


def test_column_blocks_are_as_few_and_as_even_as_fit() -> None:
    assert [len(b) for b in _column_blocks([10] * 13, 46)] == [4, 3, 3, 3]
    assert [len(b) for b in _column_blocks([10] * 13, 200)] == [13]
    assert [len(b) for b in _column_blocks([10] * 3, 5)] == [1, 1, 1]
    # uneven widths: the even split does not fit, the greedy one does
    blocks = _column_blocks([1, 1, 1, 1, 20, 20], 24)
    assert [list(b) for b in blocks] == [[0, 1, 2, 3], [4], [5]]


def test_sum_text_rounds_noise_only() -> None:
    assert sum_text(np.array([0.1, 0.2, -0.3])) == "0"
    assert sum_text(np.array([1e-17])) == "1e-17"
    assert sum_text(np.array([1e308, 1e308])) == "inf"
    assert sum_text(np.array([-0.0])) == "0"
