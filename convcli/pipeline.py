"""One image through one kernel: load, filter, map to pixels, save. Prints nothing.

`apply_one` is what ``convcli apply`` runs per (image, kernel) pair, and what
``convcli batch`` runs per item. It returns an `ApplyResult` with every fact the
CLI shows (shapes, method, the output-size formula, times, paths).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from convcli import core, images
from convcli.errors import ConvcliError, ShapeError
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


NAME_MAX = 255
"""The longest file name, in bytes, that Linux, macOS and Windows file systems take."""


def output_path(
    image: Path,
    kernel: Kernel,
    out: Path | None,
    *,
    filter_name: str | None = None,
    single: bool = True,
    suffix: str | None = None,
    folder: bool | None = None,
) -> Path:
    """Return where one output goes: ``<stem>.<kernel>[.<filter>]<ext>``, cut to fit `NAME_MAX`.

    Beside the input, or in the folder ``out``; ``out`` itself when it names
    a file and there is one output. ``folder`` says which ``out`` is (None:
    a folder if it is one or has no ending).
    """
    tag = _kernel_tag(kernel)
    if filter_name:
        tag += "." + _safe(filter_name)
    name = _fit_name(image.stem, tag, suffix or image.suffix)
    if out is None:
        return image.with_name(name)
    if folder is None:
        folder = out.is_dir() or out.suffix == ""
    if folder or not single:
        return out / name
    return out


def _safe(text: str) -> str:
    """Return ``text`` with each run of characters other than letters, digits, ``.-_`` as ``-``."""
    return re.sub(r"[^\w.-]+", "-", text)


def _fit_name(stem: str, tag: str, ext: str) -> str:
    """Return ``stem.tag ext``, cut to `NAME_MAX` bytes with a hash if longer.

    The longer of stem and tag is cut first (a character cut in half is
    dropped); eight hex digits of the whole name's sha256 keep cut names apart.
    """
    name = f"{stem}.{tag}{ext}"
    if len(os.fsencode(name)) <= NAME_MAX:
        return name
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:8]
    room = NAME_MAX - len(os.fsencode(ext)) - len(digest) - 2  # "." and "~"
    s, t = os.fsencode(stem), os.fsencode(tag)
    keep_t = max(room - len(s), min(len(t), room // 2))
    s, t = s[: room - keep_t], t[:keep_t]
    return f"{s.decode(errors='ignore')}.{t.decode(errors='ignore')}~{digest}{ext}"


def map_names(kernel: Kernel) -> list[str | None]:
    """Return the name of each output one image gets: one per filter of a stacked bank."""
    if not kernel.is_bank or kernel.combine != "stack":
        return [None]
    depth = kernel.weights.shape[0]
    return list(kernel.filter_names or tuple(f"f{d}" for d in range(depth)))


def output_tags(kernel: Kernel) -> list[str | None]:
    """Return each output's filter part of the file name: `map_names`, safe and unique.

    Filters whose safe names collide (``a`` and ``a``, ``a b`` and ``a/b``)
    get ``-2``, ``-3``, ... in order.
    """
    tags: list[str | None] = []
    for name in map_names(kernel):
        tag, n = None if name is None else _safe(name), 1
        while tag is not None and tag in tags:
            n += 1
            tag = f"{_safe(name or '')}-{n}"
        tags.append(tag)
    return tags


def planned_outputs(
    image: Path,
    kernel: Kernel,
    options: ApplyOptions,
    out: Path | None,
    *,
    folder: bool | None = None,
) -> list[Path]:
    """Return the paths `apply_one` writes for ``image``, before it runs."""
    tags = output_tags(kernel)
    suffix = ".tif" if options.float_output else None
    return [
        output_path(
            image,
            kernel,
            out,
            filter_name=tag,
            single=len(tags) == 1,
            suffix=suffix,
            folder=folder,
        )
        for tag in tags
    ]


def _kernel_tag(kernel: Kernel) -> str:
    """Return the kernel's part of a file name: its name and parameters, filename-safe."""
    params = "".join(f"-{k}{v:g}" for k, v in kernel.params.items() if v)
    return _safe(kernel.name + params)


def check_geometry(
    in_hw: tuple[int, int], kernel: Kernel, options: ApplyOptions
) -> tuple[int, int]:
    """Return the output's (H', W') for an image of ``in_hw``, once its sizes are checked.

    Python integers, so absurd values cannot overflow. The output may not
    exceed the pixel limit inputs have (``--max-pixels``, default Pillow's),
    nor the padded input twice that: no padding or dilation allocates absurdly.

    Raises
    ------
    ConvcliError
        A stride or dilation < 1, a negative padding, a kernel window larger
        than the padded input, sizes over the limit: what to change.
    """
    stride = _pair(options.stride, "stride", 1)
    dilation = _pair(options.dilation, "dilation", 1)
    (kh, kw), padding = kernel.size, options.padding
    if isinstance(padding, str):
        rows = _same_or_valid(padding, in_hw[0], kh, stride[0], dilation[0])
        cols = _same_or_valid(padding, in_hw[1], kw, stride[1], dilation[1])
    elif isinstance(padding, int) or not all(isinstance(p, Sequence) for p in padding):
        ph, pw = _pair(padding, "padding", 0)
        rows, cols = (ph, ph), (pw, pw)
    else:
        rows, cols = (_pair(p, "padding", 0) for p in padding)
    ph, pw = in_hw[0] + sum(rows), in_hw[1] + sum(cols)
    oh, ow = (
        (n - d * (k - 1) - 1) // s + 1
        for n, d, k, s in zip((ph, pw), dilation, (kh, kw), stride, strict=True)
    )
    limit = images.pixel_limit(options.max_pixels)
    if min(oh, ow) < 1:
        window = f"{dilation[0] * (kh - 1) + 1}x{dilation[1] * (kw - 1) + 1}"
        msg = (
            f"kernel window {window} (kernel {kh}x{kw}, dilation {dilation}) is "
            f"larger than the padded input {ph}x{pw}"
        )
        raise ShapeError(msg)
    if limit is not None and oh * ow > limit:
        msg = (
            f"the output would be {oh} x {ow} = {oh * ow:,} pixels, more than the "
            f"limit of {limit:,}; use less --padding, or --max-pixels N to raise it"
        )
        raise ConvcliError(msg)
    if limit is not None and ph * pw > 2 * limit:
        msg = (
            f"the padded input would be {ph} x {pw} = {ph * pw:,} pixels (padding "
            f"{rows[0]}, {rows[1]}, {cols[0]}, {cols[1]}; dilation {dilation[0]}, "
            f"{dilation[1]}), more than twice the limit of {limit:,}; use less "
            "--padding or --dilation, or --max-pixels N to raise the limit"
        )
        raise ConvcliError(msg)
    return oh, ow


def _pair(value: object, what: str, least: int) -> tuple[int, int]:
    items = [value] * 2 if isinstance(value, int) else list(value)  # type: ignore[call-overload]
    if len(items) != 2 or not all(type(v) is int for v in items):
        msg = f"{what} must be an int or a pair of ints; got {value!r}"
        raise ConvcliError(msg)
    if min(items) < least:
        where = "in both axes" if least else "on every side"
        msg = f"{what} must be >= {least} {where}; got {value!r}"
        raise ConvcliError(msg)
    return items[0], items[1]


def _same_or_valid(mode: str, n: int, k: int, s: int, d: int) -> tuple[int, int]:
    if mode.lower() not in ("same", "valid"):
        msg = f'padding must be an int, a pair, "same" or "valid"; got {mode!r}'
        raise ConvcliError(msg)
    total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
    return (0, 0) if mode.lower() == "valid" else (total // 2, total - total // 2)


@dataclass(frozen=True)
class PairPlan:
    """One (image, kernel) pair of a run, checked: where its outputs go, their shape."""

    header: images.Header
    kernel: Kernel
    options: ApplyOptions
    label: str  # "a.png x sobel", for messages
    outputs: tuple[Path, ...]
    out_shape: tuple[int, int, int]


def plan_pair(
    header: images.Header,
    kernel: Kernel,
    options: ApplyOptions,
    out: Path | None,
    *,
    folder: bool | None = None,
    label: str | None = None,
) -> PairPlan:
    """Check one pair as `apply_one` would, from the image's header alone; return its plan.

    Raises
    ------
    ConvcliError
        ``a.png x sobel: reason``, or an `images.ImageError` naming the output.
    """
    label = label or f"{images.shown(header.path)} x {kernel.name}"
    out_hw = _check(label, header.size, header.channels, header.alpha, kernel, options)
    c = _channels(header.channels, options.channels)
    out_c = c if not kernel.is_bank or kernel.weights.shape[1] == 1 else 1
    outputs = planned_outputs(header.path, kernel, options, out, folder=folder)
    for target in outputs:
        if options.float_output and out_c != 1:
            msg = f"{images.shown(target)}: --float writes one-channel TIFFs; add --channels gray"
            raise ConvcliError(msg)
        kind = "f32" if options.float_output else "u16" if header.sixteen else "u8"
        images.check_output(target, channels=out_c, kind=kind)
    return PairPlan(header, kernel, options, label, tuple(outputs), (*out_hw, out_c))


def _channels(channels: int, wanted: str) -> int:
    """Return the colour channels after ``--channels`` (see `images.convert_channels`)."""
    return 1 if wanted == "gray" else 3 if wanted == "rgb" else channels


def _check(
    label: str,
    in_hw: tuple[int, int],
    channels: int,
    alpha: bool,
    kernel: Kernel,
    options: ApplyOptions,
) -> tuple[int, int]:
    """Refuse options, kernels and sizes that do not fit the image; return (H', W')."""
    c = _channels(channels, options.channels)
    depth = kernel.weights.shape[1] if kernel.is_bank else 1
    if options.alpha not in ALPHA_MODES:
        msg = f"--alpha must be carry or premultiply; got {options.alpha!r}"
    elif options.alpha == "premultiply" and alpha and kernel.is_bank:
        msg = f"--alpha premultiply needs a 2-D kernel; {kernel.name} is a bank of filters"
    elif depth not in (1, c):
        msg = (
            f"kernel {kernel.name} is a bank over {depth} channels; the image has "
            f"{c} (--channels gray or rgb converts it)"
        )
    else:
        try:
            return check_geometry(in_hw, kernel, options)
        except ConvcliError as err:
            msg = str(err)
    msg = f"{label}: {msg}"
    raise ConvcliError(msg)


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
    return iter([(None, _combine(maps(), kernel.combine))]), explanation


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
) -> ApplyResult:
    """Filter one image with one kernel and write `planned_outputs`; never the input.

    Sizes are checked before any filtering; each map is written before the
    next is computed, and added to ``written`` if given (kept on a failure).

    Raises
    ------
    ConvcliError (or ValueError)
        Bad input: an unreadable or truncated image, a kernel that does not
        fit, sizes over the limit, an output that would overwrite the input,
        a failed write. No partial file is left behind.
    """
    t0 = time.perf_counter()
    picture = images.load(path, max_pixels=options.max_pixels)
    picture = images.convert_channels(picture, options.channels)
    t1 = time.perf_counter()
    label = f"{images.shown(path)} x {kernel.name}"
    in_hw, channels = picture.shape[:2], picture.shape[2]
    _check(label, in_hw, channels, picture.alpha is not None, kernel, options)
    targets = planned_outputs(path, kernel, options, out, folder=folder)
    for target in targets:
        if _same_file(target, path):
            msg = f"{images.shown(target)}: the output would overwrite the input; choose another -o"
            raise ConvcliError(msg)
    filtered_alpha: FloatArray | None = None
    if options.alpha == "premultiply" and picture.alpha is not None:
        single, explanation, filtered_alpha = _filter_premultiplied(
            picture, kernel, options
        )
        maps: Iterator[tuple[str | None, FloatArray]] = iter([(None, single)])
        del single
    else:
        maps, explanation = filter_maps(picture.pixels, kernel, options)
    sixteen = picture.peak == 65535.0
    out_peak = 65535.0 if sixteen else 255.0
    dtype = np.dtype(np.uint16 if sixteen else np.uint8)
    dtype = np.dtype(np.float32) if options.float_output else dtype
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
    factor = out_peak / picture.peak
    outputs = [] if written is None else written
    seconds = {"load": t1 - t0, "filter": time.perf_counter() - t1, "save": 0.0}
    for target in targets:
        t2 = time.perf_counter()
        name, values = next(maps)
        t3 = time.perf_counter()
        if options.float_output and values.shape[2] != 1:
            msg = f"{images.shown(target)}: --float writes one-channel TIFFs; add --channels gray"
            raise ConvcliError(msg)
        if not options.float_output and factor != 1:
            values *= factor
        pixels = images.to_pixels(values, range_, out_peak, dtype, overwrite=True)
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
    kh, kw = kernel.size
    top, bottom, left, right = explanation.padding
    (sh, sw), (dh, dw) = explanation.stride, explanation.dilation
    out_h, out_w = explanation.output_shape[:2]
    formula = (
        f"H' = floor(({in_hw[0]} + {top} + {bottom} - {dh}*({kh}-1) - 1) / {sh}) + 1 = {out_h}; "
        f"W' = floor(({in_hw[1]} + {left} + {right} - {dw}*({kw}-1) - 1) / {sw}) + 1 = {out_w}"
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
        seconds=seconds,
        costs=dict(explanation.costs),
    )


def _same_file(a: Path, b: Path) -> bool:
    """Return whether two paths are one file: the same resolved path, or inode."""
    try:
        return os.path.realpath(a) == os.path.realpath(b) or os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False
