"""Where convcli writes: temporary files beside their target, and when two paths are one file.

Every file convcli writes (images, GIFs, the manifest) goes first to
``.NAME.XXXXXXXX.tmp`` in the target's folder, NAME cut to `TMP_STEM_BYTES`
so that a target name near the file-system limit still leaves room, and is
renamed onto the target when whole. One place names them, so that the clean-up
after a killed worker finds exactly what a write made. `file_keys` says when two
paths are one file (the output plans compare targets with inputs by it).
Standard library only.
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


def file_keys(path: str | os.PathLike[str]) -> list[object]:
    """Return what makes two paths one file: the resolved path, and (device, inode) if it exists.

    Two paths are one file when their keys meet: the same path after symbolic
    links, or a hard link to an existing file.

    Examples
    --------
    >>> file_keys("/no/such/file")
    ['/no/such/file']
    """
    keys: list[object] = [os.path.realpath(path)]
    try:
        info = os.stat(path)
    except (OSError, ValueError):  # not there (yet), or a name no system takes
        return keys
    return [*keys, (info.st_dev, info.st_ino)]


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Return whether two paths are one file (see `file_keys`)."""
    return not set(file_keys(a)).isdisjoint(file_keys(b))
