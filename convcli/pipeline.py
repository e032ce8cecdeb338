"""One image through one kernel: load, filter, map to pixels, save. Prints nothing.

`apply_one` is what ``convcli apply`` runs per (image, kernel) pair, and what
``convcli batch`` runs per item. It returns an `ApplyResult` with every fact the
CLI shows (shapes, method, the output-size formula, times, paths).
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from convcli import core, images
from convcli.errors import ConvcliError
from convcli.kernels import Kernel
from convcli.names import ALPHA_MODES, LIKE_NAMES

FloatArray = npt.NDArray[np.floating[Any]]


@dataclass(frozen=True)
class ApplyOptions:
    """The options of ``convcli apply`` (and ``batch``), with apply's defaults."""

    stride: core.IntPair = 1
    padding: core.Padding = "same"
    dilation: core.IntPair = 1
    border: str = "reflect"
    cval: float = 0.0
    flip: bool = False
    method: core.Method = "auto"
    range: str | None = None  # None: the kernel's own
    channels: str = "keep"
    float_output: bool = False
    quality: int | None = None
    compress_level: int | None = None  # PNG zlib level; None: images.PNG_LEVEL
    max_pixels: int | None = None
    alpha: str = "carry"  # or "premultiply"


@dataclass(frozen=True)
class Output:
    """One written image: its path, shape (H', W', C) and the filter it holds."""

    path: Path
    shape: tuple[int, int, int]
    filter: str | None = None


@dataclass(frozen=True)
class ApplyResult:
    """Everything about one (image, kernel) run that the CLI shows."""

    input: Path
    input_shape: tuple[int, int, int]
    kernel: Kernel
    kernel_shape: tuple[int, ...]
    method: str
    reason: str
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]
    dilation: tuple[int, int]
    border: str
    formula: str
    outputs: list[Output] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)


def output_path(
    image: Path,
    kernel: Kernel,
    out: Path | None,
    *,
    filter_name: str | None = None,
    single: bool = True,
    suffix: str | None = None,
) -> Path:
    """Return where one output goes.

    ``<stem>.<kernel>[.<filter>]<ext>`` beside the input, or in the folder
    ``out``; ``out`` itself when it names a file and there is one output.
    """
    tag = _kernel_tag(kernel)
    if filter_name:
        tag += "." + re.sub(r"[^\w.-]+", "-", filter_name)
    ext = suffix or image.suffix
    name = f"{image.stem}.{tag}{ext}"
    if out is None:
        return image.with_name(name)
    if out.is_dir() or not single or out.suffix == "":
        return out / name
    return out


def map_names(kernel: Kernel) -> list[str | None]:
    """Return the name of each output one image gets: one per filter of a stacked bank."""
    if not kernel.is_bank or kernel.combine != "stack":
        return [None]
    depth = kernel.weights.shape[0]
    return list(kernel.filter_names or tuple(f"f{d}" for d in range(depth)))


def planned_outputs(
    image: Path, kernel: Kernel, options: ApplyOptions, out: Path | None
) -> list[Path]:
    """Return the paths `apply_one` writes for ``image``, before it runs."""
    names = map_names(kernel)
    suffix = ".tif" if options.float_output else None
    return [
        output_path(
            image, kernel, out, filter_name=name, single=len(names) == 1, suffix=suffix
        )
        for name in names
    ]


def _kernel_tag(kernel: Kernel) -> str:
    """Return the kernel's part of a file name: its name and parameters, filename-safe."""
    params = "".join(f"-{k}{v:g}" for k, v in kernel.params.items() if v)
    return re.sub(r"[^\w.-]+", "-", kernel.name + params)


def filter_maps(
    pixels: FloatArray, kernel: Kernel, options: ApplyOptions
) -> tuple[list[tuple[str | None, FloatArray]], core.Explanation]:
    """Convolve (H, W, C) pixels with a kernel; return named maps and the method.

    A 2-D kernel filters every channel. A bank of filters over one channel
    filters every channel with each filter; a bank over exactly the image's C
    channels gives one map per filter. ``combine`` (magnitude, sum, max) then
    makes one image of the maps; ``stack`` keeps one output per filter.
    """
    kw: dict[str, Any] = {
        "stride": options.stride,
        "padding": options.padding,
        "dilation": options.dilation,
        "border": options.border,
        "cval": options.cval,
        "flip": options.flip,
    }
    w = kernel.weights
    channels = pixels.shape[2]
    if not kernel.is_bank:
        bias = kernel.bias[0] if kernel.bias else None
        explanation = core.explain(pixels, w, bias, method=options.method, **kw)
        chosen = cast("core.Method", explanation.method)
        out = core.conv2d(pixels, w, bias, method=chosen, **kw)
        return [(None, out)], explanation
    names = kernel.filter_names or tuple(f"f{d}" for d in range(w.shape[0]))
    biases = kernel.bias or (0.0,) * w.shape[0]
    if w.shape[1] == 1 and channels != 1:
        explanation = core.explain(pixels, w[0, 0], method=options.method, **kw)
        chosen = cast("core.Method", explanation.method)
        maps = [
            core.conv2d(pixels, w[d, 0], biases[d], method=chosen, **kw)
            for d in range(w.shape[0])
        ]
    elif w.shape[1] == channels:
        explanation = core.explain(pixels, w, list(biases), method=options.method, **kw)
        chosen = cast("core.Method", explanation.method)
        stacked = core.conv2d(pixels, w, list(biases), method=chosen, **kw)
        maps = [stacked[:, :, d : d + 1] for d in range(w.shape[0])]
    else:
        msg = (
            f"kernel {kernel.name} is a bank over {w.shape[1]} channels; the image has "
            f"{channels} (--channels gray or rgb converts it)"
        )
        raise ConvcliError(msg)
    if kernel.combine == "stack":
        return list(zip(names, maps, strict=True)), explanation
    if kernel.combine == "magnitude":
        combined = np.sqrt(sum(np.square(m) for m in maps))
    elif kernel.combine == "sum":
        combined = sum(maps[1:], maps[0].copy())
    else:
        combined = np.maximum.reduce(maps)
    return [(None, combined)], explanation


def _filter_premultiplied(
    picture: images.Picture, kernel: Kernel, options: ApplyOptions
) -> tuple[list[tuple[str | None, FloatArray]], core.Explanation, FloatArray]:
    """Filter colour times alpha, and alpha alike, then divide.

    No colour bleeds in from transparent pixels. Returns the maps, the method
    and the filtered alpha (0..1) of shape (H', W').
    """
    if picture.alpha is None:
        msg = "premultiplied filtering needs an alpha channel"
        raise ConvcliError(msg)
    if kernel.is_bank:
        msg = f"--alpha premultiply needs a 2-D kernel; {kernel.name} is a bank of filters"
        raise ConvcliError(msg)
    coverage = picture.alpha.astype(np.float32) / np.float32(picture.peak)
    colour = picture.pixels.astype(np.float32) * coverage[:, :, np.newaxis]
    maps, explanation = filter_maps(colour, kernel, options)
    plain = dataclasses.replace(kernel, bias=())
    coverage_maps, _ = filter_maps(coverage[:, :, np.newaxis], plain, options)
    filtered = coverage_maps[0][1]
    covered = filtered > 1e-6
    unpremultiplied = np.where(covered, maps[0][1] / np.where(covered, filtered, 1), 0)
    return [(None, unpremultiplied)], explanation, filtered[:, :, 0].astype(np.float64)


def _resample_alpha(
    alpha: npt.NDArray[Any],
    in_shape: tuple[int, int, int],
    kernel: Kernel,
    explanation: core.Explanation,
) -> FloatArray:
    """Alpha, unfiltered, at the centre of each output's window.

    With stride 1 and ``"same"`` padding that is the input's alpha itself.
    """
    out_h, out_w = explanation.output_shape[:2]
    top, _, left, _ = explanation.padding
    (sh, sw), (dh, dw) = explanation.stride, explanation.dilation
    kh, kw = kernel.size
    rows = np.clip(np.arange(out_h) * sh - top + dh * (kh - 1) // 2, 0, in_shape[0] - 1)
    cols = np.clip(
        np.arange(out_w) * sw - left + dw * (kw - 1) // 2, 0, in_shape[1] - 1
    )
    return alpha[np.ix_(rows, cols)].astype(np.float64)


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
    }
    new_kernel = dataclasses.replace(kernel, weights=np.ascontiguousarray(weights))
    return new_kernel, dataclasses.replace(options, **changes)


def apply_one(
    path: Path, kernel: Kernel, options: ApplyOptions, out: Path | None = None
) -> ApplyResult:
    """Filter one image with one kernel and write the result(s); never the input.

    Raises
    ------
    ConvcliError (or ValueError)
        Bad input: an unreadable image, a kernel that does not fit, an output
        that would overwrite the input. No output file is left behind.
    """
    t0 = time.perf_counter()
    picture = images.load(path, max_pixels=options.max_pixels)
    picture = images.convert_channels(picture, options.channels)
    t1 = time.perf_counter()
    if options.alpha not in ALPHA_MODES:
        msg = f"--alpha must be carry or premultiply; got {options.alpha!r}"
        raise ConvcliError(msg)
    premultiply = options.alpha == "premultiply" and picture.alpha is not None
    filtered_alpha: FloatArray | None = None
    if premultiply:
        maps, explanation, filtered_alpha = _filter_premultiplied(
            picture, kernel, options
        )
    else:
        maps, explanation = filter_maps(picture.pixels, kernel, options)
    t2 = time.perf_counter()
    sixteen = picture.peak == 65535.0
    out_peak = 65535.0 if sixteen else 255.0
    dtype = np.dtype(np.uint16 if sixteen else np.uint8)
    if options.float_output:
        dtype = np.dtype(np.float32)
    alpha = None
    if picture.alpha is not None and not options.float_output:
        if filtered_alpha is not None:
            coverage = filtered_alpha * out_peak
        else:
            coverage = _resample_alpha(
                picture.alpha, picture.shape, kernel, explanation
            )
            coverage = coverage * (out_peak / picture.peak)
        alpha = images.to_pixels(coverage, "clip", out_peak, dtype)
    range_ = options.range or kernel.range
    suffix = ".tif" if options.float_output else None
    outputs = []
    for name, values in maps:
        target = output_path(
            path, kernel, out, filter_name=name, single=len(maps) == 1, suffix=suffix
        )
        if target.exists() and target.resolve() == path.resolve():
            msg = f"{target}: the output would overwrite the input; choose another -o"
            raise ConvcliError(msg)
        if options.float_output and values.shape[2] != 1:
            msg = f"{target}: --float writes one-channel TIFFs; add --channels gray"
            raise ConvcliError(msg)
        factor = out_peak / picture.peak
        scaled = values if options.float_output or factor == 1 else values * factor
        pixels = images.to_pixels(scaled, range_, out_peak, dtype)
        images.save(
            target,
            pixels,
            alpha=alpha,
            icc_profile=picture.icc_profile,
            quality=options.quality,
            compress_level=options.compress_level,
        )
        h, w, c = pixels.shape
        outputs.append(Output(target, (int(h), int(w), int(c)), name))
    t3 = time.perf_counter()
    in_h, in_w, _ = picture.shape
    kh, kw = kernel.size
    top, bottom, left, right = explanation.padding
    (sh, sw), (dh, dw) = explanation.stride, explanation.dilation
    out_h, out_w = explanation.output_shape[:2]
    formula = (
        f"H' = floor(({in_h} + {top} + {bottom} - {dh}*({kh}-1) - 1) / {sh}) + 1 = {out_h}; "
        f"W' = floor(({in_w} + {left} + {right} - {dw}*({kw}-1) - 1) / {sw}) + 1 = {out_w}"
    )
    return ApplyResult(
        input=path,
        input_shape=picture.shape,
        kernel=kernel,
        kernel_shape=tuple(int(s) for s in kernel.weights.shape),
        method=explanation.method,
        reason=explanation.reason,
        stride=explanation.stride,
        padding=explanation.padding,
        dilation=explanation.dilation,
        border=explanation.border,
        formula=formula,
        outputs=outputs,
        seconds={"load": t1 - t0, "filter": t2 - t1, "save": t3 - t2},
        costs=dict(explanation.costs),
    )
