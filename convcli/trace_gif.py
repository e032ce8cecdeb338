"""Draw `convcli trace` as an animated GIF, one frame per step.

Each frame lays out the padded input channel by channel with the window
highlighted, the filter's slices, the output maps filled up to the step, and
the step's products and sums. Pillow draws it; the GIF is written frame by
frame (each frame only the rectangle that changed), so memory holds two frames
whatever the number of steps, and `convcli.images` writes it atomically.
`check_gif_path` checks where it goes before anything is drawn.
"""

from __future__ import annotations

import functools
import math
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
from PIL import GifImagePlugin, Image, ImageChops, ImageDraw, ImageFont

from convcli.atomic import make_temporary, same_file
from convcli.core import FloatArray
from convcli.images import ImageError, write_atomically
from convcli.tracing import Trace, TraceStep, format_number

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


GIF_MAX_FRAME_PIXELS = 1 << 23
"""Most pixels of one frame (about 2900 x 2900); a GIF's side is at most 65535."""

_GIF_MAX_SIDE = 65535

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
        _check_frame_size(trace, _MIN_WIDTH, _LINE + _rows_height(trace, _CELL))
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
        _check_frame_size(trace, self.width, self.height)

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


def _rows_height(trace: Trace, cell_h: int) -> int:
    """Return the height of a frame's grids: the channels, or the output maps."""
    pad_h = int(trace.padded.shape[1])
    depth, out_h = int(trace.output.shape[0]), int(trace.output.shape[1])
    n_channels = len(trace.channels_of(0))
    channel_h = _LINE + pad_h * cell_h + _GAP
    output_h = _LINE + out_h * cell_h + _GAP
    return max(n_channels * channel_h, depth * output_h)


def _check_frame_size(trace: Trace, width: int, height: int) -> None:
    """Refuse frames over `GIF_MAX_FRAME_PIXELS` (or a side over GIF's 65535)."""
    if width * height > GIF_MAX_FRAME_PIXELS or max(width, height) > _GIF_MAX_SIDE:
        channels, pad_h, pad_w = trace.padded.shape
        msg = (
            f"--gif would draw frames of at least {width}x{height} pixels (a "
            f"{pad_h}x{pad_w} padded input, {channels} channels, {trace.depth} "
            f"filters); a frame has at most {GIF_MAX_FRAME_PIXELS} pixels: trace "
            "fewer channels or filters, or leave --gif out"
        )
        raise ImageError(msg)


def check_gif_size(trace: Trace, *, title: str = "") -> tuple[int, int]:
    """Return the (width, height) of `save_trace_gif`'s frames, or refuse them.

    Raises
    ------
    ImageError
        Frames over `GIF_MAX_FRAME_PIXELS` pixels (many channels, a large
        padded input), found before a pixel is drawn.
    """
    drawing = _TraceFrames(trace, title)
    return drawing.width, drawing.height


def check_gif_path(
    path: str | os.PathLike[str], inputs: Mapping[str, Path] | None = None
) -> Path:
    """Check where `save_trace_gif` will write, before anything is drawn.

    Parameters
    ----------
    path : str or path-like
        The GIF to write.
    inputs : mapping of str to Path, optional
        The run's input files by the option that gave them (``{"-i": ...}``):
        the GIF must be none of them.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ImageError
        ``path`` is an input (the same path, or the same file by a link), does
        not end in ``.gif``, is a folder or a device, or its folder is missing
        or not writable. Nothing is left behind.
    """
    p = Path(path)
    for option, source in (inputs or {}).items():
        if same_file(p, source):
            msg = (
                f"--gif {p} is the input {option} {source}; an input is never "
                "overwritten: give the GIF another name"
            )
            raise ImageError(msg)
    if p.suffix.lower() != ".gif":
        msg = f"{p}: --gif writes a GIF; give a name ending in .gif"
        raise ImageError(msg)
    try:
        mode = p.stat().st_mode
    except (OSError, ValueError):
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        what = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
        msg = f"{p}: is {what}; --gif names the GIF file to write"
        raise ImageError(msg)
    folder = p.parent if str(p.parent) else Path()
    try:  # the one reliable test of a folder: make a file in it (and remove it)
        handle, probe = make_temporary(p)
    except OSError as err:
        msg = f"{p}: cannot write in {folder}: {err.strerror or err}"
        raise ImageError(msg) from None
    os.close(handle)
    os.unlink(probe)
    return p


def _indexed(frame: Image.Image, colours: int) -> Image.Image:
    """Return ``frame`` with at most ``colours`` colours, undithered.

    Pillow's maximum-coverage quantizer keeps the few flat colours of a frame
    exact and its antialiased text within a level or two, several times faster
    than the median cut of ``convert("P", palette=ADAPTIVE)``.
    """
    return frame.quantize(
        colours, method=Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE
    )


def _first_frame(frame: Image.Image, frame_ms: int) -> list[bytes]:
    """Return the GIF's header (looping forever) and its first frame, in full."""
    indexed = _indexed(frame, 256)
    header, _ = GifImagePlugin.getheader(
        indexed, info={"loop": 0, "duration": frame_ms}
    )
    return [*header, *GifImagePlugin.getdata(indexed, (0, 0), duration=frame_ms)]


def _next_frame(before: Image.Image, frame: Image.Image, frame_ms: int) -> list[bytes]:
    """Return a later frame: the rectangle that changed, the rest transparent.

    Each frame has its own 255 colours (a local colour table) and index 255 for
    "as before", so the frames look as drawn and the file stays small.
    """
    box = ImageChops.difference(before, frame).getbbox() or (0, 0, 1, 1)
    new, old = frame.crop(box), before.crop(box)
    indexed = _indexed(new, 255)
    pixels = np.array(indexed, dtype=np.uint8)
    bands = ImageChops.difference(new, old).point(lambda v: 255 if v else 0).split()
    changed = functools.reduce(ImageChops.lighter, bands)
    pixels[np.asarray(changed) == 0] = 255
    palette = (indexed.getpalette() or [])[: 3 * 255]
    delta = Image.fromarray(pixels, mode="P")
    delta.putpalette(palette + [0] * (3 * 256 - len(palette)))
    return GifImagePlugin.getdata(
        delta,
        box[:2],
        duration=frame_ms,
        transparency=255,
        include_color_table=True,
    )


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
    step, and the step's products and sums. Written atomically like
    `convcli.images.save`.

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
        A name not ending in ``.gif``, frames over `GIF_MAX_FRAME_PIXELS`, a
        folder that cannot be written, a failed write. No partial file is
        left behind.
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

    def write(stream: BinaryIO) -> None:
        before = drawing.frame(0)
        for chunk in _first_frame(before, frame_ms):
            stream.write(chunk)
        for i in range(1, len(trace.steps)):
            frame = drawing.frame(i)
            for chunk in _next_frame(before, frame, frame_ms):
                stream.write(chunk)
            before = frame
        stream.write(b";")  # the GIF trailer

    return write_atomically(p, write)
