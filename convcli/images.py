"""Images: the only Pillow user. Load, modes, value mapping, atomic save, trace GIFs.

Pixels leave this module as numpy arrays of shape (H, W, C), C being 1 or 3,
with any alpha channel kept apart; Pillow's (width, height) sizes never do.
"""

from __future__ import annotations

import functools
import math
import os
import re
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from convcli.core import FloatArray
from convcli.errors import ConvcliError
from convcli.names import CHANNELS, RANGES
from convcli.tracing import Trace, TraceStep, format_number

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


PNG_LEVEL = 1
"""zlib level of the PNGs convcli writes."""

# The process's umask, read once: mkstemp makes 0600 files, outputs get what
# an ordinary open() would give them.
_UMASK = os.umask(0)
os.umask(_UMASK)


class ImageError(ConvcliError, ValueError):
    """An image that cannot be read or written: names the file and the reason."""


@dataclass(eq=False)
class Picture:
    """A decoded image.

    Attributes
    ----------
    pixels : ndarray, shape (H, W, C)
        C is 1 (gray) or 3 (RGB); uint8, uint16 (16-bit gray), int32 (mode I)
        or float32 (mode F).
    alpha : ndarray of shape (H, W), or None
        The alpha channel, same dtype as ``pixels``.
    mode : str
        Pillow's mode of the file as read.
    peak : float
        The largest pixel value of the type (255, 65535), or 1.0 for float images.
    icc_profile : bytes or None
        Carried to the output where its format holds one.
    """

    pixels: npt.NDArray[Any]
    alpha: npt.NDArray[Any] | None
    mode: str
    peak: float
    icc_profile: bytes | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the colour channels."""
        h, w, c = self.pixels.shape
        return int(h), int(w), int(c)


def load(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> Picture:
    """Read an image with Pillow: EXIF orientation applied, modes normalized.

    L, 1 and I;16 stay one channel; P becomes RGB or RGBA; CMYK, YCbCr and the
    like become RGB; LA and RGBA keep their alpha apart; I;16 stays 16-bit.
    Pillow's decompression-bomb limit stays on; ``max_pixels`` raises it.

    Raises
    ------
    ImageError
        ``path: reason`` for a missing, unreadable, truncated or non-image file,
        or one larger than the pixel limit.
    """
    p = Path(path)
    limit = Image.MAX_IMAGE_PIXELS if max_pixels is None else max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            old_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = limit
            try:
                with Image.open(p) as img:
                    img.seek(0)  # GIF and other animations: the first frame
                    img.load()
                    icc = img.info.get("icc_profile")
                    oriented = ImageOps.exif_transpose(img)
                    picture = _to_picture(oriented, img.mode, icc)
            finally:
                Image.MAX_IMAGE_PIXELS = old_limit
    except FileNotFoundError:
        msg = f"{p}: no such file"
        raise ImageError(msg) from None
    except IsADirectoryError:
        msg = f"{p}: is a folder, not an image"
        raise ImageError(msg) from None
    except PermissionError:
        msg = f"{p}: permission denied"
        raise ImageError(msg) from None
    except UnidentifiedImageError:
        msg = (
            f"{p}: not an image Pillow can read (PNG, JPEG, TIFF, BMP, WebP, GIF, ...)"
        )
        raise ImageError(msg) from None
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        msg = (
            f"{p}: more pixels than the limit of {limit} (a decompression bomb?); "
            "--max-pixels N raises the limit"
        )
        raise ImageError(msg) from None
    except (OSError, SyntaxError, ValueError) as err:
        reason = str(err) or type(err).__name__
        msg = f"{p}: corrupt or truncated image ({reason})"
        raise ImageError(msg) from None
    return picture


def _to_picture(img: Image.Image, mode: str, icc: bytes | None) -> Picture:
    """Normalize Pillow's modes to (H, W, C) numpy pixels plus alpha."""
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode == "1":
        img = img.convert("L")
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        arr = np.asarray(img).astype(np.uint16)
        return Picture(arr[:, :, np.newaxis], None, mode, 65535.0, icc)
    if img.mode == "I":
        arr = np.asarray(img, dtype=np.int32)
        peak = (
            65535.0
            if arr.size and arr.min() >= 0 and arr.max() <= 65535
            else 2.0**31 - 1
        )
        return Picture(arr[:, :, np.newaxis], None, mode, peak, icc)
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        return Picture(arr[:, :, np.newaxis], None, mode, 1.0, icc)
    if img.mode == "LA":
        arr = np.asarray(img)
        return Picture(arr[:, :, :1].copy(), arr[:, :, 1].copy(), mode, 255.0, icc)
    if img.mode == "L":
        return Picture(np.asarray(img)[:, :, np.newaxis].copy(), None, mode, 255.0, icc)
    if img.mode in ("RGBA", "PA", "La"):
        arr = np.asarray(img.convert("RGBA"))
        return Picture(arr[:, :, :3].copy(), arr[:, :, 3].copy(), mode, 255.0, icc)
    rgb = img if img.mode == "RGB" else img.convert("RGB")
    return Picture(np.asarray(rgb).copy(), None, mode, 255.0, icc)


def convert_channels(picture: Picture, channels: str) -> Picture:
    """Return the picture with ``channels``: ``keep``, ``gray`` (ITU-R 601 luma) or ``rgb``."""
    if channels == "keep":
        return picture
    c = picture.shape[2]
    if channels == "gray" and c == 3:
        luma = picture.pixels.astype(np.float32) @ np.array(
            [0.299, 0.587, 0.114], np.float32
        )
        gray = np.clip(np.rint(luma), 0, picture.peak).astype(picture.pixels.dtype)
        return Picture(
            gray[:, :, np.newaxis], picture.alpha, picture.mode, picture.peak, None
        )
    if channels == "rgb" and c == 1:
        return Picture(
            np.repeat(picture.pixels, 3, axis=2),
            picture.alpha,
            picture.mode,
            picture.peak,
            picture.icc_profile,
        )
    if channels in CHANNELS:
        return picture
    msg = f"--channels must be one of {', '.join(CHANNELS)}; got {channels!r}"
    raise ImageError(msg)


def to_pixels(
    values: npt.NDArray[Any], range_: str, peak: float, dtype: np.dtype[Any]
) -> npt.NDArray[Any]:
    """Map float results onto pixel values of ``dtype`` (0..peak).

    ``clip`` rounds and clips; ``abs`` takes magnitudes first; ``rescale`` maps
    the map's min..max (0..max when no value is negative) onto 0..peak; a map
    of one value maps to 0 if it is 0 or negative, else to peak. Halves round
    up. Float dtypes get the values as they are (``--float``).

    Examples
    --------
    >>> to_pixels(np.array([-10.0, 100.5, 300.0]), "clip", 255, np.dtype(np.uint8))
    array([  0, 101, 255], dtype=uint8)
    >>> to_pixels(np.array([-2.0, 0.0, 2.0]), "rescale", 255, np.dtype(np.uint8))
    array([  0, 128, 255], dtype=uint8)
    """
    if range_ not in RANGES:
        msg = f"range must be one of {', '.join(RANGES)}; got {range_!r}"
        raise ImageError(msg)
    if dtype.kind == "f":
        return values.astype(dtype)
    # One float32 copy, then in place: a 4K RGB map is 100 MB per pass.
    v = np.array(values, dtype=np.float32)
    if not np.isfinite(v).all():
        np.nan_to_num(v, copy=False, nan=0.0, posinf=np.inf, neginf=-np.inf)
    if range_ == "abs":
        np.abs(v, out=v)
    elif range_ == "rescale":
        finite = np.isfinite(v)
        lo = float(v.min(where=finite, initial=np.inf))
        hi = float(v.max(where=finite, initial=-np.inf))
        if not finite.any():
            lo = hi = 0.0
        if lo > 0:
            lo = 0.0  # no negative value: a magnitude, mapped from 0
        if hi > lo:
            v -= np.float32(lo)
            v *= np.float32(peak / (hi - lo))
        else:
            v.fill(0)
    v += np.float32(0.5)
    np.floor(v, out=v)
    np.clip(v, 0, peak, out=v)  # also takes +-inf to the ends
    return v.astype(dtype)


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
    RGBA); uint16 gray as 16-bit (PNG, TIFF); float32 as a float TIFF.

    Raises
    ------
    ImageError
        An unknown ending, a format that cannot hold the pixels, a failed write.
        No partial file is left behind.
    """
    p = Path(path)
    fmt, holds_16 = FORMATS.get(p.suffix.lower(), ("", False))
    if not fmt:
        msg = f"{p}: unknown image ending {p.suffix!r}; use one of {', '.join(FORMATS)}"
        raise ImageError(msg)
    img = _to_image(p, pixels, alpha, fmt, holds_16)
    options: dict[str, Any] = {}
    if icc_profile and fmt in ("PNG", "JPEG", "TIFF", "WEBP"):
        options["icc_profile"] = icc_profile
    if quality is not None and fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
    if fmt == "PNG":
        # zlib level 1, as OpenCV writes PNGs: 5x faster than Pillow's default
        # 6 on a 4K photo, for a file about 14 % larger (bench/bench_apply.py).
        options["compress_level"] = (
            PNG_LEVEL if compress_level is None else compress_level
        )
    return _write_atomically(p, lambda stream: img.save(stream, format=fmt, **options))


def _write_atomically(p: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Run ``write`` on a temporary file beside ``p``, then rename it to ``p``.

    The file gets the permissions an ordinary ``open()`` would give it (the
    umask's). On any error the temporary file is removed and ``p`` is left as
    it was; OS and encoder errors become `ImageError` naming ``p``.
    """
    folder = p.parent if str(p.parent) else Path()
    try:
        handle, tmp_name = tempfile.mkstemp(
            prefix=f".{p.name}.", suffix=".tmp", dir=folder
        )
    except OSError as err:
        msg = f"{p}: cannot write in {folder}: {err.strerror or err}"
        raise ImageError(msg) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, p)
    except (OSError, ValueError, KeyError) as err:
        tmp.unlink(missing_ok=True)
        msg = f"{p}: cannot write: {err}"
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
        if fmt != "TIFF" or c != 1 or alpha is not None:
            msg = f"{p}: float output is written as one-channel TIFF (.tif); got {c} channels for {fmt}"
            raise ImageError(msg)
        return Image.fromarray(np.ascontiguousarray(pixels[:, :, 0]))
    if pixels.dtype == np.uint16:
        if c != 1 or not holds_16:
            msg = f"{p}: {fmt} cannot hold 16-bit {'gray' if c == 1 else 'colour'}; write .png or .tif"
            raise ImageError(msg)
        return Image.fromarray(np.ascontiguousarray(pixels[:, :, 0]).astype("<u2"))
    if pixels.dtype != np.uint8:
        msg = f"{p}: cannot write pixels of dtype {pixels.dtype}"
        raise ImageError(msg)
    if alpha is not None and fmt in ("JPEG", "BMP"):
        alpha = None  # these formats have no alpha: the colour is written alone
    if alpha is not None:
        stacked = np.concatenate(
            [pixels, alpha[:, :, np.newaxis].astype(np.uint8)], axis=2
        )
        return Image.fromarray(stacked)  # (H, W, 2) is LA, (H, W, 4) RGBA
    return Image.fromarray(np.ascontiguousarray(pixels[:, :, 0] if c == 1 else pixels))


def montage(
    path: str | os.PathLike[str],
    tiles: list[tuple[str, npt.NDArray[Any]]],
    *,
    columns: int | None = None,
    width: int | None = None,
) -> Path:
    """Tile labelled images (H, W, C) into one image, a label strip above each.

    Tiles may differ in size and channels: each is shown as 8-bit RGB (16-bit
    scaled down), shrunk to ``width`` pixels across if given. Written
    atomically like `save`.
    """
    if not tiles:
        msg = f"{path}: nothing to put in a montage"
        raise ImageError(msg)
    cols = columns or math.ceil(math.sqrt(len(tiles)))
    shown = []
    for label, pixels in tiles:
        arr = pixels
        if arr.dtype == np.uint16:
            arr = (arr.astype(np.uint32) * 255 // 65535).astype(np.uint8)
        elif arr.dtype != np.uint8:
            arr = to_pixels(arr, "rescale", 255, np.dtype(np.uint8))
        img = Image.fromarray(
            np.ascontiguousarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
        )
        img = img.convert("RGB")
        if width and img.width != width:
            img = img.resize(
                (width, max(1, round(img.height * width / img.width))),
                Image.Resampling.LANCZOS,
            )
        shown.append((label, img))
    strip = 16
    cell_w = max(img.width for _, img in shown)
    cell_h = max(img.height for _, img in shown) + strip
    rows = math.ceil(len(shown) / cols)
    sheet = Image.new("RGB", (cols * cell_w, rows * cell_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for i, (label, img) in enumerate(shown):
        x, y = (i % cols) * cell_w, (i // cols) * cell_h
        draw.text((x + 3, y + 2), label, fill=(0, 0, 0))
        sheet.paste(img, (x, y + strip))
    return save(path, np.asarray(sheet))


# ---------------------------------------------------------------------------
# convcli trace --gif: one drawn frame per step

TRACE_COLOURS: dict[str, tuple[int, int, int]] = {
    "background": (255, 255, 255),
    "text": (33, 37, 41),
    "muted": (128, 128, 128),
    "line": (178, 178, 178),
    "padding": (234, 234, 234),
    "highlight": (255, 214, 92),
    "outline": (196, 112, 0),
}
"""Colours of `trace_frame`: ``padding`` fills the padding cells, ``highlight``
(outlined in ``outline``) the window and the output value being computed."""

_FONT_SIZE = 15
_LINE = _FONT_SIZE + 7  # one line of text
_CELL = 30  # least side of a grid cell
_MARGIN = 16
_GAP = 24  # between grids side by side, and below a row of them
_MIN_WIDTH = 640  # room for a product line of a 3x3 kernel


_Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


@functools.cache
def _font(size: int) -> _Font:
    """Pillow's own scalable font (Pillow >= 10.1 with FreeType), else its bitmap one."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow 10.0: one size only
        return ImageFont.load_default()


def _wrap(text: str, width: float, font: _Font) -> list[str]:
    """Break ``text`` after spaces and ``+`` signs into lines of at most ``width`` pixels.

    A piece wider than ``width`` on its own keeps a line to itself.
    """
    lines: list[str] = []
    line, line_w = "", 0.0
    for piece in re.split(r"(?<=[ +])", text):
        if line and line_w + _text_width(font, piece.rstrip()) > width:
            lines.append(line.rstrip())
            line, line_w = "", 0.0
        line += piece
        line_w += _text_width(font, piece)
    lines.append(line.rstrip())
    return lines


@functools.lru_cache(maxsize=4096)
def _text_width(font: _Font, text: str) -> float:
    """Width of ``text`` in pixels; the pieces of product lines repeat a lot."""
    return font.getlength(text)


class _TraceFrames:
    """The layout every frame of a trace shares, and the drawing of one frame.

    Left, for each input channel the filter reads: the padded channel, then the
    filter's slice for it. Right: the output maps. Above: the title and the
    step; below: the step's arithmetic, on as many lines as the longest step
    needs, so that all frames have one size.
    """

    def __init__(self, trace: Trace, title: str) -> None:
        self.trace = trace
        self.font = _font(_FONT_SIZE)
        self.simple = trace.input.shape[0] == 1 and trace.depth == 1
        self.has_bias = bool(np.any(trace.bias != 0))
        arrays = (trace.padded, trace.weights, trace.output)
        shown = np.unique(np.concatenate([a.ravel() for a in arrays]))
        widest = max(self.font.getlength(format_number(float(v))) for v in shown)
        self.cell = (_CELL, max(_CELL, math.ceil(widest) + 8))  # (height, width)
        _, pad_h, pad_w = trace.padded.shape
        kw = trace.kernel[1]
        depth, out_h, out_w = trace.output.shape
        cell_h, cell_w = self.cell
        labels = [
            self._w_label(d, i)
            for d in range(depth)
            for i in range(trace.weights.shape[1])
        ]
        kernel_w = max(kw * cell_w, *(self.font.getlength(s) for s in labels))
        out_label_w = self.font.getlength(self._o_label(depth - 1))
        in_label_w = self.font.getlength(self._x_label(trace.input.shape[0] - 1))
        self.kernel_x = _MARGIN + max(pad_w * cell_w, math.ceil(in_label_w)) + _GAP
        self.output_x = self.kernel_x + math.ceil(kernel_w) + 2 * _GAP
        content_w = self.output_x + max(out_w * cell_w, math.ceil(out_label_w))
        self.width = max(_MIN_WIDTH, content_w + _MARGIN)
        self.text_w = self.width - 2 * _MARGIN
        self.title_lines = _wrap(title, self.text_w, self.font) if title else []
        self.body_top = _MARGIN + (len(self.title_lines) + 1) * _LINE + _GAP // 2
        self.channel_h = _LINE + pad_h * cell_h + _GAP
        self.output_h = _LINE + out_h * cell_h + _GAP
        n_channels = len(trace.channels_of(0))
        body_h = max(n_channels * self.channel_h, depth * self.output_h)
        self.arithmetic_top = self.body_top + body_h
        self.arithmetic = [self._arithmetic(step) for step in trace.steps]
        n_lines = max(len(lines) for lines in self.arithmetic)
        self.legend = self._legend()
        self.height = self.arithmetic_top + (n_lines + 1) * _LINE + _MARGIN

    # Names, as the cs231n notes write them (plain x, w, o for one channel
    # and one filter).

    def _x_label(self, c: int) -> str:
        return "x" if self.simple else f"x[:,:,{c}]"

    def _w_label(self, d: int, i: int | None = None) -> str:
        if self.simple:
            return "w"
        return f"w{d}" if i is None else f"w{d}[:,:,{i}]"

    def _b_label(self, d: int) -> str:
        return "b" if self.simple else f"b{d}"

    def _o_label(self, d: int, row: int | None = None, col: int | None = None) -> str:
        if row is None:
            return "o" if self.simple else f"o[:,:,{d}]"
        return f"o[{row},{col}]" if self.simple else f"o[{row},{col},{d}]"

    def _legend(self) -> str:
        t = self.trace
        legend = "highlighted: the window and its output value"
        if any(t.padding):
            fill = (
                f"constant {format_number(t.cval)}"
                if t.border == "constant"
                else t.border
            )
            legend += f"; grey: padding ({fill})"
        return legend

    def _headline(self, index: int) -> str:
        step = self.trace.steps[index]
        d = step.filter
        line = (
            f"step {index + 1} of {len(self.trace.steps)}: "
            f"{self._o_label(d, step.row, step.col)} = {self._w_label(d)} · window"
        )
        return f"{line} + {self._b_label(d)}" if self.has_bias else line

    def _arithmetic(self, step: TraceStep) -> list[tuple[int, str]]:
        """Lines of a step's arithmetic, each with its indent in pixels."""
        lines: list[tuple[int, str]] = []
        channels = self.trace.channels_of(step.filter)
        for i, c in enumerate(channels):
            prefix = f"{self._x_label(c)}:  "
            indent = math.ceil(self.font.getlength(prefix))
            wrapped = _wrap(self.trace.terms(step, i), self.text_w - indent, self.font)
            lines.append((0, prefix + wrapped[0]))
            lines.extend((indent, rest) for rest in wrapped[1:])
        if len(channels) > 1 or self.has_bias:
            terms = [format_number(s) for s in step.channel_sums]
            if self.has_bias:
                terms.append(
                    f"{self._b_label(step.filter)} ({format_number(step.bias)})"
                )
            total = (
                f"{self._o_label(step.filter, step.row, step.col)} = "
                f"{' + '.join(terms)} = {format_number(step.value)}"
            )
            lines.extend((0, s) for s in _wrap(total, self.text_w, self.font))
        return lines

    def frame(self, index: int) -> Image.Image:
        """Draw step ``index`` (0-based) as an RGB image."""
        t = self.trace
        step = t.steps[index]
        colours = TRACE_COLOURS
        img = Image.new("RGB", (self.width, self.height), colours["background"])
        draw = ImageDraw.Draw(img)
        y = _MARGIN
        for line in [*self.title_lines, self._headline(index)]:
            draw.text((_MARGIN, y), line, fill=colours["text"], font=self.font)
            y += _LINE
        # The padded input, channel by channel, with the window; beside each
        # channel the filter's slice for it.
        _, pad_h, pad_w = t.padded.shape
        top, _, left, _ = t.padding
        height, width = t.input.shape[1:]
        rows = np.arange(pad_h)[:, np.newaxis]
        cols = np.arange(pad_w)[np.newaxis, :]
        padding = (
            (rows < top)
            | (rows >= top + height)
            | (cols < left)
            | (cols >= left + width)
        )
        window = np.zeros((pad_h, pad_w), dtype=bool)
        tap_rows, tap_cols = t.taps(step)
        window[np.ix_(list(tap_rows), list(tap_cols))] = True
        for i, c in enumerate(t.channels_of(step.filter)):
            y = self.body_top + i * self.channel_h
            self._grid(
                draw,
                _MARGIN,
                y,
                self._x_label(c),
                t.padded[c],
                padding=padding,
                highlight=window,
            )
            kernel = t.weights[step.filter, i]
            self._grid(draw, self.kernel_x, y, self._w_label(step.filter, i), kernel)
        if self.has_bias:  # below the last slice, in the gap before the next row
            bias = f"{self._b_label(step.filter)} = {format_number(step.bias)}"
            y += _LINE + kernel.shape[0] * self.cell[0] + 4
            draw.text((self.kernel_x, y), bias, fill=colours["text"], font=self.font)
        # The output maps: values up to this step, this step's cell highlighted.
        done = np.zeros(t.output.shape, dtype=bool)
        for s in t.steps[: index + 1]:
            done[s.filter, s.row, s.col] = True
        current = np.zeros(t.output.shape, dtype=bool)
        current[step.filter, step.row, step.col] = True
        for d in range(t.depth):
            y = self.body_top + d * self.output_h
            self._grid(
                draw,
                self.output_x,
                y,
                self._o_label(d),
                t.output[d],
                shown=done[d],
                highlight=current[d],
            )
        y = self.arithmetic_top
        for indent, line in self.arithmetic[index]:
            draw.text((_MARGIN + indent, y), line, fill=colours["text"], font=self.font)
            y += _LINE
        legend_y = self.height - _MARGIN - _LINE
        draw.text(
            (_MARGIN, legend_y), self.legend, fill=colours["muted"], font=self.font
        )
        return img

    def _grid(
        self,
        draw: ImageDraw.ImageDraw,
        left: int,
        top: int,
        label: str,
        values: FloatArray,
        *,
        shown: npt.NDArray[np.bool_] | None = None,
        padding: npt.NDArray[np.bool_] | None = None,
        highlight: npt.NDArray[np.bool_] | None = None,
    ) -> None:
        """Draw a label and below it a grid of numbers; masks pick cells out."""
        colours = TRACE_COLOURS
        draw.text((left, top), label, fill=colours["text"], font=self.font)
        top += _LINE
        cell_h, cell_w = self.cell
        n_rows, n_cols = values.shape
        outlined = []
        for r in range(n_rows):
            for c in range(n_cols):
                box = (
                    left + c * cell_w,
                    top + r * cell_h,
                    left + (c + 1) * cell_w,
                    top + (r + 1) * cell_h,
                )
                is_padding = padding is not None and bool(padding[r, c])
                if highlight is not None and highlight[r, c]:
                    fill = colours["highlight"]
                    outlined.append(box)
                else:
                    fill = colours["padding"] if is_padding else colours["background"]
                draw.rectangle(box, fill=fill, outline=colours["line"])
                if shown is None or shown[r, c]:
                    text = format_number(float(values[r, c]))
                    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=self.font)
                    centre = (
                        (box[0] + box[2] - x0 - x1) / 2,
                        (box[1] + box[3] - y0 - y1) / 2,
                    )
                    ink = colours["muted"] if is_padding else colours["text"]
                    draw.text(centre, text, fill=ink, font=self.font)
        for box in outlined:
            draw.rectangle(box, outline=colours["outline"], width=2)


def trace_frame(trace: Trace, index: int, *, title: str = "") -> npt.NDArray[np.uint8]:
    """Return frame ``index`` (0-based: step ``index + 1``) of `save_trace_gif` as RGB pixels.

    Parameters
    ----------
    trace : Trace
        The convolution laid out by `convcli.tracing.trace`.
    index : int
        Which step, 0 <= index < len(trace.steps).
    title : str, optional
        A line (wrapped if long) above the step.

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        The same for every index of one trace and title.

    Raises
    ------
    IndexError
        ``index`` outside the steps.

    Examples
    --------
    >>> from convcli.tracing import trace
    >>> t = trace([[1, 2, 3], [4, 5, 6]], [[1, 0], [0, -1]], bias=10)
    >>> frame = trace_frame(t, 1)
    >>> frame.dtype, frame.shape[2], frame.shape == trace_frame(t, 0).shape
    (dtype('uint8'), 3, True)
    """
    n = len(trace.steps)
    if not 0 <= index < n:
        msg = (
            f"a frame index must be in 0..{n - 1} for a trace of {n} steps; got {index}"
        )
        raise IndexError(msg)
    return np.asarray(_TraceFrames(trace, title).frame(index))


def save_trace_gif(
    path: str | os.PathLike[str], trace: Trace, *, title: str = "", frame_ms: int = 1200
) -> Path:
    """Write a trace as an animated GIF: one frame per step, looping forever.

    Each frame shows the padded input channel by channel (padding grey, the
    window highlighted), the filter's slices, the output maps filled up to the
    step, and the step's products and sums. Written atomically like `save`.

    Parameters
    ----------
    path : str or path-like
        Where to write; the name must end in ``.gif``.
    trace : Trace
        The convolution laid out by `convcli.tracing.trace`.
    title : str, optional
        A line (wrapped if long) on top of every frame.
    frame_ms : int, optional
        How long each frame shows, in milliseconds; at least 20.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ImageError
        A name not ending in ``.gif``, a folder that cannot be written, a
        failed write. No partial file is left behind.
    ValueError
        ``frame_ms`` below 20.

    Examples
    --------
    >>> import tempfile
    >>> from convcli.tracing import trace
    >>> t = trace([[1, 2, 3], [4, 5, 6]], [[1, 0], [0, -1]])
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     gif = save_trace_gif(Path(folder) / "t.gif", t, title="a 2x2 kernel")
    ...     with Image.open(gif) as img:
    ...         print(img.n_frames, img.info["loop"])
    2 0
    """
    p = Path(path)
    if p.suffix.lower() != ".gif":
        msg = f"{p}: --gif writes a GIF; give a name ending in .gif"
        raise ImageError(msg)
    if isinstance(frame_ms, bool) or not isinstance(frame_ms, int) or frame_ms < 20:
        msg = f"frame_ms must be an int >= 20 (browsers slow shorter GIF frames down); got {frame_ms!r}"
        raise ValueError(msg)
    drawing = _TraceFrames(trace, title)
    frames = [drawing.frame(i) for i in range(len(trace.steps))]

    def write(stream: BinaryIO) -> None:
        frames[0].save(
            stream,
            format="GIF",
            save_all=True,
            append_images=frames[1:],
            duration=frame_ms,
            loop=0,
        )

    return _write_atomically(p, write)
