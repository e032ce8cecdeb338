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
import random
import stat
from pathlib import Path

TMP_STEM_BYTES = 96
"""How much of the target's name (in bytes) a temporary file's name keeps."""

_RANDOM = 8  # random characters between prefix and suffix, as tempfile.mkstemp
_LETTERS = "abcdefghijklmnopqrstuvwxyz0123456789_"  # tempfile's
_NAMES = random.Random()  # names, not secrets: O_EXCL guards them
_FLAGS = (
    os.O_RDWR
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_BINARY", 0)
)

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


def temporary_name(target: Path) -> Path:
    """Return a new name for a temporary file of ``target``; nothing is created.

    Name it first and create it with `create_temporary` inside the ``try``
    that removes it: a stop signal (a ``KeyboardInterrupt``) between the two
    then leaves a name the caller holds, never a file nobody knows of.
    """
    folder = target.parent if str(target.parent) else Path()
    letters = "".join(_NAMES.choices(_LETTERS, k=_RANDOM))
    return folder / f"{temporary_prefix(target)}{letters}.tmp"


def create_temporary(path: Path) -> int:
    """Create ``path`` (it must not exist), readable and writable by its owner only.

    Raises `OSError`: ``FileExistsError`` if the name is taken, or what the
    folder says (missing, read-only).
    """
    return os.open(path, _FLAGS, 0o600)


def make_temporary(target: Path) -> tuple[int, Path]:
    """Create an empty temporary file beside ``target``; return its descriptor and path.

    For a caller that removes the file itself once it holds the path; where
    a stop signal may come in between, use `temporary_name` and
    `create_temporary` instead. Raises `OSError` (a missing or read-only
    folder).
    """
    for _attempt in range(100):
        path = temporary_name(target)
        try:
            return create_temporary(path), path
        except FileExistsError:
            continue
    msg = f"no free temporary name beside {target}"
    raise FileExistsError(msg)


def target_problem(target: Path) -> str | None:
    """Say why ``target`` cannot be written as a new file, or None if it can.

    A folder or a device in the way, or a folder that takes no file. The one
    reliable test of a folder is to make a file in it and remove it; it is
    named first, so that a stop in between still finds it.
    """
    try:
        mode = target.stat().st_mode
    except (OSError, ValueError):
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        return "is a folder" if stat.S_ISDIR(mode) else "is not a regular file"
    folder = target.parent if str(target.parent) else Path()
    probe = temporary_name(target)
    refused = False
    try:
        os.close(create_temporary(probe))
    except OSError as err:  # nothing was made
        refused = True
        return f"cannot write in {folder}: {err.strerror or err}"
    finally:
        if not refused:
            probe.unlink(missing_ok=True)
    return None


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
