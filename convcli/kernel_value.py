"""The `Kernel` value: a kernel's weights and what to do with its result.

Every way of making a kernel (`convcli.kernel_formats` for files and inline
matrices, `convcli.kernel_generators` for the parametric ones, and
`convcli.kernels.load_kernel` over both) returns this one frozen dataclass.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from convcli.core import kernel_rank
from convcli.errors import KernelError

FloatArray = npt.NDArray[np.float64]


def inline_name(weights: npt.ArrayLike) -> str:
    """Name an inline kernel by its weights: ``inline-`` and 6 hex digits of a hash.

    The digits start the sha256 of the weights as little-endian float64 in C
    order (minus zero counted as zero), followed by the shape as little-endian
    int64. Two inline kernels with different weights get different names
    (unless 24 bits of sha256 collide), and the same weights always the same
    name, on every machine.

    Examples
    --------
    >>> inline_name([[1, 0], [0, -1]])
    'inline-3163ff'
    >>> inline_name([[1, 0], [0, -1]]) == inline_name([[1.0, -0.0], [0.0, -1.0]])
    True
    """
    import hashlib  # here: 3 ms at import, and only inline kernels need it

    w = np.asarray(weights, dtype="<f8") + 0.0  # -0.0 + 0.0 is 0.0
    digest = hashlib.sha256(np.ascontiguousarray(w).tobytes())
    digest.update(np.asarray(w.shape, dtype="<i8").tobytes())
    return f"inline-{digest.hexdigest()[:6]}"


@dataclass(frozen=True, eq=False)
class Kernel:
    """A convolution kernel and what to do with its result.

    Attributes
    ----------
    name : str
        Catalogue name, generator name, the file's ``name:`` or stem, or for
        an inline matrix ``inline-`` and a short hash of its weights
        (`inline_name`), e.g. ``inline-3163ff``.
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
    steps : tuple of Kernel
        A ``--chain``'s kernels in order (`convcli.chain`); this one's other
        fields are the last step's. Empty: one kernel.
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
    steps: tuple[Kernel, ...] = ()

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
        """Numerical rank of the 2-D slices (the largest); 1 means separable.

        The weights are divided by their largest magnitude first, so that
        finite weights of any size (``1e308`` or ``1e-300``) give their rank;
        the rank does not change with the scale.

        Raises
        ------
        KernelError
            Weights that are not finite, or an SVD that does not converge.
        """
        w = np.asarray(self.weights, dtype=np.float64)
        if not np.isfinite(w).all():
            msg = f"kernel {self.name}: the rank needs finite weights; got NaN or infinity"
            raise KernelError(msg)
        peak = float(np.abs(w).max()) if w.size else 0.0
        try:
            return kernel_rank(w / peak if peak > 0 else w)
        except np.linalg.LinAlgError as err:
            msg = f"kernel {self.name}: cannot compute the rank of the weights ({err})"
            raise KernelError(msg) from None

    @property
    def total(self) -> float:
        """Sum of the weights of one filter (the first of a bank); may be infinite."""
        first = self.weights if not self.is_bank else self.weights[0]
        with np.errstate(over="ignore", invalid="ignore"):
            return float(first.sum())

    def gains(self, peak: float) -> tuple[float, ...]:
        """Return the largest absolute value each output image can take, inputs in 0..peak.

        One value per output: per filter of a ``stack`` bank, else one. The
        ranges ``offset`` and ``gain`` scale by it (`convcli.picture.to_pixels`),
        so that the scale depends on the kernel, never on the image. For one
        filter ``w`` (its channels and taps together) and bias ``b`` it is
        ``max(|b + peak*P|, |b + peak*N|)``, ``P`` the sum of the positive
        weights and ``N`` of the negative ones: the output of the input that
        is ``peak`` under every positive (or negative) weight and 0 elsewhere.
        ``sum`` takes the summed filter; ``max`` the largest value a filter
        reaches, or where larger a bound of the negative side (`_max_gain`);
        ``magnitude`` of two filters the exact largest ``sqrt(gx^2 + gy^2)``
        (`_magnitude_gain`), of more the bound ``sqrt(sum of each one's^2)``.

        Examples
        --------
        >>> Kernel("laplacian", np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], float)).gains(255)
        (1020.0,)
        """
        w = self.weights if self.is_bank else self.weights[np.newaxis, np.newaxis]
        rows = np.asarray(w, np.float64).reshape(w.shape[0], -1)
        bias = np.zeros(rows.shape[0]) + (np.asarray(self.bias) if self.bias else 0.0)
        with np.errstate(over="ignore", invalid="ignore"):
            if self.combine == "sum" and rows.shape[0] > 1:
                return (_linear_gain(rows.sum(axis=0), float(bias.sum()), peak),)
            each = [
                _linear_gain(r, float(b), peak) for r, b in zip(rows, bias, strict=True)
            ]
            if self.combine == "max" and rows.shape[0] > 1:
                return (_max_gain(rows, bias, peak),)
            if self.combine == "magnitude" and rows.shape[0] == 2:
                return (_magnitude_gain(rows, bias, peak),)
            if self.combine == "magnitude" and rows.shape[0] > 2:
                return (float(np.sqrt(np.sum(np.square(each)))),)
        return tuple(each)

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


def _linear_gain(w: FloatArray, bias: float, peak: float) -> float:
    """Return the largest ``|bias + w . x|`` over inputs ``x`` in 0..peak (one filter, flattened)."""
    positive = float(w[w > 0].sum())
    negative = float(w[w < 0].sum())
    return max(abs(bias + peak * positive), abs(bias + peak * negative))


def _max_gain(rows: FloatArray, bias: FloatArray, peak: float) -> float:
    """Return the largest ``|max_d (bias_d + rows_d . x)|`` over ``x`` in 0..peak, or a bound.

    The top is exact: the largest any filter reaches. Below 0 the result is
    never under the largest of the filters' own lowest values, so that bounds
    the negative side (0 when some filter never goes below 0).
    """
    top = max(
        float(b) + peak * float(r[r > 0].sum()) for r, b in zip(rows, bias, strict=True)
    )
    floor = max(
        float(b) + peak * float(r[r < 0].sum()) for r, b in zip(rows, bias, strict=True)
    )
    return max(abs(top), -floor)


# Columns of a two-filter magnitude bank solved exactly; past it, the bound.
_MAGNITUDE_TAPS = 2048


def _magnitude_gain(rows: FloatArray, bias: FloatArray, peak: float) -> float:
    """Return the largest ``|| bias + rows @ x ||`` over ``x`` in 0..peak, for two rows.

    A norm is convex, so its largest value is at a corner of the box: each
    tap 0 or peak. At the best corner every tap whose column (gx, gy) points
    within 90 degrees of the result is on, and every other off, so it is
    enough to try each direction's set of taps: the sets change only where a
    direction turns perpendicular to a column, at most 2 per column.
    """
    columns = rows.T[np.any(rows.T != 0, axis=1)] * peak
    if len(columns) == 0:
        return float(np.hypot(bias[0], bias[1]))
    if len(columns) > _MAGNITUDE_TAPS:
        each = [
            _linear_gain(r, float(b), peak) for r, b in zip(rows, bias, strict=True)
        ]
        return float(np.hypot(each[0], each[1]))
    angles = np.arctan2(columns[:, 1], columns[:, 0])
    turns = np.sort(
        np.mod(np.concatenate([angles + np.pi / 2, angles - np.pi / 2]), 2 * np.pi)
    )
    gaps = np.diff(np.concatenate([turns, turns[:1] + 2 * np.pi]))
    middles = turns + gaps / 2
    directions = np.stack([np.cos(middles), np.sin(middles)], axis=1)
    on = directions @ columns.T > 0
    totals = bias + on.astype(np.float64) @ columns
    return float(
        max(np.hypot(totals[:, 0], totals[:, 1]).max(), np.hypot(bias[0], bias[1]))
    )
