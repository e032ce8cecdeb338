"""ImageMagick's named kernels: ``Gaussian:0x2``, ``Blur:0x2,90``, ``Sobel:90``, ``Disk:3``.

ImageMagick (``-morphology Convolve NAME:ARGS``) builds its kernels from a
name and up to four numbers; `named_kernel` makes the same weights as
ImageMagick 6 and 7 print with ``-define morphology:showKernel=1``: the same
size (its automatic width for a sigma, at 16-bit depth), the same
normalization (none, unless the definition has one: Gaussian and Blur sum to
1, LoG and DoG have positives summing to 1 and negatives to -1), the same
rotations. Only the anchor differs: convcli anchors a kernel at its centre,
so one that ImageMagick anchors elsewhere (``Comet``, ``Rectangle:3x3+0+0``)
is padded with zeros until its origin is the centre, which filters alike.
ImageMagick convolves (the kernel turned 180 degrees) where convcli
correlates: ``--flip``, or ``--like imagemagick``, gives its result.

Which meaning a name has (`wants_imagemagick`): ``im:NAME[:ARGS]`` is always
ImageMagick's; so is a name only ImageMagick has (``Disk``, ``unity``). A name
both have (``sobel``, ``gaussian``, ``log``) is ImageMagick's when it starts
with a capital letter and has ImageMagick's positional arguments
(``Sobel:90``, ``Gaussian:0x2``), and convcli's catalogue's otherwise
(``sobel``, ``Sobel``, ``gaussian:sigma=2``).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

import numpy as np

from convcli.errors import KernelError
from convcli.kernel_formats import (
    _short,
    check_magnitudes,
    imagemagick_arguments,
    parse_inline,
)
from convcli.kernel_generators import MAX_SIZE, SIGMA_RANGE
from convcli.kernel_value import FloatArray, Kernel

PREFIX = "im:"
"""Written before a kernel spec, it is ImageMagick's, whatever the name's case."""

EPSILON = 1e-12
"""ImageMagick's MagickEpsilon: a sigma at most this is none; weights below it are 0."""

QUANTUM_SCALE = 1 / 65535
"""One level of a 16-bit image: where ImageMagick's automatic width ends a Gaussian."""

MAX_RADIUS = (MAX_SIZE - 1) // 2
"""Largest radius: a kernel is at most `MAX_SIZE` on a side, as the catalogue's."""


# ---------------------------------------------------------------------------
# Arguments, read by name


@dataclass(frozen=True)
class _Args:
    """The arguments of one kernel, read and checked by name."""

    values: tuple[float | None, ...]
    names: tuple[str, ...]
    where: str

    def given(self, i: int) -> bool:
        return i < len(self.values) and self.values[i] is not None

    def get(self, i: int, default: float = 0.0) -> float:
        value = self.values[i] if i < len(self.values) else None
        return default if value is None else value

    def fail(self, i: int, problem: str) -> NoReturn:
        msg = f"{self.where}: {self.names[i]} {problem}; got {self.get(i):g}"
        raise KernelError(msg)

    def radius(self, i: int = 0, *, most: float = MAX_RADIUS, why: str = "") -> float:
        value = self.get(i)
        if not 0 <= value <= most:
            why = why or f"kernels are at most {MAX_SIZE} pixels wide"
            self.fail(i, f"must be from 0 to {most:g} ({why})")
        return value

    def sigma(self, i: int = 1) -> float:
        low, high = SIGMA_RANGE
        value = self.get(i)
        if value < 0:
            self.fail(i, "must be >= 0 (0: no blur)")
        if value and not low <= value <= high:
            self.fail(i, f"must be 0 (no blur) or from {low:g} to {high:g} (pixels)")
        return value

    def angle(self, i: int, step: int) -> int:
        value = self.get(i)
        if not -360 <= value <= 360 or value % step:
            self.fail(
                i,
                f"must be a multiple of {step} from -360 to 360 (ImageMagick turns "
                f"this kernel in steps of {step} degrees)",
            )
        return int(value) % 360

    def choice(self, i: int, choices: tuple[int, ...]) -> int:
        value = self.get(i)
        if value not in choices:
            self.fail(i, f"must be one of {', '.join(map(str, choices))}")
        return int(value)


# ---------------------------------------------------------------------------
# ImageMagick's rules: sizes, normalization, rotation, the origin


def _auto_width(radius: float, sigma: float, dims: int, args: _Args) -> int:
    """ImageMagick's width for a Gaussian of ``sigma`` when no radius of 1 or more is given.

    A radius above 0 gives 3; a sigma of 0 gives 3; otherwise the widest
    odd width whose edge value, over the sum of a (``dims``-D) Gaussian
    that wide, is still at least one 16-bit level (1/65535).
    """
    if radius > EPSILON:
        return 2 * math.ceil(radius) + 1
    if sigma <= EPSILON:
        return 3
    half = np.arange(MAX_SIZE // 2 + 2, dtype=np.float64)
    g = np.exp(-(half**2) / (2 * sigma * sigma))
    sums = 2 * np.cumsum(g) - g[0]  # the 1-D sum over -j..j
    edge = g / sums**dims
    below = np.flatnonzero(edge[2:] < max(QUANTUM_SCALE, EPSILON))
    width = 2 * int(below[0] + 2) - 1 if below.size else MAX_SIZE + 2
    if width > MAX_SIZE:
        msg = (
            f"{args.where}: sigma {sigma:g} needs an automatic width over {MAX_SIZE} "
            f"(until the edge is below 1/65535); give a smaller sigma, or a radius "
            f"of at most {MAX_RADIUS} before it (0 is automatic)"
        )
        raise KernelError(msg)
    return width


def _side(radius: float) -> int:
    """Odd width from a radius of 1 or more: ImageMagick truncates it to a whole number."""
    return int(radius) * 2 + 1


def _offsets(width: int) -> tuple[FloatArray, FloatArray]:
    """Row and column offsets from the centre, as (width, 1) and (1, width) arrays."""
    r = (width - 1) // 2
    u = np.arange(-r, width - r, dtype=np.float64)
    return u[:, np.newaxis], u[np.newaxis, :]


def _impulse(shape: tuple[int, int], at: tuple[int, int]) -> FloatArray:
    w = np.zeros(shape)
    w[at] = 1.0
    return w


def _zero_tiny(w: FloatArray) -> FloatArray:
    """ImageMagick sets weights below `EPSILON` in magnitude to 0 before it normalizes."""
    return np.where(np.abs(w) < EPSILON, 0.0, w)


def _normalize_sides(w: FloatArray) -> FloatArray:
    """Scale the positive weights to sum to 1 and the negative ones to -1 (each if any)."""
    pos, neg = float(w[w > 0].sum()), float(-w[w < 0].sum())
    pos = pos if pos >= EPSILON else 1.0
    neg = neg if neg >= EPSILON else 1.0
    return np.where(w >= 0, w / pos, w / neg)


_RING = ((0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0))


def _rotate(w: FloatArray, angle: int) -> FloatArray:
    """Turn clockwise by ``angle`` (a multiple of 90, or of 45 for a 3x3 kernel)."""
    if angle % 90:
        ring = [w[p] for p in _RING]  # the outer ring moves one cell clockwise
        w = w.copy()
        for p, value in zip(_RING, ring[-1:] + ring[:-1], strict=True):
            w[p] = value
    return np.rot90(w, -(angle // 90))


def _centred(w: FloatArray, origin: tuple[int, int]) -> FloatArray:
    """Pad with zeros until ``origin`` (row, col) is where convcli anchors: (n-1)//2."""
    pads = []
    for n, at in zip(w.shape, origin, strict=True):
        if at == (n - 1) // 2:
            pads.append((0, 0))
        else:
            reach = max(at, n - 1 - at)
            pads.append((reach - at, reach - (n - 1 - at)))
    return np.pad(w, pads)


# ---------------------------------------------------------------------------
# The kernels


def _gaussian(a: _Args) -> tuple[FloatArray, str]:
    sigma = a.sigma()
    width = _side(a.radius()) if a.get(0) >= 1 else _auto_width(a.get(0), sigma, 2, a)
    w = _normalize_sides(_zero_tiny(_gauss2d(width, sigma)))
    if not sigma:
        return w, "sigma 0: a unit impulse, no blur"
    return (
        w,
        f"2-D Gaussian, sigma {sigma:g}, sums to 1 (= gaussian:sigma={sigma:g},size={width})",
    )


def _gauss2d(width: int, sigma: float) -> FloatArray:
    """ImageMagick's sampled 2-D Gaussian with its 1/(2 pi sigma^2); sigma 0: an impulse."""
    rows, cols = _offsets(width)
    if sigma <= EPSILON:
        return np.where((rows == 0) & (cols == 0), 1.0, 0.0)
    g: FloatArray = np.exp(-(rows**2 + cols**2) / (2 * sigma * sigma))
    return g / (2 * math.pi * sigma * sigma)


def _log(a: _Args) -> tuple[FloatArray, str]:
    sigma = a.sigma()
    width = _side(a.radius()) if a.get(0) >= 1 else _auto_width(a.get(0), sigma, 2, a)
    rows, cols = _offsets(width)
    if sigma <= EPSILON:
        w = np.where((rows == 0) & (cols == 0), 1.0, 0.0)
    else:
        q = (rows**2 + cols**2) / (2 * sigma * sigma)
        w = (1 - q) * np.exp(-q) / (math.pi * sigma**4)
    w = _normalize_sides(_zero_tiny(w))
    return w, (
        f"Laplacian of Gaussian, sigma {sigma:g}, centre positive (the negative of "
        "log); positives sum to 1, negatives to -1"
    )


def _dog(a: _Args) -> tuple[FloatArray, str]:
    s1, s2 = a.sigma(1), a.sigma(2)
    width = (
        _side(a.radius()) if a.get(0) >= 1 else _auto_width(a.get(0), max(s1, s2), 2, a)
    )
    w = _normalize_sides(_zero_tiny(_gauss2d(width, s1) - _gauss2d(width, s2)))
    return w, (
        f"Difference of Gaussians G({s1:g}) - G({s2:g}); positives sum to 1, "
        "negatives to -1"
    )


def _blur(a: _Args) -> tuple[FloatArray, str]:
    sigma, angle = a.sigma(), a.angle(2, 90)
    width = _side(a.radius()) if a.get(0) >= 1 else _auto_width(a.get(0), sigma, 1, a)
    if sigma > EPSILON:
        # Three samples per pixel, summed into the pixel: ImageMagick's curve.
        reach = (3 * width - 1) // 2
        u = np.arange(-reach, reach + 1)
        spread = 3 * sigma
        samples = np.exp(-(u.astype(np.float64) ** 2) / (2 * spread * spread))
        w = np.bincount(
            (u + reach) // 3, samples / (math.sqrt(2 * math.pi) * spread)
        ).astype(np.float64)
    else:
        w = _impulse((1, width), (0, (width - 1) // 2))[0]
    w = _normalize_sides(_zero_tiny(w[np.newaxis, :]))
    way = "vertical" if angle % 180 else "horizontal"
    return _rotate(w, angle), f"1-D Gaussian, sigma {sigma:g}, {way}, sums to 1"


def _comet(a: _Args) -> tuple[FloatArray, str]:
    sigma, angle = a.sigma(), a.angle(2, 90)
    length = a.radius(0, most=(MAX_SIZE + 1) // 2)
    if length < 1:
        width = (_auto_width(length, sigma, 1, a) - 1) // 2 + 1
    else:
        width = int(length)
    if sigma > EPSILON:
        u = np.arange(3 * width)
        spread = 3 * sigma
        samples = np.exp(-(u.astype(np.float64) ** 2) / (2 * spread * spread))
        w = np.bincount(u // 3, samples).astype(np.float64)
    else:
        w = _impulse((1, width), (0, 0))[0]
    w = _centred((w / w.sum())[np.newaxis, :], (0, 0))
    turned = f", turned {angle} degrees" if angle else ""
    return _rotate(w, angle), (
        f"half a 1-D Gaussian, sigma {sigma:g}, {width} wide and anchored at its "
        f"first weight (zeros before it centre the anchor){turned}; sums to 1"
    )


def _binomial(a: _Args) -> tuple[FloatArray, str]:
    radius = a.radius(
        most=8,
        why="beyond, ImageMagick's integers overflow; binomial:size=N goes to 255",
    )
    n = 2 if radius < 1 else _side(radius) - 1
    row = np.array([math.comb(n, i) for i in range(n + 1)], dtype=np.float64)
    return np.outer(row, row), (
        f"Pascal's triangle, not normalized (= binomial:size={n + 1} times {4**n})"
    )


def _laplacian(a: _Args) -> tuple[FloatArray, str]:
    kind = a.choice(0, tuple(_LAPLACIANS))
    w = parse_inline(_LAPLACIANS[kind], "ImageMagick's Laplacian").weights
    same = {0: " (= -laplacian8)", 1: " (= -laplacian)"}.get(kind, "")
    return w, f"type {kind}, centre positive, sums to 0{same}"


# ImageMagick's Laplacians are tables, not formulas: its own strings (morphology.c).
_LAPLACIANS: dict[int, str] = {
    0: "3: -1,-1,-1 -1,8,-1 -1,-1,-1",
    1: "3: 0,-1,0 -1,4,-1 0,-1,0",
    2: "3: -2,1,-2 1,4,1 -2,1,-2",
    3: "3: 1,-2,1 -2,4,-2 1,-2,1",
    5: "5: -4,-1,0,-1,-4 -1,2,3,2,-1 0,3,4,3,0 -1,2,3,2,-1 -4,-1,0,-1,-4",
    7: "7: -10,-5,-2,-1,-2,-5,-10 -5,0,3,4,3,0,-5 -2,3,6,7,6,3,-2 -1,4,7,8,7,4,-1 "
    "-2,3,6,7,6,3,-2 -5,0,3,4,3,0,-5 -10,-5,-2,-1,-2,-5,-10",
    15: "5: 0,0,-1,0,0 0,-1,-2,-1,0 -1,-2,16,-2,-1 0,-1,-2,-1,0 0,0,-1,0,0",
    19: "9: 0,-1,-1,-2,-2,-2,-1,-1,0 -1,-2,-4,-5,-5,-5,-4,-2,-1 "
    "-1,-4,-5,-3,0,-3,-5,-4,-1 -2,-5,-3,12,24,12,-3,-5,-2 -2,-5,0,24,40,24,0,-5,-2 "
    "-2,-5,-3,12,24,12,-3,-5,-2 -1,-4,-5,-3,0,-3,-5,-4,-1 "
    "-1,-2,-4,-5,-5,-5,-4,-2,-1 0,-1,-1,-2,-2,-2,-1,-1,0",
}

_DERIVATIVE = np.array([1.0, 0.0, -1.0])  # ImageMagick's: positive on the left

# The 3x3 edge kernels at angle 0, and what convcli calls them (turned 180 degrees,
# as ImageMagick's Convolve turns them, they give the catalogue's result).
_EDGES: dict[str, tuple[FloatArray, str]] = {
    "Sobel": (
        np.outer([1.0, 2.0, 1.0], _DERIVATIVE),
        "-sobel_x; convcli's sobel is the gradient magnitude of sobel_x and sobel_y",
    ),
    "Prewitt": (
        np.outer([1.0, 1.0, 1.0], _DERIVATIVE),
        "-prewitt_x; convcli's prewitt is a gradient magnitude",
    ),
    "Roberts": (
        np.outer([0.0, 1.0, 0.0], [1.0, -1.0, 0.0]),
        "a difference of two neighbours; convcli's roberts is the 2x2 diagonal pair",
    ),
    "Compass": (
        np.array([[1.0, 1.0, -1.0], [1.0, -2.0, -1.0], [1.0, 1.0, -1.0]]),
        "one Prewitt compass mask",
    ),
    "Kirsch": (
        np.array([[5.0, -3.0, -3.0], [5.0, 0.0, -3.0], [5.0, -3.0, -3.0]]),
        "one of the 8 masks of convcli's kirsch, which takes their maximum",
    ),
}


def _edge(name: str) -> Callable[[_Args], tuple[FloatArray, str]]:
    base, same = _EDGES[name]

    def make(a: _Args) -> tuple[FloatArray, str]:
        angle = a.angle(0, 45)
        at = f" at {angle} degrees" if angle else f" (= {same})"
        return _rotate(base, angle), f"one {name} kernel{at}, not normalized"

    return make


def _frei_chen(a: _Args) -> tuple[FloatArray, str]:
    if a.get(0) == 10:
        msg = (
            f"{a.where}: FreiChen:10 is ImageMagick's list of 9 kernels, which it "
            "applies one after another; convcli's frei_chen is the 9 masks as one bank"
        )
        raise KernelError(msg)
    kind, angle = a.choice(0, tuple(_FREI_CHEN)), a.angle(1, 45)
    rows, scale = _FREI_CHEN[kind]
    w = np.array(rows, dtype=np.float64) * scale
    return _rotate(w, angle), f"mask type {kind}" + (
        f" at {angle} degrees" if angle else ""
    )


# ImageMagick's Frei-Chen masks and their scales (its morphology.c).
_R2 = math.sqrt(2)
_FREI_CHEN: dict[int, tuple[list[list[float]], float]] = {
    0: ([[1, 0, -1], [_R2, 0, -_R2], [1, 0, -1]], 1.0),
    1: ([[1, 0, -1], [_R2, 0, -_R2], [1, 0, -1]], _R2 / 2),
    2: ([[1, _R2, 0], [_R2, 0, -_R2], [0, -_R2, -1]], _R2 / 2),
    11: ([[1, 0, -1], [_R2, 0, -_R2], [1, 0, -1]], _R2 / 2),
    12: ([[1, _R2, 1], [0, 0, 0], [1, _R2, 1]], _R2 / 2),
    13: ([[_R2, -1, 0], [-1, 0, 1], [0, 1, -_R2]], _R2 / 2),
    14: ([[0, 1, -_R2], [-1, 0, 1], [_R2, -1, 0]], _R2 / 2),
    15: ([[0, -1, 0], [1, 0, 1], [0, -1, 0]], 1 / 2),
    16: ([[1, 0, -1], [0, 0, 0], [-1, 0, 1]], 1 / 2),
    17: ([[1, -2, 1], [-2, 4, -2], [-1, -2, 1]], 1 / 6),
    18: ([[-2, 1, -2], [1, 4, 1], [-2, 1, -2]], 1 / 6),
    19: ([[1, 1, 1], [1, 1, 1], [1, 1, 1]], 1 / 3),
}


def _unity(a: _Args) -> tuple[FloatArray, str]:
    scale = a.get(0, 1.0)
    return np.array([[scale]]), f"one weight {scale:g} (= identity times {scale:g})"


def _shape(
    name: str, inside: Callable[[FloatArray, FloatArray, int], FloatArray], least: int
) -> Callable[[_Args], tuple[FloatArray, str]]:
    """Make a flat shape: ``scale`` (default 1) where ``inside`` says, 0 elsewhere."""

    def make(a: _Args) -> tuple[FloatArray, str]:
        radius = a.radius()
        width = least if radius < 1 else _side(radius)
        rows, cols = _offsets(width)
        scale = a.get(1, 1.0)
        w = np.where(inside(rows, cols, (width - 1) // 2), scale, 0.0)
        return w, f"a {name.lower()} of {width}x{width} weights {scale:g}"

    return make


def _square(a: _Args) -> tuple[FloatArray, str]:
    radius = a.radius()
    width = 3 if radius < 1 else int(2 * radius + 1)
    scale = a.get(1, 1.0)
    same = f"box:size={width} times {width * width * scale:g}"
    return np.full((width, width), scale), f"a square of weights {scale:g} (= {same})"


def _disk(a: _Args) -> tuple[FloatArray, str]:
    radius, scale = a.radius(), a.get(1, 1.0)
    if radius < 0.4:  # ImageMagick's default disk, radius about 4.3
        width, limit = 9, 18
    else:
        width, limit = int(2 * radius + 1), int(radius * radius)
    if width % 2 == 0:
        a.fail(
            0,
            f"gives an even width ({width}), where ImageMagick's Disk reads past its "
            "weights; give a radius whose fraction is below .5",
        )
    rows, cols = _offsets(width)
    w = np.where(rows**2 + cols**2 <= limit, scale, 0.0)
    return w, f"a disk of radius {math.sqrt(limit):.3g}, weights {scale:g}"


def _ring(a: _Args) -> tuple[FloatArray, str]:
    inner, outer = sorted((a.radius(0), a.radius(1)))
    scale = a.get(2, 1.0)
    if scale != int(scale):
        a.fail(2, "must be a whole number (ImageMagick truncates it)")
    limits = int(inner * inner), int(outer * outer)
    width = int(outer) * 2 + 1
    if limits[1] <= 0:  # ImageMagick's default ring
        width, limits = 7, (7, 11)
    rows, cols = _offsets(width)
    d2 = rows**2 + cols**2
    w = np.where((limits[0] < d2) & (d2 <= limits[1]), scale, 0.0)
    return w, f"a ring of weights {scale:g} between radii {inner:g} and {outer:g}"


def _rectangle(a: _Args) -> tuple[FloatArray, str]:
    if min(a.get(0), a.get(1)) < 0:
        a.fail(0 if a.get(0) < 0 else 1, "must be >= 0")
    cols = a.get(0) if a.given(0) else a.get(1)
    cols = cols if cols >= 1 else 3
    rows = a.get(1) if a.get(1) >= 1 else cols
    for i, side in enumerate((cols, rows)):
        if side > MAX_SIZE:
            a.fail(i, f"must be at most {MAX_SIZE}")
    w, h = int(cols), int(rows)
    x = a.get(2) if a.given(2) else (w - 1) // 2
    y = a.get(3) if a.given(3) else (h - 1) // 2
    if not (0 <= x < w and 0 <= y < h and x == int(x) and y == int(y)):
        msg = f"{a.where}: the origin +{x:g}+{y:g} is outside the {w}x{h} rectangle"
        raise KernelError(msg)
    weights = _centred(np.ones((h, w)), (int(y), int(x)))
    return weights, f"a {w}x{h} rectangle of ones, origin +{x:g}+{y:g}"


@dataclass(frozen=True)
class ImageMagickKernel:
    """One of ImageMagick's named kernels, as convcli reads it."""

    name: str
    usage: str
    args: tuple[str, ...]
    make: Callable[[_Args], tuple[FloatArray, str]]


def _kernels() -> dict[str, ImageMagickKernel]:
    blur_args = ("radius", "sigma", "angle")
    shapes = {
        "Diamond": (lambda r, c, n: np.abs(r) + np.abs(c) <= n, 3),
        "Octagon": (lambda r, c, n: np.abs(r) + np.abs(c) <= n + n // 2, 5),
        "Plus": (lambda r, c, n: (r == 0) | (c == 0), 5),
        "Cross": (lambda r, c, n: np.abs(r) == np.abs(c), 5),
    }
    table = [
        ImageMagickKernel("Unity", "[scale]", ("scale",), _unity),
        ImageMagickKernel("Gaussian", "{radius}x{sigma}", blur_args[:2], _gaussian),
        ImageMagickKernel("Blur", "{radius}x{sigma}[,angle]", blur_args, _blur),
        ImageMagickKernel(
            "Comet", "{width}x{sigma}[,angle]", ("width", "sigma", "angle"), _comet
        ),
        ImageMagickKernel("LoG", "{radius}x{sigma}", blur_args[:2], _log),
        ImageMagickKernel(
            "DoG", "{radius},{sigma1},{sigma2}", ("radius", "sigma1", "sigma2"), _dog
        ),
        ImageMagickKernel("Binomial", "[radius]", ("radius",), _binomial),
        ImageMagickKernel("Laplacian", "[type]", ("type",), _laplacian),
        *(ImageMagickKernel(n, "[angle]", ("angle",), _edge(n)) for n in _EDGES),
        ImageMagickKernel("FreiChen", "[type[,angle]]", ("type", "angle"), _frei_chen),
        ImageMagickKernel("Square", "[radius[,scale]]", ("radius", "scale"), _square),
        ImageMagickKernel("Disk", "[radius[,scale]]", ("radius", "scale"), _disk),
        *(
            ImageMagickKernel(n, "[radius[,scale]]", ("radius", "scale"), _shape(n, *s))
            for n, s in shapes.items()
        ),
        ImageMagickKernel(
            "Ring",
            "[radius1,radius2[,scale]]",
            ("radius1", "radius2", "scale"),
            _ring,
        ),
        ImageMagickKernel(
            "Rectangle", "{cols}x{rows}[+x+y]", ("cols", "rows", "x", "y"), _rectangle
        ),
    ]
    return {k.name.lower(): k for k in table}


KERNELS: dict[str, ImageMagickKernel] = _kernels()
"""ImageMagick's named kernels convcli reads, by lower-case name."""

NOT_CONVOLUTION: tuple[str, ...] = tuple(
    "Peaks Edges Corners Diagonals LineEnds LineJunctions Ridges ConvexHull ThinSE "
    "Skeleton Chebyshev Manhattan Octagonal Euclidean".split()
)
"""ImageMagick's hit-and-miss and distance kernels: refused with a reason."""


# ---------------------------------------------------------------------------
# Which meaning, and the kernel


def _is_imagemagick_name(name: str) -> bool:
    lower = name.lower()
    return lower in KERNELS or lower in {n.lower() for n in NOT_CONVOLUTION}


def wants_imagemagick(name: str, params: str, spec: str, *, shared: bool) -> bool:
    """Whether ``name[:params]`` is ImageMagick's kernel rather than convcli's.

    ``shared`` says whether convcli's catalogue has the name too. A name only
    ImageMagick has is its own; a shared one is ImageMagick's when it starts
    with a capital letter and has positional arguments (no ``=``).

    Raises
    ------
    KernelError
        A shared name in lower case with numbers for arguments (``sobel:90``):
        convcli's takes key=value parameters or none, and the message says
        how to write ImageMagick's.
    """
    if not _is_imagemagick_name(name):
        return False
    if not shared:
        return True
    if not params.strip() or "=" in params:
        return False
    if name[:1].isupper():
        return True
    if not re.match(r"\s*[-+.\dxX,]", params):  # a misspelt key: convcli's message
        return False
    im = KERNELS[name.lower()]
    msg = (
        f"{_short(spec, 60)}: {name} is convcli's catalogue kernel (key=value "
        f"parameters, if any); ImageMagick's {im.name}:{im.usage} is written with its "
        f"capital ({im.name}:{_short(params)}) or as {PREFIX}{_short(spec, 40)}"
    )
    raise KernelError(msg)


def named_kernel(name: str, params: str, spec: str) -> Kernel:
    """Make ImageMagick's kernel ``name`` (any case) from its arguments ``params``.

    Raises
    ------
    KernelError
        An unknown name (with the closest ones), a hit-and-miss kernel, too
        many arguments, or an argument out of range: ``spec: what, allowed, given``.

    Examples
    --------
    >>> named_kernel("Blur", "0x1,90", "Blur:0x1,90").weights.shape
    (9, 1)
    >>> named_kernel("Sobel", "", "im:Sobel").weights[0]
    array([ 1.,  0., -1.])
    """
    where = _short(spec.strip(), 60)
    lower = name.lower()
    if lower not in KERNELS:
        refused = {n.lower(): n for n in NOT_CONVOLUTION}
        if lower in refused:
            msg = (
                f"{where}: {refused[lower]} is an ImageMagick morphology kernel "
                "(hit-and-miss or distance), not one to convolve with"
            )
            raise KernelError(msg)
        names = [k.name for k in KERNELS.values()]
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        msg = f"{where}: unknown ImageMagick kernel {name!r}; {hint}convcli reads {', '.join(names)}"
        raise KernelError(msg)
    im = KERNELS[lower]
    usage = f"{im.name}:{im.usage}"
    values = imagemagick_arguments(params, where, usage) if params.strip() else ()
    if len(values) > len(im.args):
        msg = (
            f"{where}: {im.name} takes at most {len(im.args)} argument"
            f"{'s' if len(im.args) > 1 else ''} ({usage}); got {len(values)}"
        )
        raise KernelError(msg)
    weights, description = im.make(_Args(values, im.args, where))
    if max(weights.shape) > MAX_SIZE:
        shape = "x".join(map(str, weights.shape))
        msg = f"{where}: gives a {shape} kernel, over {MAX_SIZE} on a side"
        raise KernelError(msg)
    check_magnitudes(weights, where)
    args = re.sub(r"\s+", "", params)
    return Kernel(
        name=f"{PREFIX}{im.name}" + (f":{args}" if args else ""),
        weights=np.ascontiguousarray(weights, dtype=np.float64),
        description=f"ImageMagick's {im.name}: {description}",
        origin=(
            f"ImageMagick -morphology Convolve {im.name}"
            + (f":{args}" if args else "")
            + ", which turns it 180 degrees (--flip or --like imagemagick)"
        ),
        source="imagemagick",
    )
