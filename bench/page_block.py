"""Write a bench script's report between its markers in the performance page (stdlib only)."""

from __future__ import annotations

from pathlib import Path

# The documentation page the bench scripts write their tables into (``--docs``).
PERFORMANCE_PAGE = Path(__file__).resolve().parents[1] / "docs" / "performance.md"


def replace_block(path: Path, markers: tuple[str, str], snippet: str) -> None:
    """Replace the text between ``markers`` (begin, end) in ``path`` by ``snippet``."""
    text = path.read_text(encoding="utf-8")
    begin, end = markers
    if begin not in text or end not in text:
        msg = f"{path} has no {begin} ... {end} markers"
        raise SystemExit(msg)
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{begin}\n{snippet}\n{end}{tail}", encoding="utf-8")
