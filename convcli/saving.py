"""Writing image files: formats, what each holds, atomic saves of one image or of frames.

The format follows the file's ending (`FORMATS`). Every file is written to a
temporary file beside its target, then renamed (`write_atomically`), so no
half-written image is ever left. 16-bit colour and gray+alpha go through
`convcli.deep_images`; everything else through Pillow.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
from PIL import Image

from convcli import deep_headers
from convcli.atomic import TMP_STEM_BYTES as TMP_STEM_BYTES
from convcli.atomic import create_temporary, finish, temporary_name
from convcli.errors import shown
from convcli.picture import ImageError

# Output formats by file ending, and whether each holds 16-bit gray.
FORMATS: dict[str, tuple[str, bool]] = {
    ".png": ("PNG", True),
    ".tif": ("TIFF", True),
    ".tiff": ("TIFF", True),
    ".jpg": ("JPEG", False),
    ".jpeg": ("JPEG", False),
    ".bmp": ("BMP", False),
    ".webp": ("WEBP", False),
    ".gif": ("GIF", False),
}


ANIMATIONS = ("GIF", "WEBP", "PNG", "TIFF")
"""Formats whose frames (or pages) convcli reads and writes as one animation. Other
files with several images (MPO, ICO, PSD) are read as their first image."""

PNG_LEVEL = 1
"""zlib level of the PNGs Pillow writes for convcli: animations (APNG), and every
PNG when imagecodecs is missing. Single images go through libpng
(``deep_images.encode_png``), with its fast settings unless ``--compress-level``
is given."""

# The process's umask, read once: mkstemp makes 0600 files, outputs get what
# an ordinary open() would give them.


def output_format(path: str | os.PathLike[str]) -> tuple[str, bool]:
    """Return Pillow's format for an output's ending, and whether it holds 16-bit gray.

    Raises
    ------
    ImageError
        An ending convcli does not write.
    """
    p = Path(path)
    fmt = FORMATS.get(p.suffix.lower())
    if fmt is None:
        msg = f"{shown(p)}: unknown image ending {p.suffix!r}; use one of {', '.join(FORMATS)}"
        raise ImageError(msg)
    return fmt


def check_output(
    path: str | os.PathLike[str], *, channels: int, kind: str, alpha: bool = False
) -> None:
    """Check that an output's format can hold the pixels, before any is computed.

    ``kind`` is ``"u8"``, ``"u16"`` or ``"f32"`` (``--float``); `save` raises
    the same errors.

    Raises
    ------
    ImageError
        An unknown ending, float output that is not a one-channel TIFF,
        16-bit in a format without it (see `holds_sixteen`).
    """
    p = Path(path)
    fmt, _ = output_format(p)
    if kind == "f32" and (fmt != "TIFF" or channels != 1):
        msg = f"{shown(p)}: float output is written as one-channel TIFF (.tif); got {channels} channels for {fmt}"
        raise ImageError(msg)
    if kind == "u16" and not holds_sixteen(p, channels=channels, alpha=alpha):
        what = "gray" if channels == 1 else "colour"
        what += "+alpha" if alpha and channels == 1 else ""
        msg = f"{shown(p)}: {fmt} cannot hold 16-bit {what}; write .png or .tif"
        raise ImageError(msg)


def holds_sixteen(
    path: str | os.PathLike[str], *, channels: int, alpha: bool, frames: int = 1
) -> bool:
    """Return whether the output's format holds such pixels in 16 bits.

    16-bit gray: PNG and TIFF (an animation too: APNG, TIFF pages). 16-bit
    colour or gray+alpha: PNG and TIFF, and TIFF alone for several frames.
    """
    fmt, holds_16 = output_format(path)
    if channels == 1 and not alpha:
        return holds_16
    if frames > 1:
        return fmt == "TIFF"
    return deep_headers.holds(fmt, channels=channels, alpha=alpha)


def save(
    path: str | os.PathLike[str],
    pixels: npt.NDArray[Any],
    *,
    alpha: npt.NDArray[Any] | None = None,
    icc_profile: bytes | None = None,
    quality: int | None = None,
    compress_level: int | None = None,
) -> Path:
    """Write pixels (H, W, C) atomically: a temporary file beside ``path``, then a rename.

    The format follows the file ending. uint8 gray or RGB (with alpha: LA or
    RGBA); uint16 as 16-bit PNG or TIFF (colour and gray+alpha through
    `convcli.deep_images`); float32 as a float TIFF. A single PNG is encoded
    by libpng (`convcli.deep_images.encode_png`); ``compress_level`` given,
    or imagecodecs missing, by Pillow, as every other format.

    Raises
    ------
    ImageError
        An unknown ending, a format that cannot hold the pixels, a failed write.
        No partial file is left behind.
    """
    p = Path(path)
    fmt, holds_16 = output_format(p)
    level = PNG_LEVEL if compress_level is None else compress_level
    if pixels.dtype == np.uint16 and (pixels.shape[2] == 3 or alpha is not None):
        check_output(p, channels=pixels.shape[2], kind="u16", alpha=alpha is not None)
        _need_codec(p, fmt)
        from convcli import deep_images

        return write_atomically(
            p,
            lambda stream: deep_images.write(
                stream,
                pixels,
                alpha,
                fmt=fmt,
                icc_profile=icc_profile,
                compress_level=compress_level,
            ),
        )
    if (
        fmt == "PNG"
        and pixels.dtype in (np.uint8, np.uint16)
        and compress_level is None
    ):
        from convcli import deep_images

        if deep_images.missing("PNG") is None:  # else Pillow, at PNG_LEVEL
            samples = _samples(pixels, alpha)

            def write_png(stream: BinaryIO) -> None:
                stream.write(deep_images.encode_png(samples, icc_profile=icc_profile))

            return write_atomically(p, write_png)
    img = _to_image(p, pixels, alpha, fmt, holds_16)
    options = _save_options(fmt, icc_profile, quality, level)
    return write_atomically(p, lambda stream: img.save(stream, format=fmt, **options))


def _save_options(
    fmt: str, icc_profile: bytes | None, quality: int | None, level: int
) -> dict[str, Any]:
    """Pillow's save options for ``fmt``: the ICC profile, quality, zlib level."""
    options: dict[str, Any] = {}
    if icc_profile and fmt in ("PNG", "JPEG", "TIFF", "WEBP"):
        options["icc_profile"] = icc_profile
    if quality is not None and fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
    if fmt == "PNG":
        # Animations, --compress-level L, or imagecodecs missing: Pillow at
        # zlib level 1 by default, 4x faster than its own default 6 on a 4K
        # photo for a file about 19 % larger (deep_images.encode_png is
        # faster still, and smaller).
        options["compress_level"] = level
    return options


def _need_codec(p: Path, fmt: str) -> None:
    """Refuse a 16-bit colour output whose encoder is not installed."""
    from convcli import deep_images  # its encoders: only for such a file

    missing = deep_images.missing(fmt)
    if missing is not None:
        msg = f"{shown(p)}: a 16-bit colour {fmt} needs {missing}, which is not installed (pip install {missing})"
        raise ImageError(msg)


@dataclass(frozen=True)
class Frame:
    """One frame of an animation to write: pixels (H, W, C), alpha, duration (ms)."""

    pixels: npt.NDArray[Any]
    alpha: npt.NDArray[Any] | None = None
    duration: float | None = None


def save_frames(
    path: str | os.PathLike[str],
    frames: Sequence[Frame],
    *,
    loop: int | None = None,
    icc_profile: bytes | None = None,
    quality: int | None = None,
    compress_level: int | None = None,
) -> Path:
    """Write frames as one animated GIF, WebP or PNG (APNG), or a TIFF of pages, atomically.

    Durations are kept (TIFF has none); ``loop`` is the loop count (0:
    forever; None: play once). The frames hold the same dtype as for `save`;
    16-bit colour frames go into a TIFF only. A GIF gets a palette per
    frame; consecutive frames that come out identical are merged into one,
    their durations added (Pillow does so), so the animation plays the same.

    Raises
    ------
    ImageError
        A format that holds one frame, or not such pixels; a failed write.
    """
    p = Path(path)
    fmt, holds_16 = output_format(p)
    first = frames[0]
    if fmt not in ANIMATIONS:
        msg = f"{shown(p)}: {fmt} holds one frame; got {len(frames)}"
        raise ImageError(msg)
    level = PNG_LEVEL if compress_level is None else compress_level
    if first.pixels.dtype == np.uint16 and (
        first.pixels.shape[2] == 3 or first.alpha is not None
    ):
        if fmt != "TIFF":
            msg = f"{shown(p)}: {fmt} cannot hold 16-bit colour frames; write .tif"
            raise ImageError(msg)
        _need_codec(p, fmt)
        from convcli import deep_images

        pages = ((f.pixels, f.alpha) for f in frames)

        def write_pages(stream: BinaryIO) -> None:
            deep_images.write_pages(stream, pages, icc_profile=icc_profile)

        return write_atomically(p, write_pages)
    pictures = [_to_image(p, f.pixels, f.alpha, fmt, holds_16) for f in frames]
    if fmt == "GIF":  # GIF has no gray+alpha: RGBA, with a palette per frame
        pictures = [im.convert("RGBA") if im.mode == "LA" else im for im in pictures]
    options = _save_options(fmt, icc_profile, quality, level)
    options.update(save_all=True, append_images=pictures[1:])
    if fmt != "TIFF":
        if any(f.duration is not None for f in frames):
            options["duration"] = [round(f.duration or 0) for f in frames]
        if loop is not None or fmt != "GIF":
            options["loop"] = 1 if loop is None else loop  # WebP, APNG: plays once
    if fmt == "GIF" and first.alpha is not None:
        options["disposal"] = 2  # clear each frame: transparent pixels stay so
    return write_atomically(
        p, lambda stream: pictures[0].save(stream, format=fmt, **options)
    )


def write_atomically(p: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Run ``write`` on a temporary file beside ``p``, then rename it to ``p``.

    The temporary file is ``.NAME.XXXXXXXX.tmp`` (NAME cut to
    `TMP_STEM_BYTES`). The file gets the permissions an ordinary ``open()``
    would give it (the umask's). On any error the temporary file is removed
    and ``p`` is left as it was; OS and encoder errors become `ImageError`
    naming ``p``.
    """
    folder = p.parent if str(p.parent) else Path()
    # Named before it exists: a stop (KeyboardInterrupt) at any point below,
    # even the instant after the file is created, finds the name to remove.
    tmp = temporary_name(p)
    creating = True
    try:
        handle = create_temporary(tmp)
        creating = False
        with os.fdopen(handle, "w+b") as stream:  # Pillow's TIFF pages read back
            write(stream)
        finish(tmp, p)
    except (OSError, ValueError, KeyError, MemoryError) as err:
        if creating and isinstance(err, OSError):  # nothing was made
            why = err.strerror or err
            msg = f"{shown(p)}: cannot write in {shown(folder)}: {why}"
            raise ImageError(msg) from None
        tmp.unlink(missing_ok=True)
        reason = (err.strerror if isinstance(err, OSError) else None) or err
        if isinstance(err, MemoryError):
            reason = "not enough memory"
        msg = f"{shown(p)}: cannot write: {reason}"
        raise ImageError(msg) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p


def _to_image(
    p: Path,
    pixels: npt.NDArray[Any],
    alpha: npt.NDArray[Any] | None,
    fmt: str,
    holds_16: bool,
) -> Image.Image:
    c = pixels.shape[2]
    if pixels.dtype == np.float32:
        if alpha is not None:
            msg = f"{shown(p)}: float output is written without alpha"
            raise ImageError(msg)
        check_output(p, channels=c, kind="f32")
        return Image.fromarray(np.ascontiguousarray(pixels[:, :, 0]))
    if pixels.dtype == np.uint16:
        check_output(p, channels=c, kind="u16", alpha=alpha is not None)
        return Image.fromarray(np.ascontiguousarray(pixels[:, :, 0]).astype("<u2"))
    if pixels.dtype != np.uint8:
        msg = f"{shown(p)}: cannot write pixels of dtype {pixels.dtype}"
        raise ImageError(msg)
    if alpha is not None and fmt in ("JPEG", "BMP"):
        alpha = None  # these formats have no alpha: the colour is written alone
    # (H, W, 2) is LA, (H, W, 4) RGBA
    return Image.fromarray(_samples(pixels, alpha))


def _samples(
    pixels: npt.NDArray[Any], alpha: npt.NDArray[Any] | None
) -> npt.NDArray[Any]:
    """Return (H, W, 1 or 3) pixels with alpha as (H, W), (H, W, 2), (3) or (4) samples."""
    if alpha is not None:
        return np.concatenate(
            [pixels, alpha[:, :, np.newaxis].astype(pixels.dtype)], axis=2
        )
    return np.ascontiguousarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
