"""The documentation site: its examples run, and every page is in the nav.

Convention: in docs/index.md and docs/commands/*.md, a fenced ```console block
holds commands a reader can type from a checkout, one per line, each starting
with ``$ convcli``. Every one of them is run here, in a copy of sample_images/,
and must exit 0. Other commands (install steps, errors on purpose) go in ```sh
or ```text blocks.
"""

from __future__ import annotations

import doctest
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES_WITH_COMMANDS = [DOCS / "index.md", *sorted((DOCS / "commands").glob("*.md"))]
ENV = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1", "TERM": "dumb"}


def console_commands(page: Path) -> list[str]:
    """The ``$ convcli ...`` lines of the page's ```console blocks."""
    text = page.read_text(encoding="utf-8")
    blocks = re.findall(r"^```console\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    commands = []
    for block in blocks:
        for line in block.splitlines():
            if line.startswith("$ "):
                assert line.startswith("$ convcli "), f"{page.name}: {line}"
                commands.append(line[2:])
    return commands


EXAMPLES = [
    pytest.param(command, id=f"{page.stem}: {command}")
    for page in PAGES_WITH_COMMANDS
    for command in console_commands(page)
]


def test_every_command_page_has_examples() -> None:
    for page in PAGES_WITH_COMMANDS:
        assert console_commands(page), f"{page.name} has no $ convcli example"


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out as the checkout the examples are typed in."""
    folder = tmp_path_factory.mktemp("checkout")
    shutil.copytree(ROOT / "sample_images", folder / "sample_images")
    return folder


@pytest.mark.parametrize("command", EXAMPLES)
def test_docs_example_runs(command: str, checkout: Path) -> None:
    args = shlex.split(command, comments=True)
    assert args[0] == "convcli"
    result = subprocess.run(
        [sys.executable, "-m", "convcli", *args[1:]],
        cwd=checkout,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_index_python_example_runs() -> None:
    # A fence line ends the expected output, as a blank line does for doctest.
    text = re.sub(
        r"^```.*$",
        "",
        (DOCS / "index.md").read_text(encoding="utf-8"),
        flags=re.MULTILINE,
    )
    test = doctest.DocTestParser().get_doctest(text, {}, "index.md", "index.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.tries >= 3
    assert runner.failures == 0


def test_every_page_is_in_the_nav() -> None:
    # mkdocs.yml is read as text: the test extra does not install PyYAML.
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = config[config.index("\nnav:") :]
    nav = nav[: re.search(r"\n\S", nav[1:]).start() + 1]  # up to the next top key
    in_nav = set(
        re.findall(r"^\s+- (?:[^:\n]+: )?(\S+\.md)\s*$", nav, flags=re.MULTILINE)
    )
    pages = {page.relative_to(DOCS).as_posix() for page in DOCS.rglob("*.md")}
    assert pages == in_nav, (
        f"not in the nav: {pages - in_nav}; no such page: {in_nav - pages}"
    )


def test_click_commands_for_the_docs() -> None:
    import convcli.cli

    assert convcli.cli.click_command.name == "convcli"
    for name in ("apply", "batch", "trace", "kernels"):
        assert getattr(convcli.cli, f"click_{name}").name == name
    with pytest.raises(AttributeError, match="no attribute 'click_nope'"):
        _ = convcli.cli.click_nope  # type: ignore[attr-defined]
