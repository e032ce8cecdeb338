"""Write the README's `convcli trace --demo cs231n` transcript from a real run.

The transcript is the command's own output, plain text at 100 columns, with
steps 2 to 18 left out (they repeat step 1's layout; the GIF shows them all).
`tests/test_trace_cli.py` checks that the README still holds exactly this.

    .venv/bin/python sample_images/make_trace_transcript.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
COMMAND = ["convcli", "trace", "--demo", "cs231n"]
BEGIN, END = "<!-- trace_cs231n:begin -->", "<!-- trace_cs231n:end -->"


def run() -> str:
    """Return the plain-text output of the command, as a pipe gets it."""
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1"}
    env.pop("FORCE_COLOR", None)
    cmd = [sys.executable, "-m", "convcli", *COMMAND[1:]]
    return subprocess.run(
        cmd, capture_output=True, text=True, env=env, check=True
    ).stdout


def transcript(output: str) -> str:
    """Return the README block: header, step 1, a note for the rest, the summary."""
    head, *steps = output.split("\nstep ")
    last = steps[-1]
    summary = last[last.index("\nshapes\n") + 1 :]
    first = steps[0].rstrip("\n")
    note = f"... steps 2 to {len(steps)} follow, laid out as step 1 ..."
    body = f"{head}\nstep {first}\n\n{note}\n\n{summary}"
    lines = [f"    $ {' '.join(COMMAND)}"]
    lines += [f"    {line}".rstrip() for line in body.rstrip("\n").split("\n")]
    return "\n".join(lines)


def main() -> None:
    """Rewrite the README between the markers."""
    text = README.read_text(encoding="utf-8")
    block = f"{BEGIN}\n\n{transcript(run())}\n\n{END}"
    new, count = re.subn(
        re.escape(BEGIN) + ".*?" + re.escape(END),
        lambda _: block,
        text,
        flags=re.DOTALL,
    )
    if count != 1:
        sys.exit(f"{README}: expected one {BEGIN} ... {END} block")
    README.write_text(new, encoding="utf-8")
    print(f"{README}: transcript of {' '.join(COMMAND)} written")


if __name__ == "__main__":
    main()
