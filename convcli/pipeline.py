"""One image through one kernel: load, filter, map to pixels, save. Prints nothing.

`apply_one` is what ``convcli apply`` runs per (image, kernel) pair, and what
``convcli batch`` runs per item. It returns an `ApplyResult` with every fact the
CLI shows (shapes, method, the output-size formula, times, paths).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from convcli import core, images
from convcli.atomic import same_file
from convcli.chain import chain_shapes
from convcli.errors import ConvcliError
from convcli.kernels import Kernel
from convcli.names import LIKE_NAMES
from convcli.plan import NAME_MAX as NAME_MAX
from convcli.plan import ApplyOptions as ApplyOptions
from convcli.plan import PairPlan as PairPlan
from convcli.plan import check_frames, check_pair, keeps_sixteen
from convcli.plan import check_geometry as check_geometry
from convcli.plan import map_names as map_names
from convcli.plan import output_path as output_path
from convcli.plan import output_tags as output_tags
from convcli.plan import plan_pair as plan_pair
from convcli.plan import planned_outputs as planned_outputs

FloatArray = npt.NDArray[np.floating[Any]]


@dataclass(frozen=True)
class Output:
    """One written image: its path, shape (H', W', C) and the filter it holds."""

    path: Path
    shape: tuple[int, int, int]
    filter: str | None = None
    frames: int = 1


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
    frames: int = 1  # of an animation, every one filtered
    notes: tuple[str, ...] = ()  # what was lost on the way (16-bit read as 8-bit)
    like: str | None = None  # the --like library that set flip, border, anchor, range
    chain: tuple[tuple[str, tuple[int, int, int]], ...] = ()  # --chain's steps, sizes


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
    kw: dict[str, Any] = {
        "stride": options.stride,
        "padding": options.padding,
        "dilation": options.dilation,
        "border": options.border,
        "cval": options.cval,
        "flip": options.flip,
    }
    w = kernel.weights
    if not kernel.is_bank:
        bias = kernel.bias[0] if kernel.bias else None
        explanation = core.explain(pixels, w, bias, method=options.method, **kw)
        chosen = cast("core.Method", explanation.method)
        result = core.conv2d(pixels, w, bias, method=chosen, **kw)
        return iter([(None, result)]), explanation
    names = kernel.filter_names or tuple(f"f{d}" for d in range(w.shape[0]))
    biases = list(kernel.bias or (0.0,) * w.shape[0])
    each_channel = w.shape[1] == 1  # else a bank over the C channels: see `plan_pair`
    first = w[0, 0] if each_channel else w
    explanation = core.explain(
        pixels, first, None if each_channel else biases, method=options.method, **kw
    )
    chosen = cast("core.Method", explanation.method)

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


def apply_one(
    path: Path,
    kernel: Kernel,
    options: ApplyOptions,
    out: Path | None = None,
    *,
    folder: bool | None = None,
    written: list[Output] | None = None,
    number: int = 1,
) -> ApplyResult:
    """Filter one image with one kernel and write `planned_outputs`; never the input.

    Sizes are checked before any filtering; each map is written before the
    next is computed, and added to ``written`` if given (kept on a failure).
    Every frame of an animation (or page of a TIFF) is filtered, unless
    ``options.frame`` takes one, and written as one animation (`_animate`).

    Raises
    ------
    ConvcliError (or ValueError)
        Bad input: an unreadable or truncated image, a kernel that does not
        fit, sizes over the limit, an output that would overwrite the input,
        a failed write. No partial file is left behind.
    """
    t0 = time.perf_counter()
    header = images.probe(path, max_pixels=options.max_pixels)
    label = f"{images.shown(path)} x {kernel.name}"
    out_hw = check_pair(
        label, header.size, header.channels, header.alpha, kernel, options
    )
    frames = check_frames(header, options, out_hw)
    targets = planned_outputs(path, kernel, options, out, folder=folder, number=number)
    for target in targets:
        if same_file(target, path):
            msg = f"{images.shown(target)}: the output would overwrite the input; choose another -o"
            raise ConvcliError(msg)
    outputs = [] if written is None else written
    if frames > 1:
        return _animate(header, kernel, options, targets, outputs, t0)
    picture = images.load(path, max_pixels=options.max_pixels, frame=options.frame or 0)
    picture = images.convert_channels(picture, options.channels)
    t1 = time.perf_counter()
    in_hw, channels = picture.shape[:2], picture.shape[2]
    check_pair(label, in_hw, channels, picture.alpha is not None, kernel, options)
    maps, explanation, coverage = _render(picture, kernel, options)
    range_ = options.range or kernel.range
    gains = kernel.gains(picture.peak)  # offset, gain: the kernel's scale, per map
    seconds = {"load": t1 - t0, "filter": time.perf_counter() - t1, "save": 0.0}
    for index, target in enumerate(targets):
        t2 = time.perf_counter()
        name, values = next(maps)
        t3 = time.perf_counter()
        pixels, alpha = _to_output(
            values,
            coverage,
            picture,
            target,
            options,
            range_,
            gain=gains[min(index, len(gains) - 1)],
        )
        del values  # one map alive at a time: this one is done with
        images.save(
            target,
            pixels,
            alpha=alpha,
            icc_profile=picture.icc_profile,
            quality=options.quality,
            compress_level=options.compress_level,
        )
        h, w, c = pixels.shape
        del pixels
        outputs.append(Output(target, (int(h), int(w), int(c)), name))
        seconds["filter"] += t3 - t2
        seconds["save"] += time.perf_counter() - t3
    result = _result(
        header, picture.shape, kernel, explanation, outputs, seconds, options
    )
    return dataclasses.replace(
        result, chain=chain_shapes(picture.shape, kernel, options, check_geometry)
    )


def _render(
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


def _to_output(
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


def _animate(
    header: images.Header,
    kernel: Kernel,
    options: ApplyOptions,
    targets: list[Path],
    outputs: list[Output],
    t0: float,
) -> ApplyResult:
    """Filter every frame of an animation and write each output as one animation.

    Frames are decoded and filtered one at a time; each output's frames are
    kept as pixels (8 or 16 bits, not floats) until it is written. A stacked
    bank makes one output per filter, one filter at a time, reading the
    frames again for each. ``rescale`` maps every frame by one range, the
    animation's, found in a first pass: no frame flickers brighter than the
    others. ``offset`` and ``gain`` scale by the kernel alone: no first pass.
    """
    range_ = options.range or kernel.range
    seconds = {"load": 0.0, "filter": 0.0, "save": 0.0}
    clock = [t0]

    def lap(what: str) -> None:
        now = time.perf_counter()
        seconds[what] += now - clock[0]
        clock[0] = now

    notes = list(header.notes)
    first: images.Picture | None = None
    explanation: core.Explanation | None = None
    for index, target in enumerate(targets):
        one = _one_map(kernel, index)
        bounds = None
        if range_ == "rescale" and not options.float_output:
            bounds = _rescale_bounds(header, one, options)
        frames: list[images.Frame] = []
        name: str | None = None
        for picture in _frames(header, options):
            lap("load")
            first = first or picture
            maps, explanation, coverage = _render(picture, one, options)
            name, values = next(maps)
            pixels, alpha = _to_output(
                values,
                coverage,
                picture,
                target,
                options,
                range_,
                frames=header.frames,
                bounds=bounds,
                gain=one.gains(picture.peak)[0],
            )
            del values
            frames.append(images.Frame(pixels, alpha, picture.duration))
            lap("filter")
        assert first is not None  # an animation has frames
        assert explanation is not None
        fmt, _ = images.output_format(target)
        if fmt == "PNG" and frames[0].pixels.itemsize == 1 and first.peak == 65535.0:
            notes.append(
                f"{images.shown(target)}: 16-bit frames written in 8 bits "
                "(of the animations, only TIFF pages keep 16-bit colour)"
            )
        images.save_frames(
            target,
            frames,
            loop=header.loop,
            icc_profile=first.icc_profile,
            quality=options.quality,
            compress_level=options.compress_level,
        )
        h, w, c = frames[0].pixels.shape
        outputs.append(Output(target, (int(h), int(w), int(c)), name, len(frames)))
        del frames
        lap("save")
    assert first is not None
    assert explanation is not None
    result = _result(
        header, first.shape, kernel, explanation, outputs, seconds, options
    )
    steps = chain_shapes(first.shape, kernel, options, check_geometry)
    return dataclasses.replace(
        result, frames=header.frames, notes=tuple(notes), chain=steps
    )


def _frames(header: images.Header, options: ApplyOptions) -> Iterator[images.Picture]:
    """Yield every frame of the input, with ``--channels`` applied, one at a time."""
    for picture in images.load_frames(header.path, max_pixels=options.max_pixels):
        yield images.convert_channels(picture, options.channels)


def _one_map(kernel: Kernel, index: int) -> Kernel:
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


def _rescale_bounds(
    header: images.Header, kernel: Kernel, options: ApplyOptions
) -> tuple[float, float]:
    """Return the range ``rescale`` maps from: the lowest and highest of every frame's map."""
    lo, hi = np.inf, -np.inf
    for picture in _frames(header, options):
        maps, _, _ = _render(picture, kernel, options)
        frame_lo, frame_hi = images.rescale_bounds(next(maps)[1])
        lo, hi = min(lo, frame_lo), max(hi, frame_hi)
    return float(lo), float(hi)


def _result(
    header: images.Header,
    in_shape: tuple[int, int, int],
    kernel: Kernel,
    explanation: core.Explanation,
    outputs: list[Output],
    seconds: dict[str, float],
    options: ApplyOptions,
) -> ApplyResult:
    """Gather what the CLI shows of one pair, with the output-size formula filled in."""
    kh, kw = kernel.size
    top, bottom, left, right = explanation.padding
    (sh, sw), (dh, dw) = explanation.stride, explanation.dilation
    out_h, out_w = explanation.output_shape[:2]
    formula = (
        f"H' = floor(({in_shape[0]} + {top} + {bottom} - {dh}*({kh}-1) - 1) / {sh}) + 1 = {out_h}; "
        f"W' = floor(({in_shape[1]} + {left} + {right} - {dw}*({kw}-1) - 1) / {sw}) + 1 = {out_w}"
    )
    return ApplyResult(
        input=header.path,
        input_shape=in_shape,
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
        seconds=seconds,
        costs=dict(explanation.costs),
        notes=header.notes,
        like=options.like,
    )
