"""One picture through one kernel, in memory: the maps, the alpha, the output pixels.

`filter_maps` convolves (H, W, C) values with a kernel (a 2-D kernel, a bank
stacked or combined, a ``--chain``) and names the maps; `render` adds the
alpha (carried or premultiplied); `to_output` maps one float map to the
pixels a file gets (8, 16-bit or float). `convcli.pipeline` runs them on a
whole image, `convcli.streaming` on each band of one bigger than memory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from convcli import core, images
from convcli.errors import ConvcliError
from convcli.kernels import Kernel
from convcli.plan import ApplyOptions, keeps_sixteen, map_names

FloatArray = npt.NDArray[np.floating[Any]]


def filter_maps(
    pixels: FloatArray, kernel: Kernel, options: ApplyOptions
) -> tuple[Iterator[tuple[str | None, FloatArray]], core.Explanation]:
    """Convolve (H, W, C) pixels with a kernel; return the named maps and the method.

    A 2-D kernel filters every channel. A bank of one-channel filters filters
    every channel with each filter, one 2-D call per filter; a bank over the
    image's C > 1 channels (a CNN layer) gives one map per filter, all in one
    call. Maps are made as the iterator reaches them; ``combine`` (magnitude,
    sum, max) accumulates them in place into one image, one map alive besides
    the result; ``stack`` keeps one output per filter.
    """
    if kernel.steps:  # --chain: each step on the previous one's map
        from convcli.chain import filter_chain

        return filter_chain(pixels, kernel, options, filter_maps)
    kw = _call_options(options)
    w = kernel.weights
    explanation = explain_maps(pixels, kernel, options)
    chosen = cast("core.Method", explanation.method)
    if not kernel.is_bank:
        bias = kernel.bias[0] if kernel.bias else None
        result = core.conv2d(pixels, w, bias, method=chosen, **kw)
        return iter([(None, result)]), explanation
    names = kernel.filter_names or tuple(f"f{d}" for d in range(w.shape[0]))
    biases = list(kernel.bias or (0.0,) * w.shape[0])
    each_channel = w.shape[1] == 1  # else a bank over the C channels: see `plan_pair`

    def maps() -> Iterator[FloatArray]:
        if each_channel:  # 2-D calls: faster than a bank's GEMM, one map at a time
            for d in range(w.shape[0]):
                yield core.conv2d(pixels, w[d, 0], biases[d], method=chosen, **kw)
            return
        part = core.conv2d(pixels, w, biases, method=chosen, **kw)  # one GEMM per tile
        for d in range(part.shape[2]):
            yield part[:, :, d : d + 1]

    if kernel.combine == "stack":
        return zip(names, maps(), strict=True), explanation
    if each_channel and _bands_fit(pixels, explanation):
        combined = _combine_by_bands(
            pixels, w[:, 0], biases, kernel.combine, explanation, kw
        )
        return iter([(None, combined)]), explanation
    return iter([(None, _combine(maps(), kernel.combine))]), explanation


def _call_options(options: ApplyOptions) -> dict[str, Any]:
    """Return the keyword arguments of `core.conv2d` that ``options`` sets."""
    return {
        "stride": options.stride,
        "padding": options.padding,
        "dilation": options.dilation,
        "border": options.border,
        "cval": options.cval,
        "flip": options.flip,
    }


def explain_maps(
    pixels: FloatArray, kernel: Kernel, options: ApplyOptions
) -> core.Explanation:
    """Return how `filter_maps` filters ``pixels``: the method, the resolved geometry.

    Reads only the shape and dtype of ``pixels`` (a zero-stride view of an
    image's shape will do), so a streamed image is explained as a whole. A
    bank of 2-D filters is explained by its first filter.
    """
    w = kernel.weights
    kw = _call_options(options)
    if not kernel.is_bank:
        bias = kernel.bias[0] if kernel.bias else None
        return core.explain(pixels, w, bias, method=options.method, **kw)
    if w.shape[1] == 1:
        return core.explain(pixels, w[0, 0], None, method=options.method, **kw)
    biases = list(kernel.bias or (0.0,) * w.shape[0])
    return core.explain(pixels, w, biases, method=options.method, **kw)


# Input bytes (float32) of one band of `_combine_by_bands`: a few MiB stay in
# the caches and are reused from band to band (no page faults), where maps of
# the whole image would each be fresh memory.
_BAND_BYTES = 4 << 20


def _bands_fit(pixels: FloatArray, explanation: core.Explanation) -> bool:
    """Whether `_combine_by_bands` computes this call exactly as one whole-image call.

    Stride 1 (bands then start on any row), a border that a band can build from
    its own rows (not ``wrap``, which reaches the far edge), no window in the
    padding alone, and an image of several bands.
    """
    out_h = explanation.output_shape[0]
    top, bottom = explanation.padding[:2]
    extent = pixels.shape[0] + top + bottom - out_h + 1  # rows one window spans
    return (
        explanation.stride[0] == 1
        and explanation.border != "wrap"
        and max(top, bottom) < extent  # every window meets an image row
        and out_h >= 4 * _band_rows(pixels, explanation)
    )


def _band_rows(pixels: FloatArray, explanation: core.Explanation) -> int:
    """Output rows of one band: about `_BAND_BYTES` of input, and more than the padding."""
    row_bytes = 4 * int(pixels.shape[1]) * int(pixels.shape[2])
    top, bottom = int(explanation.padding[0]), int(explanation.padding[1])
    return max(_BAND_BYTES // max(row_bytes, 1), 2 * (max(top, bottom) + 1))


def _combine_by_bands(
    pixels: FloatArray,
    filters: FloatArray,
    biases: list[float],
    how: str,
    explanation: core.Explanation,
    kw: dict[str, Any],
) -> FloatArray:
    """Combine a bank's 2-D maps band of rows by band of rows into one image.

    The same values as `_combine` over whole-image maps, without them: only
    the result is image-sized (a 4K RGB Sobel magnitude: 100 MB less at its
    peak, and no page faults on fresh maps). Each band takes the input rows
    its outputs reach; the image's own padding applies at its top and bottom.
    """
    height = pixels.shape[0]
    out_h = explanation.output_shape[0]
    top, bottom, left, right = explanation.padding
    extent = height + top + bottom - out_h + 1  # rows one window spans (stride 1)
    band = _band_rows(pixels, explanation)
    band_kw = {
        **kw,
        "stride": (1, explanation.stride[1]),
        "dilation": explanation.dilation,
    }
    chosen = cast("core.Method", explanation.method)
    total: FloatArray | None = None
    r0 = 0
    while r0 < out_h:
        # No short last band: it must hold the rows its padding reflects.
        r1 = r0 + band if out_h - r0 >= 2 * band else out_h
        first, last = r0 - top, r1 - 1 + extent - top  # input rows [first, last)
        pad_top, pad_bottom = max(0, -first), max(0, last - height)
        rows = pixels[max(first, 0) : min(last, height)]
        band_kw["padding"] = ((pad_top, pad_bottom), (left, right))
        maps = (
            core.conv2d(rows, f, b, method=chosen, **band_kw)
            for f, b in zip(filters, biases, strict=True)
        )
        part = _combine(maps, how)
        if total is None:
            total = np.empty((out_h, *part.shape[1:]), part.dtype)
        total[r0:r1] = part
        r0 = r1
    assert total is not None
    return total


def _combine(maps: Iterator[FloatArray], how: str) -> FloatArray:
    """Join maps by ``magnitude``, ``sum`` or ``max``, one at a time, in place."""
    total: FloatArray | None = None
    with np.errstate(over="ignore", invalid="ignore"):  # to inf: a defined result
        for m in maps:
            owned = m if m.base is None else m.copy()  # a view of a bank's maps
            del m
            if how == "magnitude":
                np.square(owned, out=owned)
            if total is None:
                total = owned
            elif how == "max":
                np.maximum(total, owned, out=total)
            else:
                total += owned
            del owned  # one map alive besides the total while the next is made
        assert total is not None  # a kernel has at least one filter
        if how == "magnitude":
            np.sqrt(total, out=total)
    return total


def _filter_premultiplied(
    picture: images.Picture, kernel: Kernel, options: ApplyOptions
) -> tuple[FloatArray, core.Explanation, FloatArray]:
    """Filter colour times alpha, and alpha alike, then divide.

    No colour bleeds in from transparent pixels. Returns the map, the method
    and the filtered alpha (0..1) of shape (H', W'). A 2-D kernel, an alpha.
    """
    assert picture.alpha is not None
    coverage = picture.alpha.astype(np.float32) / np.float32(picture.peak)
    colour = picture.pixels.astype(np.float32) * coverage[:, :, np.newaxis]
    maps, explanation = filter_maps(colour, kernel, options)
    plain = dataclasses.replace(kernel, bias=())
    coverage_maps, _ = filter_maps(coverage[:, :, np.newaxis], plain, options)
    filtered = next(coverage_maps)[1]
    covered = filtered > 1e-6
    unpremultiplied = np.where(
        covered, next(maps)[1] / np.where(covered, filtered, 1), 0
    )
    return unpremultiplied, explanation, filtered[:, :, 0].astype(np.float64)


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


def render(
    picture: images.Picture, kernel: Kernel, options: ApplyOptions
) -> tuple[
    Iterator[tuple[str | None, FloatArray]], core.Explanation, FloatArray | None
]:
    """Filter one picture: its named maps, the method, and its alpha (0..1) at the outputs' pixels.

    The alpha is None for a picture without one. With ``--alpha premultiply``
    it is filtered like the colour; else it is carried through unfiltered.
    """
    if options.alpha == "premultiply" and picture.alpha is not None:
        single, explanation, coverage = _filter_premultiplied(picture, kernel, options)
        return iter([(None, single)]), explanation, coverage
    maps, explanation = filter_maps(picture.pixels, kernel, options)
    if picture.alpha is None:
        return maps, explanation, None
    coverage = _resample_alpha(picture.alpha, picture.shape, kernel, explanation)
    return maps, explanation, coverage / picture.peak


def to_output(
    values: FloatArray,
    coverage: FloatArray | None,
    picture: images.Picture,
    target: Path,
    options: ApplyOptions,
    range_: str,
    *,
    frames: int = 1,
    bounds: tuple[float, float] | None = None,
    gain: float | None = None,
) -> tuple[npt.NDArray[Any], npt.NDArray[Any] | None]:
    """Map one float map (and the alpha) to the pixels ``target`` gets: 8, 16-bit or float.

    ``values`` is scaled in place. 16-bit stays 16-bit where the format holds
    it (`keeps_sixteen`); ``bounds`` are an animation's rescale range;
    ``gain`` the kernel's largest response in input units (``offset``, ``gain``).
    """
    if options.float_output:
        if values.shape[2] != 1:
            msg = f"{images.shown(target)}: --float writes one-channel TIFFs; add --channels gray"
            raise ConvcliError(msg)
        f32 = np.dtype(np.float32)
        return images.to_pixels(values, range_, 1.0, f32, overwrite=True), None
    alpha = coverage is not None
    sixteen = picture.peak == 65535.0 and keeps_sixteen(
        picture.mode, target, channels=values.shape[2], alpha=alpha, frames=frames
    )
    out_peak = 65535.0 if sixteen else 255.0
    dtype = np.dtype(np.uint16 if sixteen else np.uint8)
    factor = out_peak / picture.peak
    if factor != 1:
        values *= factor
        bounds = None if bounds is None else (bounds[0] * factor, bounds[1] * factor)
        gain = None if gain is None else gain * factor
    pixels = images.to_pixels(
        values, range_, out_peak, dtype, overwrite=True, bounds=bounds, gain=gain
    )
    if coverage is None:
        return pixels, None
    return pixels, images.to_pixels(coverage * out_peak, "clip", out_peak, dtype)


def one_map(kernel: Kernel, index: int) -> Kernel:
    """Return the kernel that makes output ``index`` alone: one filter of a stacked bank."""
    if not kernel.is_bank or kernel.combine != "stack":
        return kernel
    names = map_names(kernel)
    return dataclasses.replace(
        kernel,
        weights=kernel.weights[index : index + 1],
        bias=kernel.bias[index : index + 1],
        filter_names=(names[index] or f"f{index}",),
    )
