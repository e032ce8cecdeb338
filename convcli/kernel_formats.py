"""Kernel file formats: read text, JSON, ``.npy``, inline and ImageMagick kernels.

The text format, JSON and ``.npy`` files (`read_kernel_file`), inline
matrices and ImageMagick kernel strings (`parse_inline`), and the small input
matrices of ``convcli trace -i`` (`load_matrix`). Nothing is ever evaluated or
unpickled.

This module reads files but prints nothing; errors are `KernelError`, whose
message names the file, the line (and column where it helps) and what was
expected.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from convcli.errors import KernelError
from convcli.kernel_value import FloatArray, Kernel
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


def _number(token: str, where: str) -> float:
    """Read one weight: an int, a float, ``1e-3`` or a fraction ``1/9``."""
    text = token.strip()
    if _NUMBER.match(text):
        return float(text)
    if _FRACTION.match(text):
        num, den = (float(part) for part in text.split("/"))
        if den == 0:
            msg = f"{where}: {text!r} divides by zero"
            raise KernelError(msg)
        return num / den
    if _SPECIAL.match(text):
        msg = f"{where}: weight {text!r} is not finite; weights must be numbers"
        raise KernelError(msg)
    msg = f"{where}: {text!r} is not a number (expected e.g. 2, -0.5, 1e-3 or 1/9)"
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
            names.append(stripped[3:].strip() or f"f{len(filters)}")
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
        weights = weights * scale
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
# JSON and .npy


# Facts `convcli kernels --json` writes beside a kernel; ignored when read back.
_JSON_FACTS = ("bank", "shape", "rank", "separable", "sum", "source", "parameters")


def parse_json(text: str, source: str = "<json>") -> Kernel:
    """Parse the JSON kernel format (docs/reference.md, "Kernel formats").

    ``filters`` holds ``{"name", "weights"}`` objects, weights 2-D (kh x kw) or
    3-D (C x kh x kw); a single ``weights`` array (2-D or 4-D) may stand instead.
    """
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as err:
        msg = f"{source}:{err.lineno}:{err.colno}: not valid JSON: {err.msg}"
        raise KernelError(msg) from None
    if not isinstance(doc, dict):
        msg = f"{source}: expected a JSON object with 'filters' or 'weights'"
        raise KernelError(msg)
    allowed = {*HEADER_KEYS, "filters", "weights", "params", *_JSON_FACTS}
    unknown = sorted(set(doc) - allowed)
    if unknown:
        msg = f"{source}: unknown key {unknown[0]!r}; expected some of {', '.join(sorted(allowed))}"
        raise KernelError(msg)
    if "filters" in doc:
        filters = doc["filters"]
        if not isinstance(filters, list) or not filters:
            msg = f"{source}: 'filters' must be a non-empty list"
            raise KernelError(msg)
        arrays, names = [], []
        for i, item in enumerate(filters):
            if not isinstance(item, dict) or "weights" not in item:
                msg = f"{source}: filters[{i}] must be an object with 'weights'"
                raise KernelError(msg)
            arr = _json_array(
                item["weights"], f"{source}: filters[{i}].weights", (2, 3)
            )
            arrays.append(arr if arr.ndim == 3 else arr[np.newaxis])
            names.append(str(item.get("name", f"f{i}")))
        shape = arrays[0].shape
        for i, arr in enumerate(arrays):
            if arr.shape != shape:
                msg = f"{source}: filters[{i}].weights has shape {arr.shape}, expected {shape} like filters[0]"
                raise KernelError(msg)
        weights = np.stack(arrays)
    elif "weights" in doc:
        weights = _json_array(doc["weights"], f"{source}: weights", (2, 4))
        if weights.ndim == 2:
            weights = weights[np.newaxis, np.newaxis]
        names = [f"f{i}" for i in range(weights.shape[0])]
    else:
        msg = f"{source}: expected 'filters' or 'weights'"
        raise KernelError(msg)
    header = _Header()
    for key in HEADER_KEYS:
        if key in doc and key not in ("name", "description", "origin"):
            value = doc[key]
            header.values[key] = (
                " ".join(str(v) for v in value)
                if isinstance(value, list)
                else str(value)
            )
            header.lines[key] = 1
        elif key in doc:
            header.values[key] = str(doc[key])
            header.lines[key] = 1
    kernel = _from_header(header, weights, names, source)
    params = doc.get("params") or {}
    if params:
        kernel = Kernel(**{**kernel.__dict__, "params": dict(params)})
    return kernel


def _json_array(value: object, where: str, ndims: tuple[int, ...]) -> FloatArray:
    """Turn nested lists into a finite float array of one of ``ndims`` dimensions."""
    try:
        arr = np.array(value, dtype=np.float64)
    except (ValueError, TypeError):
        msg = (
            f"{where}: not a rectangular array of numbers (ragged rows or a non-number)"
        )
        raise KernelError(msg) from None
    if arr.ndim not in ndims or arr.size == 0:
        want = " or ".join(f"{n}-D" for n in ndims)
        msg = f"{where}: expected a non-empty {want} array; got shape {arr.shape}"
        raise KernelError(msg)
    if not np.isfinite(arr).all():
        msg = f"{where}: weights must be finite; got NaN or infinity"
        raise KernelError(msg)
    return arr


def parse_npy(path: Path) -> Kernel:
    """Read a 2-D (kh, kw) or 4-D (D, C, kh, kw) ``.npy`` array, without pickles."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        msg = f"{path}: not a readable .npy array ({err})"
        raise KernelError(msg) from None
    if arr.dtype.kind not in "biuf":
        msg = f"{path}: .npy holds dtype {arr.dtype}; expected numbers"
        raise KernelError(msg)
    weights = _json_array(arr.astype(np.float64), str(path), (2, 4))
    names = [f"f{i}" for i in range(weights.shape[0])] if weights.ndim == 4 else []
    return Kernel(
        name=path.stem,
        weights=weights,
        filter_names=tuple(names),
        source=str(path),
    )


def _is_file(path: Path) -> bool:
    """Whether ``path`` names a file; False for text no file could have as a name.

    An inline matrix longer than the system's name limit makes ``is_file``
    raise ``OSError`` (ENAMETOOLONG) instead of answering.
    """
    try:
        return path.is_file()
    except OSError:
        return False


def read_kernel_file(path: str | os.PathLike[str]) -> Kernel:
    """Read a kernel file by its ending: ``.json``, ``.npy``, else the text format."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError as err:
        msg = f"{p}: cannot read: {err.strerror or err}"
        raise KernelError(msg) from None
    if size > MAX_FILE_BYTES:
        msg = f"{p}: {size} bytes is too large to be a kernel file (at most {MAX_FILE_BYTES})"
        raise KernelError(msg)
    if p.suffix.lower() == ".npy":
        return parse_npy(p)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        msg = f"{p}: not a text kernel file (not UTF-8 text); expected {', '.join(SUFFIXES)}"
        raise KernelError(msg) from None
    except OSError as err:
        msg = f"{p}: cannot read: {err.strerror or err}"
        raise KernelError(msg) from None
    if p.suffix.lower() == ".json":
        return parse_json(text, str(p))
    return parse_text(text, str(p))


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
    values: list[list[float]] = []
    for i, row in enumerate(rows, start=1):
        tokens = [t for _, t in _split_values(row)]
        if not tokens:
            msg = f"{what} {spec!r}: row {i} is empty"
            raise KernelError(msg)
        values.append([_number(t, f"{what} row {i}") for t in tokens])
    width = len(values[0])
    for i, row_values in enumerate(values, start=1):
        if len(row_values) != width:
            msg = f"{what} {spec!r}: row {i} has {len(row_values)} values, expected {width}"
            raise KernelError(msg)
    return Kernel(
        name="inline", weights=np.array(values, dtype=np.float64), source="inline"
    )


def _parse_imagemagick(spec: str, match: re.Match[str]) -> Kernel:
    width = int(match.group(1))
    height = int(match.group(2) or width)
    tokens = [t for _, t in _split_values(match.group(5))]
    where = f"ImageMagick kernel {spec.strip()!r}"
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
    return Kernel(name="inline", weights=weights, source="imagemagick")


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif")


def load_matrix(spec: str | os.PathLike[str]) -> FloatArray:
    """Read a small input matrix, as ``convcli trace -i`` takes it.

    A file in the kernel formats (``.txt``, ``.csv``, ``.json``, ``.npy``;
    in text, blank lines separate channel slices), or an inline matrix:
    rows by ``;``, values by ``,`` or spaces, channel slices by ``|``.

    Returns
    -------
    ndarray of float64
        (H, W) for one channel, (H, W, C) for several.

    Examples
    --------
    >>> load_matrix("1 2; 3 4").tolist()
    [[1.0, 2.0], [3.0, 4.0]]
    >>> load_matrix("1 2; 3 4 | 5 6; 7 8").shape
    (2, 2, 2)
    """
    text = str(spec).strip()
    path = Path(text)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        msg = (
            f"{text}: -i takes a small matrix (a text, .csv, .json or .npy file, or "
            "numbers like '1,2;3,4'), not an image; use `convcli apply` for images"
        )
        raise KernelError(msg)
    if isinstance(spec, os.PathLike) or _is_file(path):
        weights = read_kernel_file(path).weights
        if weights.ndim == 2:
            return weights
        if weights.shape[0] > 1:
            msg = (
                f"{text}: an input matrix has no '---' filters (found "
                f"{weights.shape[0]}); separate its channels with blank lines"
            )
            raise KernelError(msg)
        return np.ascontiguousarray(weights[0].transpose(1, 2, 0))
    if not text or os.sep in text or path.suffix.lower() in SUFFIXES:
        msg = f"{text or repr(text)}: no such matrix file"
        raise KernelError(msg)
    slices = [parse_inline(part, "input matrix").weights for part in text.split("|")]
    for c, piece in enumerate(slices[1:], start=2):
        if piece.shape != slices[0].shape:
            msg = (
                f"input matrix {text!r}: channel {c} is {piece.shape[0]}x{piece.shape[1]}, "
                f"expected {slices[0].shape[0]}x{slices[0].shape[1]} like channel 1"
            )
            raise KernelError(msg)
    if len(slices) == 1:
        return slices[0]
    return np.stack(slices, axis=2)
