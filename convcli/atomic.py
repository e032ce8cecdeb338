"""Temporary files beside their target: how convcli names, makes, finishes and finds them.

Every file convcli writes (images, GIFs, the manifest) goes first to
``.NAME.XXXXXXXX.tmp`` in the target's folder, NAME cut to `TMP_STEM_BYTES`
so that a target name near the file-system limit still leaves room, and is
renamed onto the target when whole. One place names them, so that the clean-up
after a killed worker finds exactly what a write made. Standard library only.
"""

from __future__ import annotations

import glob
import os
import tempfile
from pathlib import Path

TMP_STEM_BYTES = 96
"""How much of the target's name (in bytes) a temporary file's name keeps."""

_RANDOM = 8  # the characters tempfile.mkstemp puts between prefix and suffix

_UMASK = os.umask(0)
os.umask(_UMASK)


def temporary_prefix(target: Path) -> str:
    """Return the start of ``target``'s temporary files' names: ``.NAME.``.

    Examples
    --------
    >>> temporary_prefix(Path("out/a.sobel.png"))
    '.a.sobel.png.'
    >>> len(temporary_prefix(Path("x" * 250 + ".png")))
    98
    """
    return "." + os.fsdecode(os.fsencode(target.name)[:TMP_STEM_BYTES]) + "."


def make_temporary(target: Path) -> tuple[int, Path]:
    """Create an empty temporary file beside ``target``; return its descriptor and path.

    Raises `OSError` as `tempfile.mkstemp` does (a missing or read-only folder).
    """
    folder = target.parent if str(target.parent) else Path()
    fd, name = tempfile.mkstemp(
        prefix=temporary_prefix(target), suffix=".tmp", dir=folder
    )
    return fd, Path(name)


def finish(temporary: Path, target: Path) -> None:
    """Give ``temporary`` the permissions ``open()`` would (the umask's) and rename it onto ``target``."""
    os.chmod(temporary, 0o666 & ~_UMASK)
    os.replace(temporary, target)


def temporaries(target: Path) -> list[Path]:
    """Return the temporary files of ``target`` that exist now (a killed writer's).

    Only ``.NAME.XXXXXXXX.tmp`` matches: not the temporary file of another
    target whose name starts with this one's (``a.png`` and ``a.png.sobel.png``).
    """
    pattern = glob.escape(temporary_prefix(target)) + "?" * _RANDOM + ".tmp"
    folder = target.parent if str(target.parent) else Path()
    return sorted(folder.glob(pattern))
