"""docs/catalogue.md and docs/images/kernels/ are what docs/make_catalogue.py makes now.

The page must equal a fresh generation exactly; each picture must decode to
exactly the pixels of a fresh generation (PNG bytes are not compared: they
change with the zlib and Pillow versions). When a kernel, its description or
the apply pipeline changes, rewrite them with

    .venv/bin/python docs/make_catalogue.py
"""

from __future__ import annotations

import difflib
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

import convcli
from convcli.images import load
from convcli.kernels import KERNEL_PATH_ENV
from convcli.saving import save

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "docs" / "make_catalogue.py"
PAGE = ROOT / "docs" / "catalogue.md"
PICTURES = ROOT / "docs" / "images" / "kernels"
REWRITE = "run `.venv/bin/python docs/make_catalogue.py` and commit the result"


@pytest.fixture(scope="module")
def script() -> ModuleType:
    """docs/make_catalogue.py, loaded as a module (it is not in a package)."""
    spec = importlib.util.spec_from_file_location("docs_make_catalogue", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fresh(script: ModuleType) -> Any:
    """A fresh generation of the page and its pictures, in memory."""
    return script.generate()


@pytest.fixture
def names(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the built-in catalogue."""
    monkeypatch.delenv(KERNEL_PATH_ENV, raising=False)
    return [k.name for k in convcli.list_kernels()]


def test_page_is_fresh(fresh: Any) -> None:
    committed = PAGE.read_text(encoding="utf-8")
    if committed != fresh.page:
        diff = difflib.unified_diff(
            committed.splitlines(),
            fresh.page.splitlines(),
            "docs/catalogue.md (committed)",
            "docs/catalogue.md (fresh)",
            lineterm="",
        )
        shown = "\n".join(list(diff)[:40])
        pytest.fail(f"docs/catalogue.md is stale: {REWRITE}\n{shown}")


def test_pictures_are_fresh(fresh: Any) -> None:
    stale = []
    for name, pixels in sorted(fresh.pictures.items()):
        path = PICTURES / name
        if not path.is_file():
            stale.append(f"{name} (missing)")
            continue
        committed = load(path).pixels
        if committed.shape != pixels.shape:
            stale.append(f"{name} (shape {committed.shape}, fresh {pixels.shape})")
        elif not np.array_equal(committed, pixels):
            differ = int((committed != pixels).any(axis=-1).sum())
            stale.append(f"{name} ({differ} of its pixels differ)")
    assert not stale, f"stale pictures: {', '.join(stale)}; {REWRITE}"


def test_every_kernel_has_a_section_and_a_picture(names: list[str]) -> None:
    page = PAGE.read_text(encoding="utf-8")
    assert len(names) >= 36
    for name in names:
        heading = f"### `{name}` {{ #{name} }}"
        assert page.count(heading + "\n") == 1, (
            f"{name}: {page.count(heading)} sections"
        )
        assert page.count(f"](images/kernels/{name}.png)") == 1, name
        assert page.count(f"| [`{name}`](#{name}) |") == 1, f"{name}: not in the table"
        assert (PICTURES / f"{name}.png").is_file(), name
    headings = re.findall(r"^### `([^`]+)`", page, flags=re.MULTILINE)
    assert sorted(headings) == sorted(names)


def test_no_stray_picture(names: list[str]) -> None:
    expected = {f"{name}.png" for name in names} | {"crop.png"}
    present = {p.name for p in PICTURES.iterdir()}
    assert present - expected == set(), (
        f"stray files in docs/images/kernels/: {REWRITE}"
    )
    assert expected - present == set()


def test_page_says_it_is_generated_and_holds_no_local_path() -> None:
    lines = PAGE.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "# Kernel catalogue"
    first = next(line for line in lines[1:] if line.strip())
    assert "docs/make_catalogue.py" in first
    assert "do not edit" in first
    text = "\n".join(lines)
    assert str(ROOT) not in text
    assert "/home/" not in text
    assert "](images/kernels/crop.png)" in text


def test_check_names_what_is_stale(
    script: ModuleType,
    fresh: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The script's --check and rewrite, on a scratch copy spoilt four ways.
    pictures = tmp_path / "docs" / "images" / "kernels"
    page = tmp_path / "docs" / "catalogue.md"
    monkeypatch.setattr(script, "ROOT", tmp_path)
    monkeypatch.setattr(script, "PAGE", page)
    monkeypatch.setattr(script, "PICTURES", pictures)
    page.parent.mkdir()
    assert len(script.write(fresh)) == 1 + len(fresh.pictures)
    assert script.stale(fresh) == []
    text = fresh.page.replace("**sum** 0", "**sum** 7", 1)
    assert text != fresh.page
    page.write_text(text, encoding="utf-8")
    (pictures / "box.png").unlink()
    (pictures / "old_kernel.png").write_bytes(b"")
    spoilt = fresh.pictures["sobel.png"].copy()
    spoilt[0, 0] ^= 1
    save(pictures / "sobel.png", spoilt)
    assert script.stale(fresh) == [
        "docs/catalogue.md: differs from a fresh generation",
        "docs/images/kernels/box.png: missing",
        "docs/images/kernels/sobel.png: pixels differ",
        "docs/images/kernels/old_kernel.png: stray, no kernel of the catalogue has this picture",
    ]
    # Rewriting mends all four, and leaves the unchanged pictures' files alone.
    before = (pictures / "sobel_x.png").stat().st_mtime_ns
    assert len(script.write(fresh)) == 4
    assert script.stale(fresh) == []
    assert (pictures / "sobel_x.png").stat().st_mtime_ns == before
