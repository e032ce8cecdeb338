"""Draw `convcli trace` as an animated GIF, one frame per step.

Each frame is the cs231n notes' "Convolution Demo": the input volume (every
channel of the padded input, padding grey), every filter with its slices and
bias, and the output volume filled up to the step; the step's window, its
filter and its output value highlighted, its arithmetic below
(`convcli.trace_gif_layout` places it all). The cells and labels are drawn once;
a frame adds the step's values and highlights. The GIF is written frame by frame
(each frame only the rectangle that changed, the last one held longer), so
memory holds two frames whatever the number of steps, and `convcli.images`
writes it atomically. `check_gif_path` checks where it goes before anything is
drawn.
"""

from __future__ import annotations

import functools
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt
from PIL import GifImagePlugin, Image, ImageDraw, ImageFont

from convcli.atomic import same_file, target_problem
from convcli.images import ImageError, write_atomically
from convcli.trace_gif_layout import (
    CELL,
    FONT_SIZE,
    LINE,
    MARGIN,
    MIN_WIDTH,
    Box,
    GifLayout,
    Grid,
)
from convcli.trace_gif_layout import gif_layout as _layout
from convcli.tracing import Trace, format_number

TRACE_COLOURS: dict[str, tuple[int, int, int]] = {
    "background": (255, 255, 255),
    "text": (33, 37, 41),
    "muted": (128, 128, 128),
    "line": (178, 178, 178),
    "padding": (234, 234, 234),
    "highlight": (255, 214, 92),
    "filter": (255, 240, 200),
    "outline": (196, 112, 0),
}
"""Colours of `trace_frame`: ``padding`` fills the padding cells, ``highlight``
the window and the output value being computed (outlined in ``outline``),
``filter`` the cells of the filter at work (framed in ``outline``)."""

LAST_FRAME_HOLD = 3
"""The last frame shows this many times as long as the others: the finished
output, before the animation starts over."""

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


@functools.lru_cache(maxsize=4096)
def _text_width(text: str) -> float:
    """Width of ``text`` in pixels; the pieces of product lines repeat a lot."""
    return _font(FONT_SIZE).getlength(text)


def gif_layout(trace: Trace, *, title: str = "") -> GifLayout:
    """Return where `trace_frame` draws each grid, filter and line of ``trace``.

    Examples
    --------
    >>> from convcli.tracing import trace
    >>> t = trace([[1, 2, 3], [4, 5, 6]], [[1, 0], [0, -1]], bias=10)
    >>> layout = gif_layout(t)
    >>> [g.label for g in layout.inputs], [g.label for g in layout.outputs]
    (['x'], ['o'])
    >>> layout.outputs[0].rows, layout.outputs[0].cols, layout.headlines[1]
    (1, 2, 'step 2 of 2: o[0,1] = w · window + b')
    """
    _check_cells(trace)
    layout = _layout(trace, title, _text_width)
    _check_frame_size(trace, layout.width, layout.height)
    return layout


class _TraceFrames:
    """The drawing of a trace's frames: a base drawn once, then a step's marks.

    The base holds every label and every input, weight and bias value; the
    output values go into it step by step as frames are drawn in order (a
    frame out of order starts again from a clean base).
    """

    def __init__(self, trace: Trace, title: str) -> None:
        self.trace = trace
        self.font = _font(FONT_SIZE)
        self.layout = gif_layout(trace, title=title)
        self._clean: Image.Image | None = None
        self._base: Image.Image | None = None
        self._filled = 0  # steps whose output value the base shows
        top, _, left, _ = trace.padding
        _, height, width = trace.input.shape
        _, pad_h, pad_w = trace.padded.shape
        rows = np.arange(pad_h)[:, np.newaxis]
        cols = np.arange(pad_w)[np.newaxis, :]
        self.padding = (
            (rows < top)
            | (rows >= top + height)
            | (cols < left)
            | (cols >= left + width)
        )

    def _cell(
        self,
        draw: ImageDraw.ImageDraw,
        box: Box,
        value: float | None,
        fill: str,
        ink: str = "text",
    ) -> None:
        """Draw one cell: its fill, its border, its number (None: left empty)."""
        colours = TRACE_COLOURS
        draw.rectangle(
            (box[0], box[1], box[2], box[3]),
            fill=colours[fill],
            outline=colours["line"],
        )
        if value is not None:
            centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
            text = format_number(value)
            draw.text(centre, text, fill=colours[ink], font=self.font, anchor="mm")

    def _label(self, draw: ImageDraw.ImageDraw, grid: Grid) -> None:
        draw.text(
            (grid.left, grid.top),
            grid.label,
            fill=TRACE_COLOURS["text"],
            font=self.font,
        )

    def _draw_clean(self) -> Image.Image:
        """Draw what every frame shows: labels, inputs, weights, biases, empty outputs."""
        t, layout = self.trace, self.layout
        img = Image.new(
            "RGB", (layout.width, layout.height), TRACE_COLOURS["background"]
        )
        draw = ImageDraw.Draw(img)
        for left, top, text, muted in layout.texts:
            ink = TRACE_COLOURS["muted" if muted else "text"]
            draw.text((left, top), text, fill=ink, font=self.font)
        for c, grid in enumerate(layout.inputs):
            self._label(draw, grid)
            for (r, col), v in np.ndenumerate(t.padded[c]):
                pad = bool(self.padding[r, col])
                self._cell(
                    draw,
                    grid.cell(r, col),
                    v,
                    "padding" if pad else "background",
                    "muted" if pad else "text",
                )
        for block in layout.filters:
            for line, text in enumerate(block.heading):
                draw.text(
                    (block.box[0] + 6, block.box[1] + 4 + line * LINE),
                    text,
                    fill=TRACE_COLOURS["text"],
                    font=self.font,
                )
            for grid in (*block.slices, block.bias):
                self._label(draw, grid)
            self._filter(draw, block.filter, "background")
        for grid in layout.outputs:
            self._label(draw, grid)
            for r in range(grid.rows):
                for col in range(grid.cols):
                    self._cell(draw, grid.cell(r, col), None, "background")
        return img

    def _filter(self, draw: ImageDraw.ImageDraw, d: int, fill: str) -> None:
        """Draw the cells of filter ``d``'s slices and bias, filled with ``fill``."""
        block = self.layout.filters[d]
        for i, grid in enumerate(block.slices):
            for (r, col), v in np.ndenumerate(self.trace.weights[d, i]):
                self._cell(draw, grid.cell(r, col), v, fill)
        self._cell(draw, block.bias.cell(0, 0), self.trace.bias[d], fill)

    def _base_at(self, index: int) -> Image.Image:
        """Return the base with the output values of the steps before ``index``."""
        if self._clean is None:
            self._clean = self._draw_clean()
        if self._base is None or self._filled > index:
            self._base, self._filled = self._clean.copy(), 0
        draw = ImageDraw.Draw(self._base)
        for step in self.trace.steps[self._filled : index]:
            box = self.layout.outputs[step.filter].cell(step.row, step.col)
            self._cell(draw, box, step.value, "background")
        self._filled = max(self._filled, index)
        return self._base

    def frame(self, index: int) -> Image.Image:
        """Draw step ``index`` (0-based) as an RGB image."""
        t, layout, colours = self.trace, self.layout, TRACE_COLOURS
        step = t.steps[index]
        img = self._base_at(index).copy()
        draw = ImageDraw.Draw(img)
        draw.text(
            (MARGIN, layout.headline_top),
            layout.headlines[index],
            fill=colours["text"],
            font=self.font,
        )
        # The filter at work: its cells tinted, its block framed.
        block = layout.filters[step.filter]
        self._filter(draw, step.filter, "filter")
        draw.rectangle(block.box, outline=colours["outline"], width=3)
        # The window, in every channel the filter reads, and the output cell.
        outlined = []
        tap_rows, tap_cols = t.taps(step)
        for c in block.channels:
            grid = layout.inputs[c]
            for r in tap_rows:
                for col in tap_cols:
                    box = grid.cell(r, col)
                    pad = bool(self.padding[r, col])
                    ink = "muted" if pad else "text"
                    self._cell(draw, box, t.padded[c, r, col], "highlight", ink)
                    outlined.append(box)
        box = layout.outputs[step.filter].cell(step.row, step.col)
        self._cell(draw, box, step.value, "highlight")
        outlined.append(box)
        for box in outlined:
            draw.rectangle(box, outline=colours["outline"], width=2)
        y = layout.arithmetic_top
        for indent, line in layout.arithmetic[index]:
            draw.text((MARGIN + indent, y), line, fill=colours["text"], font=self.font)
            y += LINE
        return img


def _check_cells(trace: Trace) -> None:
    """Refuse, before any layout, a trace whose cells alone overflow a frame."""
    channels, pad_h, pad_w = (int(n) for n in trace.padded.shape)
    n_cells = (
        channels * pad_h * pad_w
        + int(trace.weights.size)
        + trace.depth
        + int(trace.output.size)
    )
    height = -(-n_cells * CELL * CELL // MIN_WIDTH)  # ceil
    _check_frame_size(trace, MIN_WIDTH, height)


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
        Frames over `GIF_MAX_FRAME_PIXELS` pixels (many channels or filters,
        a large padded input), found before a pixel is drawn.
    """
    layout = gif_layout(trace, title=title)
    return layout.width, layout.height


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
    problem = target_problem(p)
    if problem is not None:
        msg = f"{p}: {problem}; --gif names the GIF file to write"
        raise ImageError(msg)
    return p


_INKS_ON = {
    "text": ("background", "padding", "highlight", "filter"),
    "muted": ("background", "padding", "highlight"),
}
"""The fills each ink writes on: the blends of its antialiased edges."""

_TRANSPARENT = 255
"""The palette index of "as in the frame before"; no colour uses it."""


@functools.cache
def _palette() -> npt.NDArray[np.int32]:
    """Return the GIF's one colour table: the flat colours, then ink-on-fill blends.

    Every frame is drawn in `TRACE_COLOURS` and text antialiased from its ink
    to the fill below (`_INKS_ON`); 255 entries hold those colours exactly and
    the blends within a few levels, so no frame needs a quantizer of its own.
    """
    flat = list(TRACE_COLOURS.values())
    pairs = [(ink, fill) for ink, fills in _INKS_ON.items() for fill in fills]
    levels = (_TRANSPARENT - len(flat)) // len(pairs)
    steps = np.arange(1, levels + 1)[:, np.newaxis] / (levels + 1)
    blends = [
        np.rint(
            np.add(
                TRACE_COLOURS[fill],
                steps * np.subtract(TRACE_COLOURS[ink], TRACE_COLOURS[fill]),
            )
        )
        for ink, fill in pairs
    ]
    return np.concatenate([np.array(flat), *blends]).astype(np.int32)


class _Indexer:
    """Map RGB pixels to `_palette` indices, nearest colour, memoized by colour."""

    def __init__(self) -> None:
        self.palette = _palette()
        self.known: dict[int, int] = {}

    def __call__(self, packed: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint8]:
        """Return the index of each pixel of ``packed`` (RGBX as little-endian uint32)."""
        colours, inverse = np.unique(packed, return_inverse=True)
        new = np.array([c for c in colours.tolist() if c not in self.known], np.int64)
        if new.size:
            rgb = (new[:, np.newaxis] >> np.array([0, 8, 16])) & 0xFF
            distance = ((rgb[:, np.newaxis, :] - self.palette) ** 2).sum(axis=2)
            self.known.update(
                zip(new.tolist(), distance.argmin(axis=1).tolist(), strict=True)
            )
        lookup = np.array([self.known[c] for c in colours.tolist()], dtype=np.uint8)
        return lookup[inverse.reshape(packed.shape)]


def _packed(frame: Image.Image) -> npt.NDArray[np.uint32]:
    """Return ``frame``'s pixels as one uint32 each (R, G, B, X little-endian)."""
    width, height = frame.size
    data = frame.tobytes("raw", "RGBX")
    return np.frombuffer(data, dtype="<u4").reshape(height, width)


def _gif_header(width: int, height: int) -> bytes:
    """Return the GIF's header: the screen, `_palette` as its colours, loop forever."""
    table = np.zeros((256, 3), dtype=np.uint8)
    table[: len(_palette())] = _palette()
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", width, height, 0xF7, 0, 0)  # a 256-colour table
        + table.tobytes()
        + b"!\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"  # loop 0: forever
    )


def _frame_data(
    indices: npt.NDArray[np.uint8], offset: tuple[int, int], frame_ms: int, **info: int
) -> list[bytes]:
    """Return one GIF frame of palette ``indices`` placed at ``offset`` (left, top)."""
    height, width = indices.shape
    image = Image.frombytes("P", (width, height), indices.tobytes())
    return GifImagePlugin.getdata(image, offset, duration=frame_ms, **info)


def _first_frame(
    frame: Image.Image, frame_ms: int, index: _Indexer
) -> tuple[list[bytes], npt.NDArray[np.uint32]]:
    """Return the GIF's header and its first frame, in full; and its pixels."""
    packed = _packed(frame)
    header = _gif_header(*frame.size)
    return [header, *_frame_data(index(packed), (0, 0), frame_ms)], packed


def _next_frame(
    before: npt.NDArray[np.uint32], frame: Image.Image, frame_ms: int, index: _Indexer
) -> tuple[list[bytes], npt.NDArray[np.uint32]]:
    """Return a later frame: the rectangle that changed, the rest transparent; and its pixels.

    Index `_TRANSPARENT` means "as before", so a frame costs the pixels that
    changed (the window, the output cell, the lines of text), not its size.
    """
    packed = _packed(frame)
    changed = packed != before
    rows = np.flatnonzero(changed.any(axis=1))
    cols = np.flatnonzero(changed.any(axis=0))
    if rows.size == 0:  # the same picture: one transparent pixel
        rows = cols = np.zeros(1, dtype=np.intp)
    box = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    indices = np.full(changed[box].shape, _TRANSPARENT, dtype=np.uint8)
    indices[changed[box]] = index(packed[box][changed[box]])
    offset = (int(cols[0]), int(rows[0]))
    return _frame_data(indices, offset, frame_ms, transparency=_TRANSPARENT), packed


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

    Each frame shows the input volume (every channel of the padded input,
    padding grey), every filter with its slices and bias, and the output
    volume filled up to the step, with the step's window, filter and output
    value highlighted, and the step's products and sums. The last frame, the
    whole output, shows `LAST_FRAME_HOLD` times as long. Written atomically
    like `convcli.images.save`.

    Parameters
    ----------
    path : str or path-like
        Where to write; the name must end in ``.gif``.
    trace : Trace
        The convolution laid out by `convcli.tracing.trace`.
    title : str, optional
        A line (wrapped if long) on top of every frame.
    frame_ms : int, optional
        How long each frame shows, in milliseconds; at least 20. The last
        one shows ``LAST_FRAME_HOLD * frame_ms``.

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

    n = len(trace.steps)
    durations = [frame_ms] * (n - 1) + [LAST_FRAME_HOLD * frame_ms]

    def write(stream: BinaryIO) -> None:
        index = _Indexer()
        chunks, before = _first_frame(drawing.frame(0), durations[0], index)
        for chunk in chunks:
            stream.write(chunk)
        for i in range(1, n):
            chunks, before = _next_frame(before, drawing.frame(i), durations[i], index)
            for chunk in chunks:
                stream.write(chunk)
        stream.write(b";")  # the GIF trailer

    return write_atomically(p, write)
