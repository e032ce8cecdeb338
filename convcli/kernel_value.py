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
