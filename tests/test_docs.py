"""The documentation: its examples run, its shown output is real, its links resolve.

Conventions (docs/development.md says them to the team):

- In a fenced ```console block, every line that starts with ``$ convcli`` is a
  command a reader can type from a checkout. Where the block follows an
  ``<!-- output: convcli ... -->`` marker, ``docs/make_transcripts.py`` wrote
  the output below the command, and the block must equal a fresh run. Any other
  ``$ convcli`` line is run here, in a copy of the checkout, and must exit 0.
- Other commands (install steps, commands for another machine) go in ```sh or
  ```text blocks.
- Every ``>>>`` example, on every page and in the README, runs as a doctest.
"""

from __future__ import annotations

import doctest
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
PAGES = sorted(DOCS.rglob("*.md"))
ENV = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1", "TERM": "dumb"}


def load_script(name: str) -> ModuleType:
    """Import ``docs/NAME.py``, a script that is not part of the package."""
    spec = importlib.util.spec_from_file_location(name, DOCS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


TRANSCRIPTS = load_script("make_transcripts")


def console_commands(page: Path) -> list[str]:
    """The ``$ convcli ...`` lines of the page's ```console blocks, unmarked ones."""
    text = TRANSCRIPTS.MARKER.sub("", page.read_text(encoding="utf-8"))
    blocks = re.findall(r"^```console\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    commands = []
    for block in blocks:
        for line in block.splitlines():
            if line.startswith("$ "):
                assert line.startswith("$ convcli "), f"{page.name}: {line}"
                commands.append(line[2:])
    return commands


def page_id(page: Path) -> str:
    """``commands/apply.md``, ``README.md``."""
    return page.relative_to(DOCS if page.is_relative_to(DOCS) else ROOT).as_posix()


EXAMPLES = [
    pytest.param(command, id=f"{page_id(page)}: {command}")
    for page in [README, *PAGES]
    for command in console_commands(page)
]
SHOWN = [
    pytest.param(example, id=example.name)
    for page in TRANSCRIPTS.pages()
    for example in TRANSCRIPTS.examples(page)
]


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder laid out as the checkout the examples are typed in."""
    return TRANSCRIPTS.make_checkout(tmp_path_factory.mktemp("checkout"))


def test_every_command_page_has_examples() -> None:
    for page in [DOCS / "index.md", *sorted((DOCS / "commands").glob("*.md"))]:
        assert console_commands(page), f"{page.name} has no $ convcli example"


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
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("example", SHOWN)
def test_shown_output_is_a_fresh_run(example: object, checkout: Path) -> None:
    problem = TRANSCRIPTS.stale(example, checkout)
    assert problem is None, f"{problem}: run docs/make_transcripts.py"


def test_the_transcript_check_catches_a_changed_number(checkout: Path) -> None:
    (example,) = [
        e
        for e in TRANSCRIPTS.examples(DOCS / "commands" / "kernels.md")
        if e.command == "convcli kernels sobel_x"
    ]
    assert TRANSCRIPTS.stale(example, checkout) is None
    changed = example.block.replace("-2  0  +2", "-2  0  +3")
    assert changed != example.block
    tampered = TRANSCRIPTS.Example(**{**vars(example), "block": changed})
    assert TRANSCRIPTS.stale(tampered, checkout) is not None


def test_the_pages_show_the_outputs_they_promise() -> None:
    shown = {example.command for example in TRANSCRIPTS.examples(DOCS / "learn.md")}
    assert any(command.startswith("convcli trace") for command in shown)
    trace_page = TRANSCRIPTS.examples(DOCS / "commands" / "trace.md")
    (cs231n,) = [e for e in trace_page if e.command == "convcli trace --demo cs231n"]
    assert "step 1 of 18" in cs231n.block
    assert "... steps 2 to 18 follow" in cs231n.block


@pytest.mark.parametrize("page", [README, *PAGES], ids=page_id)
def test_python_examples_run(page: Path) -> None:
    # A fence line ends the expected output, as a blank line does for doctest.
    text = re.sub(r"^```.*$", "", page.read_text(encoding="utf-8"), flags=re.MULTILINE)
    test = doctest.DocTestParser().get_doctest(text, {}, page.name, str(page), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.failures == 0


def test_the_doctests_are_there() -> None:
    parser = doctest.DocTestParser()
    counts = {
        page_id(page): len(parser.get_examples(page.read_text(encoding="utf-8")))
        for page in [README, *PAGES]
    }
    assert counts["README.md"] >= 4
    assert counts["api.md"] >= 3
    assert counts["index.md"] >= 3


def test_readme_is_short_and_stands_alone() -> None:
    text = README.read_text(encoding="utf-8")
    # Short enough to read at once: the examples, the convolution types, plan,
    # the page of --html, the ImageMagick names.
    assert len(text.splitlines()) <= 260
    assert not re.search(r"\bissue \d|#\d+\b|SPEC|STYLE\.md|shared/", text)


@pytest.mark.parametrize("page", [README, *PAGES], ids=page_id)
def test_relative_links_resolve(page: Path) -> None:
    text = re.sub(
        r"^```.*?^```|`[^`\n]*`",
        "",
        page.read_text(encoding="utf-8"),
        flags=re.MULTILINE | re.DOTALL,
    )
    for target in re.findall(r"\]\((?!https?:)([^)#\s]+)[^)]*\)", text):
        path = (page.parent / target).resolve()
        assert path.exists(), f"{page_id(page)} links to {target}"
        assert path.is_relative_to(ROOT), f"{page_id(page)} links outside: {target}"
        if page.is_relative_to(DOCS):
            # mkdocs serves docs/ only: a page may not reach out of it.
            assert path.is_relative_to(DOCS), f"{page_id(page)} links to {target}"


def test_every_page_is_in_the_nav() -> None:
    # mkdocs.yml is read as text: the test extra does not install PyYAML.
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = config[config.index("\nnav:") :]
    nav = nav[: re.search(r"\n\S", nav[1:]).start() + 1]  # up to the next top key
    in_nav = set(
        re.findall(r"^\s+- (?:[^:\n]+: )?(\S+\.md)\s*$", nav, flags=re.MULTILINE)
    )
    pages = {page.relative_to(DOCS).as_posix() for page in PAGES}
    assert pages == in_nav, (
        f"not in the nav: {pages - in_nav}; no such page: {in_nav - pages}"
    )


def test_click_commands_for_the_docs() -> None:
    import convcli.cli

    assert convcli.cli.click_command.name == "convcli"
    for name in ("apply", "batch", "trace", "plan", "kernels"):
        assert getattr(convcli.cli, f"click_{name}").name == name
    with pytest.raises(AttributeError, match="no attribute 'click_nope'"):
        _ = convcli.cli.click_nope  # type: ignore[attr-defined]
