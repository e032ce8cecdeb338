"""convcli: image filtering on a vectorized 2-D convolution core.

The public API is numeric and light: importing it loads numpy only, and only
when a name that needs it is first used, so the command line starts fast.

>>> import numpy as np
>>> import convcli
>>> convcli.conv2d(np.arange(9.0).reshape(3, 3), np.ones((2, 2)))
array([[ 8., 12.],
       [20., 24.]])
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from convcli.core import (
        Explanation,
        conv2d,
        conv_transpose2d,
        explain,
        output_size,
        output_size_transposed,
    )
    from convcli.errors import ConvcliError, KernelError, ShapeError
    from convcli.kernels import Kernel, list_kernels, load_kernel
    from convcli.names import BORDERS, METHODS
    from convcli.tracing import Trace, TraceStep, trace

__version__ = "0.1.0"

# Where each public name lives; imported on first use (PEP 562).
_HOMES = {
    "BORDERS": "convcli.names",
    "METHODS": "convcli.names",
    "ConvcliError": "convcli.errors",
    "KernelError": "convcli.errors",
    "ShapeError": "convcli.errors",
    "Explanation": "convcli.core",
    "conv2d": "convcli.core",
    "conv_transpose2d": "convcli.core",
    "explain": "convcli.core",
    "output_size": "convcli.core",
    "output_size_transposed": "convcli.core",
    "Trace": "convcli.tracing",
    "TraceStep": "convcli.tracing",
    "trace": "convcli.tracing",
    "Kernel": "convcli.kernels",
    "list_kernels": "convcli.kernels",
    "load_kernel": "convcli.kernels",
}

__all__ = [
    "BORDERS",
    "METHODS",
    "ConvcliError",
    "Explanation",
    "Kernel",
    "KernelError",
    "ShapeError",
    "Trace",
    "TraceStep",
    "__version__",
    "conv2d",
    "conv_transpose2d",
    "explain",
    "list_kernels",
    "load_kernel",
    "output_size",
    "output_size_transposed",
    "trace",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module the first time it is used."""
    home = _HOMES.get(name)
    if home is None:
        msg = f"module 'convcli' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """List the public names."""
    return sorted(__all__)
