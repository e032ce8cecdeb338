"""The options `apply`, `batch` and `trace` share: their declarations and parsers.

Each ``...Opt`` is an ``Annotated`` type a command's parameter takes, so that
a shared option is spelled (flag, help, checks) once. The parsers read the
option text the commands take as strings (``3``, ``2,1``, ``same``) and
raise `ValueError` with the flag's name, which `user_errors` turns into
exit code 2.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Annotated

import typer

from convcli.names import (
    ALPHA_MODES,
    BORDER_ALIASES,
    BORDERS,
    CHANNELS,
    LIKE_NAMES,
    METHODS,
    RANGES,
)

if TYPE_CHECKING:
    from convcli.pipeline import ApplyOptions

Border = Enum("Border", {b: b for b in (*BORDERS, *BORDER_ALIASES)}, type=str)  # type: ignore[misc]
Method = Enum("Method", {m: m for m in METHODS}, type=str)  # type: ignore[misc]
Range = Enum("Range", {r: r for r in RANGES}, type=str)  # type: ignore[misc]
Channels = Enum("Channels", {c: c for c in CHANNELS}, type=str)  # type: ignore[misc]
Like = Enum("Like", {name: name for name in LIKE_NAMES}, type=str)  # type: ignore[misc]
Alpha = Enum("Alpha", {a: a for a in ALPHA_MODES}, type=str)  # type: ignore[misc]
CARRY = Alpha("carry")
REFLECT, AUTO, KEEP = Border("reflect"), Method("auto"), Channels("keep")

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print only a JSON document on stdout.")
]


def complete_kernel(incomplete: str) -> list[tuple[str, str]]:
    """Return the kernel specs the shell may complete ``incomplete`` to, with help.

    The catalogue's names that start with it, each with its description, and
    a generator also as ``NAME:``; after ``NAME:`` (or ``NAME:key=value,``)
    the generator's parameters not given yet, as ``NAME:key=``. Nothing for
    a path or a matrix, so that the shell completes file names. numpy and
    the catalogue are loaded only here, when the shell asks.

    Examples
    --------
    >>> [name for name, _ in complete_kernel("sob")]
    ['sobel', 'sobel_x', 'sobel_y']
    >>> [name for name, _ in complete_kernel("gaussian:sigma=2,s")]
    ['gaussian:sigma=2,size=']
    """
    from convcli.errors import ConvcliError
    from convcli.kernels import GENERATORS, kernel_names, list_kernels

    name, colon, params = incomplete.partition(":")
    if colon:  # the parameters of a generator
        generator = GENERATORS.get(name)
        if generator is None:
            return []
        given, _, partial = params.rpartition(",")
        keys = {part.partition("=")[0].strip() for part in given.split(",")}
        prefix = incomplete[: len(incomplete) - len(partial)]
        return [
            (f"{prefix}{key}=", f"default {value:g}")
            for key, value in generator.defaults.items()
            if key not in keys and key.startswith(partial)
        ]
    try:
        about = {
            k.name: (k.description, k.source == "generator") for k in list_kernels()
        }
    except (ConvcliError, OSError, ValueError):  # a broken file of the user's
        try:
            about = {n: ("", n in GENERATORS) for n in kernel_names()}
        except OSError:  # a folder of $CONVCLI_KERNEL_PATH that cannot be read
            about = dict.fromkeys(GENERATORS, ("", True))
    found: list[tuple[str, str]] = []
    for spec, (description, generated) in sorted(about.items()):
        if spec.startswith(incomplete):
            found.append((spec, description))
            if generated:
                defaults = GENERATORS[spec].defaults.items()
                listed = ", ".join(f"{k}={v:g}" for k, v in defaults)
                found.append((f"{spec}:", f"parameters {listed}"))
    return found


# The options `apply` and `batch` share, spelled once.
KernelSpecs = Annotated[
    list[str],
    typer.Option(
        "--kernel",
        "-k",
        metavar="SPEC",
        help="A kernel: NAME[:params], a file or a matrix; repeatable.",
        autocompletion=complete_kernel,
    ),
]
StrideOpt = Annotated[str, typer.Option(help="Step between windows: N or ROWS,COLS.")]
PaddingOpt = Annotated[
    str, typer.Option(help="same (keep the size), valid (none), N or ROWS,COLS.")
]
DilationOpt = Annotated[str, typer.Option(help="Spacing between taps: N or ROWS,COLS.")]
BorderOpt = Annotated[Border, typer.Option(help="What the padding holds.")]
CvalOpt = Annotated[float, typer.Option(help="Value of constant padding.")]
FlipOpt = Annotated[
    bool,
    typer.Option("--flip", help="Rotate the kernel 180 degrees (true convolution)."),
]
RangeOpt = Annotated[
    Range | None,
    typer.Option(
        "--range",
        help="Float result to pixels: clip, abs, rescale (each image's min..max), "
        "offset (0 at mid-grey) or gain (0 at black), the last two at the kernel's "
        "fixed scale; default: the kernel's own.",
    ),
]
MethodOpt = Annotated[Method, typer.Option(help="How to compute.")]
ChannelsOpt = Annotated[
    Channels,
    typer.Option(help="keep the image's channels, or convert to gray or rgb."),
]
FloatOpt = Annotated[
    bool, typer.Option("--float", help="Write the raw float32 values as TIFF.")
]
QualityOpt = Annotated[
    int | None, typer.Option(min=1, max=100, help="JPEG/WebP quality.")
]
CompressOpt = Annotated[
    int | None,
    typer.Option(
        min=0,
        max=9,
        help="PNG: this zlib level, 0-9, with adaptive row filters (default: Paeth filter and zlib RLE, ~9x faster than level 6, files about as small).",
    ),
]
MaxPixelsOpt = Annotated[
    int | None, typer.Option(min=1, help="Raise Pillow's decompression-bomb limit.")
]
AlphaOpt = Annotated[
    Alpha,
    typer.Option(
        help="carry alpha through unfiltered, or filter colour premultiplied by "
        "alpha so transparent pixels do not bleed in."
    ),
]
ChainOpt = Annotated[
    bool,
    typer.Option(
        "--chain",
        help="Run the -k kernels in order, each on the previous result, and write "
        "one output per image (a.blur+sobel.png); stride, padding, dilation, border "
        "and flip apply to every step, the range once at the end.",
    ),
]
FrameOpt = Annotated[
    int | None,
    typer.Option(
        min=0,
        metavar="N",
        help="Take frame N (from 0) of an animated GIF, WebP or PNG, or page N of a "
        "TIFF, alone; default: every frame, written as one animation.",
    ),
]
LikeOpt = Annotated[
    Like | None,
    typer.Option(
        "--like",
        help="Reproduce a library's result for the same kernel: sets flip, "
        "border, anchor and normalization as it does (overrides those flags).",
    ),
]
NameOpt = Annotated[
    str | None,
    typer.Option(
        "--name",
        metavar="TEMPLATE",
        help="Name the outputs from {stem}, {kernel}, {filter}, {params}, {ext}, {n}, "
        "e.g. '{stem}_{kernel}.{ext}' [<stem>.<kernel>[.<filter>][.<params>].<ext>].",
    ),
]


MAX_GEOMETRY = 2**31 - 1
"""The largest stride, padding or dilation the options take; sizes are checked later."""


def parse_pair(text: str, what: str) -> int | tuple[int, int]:
    """Read ``N`` or ``N,M`` (rows, columns) given to ``--what``, each at most `MAX_GEOMETRY`."""
    parts = [p.strip() for p in text.split(",")]
    try:
        numbers = [int(p) for p in parts if len(p) <= 40]  # int() of huge text is slow
    except ValueError:
        numbers = []
    if len(numbers) != len(parts):
        msg = f"--{what} must be N or ROWS,COLS (whole numbers); got {text!r}"
        raise ValueError(msg) from None
    if max(numbers) > MAX_GEOMETRY:
        msg = f"--{what} must be at most {MAX_GEOMETRY} (N or ROWS,COLS); got {text!r}"
        raise ValueError(msg)
    if len(numbers) == 1:
        return numbers[0]
    if len(numbers) == 2:
        return numbers[0], numbers[1]
    msg = f"--{what} must be N or ROWS,COLS; got {text!r}"
    raise ValueError(msg)


def parse_padding(text: str) -> int | str | tuple[int, int]:
    """Read ``--padding``: ``same``, ``valid`` (any case), ``N`` or ``N,M``."""
    if text.strip().lower() in ("same", "valid"):
        return text.strip().lower()
    return parse_pair(text, "padding")


def parse_numbers(text: str, what: str) -> list[float]:
    """Read ``1`` or ``1,0,-0.5`` given to ``--what``."""
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        msg = f"--{what} must be numbers separated by commas; got {text!r}"
        raise ValueError(msg) from None


StreamOpt = Annotated[
    bool | None,
    typer.Option(
        "--stream/--no-stream",
        help="Read a TIFF band by band, for images bigger than memory (or never); "
        "by default a TIFF streams when its float32 size is over --memory or its "
        "pixels over the in-memory limit.",
    ),
]
MemoryOpt = Annotated[
    str | None,
    typer.Option(
        metavar="SIZE",
        help="The memory an image may take as float32 before a TIFF streams: "
        "2GB, 512MiB, ... (default: a quarter of this machine's memory).",
    ),
]
BandRowsOpt = Annotated[
    int | None,
    typer.Option(
        min=1,
        metavar="N",
        help="Output rows per band of a streamed image (default: about 16 MiB of its rows as float32, and at least the kernel's height).",
    ),
]

_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_UNITS |= {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_UNITS |= {"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}


def parse_memory(text: str | None) -> int | None:
    """Read ``--memory``: bytes, or a number with KB, MB, GB, TB (powers of 1000) or KiB... (1024).

    >>> parse_memory("1.5GB"), parse_memory("512MiB"), parse_memory(None)
    (1500000000, 536870912, None)
    """
    if text is None:
        return None
    number = text.strip().rstrip("bBiIkKmMgGtT ")
    unit = text.strip()[len(number) :].strip().lower()
    try:
        value = float(number) * _UNITS[unit]
    except (ValueError, KeyError):
        value = 0.0
    if not 1 <= value < 2**62:  # NaN too
        msg = f"--memory must be a size of at least 1 byte, such as 2GB, 512MiB or 1000000; got {text!r}"
        raise ValueError(msg)
    return int(value)


SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        metavar="ADDRESS",
        help="Run on a Dask cluster: its scheduler (tcp://HOST:PORT), or local "
        "to start one here (needs convcli[dask]).",
    ),
]
SchedulerTimeoutOpt = Annotated[
    float, typer.Option(min=0.1, help="Seconds to wait for the Dask scheduler.")
]


def apply_options(
    stride: str,
    padding: str,
    dilation: str,
    border: Border,
    cval: float,
    flip: bool,
    value_range: Range | None,
    method: Method,
    channels: Channels,
    float_output: bool,
    quality: int | None,
    compress_level: int | None,
    max_pixels: int | None,
    alpha: Alpha,
    frame: int | None = None,
    name: str | None = None,
    fmt: str | None = None,
    chain: bool = False,
    stream: bool | None = None,
    memory: str | None = None,
    band_rows: int | None = None,
) -> ApplyOptions:
    """Check the shared options' syntax and return them as `ApplyOptions`."""
    from convcli.naming import check_format, check_template, same_format
    from convcli.pipeline import ApplyOptions

    ending = None if fmt is None else check_format(fmt)
    if ending is not None and float_output and not same_format(ending, "tif"):
        msg = f"--float writes TIFF; --format {fmt} is another format (leave it out)"
        raise ValueError(msg)

    return ApplyOptions(
        stride=parse_pair(stride, "stride"),
        padding=parse_padding(padding),
        dilation=parse_pair(dilation, "dilation"),
        border=border.value,
        cval=cval,
        flip=flip,
        method=method.value,
        range=value_range.value if value_range else None,
        channels=channels.value,
        float_output=float_output,
        quality=quality,
        compress_level=compress_level,
        max_pixels=max_pixels,
        alpha=alpha.value,
        frame=frame,
        name=None if name is None else check_template(name),
        format=ending,
        chain=chain,
        stream=stream,
        memory=parse_memory(memory),
        band_rows=band_rows,
    )
