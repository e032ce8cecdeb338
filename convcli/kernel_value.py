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

FloatArray = npt.NDArray[np.float64]


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
