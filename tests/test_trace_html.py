"""trace --html: the page convcli.trace_html writes, as a file and in a real browser.

The unit tests read the file: one self-contained page, the ``--json`` document
embedded as it is, the text view's strings beside it. The browser tests open
it from ``file://`` in headless Chromium (the system's, driven by Playwright)
and read the DOM after clicks, keys and hovers, against ``--json`` and the
text view. Without Chromium or Playwright they skip, unless
``CONVCLI_REQUIRE_BROWSER=1`` (CI) makes them fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from convcli import render
from convcli.cli import app
from convcli.demos import load_demo
from convcli.trace_html import (
    PageError,
    check_page_path,
    page_view,
    save_trace_page,
    trace_page,
)
from convcli.tracing import Trace, format_number, json_text, product_terms, trace

ENV = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}
REQUIRE_BROWSER = os.environ.get("CONVCLI_REQUIRE_BROWSER") == "1"
BANK = "bias: 1 -1\n--- a\n1 0\n0 0\n\n0 0\n0 1\n--- b\n0 1\n1 0\n\n2 2\n2 2\n"
MATRIX = "1 2 0; 3 1 0; 0 2 2 | 0 1 0; 1 0 1; 0 1 0"

# The traces the browser checks step by step: name -> trace's arguments.
CASES: dict[str, list[str]] = {
    "cs231n": ["--demo", "cs231n"],
    "seed": ["--demo", "seed"],
    "channels": ["-i", MATRIX, "-k", "1 -1; 2 0", "--bias", "1"],  # depthwise
    "bank": ["-i", MATRIX, "-k", "BANK"],  # two filters over two channels
    "stride": ["--demo", "stride"],
    "dilated": ["--demo", "dilated", "--padding", "1"],
}
# And those it only loads: the convolution types.
MORE: dict[str, list[str]] = {
    "grouped": ["--demo", "grouped"],
    "groups-inline": ["-i", MATRIX, "-k", "1 -1; 2 0", "--groups", "2"],
    "transposed": ["--demo", "transposed"],
    "transpose-inline": [
        *("-i", "1 2; 3 4", "-k", "1 1; 1 1", "--transpose", "--stride", "2"),
        *("--padding", "1", "--output-padding", "1"),
    ],
    "separable": ["--demo", "depthwise-separable"],
}


def _cs231n() -> tuple[Trace, str, str]:
    demo = load_demo("cs231n")
    t = trace(demo.x, demo.w, demo.bias or None, **demo.options)
    title, lesson = demo.explain(t)
    return t, title, lesson


def _embedded(page: str, name: str) -> Any:
    found = re.findall(
        rf'<script type="application/json" id="{name}">(.*?)</script>', page, re.S
    )
    assert len(found) == 1
    return json.loads(found[0])


def _run(args: list[str], *, code: int = 0) -> Any:
    result = CliRunner().invoke(app, ["trace", *args], env=ENV)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


def _args(args: list[str], folder: Path) -> list[str]:
    if "BANK" in args:
        bank = folder / "pair.txt"
        bank.write_text(BANK)
        args = [str(bank) if a == "BANK" else a for a in args]
    return args


# ---------------------------------------------------------------------------
# The file


def test_one_small_file_that_loads_nothing() -> None:
    t, title, lesson = _cs231n()
    page = trace_page(t, title=title, lesson=lesson)
    assert page.startswith("<!DOCTYPE html>")
    assert len(page.encode("utf-8")) < 200_000
    assert "http://" not in page
    assert "https://" not in page
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(\w+:)?//""", page, re.I)
    assert not re.search(r"\b(src|href)\s*=", page, re.I)  # nothing is loaded
    for loader in ("@import", "@font-face", "url(", "<link", "<iframe", "<img"):
        assert loader not in page.lower()
    assert "default-src 'none'" in page  # and the browser is told so
    assert page.count("<script") == 3  # two JSON documents and the code


def test_the_embedded_document_is_the_json_one() -> None:
    t, title, lesson = _cs231n()
    page = trace_page(t, title=title, lesson=lesson)
    assert _embedded(page, "trace-json") == json.loads(json_text(t.to_json()))
    doc = json.loads(_run(["--demo", "cs231n", "--json"]).stdout)
    assert _embedded(page, "trace-json") == doc


@pytest.mark.parametrize("name", ["transposed", "separable"])
def test_the_embedded_document_of_other_layers(tmp_path: Path, name: str) -> None:
    target = tmp_path / "t.html"
    _run([*MORE[name], "--html", str(target)])
    doc = json.loads(_run([*MORE[name], "--json"]).stdout)
    assert _embedded(target.read_text(encoding="utf-8"), "trace-json") == doc


def test_non_finite_numbers_are_strict_json() -> None:
    t = trace([[1e308, 1], [1, 1]], [[10, 0], [0, 1]], bias=float("nan"))
    page = trace_page(t)
    assert "NaN" in page
    doc = _embedded(page, "trace-json")
    assert doc["steps"][0]["sum"] == "Infinity"
    assert doc["bias"] == ["NaN"]
    assert page_view(t)["layers"][0]["steps"][0]["value"] == "nan"


def test_no_value_can_close_the_script() -> None:
    t = trace([[1, 2], [3, 4]], [[1, 0], [0, 1]])
    evil = "</script><script>alert(1)</script><!--"
    page = trace_page(t, title=evil, lesson=evil)
    assert page.count("</script>") == 3
    assert "<script>alert" not in page
    assert _embedded(page, "trace-view")["lesson"] == evil
    assert "{{" not in page


def test_the_strings_are_the_text_views() -> None:
    t, _, _ = _cs231n()
    layer = page_view(t)["layers"][0]
    assert layer["names"]["x"] == ["x[:,:,0]", "x[:,:,1]", "x[:,:,2]"]
    assert layer["names"]["slices"][1][2] == "w1[:,:,2]"
    for i, (step, shown) in enumerate(zip(t.steps, layer["steps"], strict=True)):
        text = render.trace_step(t, i, width=300).plain
        assert shown["head"] in text
        assert shown["result"] in text.splitlines()
        assert shown["terms"] == [t.terms(step, c) for c in range(3)]
        for line in shown["terms"]:
            assert line in text.splitlines()
        assert shown["value"] == format_number(step.value)
        assert shown["taps"] == [list(r) for r in t.taps(step)]
    assert layer["steps"][0]["result"] == "o[0,0,0] = 0 + 1 + -1 + b0 (1) = 1"


def test_seed_writes_the_worked_example() -> None:
    demo = load_demo("seed")
    t = trace(demo.x, demo.w, demo.bias or None, **demo.options)
    step = page_view(t)["layers"][0]["steps"][0]
    assert step["terms"] == ["4*0+0*0+0*0+0*0+0*1+0*1+0*0+0*1+-4*2=-8"]
    assert step["result"] == "o[0,0] = -8"


def test_start_must_be_a_step() -> None:
    t = trace([[1, 2], [3, 4]], [[1, 0], [0, 1]])
    with pytest.raises(
        ValueError, match=r"start must be a step index in 0\.\.0; got 1"
    ):
        trace_page(t, start=1)


# ---------------------------------------------------------------------------
# Where it goes


def test_cli_writes_the_page(tmp_path: Path) -> None:
    target = tmp_path / "cs231n.html"
    result = _run(["--demo", "cs231n", "--html", str(target), "--summary"])
    assert f"web page of 18 steps: {target}" in result.stdout
    page = target.read_text(encoding="utf-8")
    assert "the cs231n convolution demo" in page
    assert [p.name for p in tmp_path.iterdir()] == ["cs231n.html"]
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


def test_cli_writes_the_gif_and_the_page(tmp_path: Path) -> None:
    gif, html = tmp_path / "s.gif", tmp_path / "s.html"
    doc = json.loads(
        _run(
            ["--demo", "stride", "--gif", str(gif), "--html", str(html), "--json"]
        ).stdout
    )
    assert doc["output"]  # stdout holds the JSON only
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.gif", "s.html"]
    assert _embedded(html.read_text(encoding="utf-8"), "trace-json") == doc


def test_only_opens_the_page_at_that_step(tmp_path: Path) -> None:
    target = tmp_path / "one.html"
    _run(["--demo", "cs231n", "--only", "1,1,1", "--html", str(target)])
    view = _embedded(target.read_text(encoding="utf-8"), "trace-view")
    assert view["start"] == 13
    assert view["layers"][0]["steps"][13]["head"].startswith("o[1,1,1] (step 14 of 18)")


def _fails(args: list[str], code: int = 2) -> str:
    result = _run(args, code=code)
    assert result.stderr.startswith("Error: "), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    return result.stderr


def test_an_input_is_never_overwritten(tmp_path: Path) -> None:
    matrix = tmp_path / "x.html"
    matrix.write_text("1 2\n3 4\n")
    err = _fails(["-i", str(matrix), "-k", "1 0; 0 1", "--html", str(matrix)])
    assert f"--html {matrix} is the input -i {matrix}" in err
    assert matrix.read_text() == "1 2\n3 4\n"
    assert [p.name for p in tmp_path.iterdir()] == ["x.html"]


def test_the_gif_and_the_page_never_share_a_name(tmp_path: Path) -> None:
    same = tmp_path / "t.gif"
    err = _fails(["--demo", "seed", "--gif", str(same), "--html", str(same)])
    assert f"--html {same} and --gif {same} are the same file" in err
    link = tmp_path / "t.html"
    link.symlink_to(same)
    err = _fails(["--demo", "seed", "--gif", str(same), "--html", str(link)])
    assert "are the same file" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.html"]  # the link only


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("t.gif", r"t\.gif: --html writes a web page; give a name ending in \.html"),
        ("dir.html", r"dir\.html: is a folder; --html names the page file to write"),
        ("nope/t.html", r"t\.html: cannot write in .*nope"),
    ],
)
def test_bad_places_are_refused_first(tmp_path: Path, name: str, message: str) -> None:
    (tmp_path / "dir.html").mkdir()
    with pytest.raises(PageError, match=message):
        check_page_path(tmp_path / name)
    err = _fails(["--demo", "seed", "--html", str(tmp_path / name)])
    assert re.search(message, err)
    assert [p.name for p in tmp_path.iterdir()] == ["dir.html"]


def test_a_failed_write_leaves_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "keep.html"
    target.write_text("old page")

    def full(*_args: object) -> None:
        msg = "disk full"
        raise OSError(28, msg)

    monkeypatch.setattr("convcli.saving.finish", full)  # the atomic write's rename
    with pytest.raises(PageError, match=r"keep\.html: cannot write: disk full"):
        save_trace_page(target, trace([[1, 2], [3, 4]], [[1, 0], [0, 1]]))
    err = _fails(["--demo", "seed", "--html", str(target)], code=1)
    assert "keep.html: cannot write: disk full" in err
    assert target.read_text() == "old page"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.html"]


# ---------------------------------------------------------------------------
# In a browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium, the system's, driven by Playwright: one per module."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "Playwright for Python is not installed (pip install -e '.[test]')"
    else:
        missing = "" if chromium else "no chromium on PATH (apt-get install chromium)"
    if missing:
        if REQUIRE_BROWSER:
            pytest.fail(f"CONVCLI_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(missing)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Any]]:
    """Every case's page, written by the CLI, with its --json document."""
    folder = tmp_path_factory.mktemp("pages")
    written = {}
    for name, args in {**CASES, **MORE}.items():
        full = _args(args, folder)
        target = folder / f"{name}.html"
        _run([*full, "--html", str(target), "--summary"])
        written[name] = (target, json.loads(_run([*full, "--json"]).stdout))
    return written


class Opened:
    """A page open in the browser, and what it logged and asked the network for."""

    def __init__(self, browser: Any, path: Path, suffix: str = "", **options: Any):
        self.problems: list[str] = []
        self.requests: list[str] = []
        self.page = browser.new_page(**options)
        self.page.set_default_timeout(5000)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda err: self.problems.append(f"error: {err}"))
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.url = path.as_uri() + suffix
        self.page.goto(self.url)

    def _console(self, message: Any) -> None:
        if message.type in ("error", "warning"):
            self.problems.append(f"{message.type}: {message.text}")

    def text(self, selector: str) -> str:
        return str(self.page.text_content(selector))

    def step(self) -> int:
        """The step shown, counted from 0 (the counter says 'step k of n')."""
        found = re.fullmatch(r"step (\d+) of \d+", self.text("#counter"))
        assert found, self.text("#counter")
        return int(found[1]) - 1

    def output_cell(self, d: int, row: int, col: int) -> Any:
        return self.page.locator(
            f'#outputs-body td[data-d="{d}"][data-r="{row}"][data-col="{col}"]'
        )

    def outputs(self) -> dict[tuple[int, int, int], str]:
        cells = self.page.eval_on_selector_all(
            "#outputs-body td",
            "tds => tds.map(td => [+td.dataset.d, +td.dataset.r, +td.dataset.col, td.textContent])",
        )
        return {(d, r, c): text for d, r, c, text in cells}

    def check_clean(self) -> None:
        assert self.problems == []
        assert self.requests == [self.url.split("#")[0]]


@pytest.fixture
def opened(browser: Any) -> Iterator[Any]:
    """Open pages; each is closed, and checked for console errors and requests."""
    shown: list[Opened] = []

    def open_page(path: Path, suffix: str = "", **options: Any) -> Opened:
        shown.append(Opened(browser, path, suffix, **options))
        return shown[-1]

    yield open_page
    for page in shown:
        page.check_clean()
        page.page.close()


def _layer(doc: dict[str, Any], n: int = 0) -> dict[str, Any]:
    layers: list[dict[str, Any]] = doc.get("layers") or [doc.get("convolution", doc)]
    return layers[n]


def _check_step(page: Opened, doc: dict[str, Any], k: int) -> None:
    """The DOM shows step k as --json has it, written as the text view writes it."""
    step = doc["steps"][k]
    assert page.step() == k
    assert page.text("#sum") == format_number(step["sum"])
    assert page.text("#value") == format_number(step["value"])
    assert float(page.text("#sum")) == pytest.approx(step["sum"], rel=1e-3)
    assert float(page.text("#value")) == pytest.approx(step["value"], rel=1e-3)
    d = step["filter"]
    terms = page.page.eval_on_selector_all(
        "#terms .terms", "els => els.map(e => e.textContent)"
    )
    assert terms == [
        product_terms(window, doc["weights"][d][i], step["channel_sums"][i])
        for i, window in enumerate(step["window"])
    ]
    assert page.text("#result").endswith(f"= {format_number(step['value'])}")
    assert page.page.locator(".filter.active").get_attribute("data-d") == str(d)
    current = page.output_cell(d, step["row"], step["col"])
    assert "current" in str(current.get_attribute("class"))


@pytest.mark.parametrize("name", [*CASES, *MORE])
def test_the_page_loads_clean(opened: Any, pages: dict, name: str) -> None:
    path, doc = pages[name]
    page = opened(path)
    assert page.step() == 0
    assert len(page.outputs()) == np.array(_layer(doc)["output"]).size
    assert page.page.title().startswith("convcli trace")


@pytest.mark.parametrize("name", list(CASES))
def test_next_shows_each_step_as_json_has_it(
    opened: Any, pages: dict, name: str
) -> None:
    path, doc = pages[name]
    page = opened(path)
    n = len(doc["steps"])
    _check_step(page, doc, 0)
    for k in range(1, min(n, 6)):
        page.page.click("#next")
        _check_step(page, doc, k)
    text = _run([*_args(CASES[name], path.parent), "--only", _only(doc, n - 1)]).stdout
    if n > 1:
        page.page.click("#prev")
    page.page.locator("#slider").fill(str(n - 1))
    _check_step(page, doc, n - 1)
    assert page.text("#result") in text.splitlines()  # the text view's line
    assert page.page.is_disabled("#next")


def _only(doc: dict[str, Any], k: int) -> str:
    step = doc["steps"][k]
    return f"{step['row']},{step['col']},{step['filter']}"


@pytest.mark.parametrize("name", list(CASES))
def test_clicking_an_output_shows_its_step(opened: Any, pages: dict, name: str) -> None:
    path, doc = pages[name]
    page = opened(path)
    n = len(doc["steps"])
    for k in sorted({n - 1, n // 2, 1 % n, 0}, reverse=True):
        step = doc["steps"][k]
        page.output_cell(step["filter"], step["row"], step["col"]).click()
        _check_step(page, doc, k)


@pytest.mark.parametrize("name", list(CASES))
def test_the_slider_reaches_the_whole_output(
    opened: Any, pages: dict, name: str
) -> None:
    path, doc = pages[name]
    page = opened(path)
    n = len(doc["steps"])
    filled = {key for key, text in page.outputs().items() if text}
    assert filled == {(0, 0, 0)}
    page.page.locator("#slider").fill(str(n - 1))
    assert page.step() == n - 1
    output = np.array(doc["output"])
    assert page.outputs() == {
        (d, r, c): format_number(v) for (d, r, c), v in np.ndenumerate(output)
    }
    page.page.locator("#slider").fill(str(n // 2))
    done = {(s["filter"], s["row"], s["col"]) for s in doc["steps"][: n // 2 + 1]}
    assert {key for key, text in page.outputs().items() if text} == done


def test_the_keyboard_steps_and_plays(opened: Any, pages: dict) -> None:
    path, doc = pages["cs231n"]
    page = opened(path)
    keyboard = page.page.keyboard
    keyboard.press("ArrowRight")
    keyboard.press("ArrowRight")
    _check_step(page, doc, 2)
    keyboard.press("ArrowLeft")
    _check_step(page, doc, 1)
    keyboard.press("End")
    _check_step(page, doc, 17)
    keyboard.press("Home")
    page.page.click("#next")  # the focus on a button: space still plays
    assert page.step() == 1
    page.page.select_option("#speed", "250")
    page.page.focus("#next")
    keyboard.press(" ")
    assert page.page.get_attribute("#play", "aria-pressed") == "true"
    from playwright.sync_api import expect

    expect(page.page.locator("#counter")).not_to_have_text("step 2 of 18")  # waits
    keyboard.press(" ")
    assert page.page.get_attribute("#play", "aria-pressed") == "false"
    stopped = page.step()
    assert stopped >= 2  # moved on while playing, not clicked as "next"
    page.page.wait_for_timeout(400)
    assert page.step() == stopped
    _check_step(page, doc, stopped)


def _readers(
    doc: dict[str, Any], c: int, r: int, col: int
) -> set[tuple[int, int, int]]:
    """The outputs whose window holds padded input cell (c, r, col): the test's own walk."""
    channels = len(doc["input"])
    depth, per_in, kh, kw = np.array(doc["weights"]).shape
    per_out = depth // (channels // per_in)
    (sh, sw), (dh, dw) = doc["stride"], doc["dilation"]
    found = set()
    for (d, i, j), _ in np.ndenumerate(np.array(doc["output"])):
        group = d // per_out
        if not group * per_in <= c < (group + 1) * per_in:
            continue
        if r in range(i * sh, i * sh + dh * (kh - 1) + 1, dh) and col in range(
            j * sw, j * sw + dw * (kw - 1) + 1, dw
        ):
            found.add((d, i, j))
    return found


@pytest.mark.parametrize("name", [*CASES, "grouped"])
def test_hovering_an_input_marks_the_outputs_that_read_it(
    opened: Any, pages: dict, name: str
) -> None:
    path, doc = pages[name]
    page = opened(path)
    cells = page.page.eval_on_selector_all(
        "#inputs-body td",
        "tds => tds.map(td => [+td.dataset.c, +td.dataset.r, +td.dataset.col])",
    )
    rng = np.random.default_rng(16)
    picked = [
        cells[i]
        for i in sorted(rng.choice(len(cells), min(12, len(cells)), replace=False))
    ]
    for c, r, col in [cells[0], cells[-1], *picked]:
        page.page.hover(
            f'#inputs-body td[data-c="{c}"][data-r="{r}"][data-col="{col}"]'
        )
        marked = page.page.eval_on_selector_all(
            "#outputs-body td.reads",
            "tds => tds.map(td => [+td.dataset.d, +td.dataset.r, +td.dataset.col])",
        )
        expected = _readers(doc, c, r, col)
        assert {tuple(m) for m in marked} == expected
        assert len(marked) == len(expected)
        said = page.text("#reverse")
        assert f"row {r}, col {col} of the padded input" in said
        assert (f"read by {len(expected)} output" in said) == bool(expected)
    page.page.mouse.move(1, 1)
    assert page.page.locator("#outputs-body td.reads").count() == 0


def test_two_layers_each_step(opened: Any, pages: dict) -> None:
    path, doc = pages["separable"]
    page = opened(path)
    _check_step(page, doc["layers"][0], 0)
    page.page.click("#layers button >> nth=1")
    second = doc["layers"][1]
    _check_step(page, second, 0)
    page.page.click("#next")
    _check_step(page, second, 1)
    assert page.outputs()[(1, 0, 0)] == ""
    page.page.locator("#slider").fill(str(len(second["steps"]) - 1))
    output = np.array(second["output"])
    assert page.outputs() == {
        key: format_number(v) for key, v in np.ndenumerate(output)
    }
    page.page.click("#layers button >> nth=0")
    _check_step(page, doc["layers"][0], 0)
    addressed = opened(path, "#layer=2&step=3")
    _check_step(addressed, second, 2)
    assert (
        addressed.page.get_attribute("#layers button >> nth=1", "aria-pressed")
        == "true"
    )


def test_transposed_marks_the_inserted_zeros(opened: Any, pages: dict) -> None:
    path, doc = pages["transposed"]
    page = opened(path)
    conv = doc["convolution"]
    _check_step(page, conv, 0)
    pads = page.page.eval_on_selector_all(
        "#inputs-body td", "tds => tds.map(td => td.classList.contains('pad'))"
    )
    padded = np.array(
        page.page.eval_on_selector_all(
            "#inputs-body td", "tds => tds.map(td => +td.textContent)"
        )
    )
    values = np.array(doc["input"]).ravel()
    # The cells not marked are x's values, in order; every marked one is a zero.
    assert padded[~np.array(pads)].tolist() == values.tolist()
    assert not padded[np.array(pads)].any()


def test_the_address_picks_the_step_and_play(opened: Any, pages: dict) -> None:
    path, doc = pages["cs231n"]
    page = opened(path, "#step=5")
    _check_step(page, doc, 4)
    assert page.page.get_attribute("#play", "aria-pressed") == "false"
    page = opened(path, "#play")
    assert page.page.get_attribute("#play", "aria-pressed") == "true"
    page.page.click("#play")


def test_reduced_motion_is_respected(opened: Any, pages: dict) -> None:
    path, _ = pages["cs231n"]
    moving = opened(path)
    still = opened(path, "#play", reduced_motion="reduce")
    duration = (
        "getComputedStyle(document.querySelector('#inputs-body td')).transitionDuration"
    )
    assert moving.page.evaluate(duration) != "0s"
    assert set(still.page.evaluate(duration).split(", ")) == {"0s"}
    assert still.page.get_attribute("#play", "aria-pressed") == "false"  # no autoplay


def test_cs231n_fits_a_laptop_and_scrolls_on_a_phone(opened: Any, pages: dict) -> None:
    path, _ = pages["cs231n"]
    size = (
        "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    )
    laptop = opened(path, viewport={"width": 1280, "height": 800})
    assert laptop.page.evaluate(size) == [1280, 800]
    phone = opened(path, viewport={"width": 375, "height": 800})
    width, height = phone.page.evaluate(size)
    assert width == 375  # no sideways scrolling
    assert height > 800  # the volumes one under the other
