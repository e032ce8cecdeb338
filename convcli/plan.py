"""What one (image, kernel) pair will write, checked before any pixel is decoded.

The options of ``convcli apply`` and ``batch`` (`ApplyOptions`), where each
output goes (`planned_outputs`: ``<stem>.<kernel>[.<filter>][.<tags>]<ext>``,
or ``--name``'s template: `convcli.naming`), and the
checks a pair passes from its image's header alone (`plan_pair`): the kernel
fits the channels, the sizes fit the pixel limit, the output formats hold
the pixels, the frames of an animation fit where they go. `convcli.pipeline`
then runs the pair.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from convcli import core, images, naming
from convcli.errors import ConvcliError, ShapeError
from convcli.kernels import Kernel
from convcli.names import ALPHA_MODES, STREAM_MAX_PIXELS


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
    frame: int | None = None  # --frame N: that frame alone; None: every frame
    like: str | None = None  # --like NAME, for the output's name (`like` sets the rest)
    name: str | None = (
        None  # --name TEMPLATE (`convcli.naming`); None: the default name
    )
    format: str | None = None  # --format EXT: the outputs' ending; None: the input's
    chain: bool = False  # --chain: the kernels run in order as one (`convcli.chain`)
    # --stream / --no-stream; None: by the image's size (`convcli.streaming`)
    stream: bool | None = None
    # --memory: the bytes an image may take in memory; None: a quarter of RAM
    memory: int | None = None
    # --band-rows: output rows per streamed band; None: by BAND_BYTES
    band_rows: int | None = None


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
    options: ApplyOptions | None = None,
    number: int = 1,
) -> Path:
    """Return where one output goes: ``<stem>.<kernel>[.<filter>][.<tags>]<ext>``, cut to fit `NAME_MAX`.

    Beside the input, or in the folder ``out``; ``out`` itself when it names
    a file and there is one output. ``folder`` says which ``out`` is (None:
    a folder if it is one or has no ending). The tags are
    `naming.option_tags`; ``options.name`` (``--name``) replaces the whole
    name with its template, ``number`` being its ``{n}``.

    Raises
    ------
    ConvcliError
        A ``--name`` whose name has no image ending, or an ending that is
        not ``--format``'s.
    """
    options = options or ApplyOptions()
    ext = suffix or image.suffix
    if options.format:
        ext = "." + options.format
    tags = naming.option_tags(kernel, options)
    if options.name:
        values: dict[str, object] = {
            "stem": image.stem,
            "kernel": naming.kernel_tag(kernel),
            "filter": filter_name or "",
            "params": ".".join(tags),
            "ext": ext.lstrip("."),
            "n": number,
        }
        name = naming.fit(naming.fill(options.name, values), NAME_MAX)
        _check_named(name, options)
    else:
        tag = naming.kernel_tag(kernel)
        tag += "".join("." + t for t in [naming.safe(filter_name or ""), *tags] if t)
        name = _fit_name(image.stem, tag, ext)
    if out is None:
        return image.with_name(name)
    if folder is None:
        folder = out.is_dir() or out.suffix == ""
    if folder or not single:
        return out / name
    return out


def _check_named(name: str, options: ApplyOptions) -> None:
    """Refuse a ``--name`` result without an image ending, or with another than ``--format``'s."""
    ending = Path(name).suffix.lower()
    template = options.name
    if ending not in images.FORMATS:
        msg = (
            f"--name {template!r} makes {name!r}, which has no image ending "
            f"({', '.join(images.FORMATS)}); end the template with .{{ext}}"
        )
        raise ConvcliError(msg)
    if options.format and not naming.same_format(ending, options.format):
        msg = (
            f"--name {template!r} makes {name!r}, but --format is {options.format}; "
            "end the template with .{ext}"
        )
        raise ConvcliError(msg)


def _fit_name(stem: str, tag: str, ext: str) -> str:
    """Return ``stem.tag ext``, cut to `NAME_MAX` bytes with a hash if longer.

    The longer of stem and tag is cut first (a character cut in half is
    dropped); eight hex digits of the whole name's sha256 keep cut names apart.
    """
    name = f"{stem}.{tag}{ext}"
    if len(os.fsencode(name)) <= NAME_MAX:
        return name
    import hashlib  # here: 3 ms at import, for names longer than NAME_MAX only

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
        tag, n = None if name is None else naming.safe(name), 1
        while tag is not None and tag in tags:
            n += 1
            tag = f"{naming.safe(name or '')}-{n}"
        tags.append(tag)
    return tags


def planned_outputs(
    image: Path,
    kernel: Kernel,
    options: ApplyOptions,
    out: Path | None,
    *,
    folder: bool | None = None,
    number: int = 1,
) -> list[Path]:
    """Return the paths `apply_one` writes for ``image``, before it runs.

    ``number`` is the first output's ``{n}`` (`naming.FIELDS`); each filter
    of a stacked bank takes the next.
    """
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
            options=options,
            number=number + i,
        )
        for i, tag in enumerate(tags)
    ]


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
    number: int = 1  # the first output's {n} (--name)


def plan_pair(
    header: images.Header,
    kernel: Kernel,
    options: ApplyOptions,
    out: Path | None,
    *,
    folder: bool | None = None,
    label: str | None = None,
    number: int = 1,
) -> PairPlan:
    """Check one pair as `apply_one` would, from the image's header alone; return its plan.

    Raises
    ------
    ConvcliError
        ``a.png x sobel: reason``, or an `images.ImageError` naming the output.
    """
    label = label or f"{images.shown(header.path)} x {kernel.name}"
    out_hw, frames = check_header(label, header, kernel, options)
    c = _channels(header.channels, options.channels)
    out_c = c if not kernel.is_bank or kernel.weights.shape[1] == 1 else 1
    alpha = header.alpha and not options.float_output
    outputs = planned_outputs(
        header.path, kernel, options, out, folder=folder, number=number
    )
    if header.streamed:
        _check_streamed(header, kernel, outputs)
    for target in outputs:
        if options.float_output and out_c != 1:
            msg = f"{images.shown(target)}: --float writes one-channel TIFFs; add --channels gray"
            raise ConvcliError(msg)
        fmt, _ = images.output_format(target)
        if frames > 1 and fmt not in images.ANIMATIONS:
            msg = (
                f"{images.shown(header.path)} has {frames} frames; {fmt} holds one: use "
                "--frame N or an output format that holds animation (GIF, WebP, PNG, TIFF)"
            )
            raise ConvcliError(msg)
        sixteen = header.sixteen and keeps_sixteen(
            header.mode, target, channels=out_c, alpha=alpha, frames=frames
        )
        kind = "f32" if options.float_output else "u16" if sixteen else "u8"
        images.check_output(target, channels=out_c, kind=kind, alpha=alpha)
    return PairPlan(
        header, kernel, options, label, tuple(outputs), (*out_hw, out_c), number
    )


def _check_streamed(header: images.Header, kernel: Kernel, outputs: list[Path]) -> None:
    """Refuse what a streamed image cannot do: outputs other than TIFF, ``--chain``."""
    name = images.shown(header.path)
    for target in outputs:
        fmt, _ = images.output_format(target)
        if fmt != "TIFF":
            msg = (
                f"{name} is streamed (bigger than memory, or --stream), and a streamed "
                f"image is written as tiled TIFF: {images.shown(target)} is {fmt}; "
                "give -o a .tif name or --format tif (--no-stream filters it in memory)"
            )
            raise ConvcliError(msg)
    if kernel.steps:
        msg = f"{name} is streamed: --chain runs in memory only; run the kernels one by one"
        raise ConvcliError(msg)


def check_header(
    label: str, header: images.Header, kernel: Kernel, options: ApplyOptions
) -> tuple[tuple[int, int], int]:
    """Check a pair from its image's header (`check_pair`, `check_frames`); return (H', W') and the frames."""
    out_hw = check_pair(
        label,
        header.size,
        header.channels,
        header.alpha,
        kernel,
        limited(header, options),
    )
    return out_hw, check_frames(header, options, out_hw)


def limited(header: images.Header, options: ApplyOptions) -> ApplyOptions:
    """Return the options with a streamed image's pixel limit (`STREAM_MAX_PIXELS`) set."""
    if header.streamed and options.max_pixels is None:
        return dataclasses.replace(options, max_pixels=STREAM_MAX_PIXELS)
    return options


def check_frames(
    header: images.Header, options: ApplyOptions, out_hw: tuple[int, int]
) -> int:
    """Return how many frames the pair filters: the one ``--frame`` takes, or every one.

    Every frame of an animation counts against the pixel limit, in and out.

    Raises
    ------
    ConvcliError
        A ``--frame`` the file does not hold; frames that cannot make one
        animation (TIFF pages that differ); frames x pixels over the limit.
    """
    name, frames = images.shown(header.path), header.frames
    if options.frame is not None:
        if not 0 <= options.frame < frames:
            what = "frames" if frames > 1 else "frame"
            msg = f"{name} has {frames} {what} (0 to {frames - 1}); got --frame {options.frame}"
            raise ConvcliError(msg)
        return 1
    if frames > 1 and header.mixed:
        msg = f"{name}: {header.mixed}, so its pages are not one animation; use --frame N to take one"
        raise ConvcliError(msg)
    limit = images.pixel_limit(options.max_pixels)
    most = max(header.pixels, out_hw[0] * out_hw[1])
    if frames > 1 and limit is not None and frames * most > limit:
        h, w = header.size if most == header.pixels else out_hw
        msg = (
            f"{name}: {frames:,} frames of {h} x {w} = {frames * most:,} pixels, more "
            f"than the limit of {limit:,}; --frame N takes one frame, --max-pixels N "
            "raises the limit"
        )
        raise ConvcliError(msg)
    return frames


def keeps_sixteen(
    mode: str, target: Path, *, channels: int, alpha: bool, frames: int = 1
) -> bool:
    """Return whether a 16-bit image of (Pillow) ``mode`` is written to ``target`` in 16 bits.

    16-bit gray (I;16, I) is, or else it is an error (`images.check_output`),
    as ever. 16-bit colour and gray+alpha (``RGB;16``, ``RGBA;16``,
    ``LA;16``: `convcli.deep_images`) is where the format holds it
    (`images.holds_sixteen`), and is written in 8 bits elsewhere, as it was
    before convcli read it in 16.
    """
    if mode.startswith("I") or not mode.endswith(";16"):
        return True
    return images.holds_sixteen(target, channels=channels, alpha=alpha, frames=frames)


def _channels(channels: int, wanted: str) -> int:
    """Return the colour channels after ``--channels`` (see `images.convert_channels`)."""
    return 1 if wanted == "gray" else 3 if wanted == "rgb" else channels


def check_pair(
    label: str,
    in_hw: tuple[int, int],
    channels: int,
    alpha: bool,
    kernel: Kernel,
    options: ApplyOptions,
) -> tuple[int, int]:
    """Refuse options, kernels and sizes that do not fit the image; return (H', W')."""
    if kernel.steps:  # --chain: every step checked on the size before it
        from convcli.chain import check_chain

        return check_chain(label, in_hw, channels, alpha, kernel, options, check_pair)
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
