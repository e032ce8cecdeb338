"""One image through one kernel: load, filter, map to pixels, save. Prints nothing.

`apply_one` is what ``convcli apply`` runs per (image, kernel) pair, and what
``convcli batch`` runs per item. It returns an `ApplyResult` with every fact the
CLI shows (shapes, method, the output-size formula, times, paths).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from convcli import core, images, streaming
from convcli.atomic import same_file
from convcli.chain import chain_shapes
from convcli.errors import ConvcliError
from convcli.filtering import filter_maps as filter_maps
from convcli.filtering import one_map, render, to_output
from convcli.kernels import Kernel
from convcli.likes import LIKES as LIKES
from convcli.likes import like as like
from convcli.outcome import ApplyResult as ApplyResult
from convcli.outcome import Output as Output
from convcli.outcome import result as pair_result
from convcli.plan import NAME_MAX as NAME_MAX
from convcli.plan import ApplyOptions as ApplyOptions
from convcli.plan import PairPlan as PairPlan
from convcli.plan import check_geometry as check_geometry
from convcli.plan import check_header, check_pair
from convcli.plan import map_names as map_names
from convcli.plan import output_path as output_path
from convcli.plan import output_tags as output_tags
from convcli.plan import plan_pair as plan_pair
from convcli.plan import planned_outputs as planned_outputs


def probe(path: Path, options: ApplyOptions) -> images.Header:
    """Read an input's header: a TIFF to stream (`convcli.streaming`), or any image to load."""
    streamed = streaming.probe(path, options)
    return streamed or images.probe(path, max_pixels=options.max_pixels)


def apply_one(
    path: Path,
    kernel: Kernel,
    options: ApplyOptions,
    out: Path | None = None,
    *,
    folder: bool | None = None,
    written: list[Output] | None = None,
    number: int = 1,
    progress: streaming.ProgressFn | None = None,
    runner: streaming.BandRunner[Any] | None = None,
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
    header = probe(path, options)
    label = f"{images.shown(path)} x {kernel.name}"
    _, frames = check_header(label, header, kernel, options)
    targets = planned_outputs(path, kernel, options, out, folder=folder, number=number)
    for target in targets:
        if same_file(target, path):
            msg = f"{images.shown(target)}: the output would overwrite the input; choose another -o"
            raise ConvcliError(msg)
    outputs = [] if written is None else written
    if header.streamed:
        return streaming.apply_streamed(
            header,
            kernel,
            options,
            targets,
            outputs,
            t0,
            progress=progress,
            runner=runner,
        )
    if frames > 1:
        return _animate(header, kernel, options, targets, outputs, t0)
    picture = images.load(path, max_pixels=options.max_pixels, frame=options.frame or 0)
    picture = images.convert_channels(picture, options.channels)
    t1 = time.perf_counter()
    in_hw, channels = picture.shape[:2], picture.shape[2]
    check_pair(label, in_hw, channels, picture.alpha is not None, kernel, options)
    maps, explanation, coverage = render(picture, kernel, options)
    range_ = options.range or kernel.range
    gains = kernel.gains(picture.peak)  # offset, gain: the kernel's scale, per map
    seconds = {"load": t1 - t0, "filter": time.perf_counter() - t1, "save": 0.0}
    for index, target in enumerate(targets):
        t2 = time.perf_counter()
        name, values = next(maps)
        t3 = time.perf_counter()
        pixels, alpha = to_output(
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
    done = pair_result(
        header, picture.shape, kernel, explanation, outputs, seconds, options
    )
    return dataclasses.replace(
        done, chain=chain_shapes(picture.shape, kernel, options, check_geometry)
    )


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
        one = one_map(kernel, index)
        bounds = None
        if range_ == "rescale" and not options.float_output:
            bounds = _rescale_bounds(header, one, options)
        frames: list[images.Frame] = []
        name: str | None = None
        for picture in _frames(header, options):
            lap("load")
            first = first or picture
            maps, explanation, coverage = render(picture, one, options)
            name, values = next(maps)
            pixels, alpha = to_output(
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
    done = pair_result(
        header, first.shape, kernel, explanation, outputs, seconds, options
    )
    steps = chain_shapes(first.shape, kernel, options, check_geometry)
    return dataclasses.replace(
        done, frames=header.frames, notes=tuple(notes), chain=steps
    )


def _frames(header: images.Header, options: ApplyOptions) -> Iterator[images.Picture]:
    """Yield every frame of the input, with ``--channels`` applied, one at a time."""
    for picture in images.load_frames(header.path, max_pixels=options.max_pixels):
        yield images.convert_channels(picture, options.channels)


def _rescale_bounds(
    header: images.Header, kernel: Kernel, options: ApplyOptions
) -> tuple[float, float]:
    """Return the range ``rescale`` maps from: the lowest and highest of every frame's map."""
    lo, hi = np.inf, -np.inf
    for picture in _frames(header, options):
        maps, _, _ = render(picture, kernel, options)
        frame_lo, frame_hi = images.rescale_bounds(next(maps)[1])
        lo, hi = min(lo, frame_lo), max(hi, frame_hi)
    return float(lo), float(hi)
