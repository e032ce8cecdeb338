"""The README is the manual: its Python examples run as written."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
REFERENCE = README.parent / "docs" / "reference.md"


def test_readme_examples_run() -> None:
    result = doctest.testfile(
        str(README), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted >= 3
    assert result.failed == 0


def test_readme_opens_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    commands = re.findall(r"^    (python3 -m venv .*)$", text, flags=re.MULTILINE)
    assert len(commands) >= 2
    assert "sample_images/" in commands[0]
    assert commands[1].endswith("python -m pytest")
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1] in ci


def test_reference_examples_run() -> None:
    result = doctest.testfile(
        str(REFERENCE), module_relative=False, optionflags=doctest.NORMALIZE_WHITESPACE
    )
    assert result.attempted >= 1
    assert result.failed == 0


def test_readme_and_reference_links_resolve() -> None:
    for page in (README, REFERENCE):
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\((?!https?:)([^)#\s]*[./][^)#\s]*)", text):
            assert (page.parent / target).exists(), f"{page.name} links to {target}"
