"""Write the real output of the documentation's commands into its pages.

A page asks for a command's output with a marker line, followed by a fenced
block that this script rewrites::

    <!-- output: convcli trace --demo seed -->
    ```console
    $ convcli trace --demo seed
    (the output, as a pipe gets it: plain text, 100 columns)
    ```

Options go between ``output`` and the colon: ``first-step`` keeps a trace's
header, its first step and its summary (the other steps repeat the layout);
``lines=A-B[,C-D]`` keeps those lines of the output (counted from 1), an
excerpt, with ``...`` where lines are left out; ``exit=N`` expects that exit
code instead of 0 (an example of an error); ``columns=N`` sets the width.
Standard error is shown with standard output. The README's marked blocks are
written and checked like the site's pages.

Commands run in a scratch folder laid out as a checkout (``sample_images/``,
``filters/`` and ``docs/examples/`` copied), so the outputs they write go
nowhere near the repository. The checkout's own path is written as
``<checkout>``. The ``time`` and ``images/s`` rows of the ``apply`` and
``batch`` tables, and the ms column of ``apply``'s one-line-per-output
table, change from run to run, and are masked when checking.

    .venv/bin/python docs/make_transcripts.py          # rewrite every page
    .venv/bin/python docs/make_transcripts.py --check  # exit 1 if one is stale
    .venv/bin/python docs/make_transcripts.py docs/learn.md  # one page

``tests/test_docs.py`` runs the check.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
MARKER = re.compile(
    r"^<!-- output(?P<options>[^:]*): (?P<command>convcli .*?) -->\n"
    r"```console\n(?P<block>.*?)^```\n",
    flags=re.MULTILINE | re.DOTALL,
)
# The time rows of the apply and batch tables: "│ time │ 216.1 ms  (load 26.2, ...) │".
TIME_ROW = re.compile(r"^(│ (?:time|images/s)\s+│).*$", flags=re.MULTILINE)
# The ms column, last, of apply's one-line-per-output table (five columns or more).
MS_CELL = re.compile(r"^(│(?:[^│\n]*│){4}\s*)[0-9.]+(\s*│)$", flags=re.MULTILINE)


@dataclass(frozen=True)
class Example:
    """One marked command of a page."""

    page: Path
    command: str
    first_step: bool
    exit_code: int
    columns: int
    block: str
    lines: tuple[tuple[int, int], ...] = ()  # an excerpt: (first, last), from 1

    @property
    def name(self) -> str:
        """Return ``page: command``, for messages and test ids."""
        base = DOCS if self.page.is_relative_to(DOCS) else ROOT
        return f"{self.page.relative_to(base).as_posix()}: {self.command}"


def example_at(page: Path, match: re.Match[str]) -> Example:
    """Return the example that ``match`` (of ``MARKER``) found on ``page``."""
    options = match["options"].split()
    for option in options:
        if option != "first-step" and not re.fullmatch(
            r"(exit|columns)=\d+|lines=\d+-\d+(,\d+-\d+)*", option
        ):
            line = match[0].split("\n", 1)[0]
            sys.exit(f"{page}: unknown option {option!r} in {line}")
    settings = dict(option.split("=") for option in options if "=" in option)
    ranges = (
        tuple(
            (int(a), int(b))
            for a, b in (
                part.split("-") for part in settings.get("lines", "").split(",")
            )
            if a
        )
        if "lines" in settings
        else ()
    )
    return Example(
        page=page,
        command=match["command"],
        first_step="first-step" in options,
        exit_code=int(settings.get("exit", 0)),
        columns=int(settings.get("columns", 100)),
        block=match["block"],
        lines=ranges,
    )


def examples(page: Path) -> list[Example]:
    """Return the page's marked commands, in order."""
    text = page.read_text(encoding="utf-8")
    return [example_at(page, match) for match in MARKER.finditer(text)]


def pages() -> list[Path]:
    """Return the README and every Markdown page of the site."""
    return [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]


def make_checkout(folder: Path) -> Path:
    """Lay out ``folder`` as the checkout the examples are typed in."""
    for part in ("sample_images", "filters", "docs/examples"):
        shutil.copytree(ROOT / part, folder / part)
    return folder


def run(example: Example, checkout: Path) -> str:
    """Run the example's command in ``checkout``; return the block's new text."""
    args = shlex.split(example.command)
    env = {
        **os.environ,
        "COLUMNS": str(example.columns),
        "NO_COLOR": "1",
        "TERM": "dumb",
    }
    env.pop("FORCE_COLOR", None)
    result = subprocess.run(
        [sys.executable, "-m", "convcli", *args[1:]],
        cwd=checkout,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != example.exit_code:
        msg = (
            f"{example.name}: exit code {result.returncode}, expected "
            f"{example.exit_code}\n{result.stdout}"
        )
        raise RuntimeError(msg)
    output = result.stdout.replace(str(checkout.resolve()), "<checkout>")
    output = output.replace(str(ROOT), "<checkout>")
    if example.first_step:
        output = first_step(output)
    if example.lines:
        output = excerpt(output, example.lines)
    lines = [f"$ {example.command}", *output.rstrip("\n").split("\n")]
    return "\n".join(line.rstrip() for line in lines) + "\n"


# A trace's step starts with its output value: "o[0,0,0] (step 1 of 18): ...".
STEP = re.compile(r"\n(?=o\[[\d,]+\] \(step \d+ of \d+\))")


def first_step(output: str) -> str:
    """Keep a trace's header, its first step and its summary."""
    head, *steps = STEP.split(output)
    if len(steps) < 2:
        return output
    last = steps[-1]
    summary = last[last.index("\nshapes\n") + 1 :]
    note = f"... steps 2 to {len(steps)} follow, laid out as step 1 ..."
    return f"{head}\n{steps[0].rstrip()}\n\n{note}\n\n{summary}"


def excerpt(output: str, ranges: tuple[tuple[int, int], ...]) -> str:
    """Keep the lines of ``ranges`` (from 1, inclusive), ``...`` between them."""
    lines = output.rstrip("\n").split("\n")
    kept: list[str] = []
    for first, last in ranges:
        if kept or first > 1:
            kept.append("...")
        kept.extend(lines[first - 1 : last])
    if ranges and ranges[-1][1] < len(lines):
        kept.append("...")
    return "\n".join(kept) + "\n"


def comparable(block: str) -> str:
    """Return ``block`` with what changes from run to run masked."""
    return MS_CELL.sub(r"\1(ms)\2", TIME_ROW.sub(r"\1 (masked)", block))


def stale(example: Example, checkout: Path) -> str | None:
    """Return why the example's block differs from a fresh run, or None."""
    fresh = run(example, checkout)
    if comparable(fresh) == comparable(example.block):
        return None
    return f"{example.name}: the page's output differs from a fresh run"


def rewrite(page: Path, checkout: Path) -> int:
    """Rewrite every marked block of ``page``; return how many there were."""
    text = page.read_text(encoding="utf-8")
    count = 0

    def fresh(match: re.Match[str]) -> str:
        nonlocal count
        count += 1
        example = example_at(page, match)
        head = match[0].split("\n", 1)[0]
        return f"{head}\n```console\n{run(example, checkout)}```\n"

    page.write_text(MARKER.sub(fresh, text), encoding="utf-8")
    return count


def main() -> int:
    """Rewrite the pages, or with ``--check`` report the stale blocks."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="report stale blocks, change nothing"
    )
    parser.add_argument(
        "pages", nargs="*", type=Path, help="these pages only (default: all)"
    )
    args = parser.parse_args()
    chosen = [page.resolve() for page in args.pages] or pages()
    with tempfile.TemporaryDirectory() as scratch:
        checkout = make_checkout(Path(scratch))
        if args.check:
            problems = [
                problem
                for page in chosen
                for example in examples(page)
                if (problem := stale(example, checkout))
            ]
            for problem in problems:
                print(problem, file=sys.stderr)
            return 1 if problems else 0
        for page in chosen:
            if count := rewrite(page, checkout):
                print(f"{page.relative_to(ROOT)}: {count} outputs written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
