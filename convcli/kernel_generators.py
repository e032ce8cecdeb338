"""Parametric kernels: the generators that make a kernel in code from parameters.

`GENERATORS` holds each one (``gaussian``, ``box``, ``log``, ...) with its
defaults and checks; `_generate` makes a `Kernel` from a name and a
``"key=value,..."`` parameter string, as in ``gaussian:sigma=2,size=9``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from convcli.errors import KernelError
from convcli.kernel_formats import MAX_WEIGHTS, _number, _short
from convcli.kernel_value import FloatArray, Kernel


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


SIGMA_RANGE = (0.01, 1000.0)
"""Smallest and largest sigma (in pixels) of the Gaussian generators."""

MAX_SIZE = 255
"""Largest side of a generated kernel, given (``size=``) or automatic."""


def _positive(*keys: str) -> Callable[[dict[str, float]], str | None]:
    """Check sigmas: > 0, and within `SIGMA_RANGE` (a sigma of 1e-300 or 1e308 is no blur)."""
    low, high = SIGMA_RANGE

    def check(p: dict[str, float]) -> str | None:
        for key in keys:
            if not p[key] > 0:
                return f"{key} must be > 0; got {p[key]:g}"
            if not low <= p[key] <= high:
                return (
                    f"{key} must be from {low:g} to {high:g} (pixels); got {p[key]:g}"
                )
        return None

    return check


def _within(
    key: str, low: float, high: float
) -> Callable[[dict[str, float]], str | None]:
    """Check a real parameter: from ``low`` to ``high``."""

    def check(p: dict[str, float]) -> str | None:
        if not low <= p[key] <= high:
            return f"{key} must be from {low:g} to {high:g}; got {p[key]:g}"
        return None

    return check


def _auto_fits(*sigmas: str) -> Callable[[dict[str, float]], str | None]:
    """Check that the automatic size ``2*ceil(3*sigma)+1`` is at most `MAX_SIZE`."""

    def check(p: dict[str, float]) -> str | None:
        if p["size"]:
            return None
        sigma = max(p[key] for key in sigmas)
        size = _auto_size(sigma, 0)
        if size > MAX_SIZE:
            largest = (MAX_SIZE - 1) / 6
            return (
                f"{'/'.join(sigmas)} {sigma:g} needs an automatic size of {size} "
                f"(2*ceil(3*sigma)+1), over {MAX_SIZE}; give a sigma up to "
                f"{largest:.1f}, or size=N (at most {MAX_SIZE})"
            )
        return None

    return check


def _whole_size(
    key: str, least: int = 1, *, auto: bool = False
) -> Callable[[dict[str, float]], str | None]:
    """Check a size: a whole number from ``least`` to `MAX_SIZE`, or 0 (automatic) if ``auto``."""

    def check(p: dict[str, float]) -> str | None:
        n = p[key]
        if auto and n == 0:
            return None
        if n != int(n) or n < least or n > MAX_SIZE:
            return f"{key} must be a whole number from {least} to {MAX_SIZE}; got {n:g}"
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
            check=_all(
                _positive("sigma"), _whole_size("size", auto=True), _auto_fits("sigma")
            ),
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
            check=_all(_whole_size("length", 2), _within("angle", -360, 360)),
        ),
        Generator(
            "log",
            "Laplacian of Gaussian, centre negative, sums to 0",
            "scipy.ndimage.gaussian_laplace, ImageMagick LoG",
            {"sigma": 1.4, "size": 0},
            _log,
            range="offset",
            check=_all(
                _positive("sigma"),
                _whole_size("size", 3, auto=True),
                _auto_fits("sigma"),
            ),
        ),
        Generator(
            "dog",
            "Difference of Gaussians G(sigma1) - G(sigma2), sums to 0",
            "ImageMagick DoG",
            {"sigma1": 1.0, "sigma2": 1.6, "size": 0},
            _dog,
            range="offset",
            check=_all(
                _positive("sigma1", "sigma2"),
                _whole_size("size", 3, auto=True),
                _auto_fits("sigma1", "sigma2"),
            ),
        ),
        Generator(
            "unsharp",
            "Unsharp mask: (1+amount)*identity - amount*gaussian(sigma)",
            "ImageMagick -unsharp, Pillow UnsharpMask (without threshold)",
            {"sigma": 1.0, "amount": 1.0, "size": 0},
            _unsharp,
            check=_all(
                _positive("sigma"),
                _within("amount", -1000, 1000),
                _whole_size("size", auto=True),
                _auto_fits("sigma"),
            ),
        ),
    ]
}
"""Kernels made in code, by name."""


def _generate(name: str, text: str, spec: str) -> Kernel:
    gen = GENERATORS[name]
    params = dict(gen.defaults)
    given: set[str] = set()
    spec = _short(spec, 60)
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in params:
            expected = ", ".join(gen.defaults)
            msg = f"{spec}: unknown parameter {_short(key)!r} of {name}; expected {expected} (as key=value)"
            raise KernelError(msg)
        if key in given:
            msg = f"{spec}: parameter {key!r} is given twice"
            raise KernelError(msg)
        given.add(key)
        params[key] = _number(value, f"{spec}: {key}")
    problem = gen.check(params)
    if problem:
        msg = f"{spec}: {problem}"
        raise KernelError(msg)
    with np.errstate(all="ignore"):  # checked below: every weight finite
        weights = gen.make(params)
    if weights.size > MAX_WEIGHTS:
        msg = f"{spec}: {weights.size} weights is too many for a kernel"
        raise KernelError(msg)
    if not np.isfinite(weights).all():
        msg = f"{spec}: these parameters give weights that are not finite"
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
