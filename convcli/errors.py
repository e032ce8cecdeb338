"""The exceptions convcli raises for bad input and failed work, and how a message shows a name."""

from __future__ import annotations

import os


class ConvcliError(Exception):
    """Base class of every error convcli raises on purpose."""


class ShapeError(ConvcliError, ValueError):
    """Arrays whose shapes do not fit together (x, w, bias, padding)."""


class KernelError(ConvcliError, ValueError):
    """A kernel spec, file or parameter that cannot be read: says where and why."""


def shown(path: str | os.PathLike[str]) -> str:
    r"""Return a path as messages and tables show it: control characters escaped.

    A newline in a file name would split a one-line error; a byte that is not
    UTF-8 (which Python keeps as a lone surrogate) could not be printed at all.

    Examples
    --------
    >>> print(shown("a\nb.png"), shown("caf\u00e9.png"))
    a\nb.png café.png
    """
    text = os.fspath(path)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
