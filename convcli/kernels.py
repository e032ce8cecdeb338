"""Resolve a kernel spec (a file, a catalogue name or an inline matrix) to a `Kernel`.

A kernel spec (``-k`` on the command line, `load_kernel` in Python) is, in
this order: a path to an existing file (``.txt``, ``.csv``, ``.json``,
``.npy``); a catalogue name, optionally with parameters (``gaussian:sigma=2``);
an inline matrix (``"0,-1,0;-1,5,-1;0,-1,0"``) or an ImageMagick kernel string
(``"3x3: 0,-1,0 -1,5,-1 0,-1,0"``); or one of ImageMagick's named kernels
(``Gaussian:0x2``, ``Sobel:90``, ``Disk:3``, ``im:sobel``), made by
`convcli.kernel_imagemagick`. Nothing is ever evaluated or unpickled.

The catalogue is the kernel files of the ``filters/`` folder and of the
folders in ``$CONVCLI_KERNEL_PATH``, plus the parametric generators. The
`Kernel` value lives in `convcli.kernel_value`, the text formats in
`convcli.kernel_formats`, reading files (JSON, ``.npy``) in
`convcli.kernel_files`, the generators in `convcli.kernel_generators`; this
module re-exports their public names, so ``from convcli.kernels import X``
works for all of them.

This module reads files but prints nothing; errors are `KernelError`, whose
message names the file, the line (and column where it helps) and what was
expected.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

from convcli.errors import KernelError
from convcli.kernel_files import (
    IMAGE_SUFFIXES,
    _is_file,
    _not_regular,
    load_matrix,
    parse_json,
    parse_npy,
    read_kernel_file,
)
from convcli.kernel_formats import (
    _IMAGEMAGICK,
    HEADER_KEYS,
    MAX_FILE_BYTES,
    MAX_WEIGHTS,
    SUFFIXES,
    _short,
    check_magnitudes,
    parse_inline,
    parse_text,
)
from convcli.kernel_generators import GENERATORS, Generator, _generate
from convcli.kernel_imagemagick import KERNELS as IMAGEMAGICK_KERNELS
from convcli.kernel_imagemagick import PREFIX, named_kernel, wants_imagemagick
from convcli.kernel_value import FloatArray, Kernel, inline_name

__all__ = [
    "FILTERS_DIR",
    "GENERATORS",
    "HEADER_KEYS",
    "IMAGE_SUFFIXES",
    "KERNEL_PATH_ENV",
    "MAX_FILE_BYTES",
    "MAX_WEIGHTS",
    "SUFFIXES",
    "FloatArray",
    "Generator",
    "Kernel",
    "check_magnitudes",
    "inline_name",
    "kernel_names",
    "list_kernels",
    "load_kernel",
    "load_matrix",
    "parse_inline",
    "parse_json",
    "parse_npy",
    "parse_text",
    "read_kernel_file",
]


KERNEL_PATH_ENV = "CONVCLI_KERNEL_PATH"
"""Folders (separated by os.pathsep) whose kernel files join the catalogue."""


def _filters_dir() -> Path:
    """Return the catalogue folder: inside the installed package, or the checkout's."""
    here = Path(__file__).resolve().parent
    packaged = here / "filters"
    return packaged if packaged.is_dir() else here.parent / "filters"


FILTERS_DIR = _filters_dir()
"""Where the catalogue's kernel files are."""


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
        (``"3x3: 0,-1,0 -1,5,-1 0,-1,0"``). ImageMagick's named kernels
        (``"Gaussian:0x2"``, ``"Sobel:90"``) are read with ImageMagick's
        meaning: after ``im:`` always; a name only ImageMagick has in any
        case; a name both have (``sobel``) only with its capital and
        positional arguments (``Sobel:90``), else it is the catalogue's.

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
    >>> load_kernel("Sobel:90").weights  # ImageMagick's Sobel, turned 90 degrees
    array([[ 1.,  2.,  1.],
           [ 0.,  0.,  0.],
           [-1., -2., -1.]])
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
        kind = _not_regular(path)
        if kind is not None:
            msg = f"{text}: is {kind}, not a kernel file (a {', '.join(SUFFIXES)} file)"
            raise KernelError(msg)
        msg = f"{text}: no such kernel file"
        raise KernelError(msg)
    if text[: len(PREFIX)].lower() == PREFIX:
        return _load_imagemagick(text)
    named = _NAME.match(text)
    if named and not _IMAGEMAGICK.match(text):
        name, params = named.group(1).lower(), named.group(2) or ""
        files = _catalogue_files()
        shared = name in files or name in GENERATORS
        if wants_imagemagick(named.group(1), params, text, shared=shared):
            return named_kernel(named.group(1), params, text)
        if name in files:
            if params:
                msg = f"{text}: {name} is a fixed kernel file and takes no parameters"
                raise KernelError(msg)
            return read_kernel_file(files[name])
        if name in GENERATORS:
            return _generate(name, params, text)
        close = difflib.get_close_matches(name, kernel_names(), n=3, cutoff=0.6)
        if not close:  # ImageMagick's names, as it spells them
            spelled = {im.name.lower(): im.name for im in IMAGEMAGICK_KERNELS.values()}
            near = difflib.get_close_matches(name, spelled, n=3, cutoff=0.6)
            close = [f"{spelled[n]} (ImageMagick's)" for n in near]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        msg = f"unknown kernel {name!r}{hint} (`convcli kernels` lists them all)"
        raise KernelError(msg)
    kernel = parse_inline(text)
    check_magnitudes(kernel.weights, f"inline kernel {_short(text, 60)!r}")
    return kernel


def _load_imagemagick(text: str) -> Kernel:
    """Read ``im:NAME[:ARGS]`` or ``im:WxH: values``: ImageMagick's, whatever the case."""
    rest = text[len(PREFIX) :].strip()
    if _IMAGEMAGICK.match(rest):
        kernel = parse_inline(rest, "ImageMagick kernel")
        check_magnitudes(kernel.weights, f"ImageMagick kernel {_short(rest, 60)!r}")
        return kernel
    named = _NAME.match(rest)
    if named is None:
        msg = (
            f"{_short(text, 60)}: expected an ImageMagick kernel after {PREFIX!r}: "
            "a name (Gaussian:0x2, Sobel:90) or WxH: values (3x3: 0,-1,0 -1,5,-1 0,-1,0)"
        )
        raise KernelError(msg)
    return named_kernel(named.group(1), named.group(2) or "", text)
