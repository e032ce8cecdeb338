"""``--like NAME``: the kernel and options that reproduce a peer library's result.

`like` sets flip, border, the even-kernel anchor and the normalization as
OpenCV, scipy, Pillow, ImageMagick or PyTorch does for the same kernel;
`LIKES` says what each reproduces, for the README and ``--help``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from convcli.errors import ConvcliError
from convcli.kernels import Kernel
from convcli.names import LIKE_NAMES
from convcli.plan import ApplyOptions

LIKES: dict[str, str] = {
    "opencv": "cv2.filter2D: correlation, BORDER_REFLECT_101 (border reflect), "
    "anchor at k//2 (even kernels: the larger half of the padding before), clip",
    "scipy": "scipy.ndimage.correlate: correlation, mode reflect (border symmetric), "
    "origin 0 (even kernels: the larger half of the padding before), clip",
    "pillow": "ImageFilter.Kernel: the kernel flipped top to bottom, divided by its sum "
    "(when not 0), border edge (Pillow copies its outermost pixels instead), clip",
    "imagemagick": "-morphology Convolve: true convolution (the kernel rotated 180 "
    "degrees), virtual pixels edge, even kernels' origin at (k-1)//2, clip",
    "torch": "torch.nn.functional.conv2d: correlation, zero padding 'same' "
    "(even kernels: the smaller half before), no clipping (use --float for raw values)",
}
"""What ``--like NAME`` reproduces, for the README and ``--help``."""


# Per library: border, flip, and where even kernels put the larger half of the
# padding ("larger": before, as an anchor at k//2; "same": after, as TF's SAME).
_LIKE_SETTINGS: dict[str, tuple[str, bool, str]] = {
    "opencv": ("reflect", False, "larger"),
    "scipy": ("symmetric", False, "larger"),
    "imagemagick": ("edge", True, "larger"),
    "pillow": ("edge", False, "same"),
    "torch": ("constant", False, "same"),
}


def like(
    name: str, kernel: Kernel, options: ApplyOptions
) -> tuple[Kernel, ApplyOptions]:
    """Return the kernel and options that reproduce a peer library's result.

    Sets flip, border, the even-kernel anchor and the normalization as that
    library does for the same kernel (see `LIKES`); other options stay.
    """
    if name not in LIKE_NAMES:
        msg = f"--like must be one of {', '.join(LIKE_NAMES)}; got {name!r}"
        raise ConvcliError(msg)
    weights = kernel.weights
    kh, kw = kernel.size
    dh, dw = (
        (options.dilation, options.dilation)
        if isinstance(options.dilation, int)
        else options.dilation
    )
    larger_first = (
        (dh * (kh - 1) - (dh * (kh - 1)) // 2, (dh * (kh - 1)) // 2),
        (dw * (kw - 1) - (dw * (kw - 1)) // 2, (dw * (kw - 1)) // 2),
    )
    border, flip, anchor = _LIKE_SETTINGS[name]
    if name == "pillow":
        # Pillow's first kernel row multiplies the row below, and it divides by the sum.
        weights = weights[..., ::-1, :]
        total = weights.sum(axis=(-2, -1), keepdims=True)
        weights = np.where(
            total != 0, weights / np.where(total == 0, 1, total), weights
        )
    changes: dict[str, Any] = {
        "border": border,
        "cval": 0.0,
        "flip": flip,
        "padding": larger_first if anchor == "larger" else "same",
        "range": "clip",
        "like": name,  # names the output (`naming.option_tags`)
    }
    new_kernel = dataclasses.replace(kernel, weights=np.ascontiguousarray(weights))
    return new_kernel, dataclasses.replace(options, **changes)
