"""Kernels: the `Kernel` value, its file formats, the catalogue and its generators.

A kernel spec (``-k`` on the command line, `load_kernel` in Python) is, in
this order: a path to an existing file (``.txt``, ``.csv``, ``.json``,
``.npy``); a catalogue name, optionally with parameters (``gaussian:sigma=2``);
an inline matrix (``"0,-1,0;-1,5,-1;0,-1,0"``) or an ImageMagick kernel string
(``"3x3: 0,-1,0 -1,5,-1 0,-1,0"``). Nothing is ever evaluated or unpickled.

This module reads files but prints nothing; errors are `KernelError`, whose
message names the file, the line (and column where it helps) and what was
expected.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from convcli.core import kernel_rank
from convcli.errors import KernelError
from convcli.names import COMBINES, RANGES

FloatArray = npt.NDArray[np.float64]


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

KERNEL_PATH_ENV = "CONVCLI_KERNEL_PATH"
"""Folders (separated by os.pathsep) whose kernel files join the catalogue."""


def _filters_dir() -> Path:
    """Return the catalogue folder: inside the installed package, or the checkout's."""
    here = Path(__file__).resolve().parent
    packaged = here / "filters"
    return packaged if packaged.is_dir() else here.parent / "filters"


FILTERS_DIR = _filters_dir()
"""Where the catalogue's kernel files are."""


@dataclass(frozen=True, eq=False)
class Kernel:
    """A convolution kernel and what to do with its result.

    Attributes
    ----------
    name : str
        Catalogue name, file stem, or ``"inline"``.
    weights : ndarray of float64
        Shape (kh, kw) for one 2-D filter, (D, C, kh, kw) for a bank of D
        filters over C channels. ``scale`` is already applied.
    description, origin : str
        One line on what it does, and whose definition it reproduces.
    bias : tuple of float
        One value per filter (empty: none).
    combine : str
        How a bank's maps become one image, one of `COMBINES`.
    range : str
        How the float result maps to pixel values by default, one of `RANGES`.
    filter_names : tuple of str
        One name per filter of a bank.
    source : str
        Where it came from: a path, ``catalogue``, ``generator`` or ``inline``.
    params : dict
        A generator's parameters, defaults filled in.
    """

    name: str
    weights: FloatArray
    description: str = ""
    origin: str = ""
    bias: tuple[float, ...] = ()
    combine: str = "stack"
    range: str = "clip"
    filter_names: tuple[str, ...] = ()
    source: str = ""
    params: dict[str, float] = field(default_factory=dict)

    @property
    def is_bank(self) -> bool:
        """Whether the weights are a (D, C, kh, kw) bank."""
        return self.weights.ndim == 4

    @property
    def size(self) -> tuple[int, int]:
        """Rows and columns of one filter, (kh, kw)."""
        return int(self.weights.shape[-2]), int(self.weights.shape[-1])

    @property
    def rank(self) -> int:
        """Numerical rank of the 2-D slices (the largest); 1 means separable."""
        return kernel_rank(self.weights)

    @property
    def total(self) -> float:
        """Sum of the weights of one filter (the first of a bank)."""
        first = self.weights if not self.is_bank else self.weights[0]
        return float(first.sum())

    def to_json(self) -> dict[str, Any]:
        """Return the JSON document of this kernel (the format `load_kernel` reads)."""
        w = self.weights if self.is_bank else self.weights[np.newaxis, np.newaxis]
        names = self.filter_names or tuple(f"f{i}" for i in range(w.shape[0]))
        filters = [
            {
                "name": names[d],
                "weights": (w[d, 0] if w.shape[1] == 1 else w[d]).tolist(),
            }
            for d in range(w.shape[0])
        ]
        doc: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "origin": self.origin,
            "combine": self.combine,
            "range": self.range,
            "filters": filters,
        }
        if self.bias:
            doc["bias"] = list(self.bias)
        if self.params:
            doc["params"] = dict(self.params)
        doc["bank"] = self.is_bank
        return doc


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
    r"""Parse the text kernel format of SPEC section 3.

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
    """Parse the JSON kernel format of SPEC section 3.

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


# ---------------------------------------------------------------------------
# Parametric generators


@dataclass(frozen=True)
class Generator:
    """A kernel made in code from parameters."""

    name: str
    description: str
    origin: str
    defaults: dict[str, float]
    make: Callable[[dict[str, float]], FloatArray]
    range: str = "clip"
    check: Callable[[dict[str, float]], str | None] = lambda p: None


def _gauss1d(sigma: float, size: int) -> FloatArray:
    r = (size - 1) / 2
    t = np.arange(size) - r
    g: FloatArray = np.exp(-(t**2) / (2 * sigma**2))
    return g / float(g.sum())


def _auto_size(sigma: float, size: float) -> int:
    return int(size) if size else 2 * math.ceil(3 * sigma) + 1


def _gaussian(p: dict[str, float]) -> FloatArray:
    g = _gauss1d(p["sigma"], _auto_size(p["sigma"], p["size"]))
    return np.outer(g, g)


def _box(p: dict[str, float]) -> FloatArray:
    n = int(p["size"])
    return np.full((n, n), 1.0 / (n * n))


def _binomial(p: dict[str, float]) -> FloatArray:
    n = int(p["size"])
    row = np.array([math.comb(n - 1, i) for i in range(n)], dtype=np.float64)
    k: FloatArray = np.outer(row, row)
    return k / float(k.sum())


def _motion(p: dict[str, float]) -> FloatArray:
    length = int(p["length"])
    size = length if length % 2 else length + 1
    angle = math.radians(p["angle"])
    k = np.zeros((size, size))
    centre = (size - 1) / 2
    # The line crosses the whole square, so `length` pixels are lit at any
    # multiple of 45 degrees. Rows grow downwards, so +angle turns upwards.
    reach = centre / max(abs(math.cos(angle)), abs(math.sin(angle)))
    for t in np.linspace(-reach, reach, 8 * size + 1):
        row = round(centre - t * math.sin(angle))
        col = round(centre + t * math.cos(angle))
        k[row, col] = 1.0
    return k / float(k.sum())


def _log(p: dict[str, float]) -> FloatArray:
    sigma = p["sigma"]
    size = _auto_size(sigma, p["size"])
    r = (size - 1) / 2
    y, x = np.mgrid[-r : r + 1, -r : r + 1]
    q = (x**2 + y**2) / (2 * sigma**2)
    k: FloatArray = -(1 / (math.pi * sigma**4)) * (1 - q) * np.exp(-q)
    return k - float(
        k.mean()
    )  # exactly zero sum, as the continuous LoG integrates to 0


def _dog(p: dict[str, float]) -> FloatArray:
    size = _auto_size(max(p["sigma1"], p["sigma2"]), p["size"])
    a, b = _gauss1d(p["sigma1"], size), _gauss1d(p["sigma2"], size)
    return np.outer(a, a) - np.outer(b, b)


def _unsharp(p: dict[str, float]) -> FloatArray:
    blur = _gaussian({"sigma": p["sigma"], "size": p["size"]})
    k = -p["amount"] * blur
    centre = (k.shape[0] - 1) // 2
    k[centre, centre] += 1 + p["amount"]
    return k


def _positive(*keys: str) -> Callable[[dict[str, float]], str | None]:
    def check(p: dict[str, float]) -> str | None:
        for key in keys:
            if not p[key] > 0:
                return f"{key} must be > 0; got {p[key]:g}"
        return None

    return check


def _whole_size(
    key: str, least: int = 1, *, auto: bool = False
) -> Callable[[dict[str, float]], str | None]:
    """Check a size: a whole number from ``least`` to 255, or 0 (automatic) if ``auto``."""

    def check(p: dict[str, float]) -> str | None:
        n = p[key]
        if auto and n == 0:
            return None
        if n != int(n) or n < least or int(n) > 255:
            return f"{key} must be a whole number from {least} to 255; got {n:g}"
        return None

    return check


def _all(
    *checks: Callable[[dict[str, float]], str | None],
) -> Callable[[dict[str, float]], str | None]:
    def check(p: dict[str, float]) -> str | None:
        for c in checks:
            problem = c(p)
            if problem:
                return problem
        return None

    return check


GENERATORS: dict[str, Generator] = {
    g.name: g
    for g in [
        Generator(
            "box",
            "Mean of a size x size square (box blur)",
            "ImageMagick -blur box, OpenCV cv2.blur",
            {"size": 3},
            _box,
            check=_whole_size("size"),
        ),
        Generator(
            "gaussian",
            "Gaussian blur, sums to 1; size 0 means 2*ceil(3*sigma)+1",
            "OpenCV cv2.getGaussianKernel, scipy.ndimage.gaussian_filter (truncate 3)",
            {"sigma": 1.0, "size": 0},
            _gaussian,
            check=_all(_positive("sigma"), _whole_size("size", auto=True)),
        ),
        Generator(
            "binomial",
            "Binomial (Pascal's triangle) blur, a Gaussian in integers",
            "ImageMagick -morphology Convolve Binomial",
            {"size": 5},
            _binomial,
            check=_whole_size("size", 2),
        ),
        Generator(
            "motion",
            "Motion blur along a line across a length x length square at angle degrees",
            "ImageMagick -motion-blur (centred)",
            {"length": 9, "angle": 0},
            _motion,
            check=_whole_size("length", 2),
        ),
        Generator(
            "log",
            "Laplacian of Gaussian, centre negative, sums to 0",
            "scipy.ndimage.gaussian_laplace, ImageMagick LoG",
            {"sigma": 1.4, "size": 0},
            _log,
            range="rescale",
            check=_all(_positive("sigma"), _whole_size("size", 3, auto=True)),
        ),
        Generator(
            "dog",
            "Difference of Gaussians G(sigma1) - G(sigma2), sums to 0",
            "ImageMagick DoG",
            {"sigma1": 1.0, "sigma2": 1.6, "size": 0},
            _dog,
            range="rescale",
            check=_all(
                _positive("sigma1", "sigma2"), _whole_size("size", 3, auto=True)
            ),
        ),
        Generator(
            "unsharp",
            "Unsharp mask: (1+amount)*identity - amount*gaussian(sigma)",
            "ImageMagick -unsharp, Pillow UnsharpMask (without threshold)",
            {"sigma": 1.0, "amount": 1.0, "size": 0},
            _unsharp,
            check=_all(_positive("sigma"), _whole_size("size", auto=True)),
        ),
    ]
}
"""Kernels made in code, by name."""


def _generate(name: str, text: str, spec: str) -> Kernel:
    gen = GENERATORS[name]
    params = dict(gen.defaults)
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in params:
            expected = ", ".join(gen.defaults)
            msg = f"{spec}: unknown parameter {key!r} of {name}; expected {expected} (as key=value)"
            raise KernelError(msg)
        params[key] = _number(value, f"{spec}: {key}")
    problem = gen.check(params)
    if problem:
        msg = f"{spec}: {problem}"
        raise KernelError(msg)
    weights = gen.make(params)
    if weights.size > MAX_WEIGHTS:
        msg = f"{spec}: {weights.size} weights is too many for a kernel"
        raise KernelError(msg)
    return Kernel(
        name=name,
        weights=weights,
        description=gen.description,
        origin=gen.origin,
        range=gen.range,
        source="generator",
        params=params,
    )


# ---------------------------------------------------------------------------
# The catalogue and load_kernel


def _catalogue_files() -> dict[str, Path]:
    """Kernel files by name: the user's folders first, then the built-in ones."""
    files: dict[str, Path] = {}
    folders = [
        Path(p) for p in os.environ.get(KERNEL_PATH_ENV, "").split(os.pathsep) if p
    ]
    for folder in [*folders, FILTERS_DIR]:
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() in SUFFIXES and path.is_file():
                files.setdefault(path.stem.lower(), path)
    return files


def kernel_names() -> list[str]:
    """Return every catalogue name: kernel files and generators, sorted."""
    return sorted({*_catalogue_files(), *GENERATORS})


def list_kernels() -> list[Kernel]:
    """Return the whole catalogue (generators with their default parameters), by name."""
    files = _catalogue_files()
    kernels = [read_kernel_file(path) for path in files.values()]
    kernels += [_generate(name, "", name) for name in GENERATORS if name not in files]
    return sorted(kernels, key=lambda k: k.name)


_NAME = re.compile(r"^([A-Za-z_][\w-]*)(?::(.*))?$", re.DOTALL)


def load_kernel(spec: str | os.PathLike[str]) -> Kernel:
    """Load a kernel from a path, a catalogue name or an inline matrix.

    Parameters
    ----------
    spec : str or path
        In this order: an existing file (``.txt``, ``.csv``, ``.json``,
        ``.npy``); a catalogue name with optional parameters
        (``"gaussian:sigma=2,size=9"``); an inline matrix
        (``"0,-1,0;-1,5,-1;0,-1,0"``) or ImageMagick string
        (``"3x3: 0,-1,0 -1,5,-1 0,-1,0"``).

    Returns
    -------
    Kernel

    Raises
    ------
    KernelError
        With the file, line and reason; for an unknown name, the closest
        catalogue names.

    Examples
    --------
    >>> load_kernel("0,-1,0;-1,5,-1;0,-1,0").weights.sum()
    np.float64(1.0)
    >>> load_kernel("box:size=3").weights.shape
    (3, 3)
    """
    if isinstance(spec, os.PathLike):
        return read_kernel_file(spec)
    text = spec.strip()
    if not text:
        msg = (
            "empty kernel spec; give a file, a name (see `convcli kernels`) or a matrix"
        )
        raise KernelError(msg)
    path = Path(text)
    if _is_file(path):
        return read_kernel_file(path)
    numeric = re.fullmatch(r"[\d\s,;./+eE-]+", text) is not None  # 1/9 is a fraction
    looks_like_path = path.suffix.lower() in SUFFIXES or (
        os.sep in text and not numeric
    )
    if (
        looks_like_path
        and not _IMAGEMAGICK.match(text)
        and not re.search(r"[;,]", text)
    ):
        msg = f"{text}: no such kernel file"
        raise KernelError(msg)
    named = _NAME.match(text)
    if named and not _IMAGEMAGICK.match(text):
        name, params = named.group(1).lower(), named.group(2) or ""
        files = _catalogue_files()
        if name in files:
            if params:
                msg = f"{text}: {name} is a fixed kernel file and takes no parameters"
                raise KernelError(msg)
            return read_kernel_file(files[name])
        if name in GENERATORS:
            return _generate(name, params, text)
        close = difflib.get_close_matches(name, kernel_names(), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        msg = f"unknown kernel {name!r}{hint} (`convcli kernels` lists them all)"
        raise KernelError(msg)
    return parse_inline(text)
