"""How an output file is named: the default name, its option tags, ``--name TEMPLATE``.

The default name is ``<stem>.<kernel>[.<filter>][.<tags>]<ext>``: the input's
stem, the kernel (`kernel_tag`), a stacked bank's filter, and one tag per
option that changes the result and is not the default (`option_tags`), so that
runs with different options do not overwrite each other. ``--name`` replaces
it with a template of the fields in `FIELDS` (`check_template`, `fill`).
`convcli.plan` puts the name where the output goes and checks it.
"""

from __future__ import annotations

import os
import re
import string
from typing import Protocol

from convcli.errors import ConvcliError
from convcli.kernel_value import Kernel
from convcli.saving import FORMATS


class Options(Protocol):
    """What `option_tags` reads of `convcli.plan.ApplyOptions`."""

    @property
    def stride(self) -> object: ...  # noqa: D102
    @property
    def padding(self) -> object: ...  # noqa: D102
    @property
    def dilation(self) -> object: ...  # noqa: D102
    @property
    def border(self) -> str: ...  # noqa: D102
    @property
    def cval(self) -> float: ...  # noqa: D102
    @property
    def flip(self) -> bool: ...  # noqa: D102
    @property
    def range(self) -> str | None: ...  # noqa: D102
    @property
    def channels(self) -> str: ...  # noqa: D102
    @property
    def alpha(self) -> str: ...  # noqa: D102
    @property
    def frame(self) -> int | None: ...  # noqa: D102
    @property
    def like(self) -> str | None: ...  # noqa: D102
    @property
    def float_output(self) -> bool: ...  # noqa: D102


FIELDS: tuple[str, ...] = ("stem", "kernel", "filter", "params", "ext", "n")
"""The fields ``--name`` takes."""

_SEPARATORS = "._-"
_NOT_FILES = ("", "inline", "imagemagick", "generator", "catalogue")  # `Kernel.source`
_SAMPLE: dict[str, object] = {
    "stem": "a",
    "kernel": "k",
    "filter": "f",
    "params": "p",
    "ext": "png",
    "n": 1,
}


def safe(text: str) -> str:
    """Return ``text`` with each run of characters other than letters, digits, ``.-_`` as ``-``.

    Examples
    --------
    >>> safe("gaussian-sigma3 / x")
    'gaussian-sigma3-x'
    """
    return re.sub(r"[^\w.-]+", "-", text)


def kernel_tag(kernel: Kernel) -> str:
    """Return the kernel's part of a file name: its name and parameters, filename-safe.

    A kernel read from a file given by its path is named after the file's
    stem (not its ``name:`` line); a catalogue file's stem is its name.
    """
    if kernel.steps:  # --chain: its kernels' tags joined by +
        return "+".join(kernel_tag(step) for step in kernel.steps)
    name = kernel.name
    if kernel.source not in _NOT_FILES:  # by its text, not the disk: a Dask worker
        name = os.path.splitext(os.path.basename(kernel.source))[0]  # may not see it
    params = "".join(f"-{k}{v:g}" for k, v in kernel.params.items() if v)
    return safe(name + params)


def _pair_tag(letter: str, value: object, default: int) -> str:
    """Return ``s2`` for 2, ``s2x3`` for (2, 3); empty for the default."""
    values = [value] * 2 if isinstance(value, int) else list(value)  # type: ignore[call-overload]
    if all(v == default for v in values):
        return ""
    if len(set(values)) == 1:
        return f"{letter}{values[0]}"
    return letter + "x".join(str(v) for v in values)


def _padding_tag(padding: object) -> str:
    """Return ``valid``, ``p3``, ``p1x2`` or ``p1-2-3-4``; empty for ``same``."""
    if isinstance(padding, str):
        return "" if padding.lower() == "same" else safe(padding.lower())
    if isinstance(padding, int):
        return f"p{padding}"
    parts = list(padding)  # type: ignore[call-overload]
    if all(isinstance(p, int) for p in parts):
        return "p" + (
            "x".join(str(p) for p in parts) if parts[0] != parts[1] else str(parts[0])
        )
    flat = [str(v) for p in parts for v in p]
    return "p" + "-".join(flat)


def option_tags(kernel: Kernel, options: Options) -> list[str]:
    """Return the tags of the options that differ from the defaults, in a fixed order.

    ``like-NAME`` stands for the border, flip, padding and range ``--like``
    sets; stride ``s``, dilation ``d``, padding ``p`` (or ``valid``), the
    border's name (``constant`` with a ``--cval`` other than 0 adds it),
    ``flip``, the range when it is not the kernel's own, ``gray``/``rgb``
    (not with ``--float``, whose output is gray),
    ``premultiply``, ``frameN``.

    Examples
    --------
    >>> from convcli.kernels import load_kernel
    >>> from convcli.plan import ApplyOptions
    >>> option_tags(load_kernel("sobel"), ApplyOptions(stride=2, border="edge"))
    ['s2', 'edge']
    >>> option_tags(load_kernel("sobel"), ApplyOptions())
    []
    """
    tags = [f"like-{options.like}" if options.like else ""]
    tags.append(_pair_tag("s", options.stride, 1))
    tags.append(_pair_tag("d", options.dilation, 1))
    if not options.like:
        tags.append(_padding_tag(options.padding))
        border = options.border.lower()
        if border != "reflect":
            cval = f"{options.cval:g}" if border in ("constant", "zero") else "0"
            tags.append(safe(border + (cval if cval != "0" else "")))
        tags.append("flip" if options.flip else "")
        if options.range is not None and options.range != kernel.range:
            tags.append(safe(options.range))
    if options.channels != "keep" and not options.float_output:  # --float: gray
        tags.append(options.channels)
    tags.append("premultiply" if options.alpha == "premultiply" else "")
    tags.append(f"frame{options.frame}" if options.frame is not None else "")
    return [t for t in tags if t]


def check_format(fmt: str) -> str:
    """Return ``--format``'s ending (``jpeg``, ``png``, ...), lower case, without a dot.

    Raises
    ------
    ConvcliError
        Not an ending convcli writes.
    """
    ending = fmt.strip().lower().lstrip(".")
    if "." + ending not in FORMATS:
        msg = (
            f"--format {fmt}: not an image format ({', '.join(e[1:] for e in FORMATS)})"
        )
        raise ConvcliError(msg)
    return ending


def same_format(ending: str, other: str) -> bool:
    """Whether two endings (with or without a dot) name one format (``jpg`` and ``jpeg``)."""
    a = FORMATS.get("." + ending.lower().lstrip("."))
    b = FORMATS.get("." + other.lower().lstrip("."))
    return a is not None and a == b


def check_template(template: str) -> str:
    """Return ``--name``'s template once it is checked: known fields, a name, not a path.

    Raises
    ------
    ConvcliError
        An unknown or positional field, a conversion (``!r``), a bad format
        spec, a ``/``, or a template that names nothing.

    Examples
    --------
    >>> check_template("{stem}_{kernel}.{ext}")
    '{stem}_{kernel}.{ext}'
    """
    fields = ", ".join("{" + f + "}" for f in FIELDS)
    seps = {"/", "\0", os.sep, os.altsep or "/"}
    if any(s in template for s in seps):
        msg = (
            f"--name {template!r}: a template names a file, not a path (no /); "
            "-o chooses the folder"
        )
        raise ConvcliError(msg)
    try:
        parsed = list(string.Formatter().parse(template))
        for _, field, spec, conversion in parsed:
            if field is None:
                continue
            if field not in FIELDS:
                shown = "{" + field + "}"
                msg = f"--name {template!r}: unknown field {shown}; the fields are {fields}"
                raise ConvcliError(msg)
            if conversion is not None or "{" in (spec or ""):
                msg = f"--name {template!r}: write a field as {{{field}}} or {{{field}:spec}}"
                raise ConvcliError(msg)
            format(_SAMPLE[field], spec or "")
    except ValueError as err:
        if isinstance(err, ConvcliError):
            raise
        msg = f"--name {template!r}: {err}; the fields are {fields}"
        raise ConvcliError(msg) from None
    if not template.strip() or template.strip(".") == "":
        msg = f"--name {template!r}: the template names nothing; e.g. '{{stem}}.{{kernel}}.{{ext}}'"
        raise ConvcliError(msg)
    return template


def fill(template: str, values: dict[str, object]) -> str:
    """Return the template with its fields filled in (`check_template` it first).

    A field left empty (``{params}`` when every option is the default, say)
    takes one of the separators (``.``, ``_``, ``-``) around it along.

    Examples
    --------
    >>> fill("{stem}.{kernel}.{params}.{ext}", {"stem": "a", "kernel": "sobel", "params": "", "ext": "png"})
    'a.sobel.png'
    >>> fill("{n:03}_{stem}.{ext}", {"n": 7, "stem": "a", "ext": "png"})
    '007_a.png'
    """
    name, empty = "", False
    for literal, field, spec, _ in string.Formatter().parse(template):
        text = literal
        if empty and text[:1] in _SEPARATORS and name[-1:] in (*_SEPARATORS, ""):
            text = text[1:]
        name += text
        if field is None:
            continue
        value = format(values[field], spec or "")
        empty = value == ""
        name += value
    if empty and name[-1:] in _SEPARATORS:  # "{kernel}-{params}": no "-" at the end
        name = name[:-1]
    return name


def fit(name: str, limit: int) -> str:
    """Return ``name`` cut to ``limit`` bytes with a hash if longer, its ending kept."""
    if len(os.fsencode(name)) <= limit:
        return name
    import hashlib  # here: 3 ms at import, for names longer than the limit only

    base, ext = os.path.splitext(name)
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:8]
    room = limit - len(os.fsencode(ext)) - len(digest) - 1  # "~"
    cut = os.fsencode(base)[:room].decode(errors="ignore")
    return f"{cut}~{digest}{ext}"
