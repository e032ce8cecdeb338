"""convcli: image filtering on a vectorized 2-D convolution core.

The public API is numeric and light: importing it loads numpy only.

>>> import numpy as np
>>> import convcli
>>> convcli.conv2d(np.arange(9.0).reshape(3, 3), np.ones((2, 2)))
array([[ 8., 12.],
       [20., 24.]])
"""

from __future__ import annotations

from convcli.core import BORDERS, METHODS, Explanation, conv2d, explain, output_size
from convcli.errors import ConvcliError, KernelError, ShapeError
from convcli.kernels import Kernel, list_kernels, load_kernel

__version__ = "0.1.0"

__all__ = [
    "BORDERS",
    "METHODS",
    "ConvcliError",
    "Explanation",
    "Kernel",
    "KernelError",
    "ShapeError",
    "__version__",
    "conv2d",
    "explain",
    "list_kernels",
    "load_kernel",
    "output_size",
]
