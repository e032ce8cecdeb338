"""Kernel text formats: numbers, the text format, inline and ImageMagick kernels.

The text format (`parse_text`), inline matrices and ImageMagick kernel strings
(`parse_inline`), the arguments of ImageMagick's named kernels
(`imagemagick_arguments`; `convcli.kernel_imagemagick` makes those kernels), and
what every format shares: reading one number (finite,
within float64), the header (scale, bias, combine, range) and the checks on
names and weights. Reading files, JSON and ``.npy`` is `convcli.kernel_files`'
job. Nothing is ever evaluated or unpickled.

Errors are `KernelError`, whose message names the file, the line (and column
where it helps) and what was expected.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from convcli.errors import KernelError
from convcli.kernel_value import FloatArray, Kernel, inline_name
from convcli.names import COMBINES, RANGES

HEADER_KEYS: tuple[str, ...] = (
    "name",
    "description",
    "origin",
    "scale",
    "bias",
    "combine",
    "range",
)
"""Keys allowed in the header of a text kernel file."""

SUFFIXES: tuple[str, ...] = (".txt", ".csv", ".json", ".npy")
"""File endings read as kernels."""

MAX_FILE_BYTES = 1 << 20
"""A larger file is not a kernel (a mistyped image path, say)."""

MAX_WEIGHTS = 1 << 20
"""At most this many weights in one kernel, all filters and channels together."""


# ---------------------------------------------------------------------------
# Numbers


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_FRACTION = re.compile(r"^[+-]?\d+(\.\d*)?\s*/\s*[+-]?\d+(\.\d*)?$")
_SPECIAL = re.compile(r"^[+-]?(nan|inf|infinity)$", re.IGNORECASE)


_RANGE = "float64's range (about 1.8e308)"


def _short(text: str, keep: int = 24) -> str:
    """Return ``text`` for an error message, cut in the middle when long."""
    if len(text) <= keep:
        return text
    return f"{text[: keep // 2]}...{text[-keep // 2 :]} ({len(text)} characters)"


def _number(token: str, where: str) -> float:
    """Read one weight: an int, a float, ``1e-3`` or a fraction ``1/9``; finite."""
    text = token.strip()
    if _NUMBER.match(text):
        value = float(text)
    elif _FRACTION.match(text):
        num, den = (float(part) for part in text.split("/"))
        if den == 0:
            msg = f"{where}: {text!r} divides by zero"
            raise KernelError(msg)
        value = num / den
    elif _SPECIAL.match(text):
        msg = f"{where}: weight {text!r} is not finite; weights must be numbers"
        raise KernelError(msg)
    else:
        msg = f"{where}: {_short(text)!r} is not a number (expected e.g. 2, -0.5, 1e-3 or 1/9)"
        raise KernelError(msg)
    if not math.isfinite(value):
        msg = f"{where}: {_short(text)!r} is beyond {_RANGE}"
        raise KernelError(msg)
    return value


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


def _printable(value: str, where: str, what: str) -> str:
    """Return ``value``, a name or a description, if it holds no control character.

    A control character (an escape sequence, say) would reach the terminal of
    whoever lists the kernel; a tab is allowed.
    """
    bad = _CONTROL.search(value)
    if bad:
        msg = (
            f"{where}: {what} holds the control character {bad.group()!r}; "
            "names and descriptions are printable text"
        )
        raise KernelError(msg)
    return value


def check_magnitudes(weights: FloatArray, where: str) -> None:
    """Refuse finite weights whose magnitudes add up beyond float64 (``1e308`` each).

    The sum of such a filter, and its result on an image of ones, overflow
    to infinity: the kernel is refused, naming ``where`` and the filter.
    Below that bound every sum of weights is finite.

    Raises
    ------
    KernelError
        ``where: the weights of filter 1 are too large: ...``.
    """
    filters = weights.reshape(weights.shape[0] if weights.ndim == 4 else 1, -1)
    with np.errstate(over="ignore", invalid="ignore"):
        sums = np.abs(filters).sum(axis=1)
    bad = np.flatnonzero(~np.isfinite(sums))
    if bad.size:
        which = f" of filter {int(bad[0])}" if weights.ndim == 4 else ""
        peak = float(np.abs(filters[bad[0]]).max())
        msg = (
            f"{where}: the weights{which} are too large: the sum of their "
            f"magnitudes is beyond {_RANGE}, the largest weight {peak:.3g}; "
            "scale them down"
        )
        raise KernelError(msg)


def _split_values(line: str) -> Iterator[tuple[int, str]]:
    """Yield (column, token) for the values of a line: commas, spaces or tabs."""
    for match in re.finditer(r"[^\s,]+", line):
        yield match.start() + 1, match.group()


# ---------------------------------------------------------------------------
# The text format


@dataclass
class _Header:
    values: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)


_HEADER = re.compile(r"^([A-Za-z_][\w-]*)\s*:(.*)$")


def parse_text(text: str, source: str = "<text>") -> Kernel:
    r"""Parse the text kernel format (README, "The text format").

    Parameters
    ----------
    text : str
        The file's contents.
    source : str, optional
        The name errors start with, usually the path.

    Returns
    -------
    Kernel

    Raises
    ------
    KernelError
        ``source:line[:col]: what is wrong, what was expected``.

    Examples
    --------
    >>> k = parse_text("scale: 1/16\n1 2 1\n2 4 2\n1 2 1\n")
    >>> k.weights.sum()
    np.float64(1.0)
    """
    header = _Header()
    # filters -> slices -> rows of (line number, values)
    filters: list[list[list[tuple[int, list[float]]]]] = []
    names: list[str] = []
    name_lines: list[int] = []
    in_numbers = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].rstrip()
        stripped = line.strip()
        where = f"{source}:{number}"
        if stripped.startswith("---"):
            name = _printable(stripped[3:].strip(), where, "the filter name")
            names.append(name or f"f{len(filters)}")
            name_lines.append(number)
            filters.append([[]])
            in_numbers = True
            continue
        if not stripped:
            if filters and filters[-1][-1]:
                filters[-1].append([])  # a blank line ends a channel slice
            continue
        head = _HEADER.match(stripped)
        if head and not _looks_numeric(stripped):
            if in_numbers:
                msg = f"{where}: header line {head.group(1)!r} after the weights; headers come first"
                raise KernelError(msg)
            _header_line(
                header, head.group(1).lower(), head.group(2).strip(), where, number
            )
            continue
        if not filters:
            filters.append([[]])
            names.append("f0")
            name_lines.append(number)
        in_numbers = True
        values = [
            _number(token, f"{where}:{col}") for col, token in _split_values(line)
        ]
        filters[-1][-1].append((number, values))
    weights = _assemble(filters, names, name_lines, source)
    return _from_header(header, weights, names, source)


def _looks_numeric(line: str) -> bool:
    first = next(iter(_split_values(line)), (0, ""))[1]
    return bool(_NUMBER.match(first) or _FRACTION.match(first))


def _header_line(
    header: _Header, key: str, value: str, where: str, number: int
) -> None:
    if key not in HEADER_KEYS:
        close = difflib.get_close_matches(key, HEADER_KEYS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        msg = (
            f"{where}: unknown header key {key!r}{hint}; "
            f"expected one of {', '.join(HEADER_KEYS)}"
        )
        raise KernelError(msg)
    if key in header.values:
        msg = f"{where}: header key {key!r} given twice (first on line {header.lines[key]})"
        raise KernelError(msg)
    header.values[key] = value
    header.lines[key] = number


def _assemble(
    filters: list[list[list[tuple[int, list[float]]]]],
    names: list[str],
    name_lines: list[int],
    source: str,
) -> FloatArray:
    """Check the shapes of filters, slices and rows; return (D, C, kh, kw)."""
    cleaned = [[s for s in f if s] for f in filters]
    if not any(cleaned):
        msg = f"{source}: no weights found; a kernel needs at least one number"
        raise KernelError(msg)
    first_row = next(s[0] for f in cleaned for s in f if s)
    width = len(first_row[1])
    height = next(len(s) for f in cleaned for s in f if s)
    depth = next(len(f) for f in cleaned if f)
    for d, slices in enumerate(cleaned):
        if not slices:
            msg = f"{source}:{name_lines[d]}: filter {names[d]!r} has no weights"
            raise KernelError(msg)
        if len(slices) != depth:
            line = slices[-1][0][0]
            msg = (
                f"{source}:{line}: filter {names[d]!r} has {len(slices)} channel "
                f"slices, expected {depth} like the first filter"
            )
            raise KernelError(msg)
        for rows in slices:
            if len(rows) != height:
                msg = (
                    f"{source}:{rows[0][0]}: slice has {len(rows)} rows, "
                    f"expected {height}"
                )
                raise KernelError(msg)
            for line, values in rows:
                if len(values) != width:
                    msg = f"{source}:{line}: row has {len(values)} values, expected {width}"
                    raise KernelError(msg)
    count = len(cleaned) * depth * height * width
    if count > MAX_WEIGHTS:
        msg = f"{source}: {count} weights is too many for a kernel (at most {MAX_WEIGHTS})"
        raise KernelError(msg)
    return np.array(
        [[[values for _, values in rows] for rows in slices] for slices in cleaned],
        dtype=np.float64,
    )


def _from_header(
    header: _Header, weights: FloatArray, names: Sequence[str], source: str
) -> Kernel:
    """Apply scale, check bias, combine and range; squeeze a lone 2-D filter."""
    values = header.values

    def where(key: str) -> str:
        return f"{source}:{header.lines[key]}"

    if "scale" in values:
        scale = _number(values["scale"], where("scale"))
        with np.errstate(over="ignore"):
            scaled = weights * scale
        if not np.isfinite(scaled).all():
            msg = (
                f"{where('scale')}: scale {_short(values['scale'])} takes the weights "
                f"beyond {_RANGE}; the largest weight is {np.abs(weights).max():.3g} before it"
            )
            raise KernelError(msg)
        weights = scaled
    for key in ("name", "description", "origin"):
        if key in values:
            _printable(values[key], where(key), f"the {key}")
    depth = weights.shape[0]
    bias: tuple[float, ...] = ()
    if "bias" in values:
        items = [
            _number(t, f"{where('bias')}:{c}") for c, t in _split_values(values["bias"])
        ]
        if len(items) == 1:
            bias = tuple(items) * depth
        elif len(items) == depth:
            bias = tuple(items)
        else:
            msg = f"{where('bias')}: bias has {len(items)} values, expected 1 or {depth} (one per filter)"
            raise KernelError(msg)
    combine = values.get("combine", "stack").lower()
    if combine not in COMBINES:
        msg = f"{where('combine')}: combine {combine!r} is not one of {', '.join(COMBINES)}"
        raise KernelError(msg)
    range_ = values.get("range", "clip").lower()
    if range_ not in RANGES:
        msg = f"{where('range')}: range {range_!r} is not one of {', '.join(RANGES)}"
        raise KernelError(msg)
    if weights.shape[:2] == (1, 1):
        weights = weights[0, 0]
    return Kernel(
        name=values.get("name") or Path(source).stem,
        weights=weights,
        description=values.get("description", ""),
        origin=values.get("origin", ""),
        bias=bias,
        combine=combine,
        range=range_,
        filter_names=tuple(names) if weights.ndim == 4 else (),
        source=source,
    )


# ---------------------------------------------------------------------------
# Inline matrices and ImageMagick kernel strings


_IMAGEMAGICK = re.compile(
    r"^\s*(\d+)(?:x(\d+))?(?:([+-]\d+)([+-]\d+))?\s*:(.*)$", re.DOTALL
)


def parse_inline(spec: str, what: str = "inline kernel") -> Kernel:
    """Read ``"0,-1,0;-1,5,-1;0,-1,0"`` (rows by ``;``) or an ImageMagick string.

    ImageMagick's ``"WxH[+X+Y]: v v v ..."`` lists W*H values row by row; its
    ``nan`` (a position outside the neighbourhood) reads as 0. The origin
    ``+X+Y`` is accepted only at the centre, where convcli's windows are
    anchored with ``padding="same"``. ``what`` starts each error message.
    """
    magick = _IMAGEMAGICK.match(spec)
    if magick:
        return _parse_imagemagick(spec, magick)
    rows = spec.split(";")
    if len(spec) > 16 * MAX_WEIGHTS:
        msg = f"{what}: {len(spec)} characters is too long for a kernel (at most {MAX_WEIGHTS} weights)"
        raise KernelError(msg)
    values: list[list[float]] = []
    for i, row in enumerate(rows, start=1):
        tokens = [t for _, t in _split_values(row)]
        if not tokens:
            msg = f"{what} {_short(spec, 60)!r}: row {i} is empty"
            raise KernelError(msg)
        values.append([_number(t, f"{what} row {i}") for t in tokens])
    width = len(values[0])
    for i, row_values in enumerate(values, start=1):
        if len(row_values) != width:
            msg = f"{what} {_short(spec, 60)!r}: row {i} has {len(row_values)} values, expected {width}"
            raise KernelError(msg)
    weights = np.array(values, dtype=np.float64)
    return Kernel(name=inline_name(weights), weights=weights, source="inline")


def _parse_imagemagick(spec: str, match: re.Match[str]) -> Kernel:
    where = f"ImageMagick kernel {_short(spec.strip(), 60)!r}"
    sizes = [match.group(i) for i in range(1, 5) if match.group(i) is not None]
    if any(len(size.lstrip("+-")) > 6 for size in sizes):
        msg = f"{where}: sizes and origins are at most 6 digits"
        raise KernelError(msg)
    width = int(match.group(1))
    height = int(match.group(2) or width)
    tokens = [t for _, t in _split_values(match.group(5))]
    if width < 1 or height < 1:
        msg = f"{where}: size must be at least 1x1"
        raise KernelError(msg)
    if len(tokens) != width * height:
        msg = f"{where}: has {len(tokens)} values, expected {width}x{height} = {width * height}"
        raise KernelError(msg)
    if match.group(3) is not None:
        origin = (int(match.group(3)), int(match.group(4)))
        if origin != ((width - 1) // 2, (height - 1) // 2):
            msg = (
                f"{where}: origin +{origin[0]}+{origin[1]} is off-centre; convcli "
                f"anchors a {width}x{height} kernel at +{(width - 1) // 2}+{(height - 1) // 2}"
            )
            raise KernelError(msg)
    numbers = [0.0 if t.lower() == "nan" else _number(t, where) for t in tokens]
    weights = np.array(numbers, dtype=np.float64).reshape(height, width)
    return Kernel(name=inline_name(weights), weights=weights, source="imagemagick")


_IM_VALUE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_IM_FLAGS = {
    "@": "expands a kernel into a list of its 45-degree turns",
    ">": "expands a kernel into a list of its 90-degree turns",
    "<": "expands a kernel into a list of its mirror images",
    ";": "separates a list of kernels (give each with its own -k)",
    "!": "is a normalization flag of -define convolve:scale",
    "^": "is a normalization flag of -define convolve:scale",
    "%": "scales a distance kernel",
}


def imagemagick_arguments(
    text: str, where: str, usage: str
) -> tuple[float | None, ...]:
    """Read the numbers after an ImageMagick kernel's name, as its geometry does.

    ``0x2``, ``0x2+90``, ``0x2,90``, ``0,1,2``, ``3x4+1+2``: the first two
    may be joined by ``x``, any by ``,``, and a value may follow with its
    sign (``+90``). An empty one (``x2``, ``,,90``) is None. ImageMagick's
    flags (``@ > < ! ^ %``) and kernel lists (``;``) are refused, naming
    ``where`` and the expected ``usage``.

    Examples
    --------
    >>> imagemagick_arguments("0x2+90", "Blur:0x2+90", "Blur:{radius}x{sigma}")
    (0.0, 2.0, 90.0)
    >>> imagemagick_arguments("x2", "Gaussian:x2", "Gaussian:{radius}x{sigma}")
    (None, 2.0)
    """
    s = re.sub(r"\s+", "", text)
    for char, what in _IM_FLAGS.items():
        if char in s:
            msg = f"{where}: {char!r} {what} in ImageMagick; convcli reads one kernel, without flags ({usage})"
            raise KernelError(msg)
    values: list[float | None] = []
    pos = 0
    while True:
        number = _IM_VALUE.match(s, pos)
        if number is None and pos < len(s) and s[pos] not in "xX,":
            msg = f"{where}: {_short(s[pos:])!r} is not a number; expected {usage}"
            raise KernelError(msg)
        if number is None:
            values.append(None)
        else:
            value = float(number.group())
            if not math.isfinite(value):
                msg = f"{where}: {_short(number.group())!r} is beyond {_RANGE}"
                raise KernelError(msg)
            values.append(value)
            pos = number.end()
        if pos == len(s):
            break
        if (s[pos] in "xX" and len(values) == 1) or s[pos] == ",":
            pos += 1
        elif s[pos] not in "+-":
            msg = f"{where}: {s[pos]!r} where a separator (x , + -) was expected; expected {usage}"
            raise KernelError(msg)
    return tuple(values)
