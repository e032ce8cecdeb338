"""Kernel files: read a file safely, and the JSON and ``.npy`` formats.

`read_kernel_file` reads a kernel file by its ending (the text format itself is
`convcli.kernel_formats`'), and `load_matrix` the small input matrices of
``convcli trace -i``. A file is read only if it is a regular file of at most
`MAX_FILE_BYTES` (a folder, a FIFO or ``/dev/zero`` is refused before a byte is
read); JSON is decoded strictly (no ``NaN``, no key twice, no number beyond
float64); an ``.npy`` header is checked against the file's length before any
array is made, and nothing is ever unpickled.

This module reads files but prints nothing; errors are `KernelError`, whose
message names the file (and the line where it helps) and what was expected.
"""

from __future__ import annotations

import codecs
import io
import json
import math
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

import numpy as np

from convcli.errors import KernelError
from convcli.kernel_formats import (
    _RANGE,
    HEADER_KEYS,
    MAX_FILE_BYTES,
    MAX_WEIGHTS,
    SUFFIXES,
    _from_header,
    _Header,
    _printable,
    _short,
    check_magnitudes,
    parse_inline,
    parse_text,
)
from convcli.kernel_value import FloatArray, Kernel

# ---------------------------------------------------------------------------
# JSON and .npy


# Facts `convcli kernels --json` writes beside a kernel; ignored when read back.
_JSON_FACTS = ("bank", "shape", "rank", "separable", "sum", "source", "parameters")


class _JsonProblem(Exception):
    """Raised by the JSON decoder's hooks; `parse_json` names the file."""


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for key, value in pairs:
        if key in doc:
            msg = f"key {_short(key)!r} is given twice in one object"
            raise _JsonProblem(msg)
        doc[key] = value
    return doc


def _json_int(text: str) -> int:
    # A float64 holds at most 309 digits; int() refuses over 4300 on its own.
    digits = len(text.lstrip("-"))
    if digits > 309 or abs(int(text)) > sys.float_info.max:
        msg = f"the integer {text[:12]}... ({digits} digits) is beyond {_RANGE}"
        raise _JsonProblem(msg)
    return int(text)


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        msg = f"the number {_short(text)} is beyond {_RANGE}"
        raise _JsonProblem(msg)
    return value


def _json_constant(name: str) -> float:
    msg = f"{name} is not a number; weights must be finite (and strict JSON has no {name})"
    raise _JsonProblem(msg)


def _json_load(text: str, source: str) -> Any:
    """Decode strict JSON: no NaN or Infinity, no repeated keys, numbers float64 holds."""
    try:
        return json.loads(
            text,
            object_pairs_hook=_json_object,
            parse_int=_json_int,
            parse_float=_json_float,
            parse_constant=_json_constant,
        )
    except json.JSONDecodeError as err:
        msg = f"{source}:{err.lineno}:{err.colno}: not valid JSON: {err.msg}"
        raise KernelError(msg) from None
    except _JsonProblem as err:
        msg = f"{source}: {err}"
        raise KernelError(msg) from None
    except RecursionError:
        msg = f"{source}: JSON nested too deeply; a kernel's weights are at most 4-D"
        raise KernelError(msg) from None


def _json_text(value: object, where: str, what: str) -> str:
    """Return a header value: text, or a number written as text (``"scale": 0.5``)."""
    if isinstance(value, str):
        return _printable(value, where, what)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    msg = f"{where}: {what} must be a string or a number; got {type(value).__name__} {_short(repr(value))}"
    raise KernelError(msg)


def _json_params(value: object, source: str) -> dict[str, float]:
    """Check ``"params"``: an object of numbers, as `convcli kernels --json` writes."""
    if not isinstance(value, dict):
        msg = (
            f"{source}: 'params' must be an object of numbers like "
            f'{{"sigma": 2}}; got {type(value).__name__} {_short(repr(value))}'
        )
        raise KernelError(msg)
    params = {}
    for key, number in value.items():
        if isinstance(number, bool) or not isinstance(number, int | float):
            msg = (
                f"{source}: params.{_short(key)} must be a number; "
                f"got {type(number).__name__} {_short(repr(number))}"
            )
            raise KernelError(msg)
        params[_printable(key, source, "a parameter name")] = float(number)
    return params


def parse_json(text: str, source: str = "<json>") -> Kernel:
    """Parse the JSON kernel format (docs/reference.md, "Kernel formats").

    ``filters`` holds ``{"name", "weights"}`` objects, weights 2-D (kh x kw) or
    3-D (C x kh x kw); a single ``weights`` array (2-D or 4-D) may stand instead.
    The JSON is read strictly: no ``NaN`` or ``Infinity``, no key twice in an
    object, no number beyond float64's range.
    """
    doc = _json_load(text, source)
    if not isinstance(doc, dict):
        msg = f"{source}: expected a JSON object with 'filters' or 'weights'"
        raise KernelError(msg)
    allowed = {*HEADER_KEYS, "filters", "weights", "params", *_JSON_FACTS}
    unknown = sorted(set(doc) - allowed)
    if unknown:
        msg = f"{source}: unknown key {_short(unknown[0])!r}; expected some of {', '.join(sorted(allowed))}"
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
            name = item.get("name", f"f{i}")
            names.append(_json_text(name, source, f"filters[{i}].name"))
        shape = arrays[0].shape
        for i, arr in enumerate(arrays):
            if arr.shape != shape:
                msg = f"{source}: filters[{i}].weights has shape {arr.shape}, expected {shape} like filters[0]"
                raise KernelError(msg)
        count = len(arrays) * arrays[0].size
        if count > MAX_WEIGHTS:
            msg = f"{source}: {count} weights is too many for a kernel (at most {MAX_WEIGHTS})"
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
        if key not in doc:
            continue
        value = doc[key]
        if key == "bias" and isinstance(value, list):
            items = [_json_text(v, source, f"bias[{i}]") for i, v in enumerate(value)]
            header.values[key] = " ".join(items)
        else:
            header.values[key] = _json_text(value, source, repr(key))
        header.lines[key] = 1
    kernel = _from_header(header, weights, names, source)
    params = _json_params(doc["params"], source) if "params" in doc else {}
    if params:
        kernel = Kernel(**{**kernel.__dict__, "params": params})
    return kernel


def _not_a_number(value: object) -> object | None:
    """Return the first leaf of nested lists that is not an int or a float, else None."""
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, list):
            todo.extend(item)
        elif isinstance(item, bool) or not isinstance(item, int | float):
            return item
    return None


def _json_array(value: object, where: str, ndims: tuple[int, ...]) -> FloatArray:
    """Turn nested lists into a finite float array of one of ``ndims`` dimensions."""
    bad = _not_a_number(value)
    if bad is not None:
        msg = (
            f"{where}: not a rectangular array of numbers "
            f"({_short(json.dumps(bad))} is not a number)"
        )
        raise KernelError(msg)
    try:
        arr = np.array(value, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        msg = f"{where}: not a rectangular array of numbers (ragged rows, or nested too deeply)"
        raise KernelError(msg) from None
    return _checked_array(arr, where, ndims)


def _checked_array(arr: FloatArray, where: str, ndims: tuple[int, ...]) -> FloatArray:
    """Check an array's dimensions, size and values: a kernel's weights."""
    if arr.ndim not in ndims or arr.size == 0:
        want = " or ".join(f"{n}-D" for n in ndims)
        msg = f"{where}: expected a non-empty {want} array; got shape {arr.shape}"
        raise KernelError(msg)
    if arr.size > MAX_WEIGHTS:
        msg = f"{where}: {arr.size} weights is too many for a kernel (at most {MAX_WEIGHTS})"
        raise KernelError(msg)
    if not np.isfinite(arr).all():
        msg = f"{where}: weights must be finite; got NaN or infinity"
        raise KernelError(msg)
    return arr


_NPY_HEADERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def parse_npy(path: Path, data: bytes | None = None) -> Kernel:
    """Read a 2-D (kh, kw) or 4-D (D, C, kh, kw) ``.npy`` array, without pickles.

    The header is read first, and its shape and dtype are checked against
    `MAX_WEIGHTS` and against the bytes the file holds before any array is
    made: a header that claims a 100000 x 100000 array in 64 bytes is an
    error, not an allocation. ``data`` is the file's bytes, if already read.
    """
    if data is None:
        data = _read_bytes(Path(path))
    stream = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(stream)
        if version not in _NPY_HEADERS:
            msg = f"format version {version[0]}.{version[1]}; convcli reads 1.0 and 2.0"
            raise ValueError(msg)
        shape, fortran, dtype = _NPY_HEADERS[version](stream)
    except (ValueError, SyntaxError, TypeError, EOFError, RecursionError) as err:
        msg = f"{path}: not a readable .npy array ({_short(str(err), 200)})"
        raise KernelError(msg) from None
    if dtype.hasobject:
        msg = f"{path}: not a readable .npy array (it holds Python objects, dtype {dtype}, which convcli never unpickles)"
        raise KernelError(msg)
    if dtype.kind not in "biuf" or dtype.fields is not None or dtype.subdtype:
        msg = f"{path}: .npy holds dtype {_short(str(dtype), 80)}; a kernel's weights are real numbers (bool, int, uint or float)"
        raise KernelError(msg)
    if len(shape) not in (2, 4) or min(shape) < 1:
        msg = f"{path}: expected a non-empty 2-D or 4-D array; got shape {shape}"
        raise KernelError(msg)
    count = math.prod(shape)
    if count > MAX_WEIGHTS:
        msg = f"{path}: the .npy header claims shape {shape}, {count} weights; a kernel has at most {MAX_WEIGHTS}"
        raise KernelError(msg)
    held = len(data) - stream.tell()
    if held != count * dtype.itemsize:
        msg = (
            f"{path}: the .npy header claims shape {shape} of {dtype} "
            f"({count * dtype.itemsize} bytes) but the file holds {held} bytes of "
            "data (truncated or altered)"
        )
        raise KernelError(msg)
    flat = np.frombuffer(data, dtype=dtype, count=count, offset=stream.tell())
    arr = flat.reshape(shape, order="F" if fortran else "C").astype(np.float64)
    weights = _checked_array(arr, str(path), (2, 4))
    names = [f"f{i}" for i in range(weights.shape[0])] if weights.ndim == 4 else []
    return Kernel(
        name=path.stem,
        weights=weights,
        filter_names=tuple(names),
        source=str(path),
    )


# ---------------------------------------------------------------------------
# Files


def _is_file(path: Path) -> bool:
    """Whether ``path`` names a file; False for text no file could have as a name.

    An inline matrix longer than the system's name limit makes ``is_file``
    raise ``OSError`` (ENAMETOOLONG) instead of answering.
    """
    try:
        return path.is_file()
    except OSError:
        return False


def _not_regular(path: Path) -> str | None:
    """Say what ``path`` is when it exists and is no regular file (a folder, a FIFO)."""
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode):
        return None
    kinds = [
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    return next((kind for test, kind in kinds if test(mode)), "not a regular file")


def _read_bytes(p: Path) -> bytes:
    """Return a kernel file's bytes: a regular file of at most `MAX_FILE_BYTES`.

    Anything else (a folder, a FIFO, ``/dev/zero``, a 2 GB file) is refused
    before a byte is read, so nothing blocks and nothing large is read.
    """
    kind = _not_regular(p)
    if kind is not None:
        msg = f"{p}: is {kind}, not a kernel file (a {', '.join(SUFFIXES)} file)"
        raise KernelError(msg)
    try:
        with p.open("rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            if size <= MAX_FILE_BYTES:
                data = stream.read(MAX_FILE_BYTES + 1)
                size = max(size, len(data))
    except OSError as err:
        msg = f"{p}: cannot read: {err.strerror or err}"
        raise KernelError(msg) from None
    if size > MAX_FILE_BYTES:
        msg = f"{p}: {size} bytes is too large to be a kernel file (at most {MAX_FILE_BYTES})"
        raise KernelError(msg)
    return data


def _decode(data: bytes, p: Path) -> str:
    """Return a text kernel file's text: UTF-8 (a BOM allowed), or UTF-16 with its BOM."""
    utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    try:
        text = data.decode("utf-16" if utf16 else "utf-8-sig")
    except UnicodeDecodeError:
        msg = f"{p}: not a text kernel file (not UTF-8 text); expected {', '.join(SUFFIXES)}"
        raise KernelError(msg) from None
    if "\x00" in text:
        msg = f"{p}: not a text kernel file (it holds NUL bytes: binary data); expected {', '.join(SUFFIXES)}"
        raise KernelError(msg)
    return text


def _read_kernel(p: Path) -> Kernel:
    """Read a kernel file by its ending, without `check_magnitudes` (matrices too)."""
    data = _read_bytes(p)
    if p.suffix.lower() == ".npy":
        return parse_npy(p, data)
    text = _decode(data, p)
    if p.suffix.lower() == ".json":
        return parse_json(text, str(p))
    return parse_text(text, str(p))


def read_kernel_file(path: str | os.PathLike[str]) -> Kernel:
    """Read a kernel file by its ending: ``.json``, ``.npy``, else the text format.

    Raises
    ------
    KernelError
        Naming the file (and line): not a regular file, over `MAX_FILE_BYTES`,
        not text, malformed, or weights that are not finite or that
        `check_magnitudes` refuses.
    """
    p = Path(path)
    kernel = _read_kernel(p)
    check_magnitudes(kernel.weights, str(p))
    return kernel


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
    kind = (
        _not_regular(path)
        if path.suffix.lower() in SUFFIXES or os.sep in text
        else None
    )
    if kind is not None:
        msg = f"{text}: is {kind}, not a matrix file (a {', '.join(SUFFIXES)} file)"
        raise KernelError(msg)
    if isinstance(spec, os.PathLike) or _is_file(path):
        weights = _read_kernel(path).weights
        if weights.ndim == 2:
            return weights
        if weights.shape[0] > 1:
            msg = (
                f"{text}: an input matrix has no '---' filters (found "
                f"{weights.shape[0]}); separate its channels with blank lines"
            )
            raise KernelError(msg)
        return np.ascontiguousarray(weights[0].transpose(1, 2, 0))
    numeric = re.fullmatch(r"[\d\s,;./|+eE-]+", text) is not None  # 1/9: a fraction
    if not text or (os.sep in text and not numeric) or path.suffix.lower() in SUFFIXES:
        msg = f"{text or repr(text)}: no such matrix file"
        raise KernelError(msg)
    if len(text) > 16 * MAX_WEIGHTS:
        msg = f"input matrix: {len(text)} characters is too long for a matrix"
        raise KernelError(msg)
    slices = [parse_inline(part, "input matrix").weights for part in text.split("|")]
    for c, piece in enumerate(slices[1:], start=2):
        if piece.shape != slices[0].shape:
            msg = (
                f"input matrix {_short(text, 60)!r}: channel {c} is {piece.shape[0]}x{piece.shape[1]}, "
                f"expected {slices[0].shape[0]}x{slices[0].shape[1]} like channel 1"
            )
            raise KernelError(msg)
    if len(slices) == 1:
        return slices[0]
    return np.stack(slices, axis=2)
