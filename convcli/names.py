"""The vocabulary of convcli's options, in one place, with no numpy.

The command line builds its choices from these names without importing the
numeric modules, so ``convcli --help`` starts fast.
"""

from __future__ import annotations

BORDERS: tuple[str, ...] = ("constant", "edge", "reflect", "symmetric", "wrap")
"""Border modes, with ``numpy.pad``'s names and meaning."""

BORDER_ALIASES: dict[str, str] = {"zero": "constant", "replicate": "edge"}
"""Other names accepted for a border mode."""

METHODS: tuple[str, ...] = ("auto", "direct", "separable", "fft")
"""Values of ``conv2d(method=...)``."""

RANGES: tuple[str, ...] = ("clip", "abs", "rescale", "offset", "gain")
"""How float results become pixel values (see `convcli.picture.to_pixels`)."""

COMBINES: tuple[str, ...] = ("magnitude", "sum", "max", "stack")
"""How the maps of a bank become one image; ``stack`` keeps them apart."""

CHANNELS: tuple[str, ...] = ("keep", "gray", "rgb")
"""What ``--channels`` may ask for."""

ALPHA_MODES: tuple[str, ...] = ("carry", "premultiply")
"""What ``--alpha`` may ask for."""

LIKE_NAMES: tuple[str, ...] = ("opencv", "scipy", "pillow", "torch", "imagemagick")
"""Libraries ``--like`` reproduces."""

STATUSES = ("done", "skipped", "failed")
"""What became of one item of ``convcli batch``."""

STREAM_MAX_PIXELS = 10_000_000_000
"""The pixel limit (H x W, in and out) of a streamed TIFF unless ``--max-pixels``
sets one: 10 gigapixels, a 100000 x 100000 image (`convcli.streaming`)."""
