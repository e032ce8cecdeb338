"""Labelled montages: where each tile and its label go, and the drawing (Pillow).

`montage_layout` sizes the labels to the tiles (a font of a tile's height / 22,
so that its letters are at least 1/30 of it) and wraps each one to its cell's
width, so that no label reaches the next tile; `draw_montage` draws the sheet.
`convcli.images.montage` reads the tiles and writes the sheet.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image  # noqa: TID251  (the montage is images.py's, split off by job)

from convcli.picture import to_pixels

MONTAGE_FONT = 22
"""A montage label's font size is a tile's height / 22 (its letters >= 1/30), 12 px at least."""
MONTAGE_LINES = 3
"""A label wraps to this many lines at most; longer ones lose their middle to an ellipsis."""


@dataclass(frozen=True)
class MontageLayout:
    """Where `montage` draws: a grid of cells, each a label band above a tile.

    ``lines`` holds each tile's label as drawn: wrapped at spaces (a word
    too long is broken, after ``:,=_-.`` when it can be) to the cell's
    width less two margins, so that no label reaches the next cell.
    """

    columns: int
    rows: int
    cell: tuple[int, int]  # (H, W): the band, the tallest tile; the widest and a gap
    band: int  # the label band's height
    font_size: int
    margin: int  # left of a label and above its first line
    line_height: int
    lines: tuple[tuple[str, ...], ...]

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the whole montage."""
        return self.rows * self.cell[0], self.columns * self.cell[1] - self.margin


def montage_layout(
    shapes: Sequence[tuple[int, int]],
    labels: Sequence[str] | None = None,
    *,
    columns: int | None = None,
    width: int | None = None,
) -> MontageLayout:
    """Lay out tiles of these (H, W) and their labels (None: room for the longest).

    ``width`` is the width tiles are shrunk to, if given.

    Examples
    --------
    >>> layout = montage_layout([(400, 600)] * 2, ["coffee sobel", "coffee emboss"])
    >>> layout.size, layout.font_size, layout.lines
    ((431, 1204), 19, (('coffee sobel',), ('coffee emboss',)))
    """
    cols = max(1, min(columns or math.ceil(math.sqrt(len(shapes))), len(shapes)))
    if width:
        shapes = [(max(1, round(h * width / w)), width) for h, w in shapes]
    tile_h, cell_w = max(h for h, _ in shapes), max(w for _, w in shapes)
    size = max(12, math.ceil(tile_h / MONTAGE_FONT))
    font, margin = _label_font(size), max(2, size // 4)
    line_h = font.getbbox("Hgjy|")[3] + max(1, size // 8)
    room = max(1, cell_w - 2 * margin)
    lines = tuple(_fit_label(t, font, room) for t in labels or ())
    most = max((len(ls) for ls in lines), default=MONTAGE_LINES)
    band = margin + most * line_h + max(1, margin // 2)
    rows = math.ceil(len(shapes) / cols)
    cell = (band + tile_h, cell_w + margin)  # a gap of one margin between columns
    return MontageLayout(cols, rows, cell, band, size, margin, line_h, lines)


def draw_montage(
    layout: MontageLayout,
    tiles: Iterable[npt.NDArray[Any]],
    *,
    width: int | None = None,
) -> npt.NDArray[np.uint8]:
    """Draw the sheet: each tile (H, W, C) under its label band, in layout order.

    Each tile is shown as 8-bit RGB (16-bit scaled down, float rescaled),
    shrunk to ``width`` pixels across if given; labels are black on white,
    each drawn on its own band, clipped to its cell.
    """
    from PIL import ImageDraw  # noqa: TID251  (here: it loads the font engine)

    (cell_h, cell_w), cols = layout.cell, layout.columns
    sheet_h, sheet_w = layout.size
    sheet = Image.new("RGB", (sheet_w, sheet_h), "white")
    font = _label_font(layout.font_size)
    for i, pixels in enumerate(tiles):
        img = _tile_image(pixels)
        del pixels
        if width and img.width != width:
            img = img.resize(
                (width, max(1, round(img.height * width / img.width))),
                Image.Resampling.LANCZOS,
            )
        band = Image.new("RGB", (cell_w - layout.margin, layout.band), "white")
        pen = ImageDraw.Draw(band)
        for n, line in enumerate(layout.lines[i]):
            top = layout.margin + n * layout.line_height
            pen.text((layout.margin, top), line, fill=(0, 0, 0), font=font)
        x, y = (i % cols) * cell_w, (i // cols) * cell_h
        sheet.paste(band, (x, y))
        sheet.paste(img, (x, y + layout.band))
        del img
    return np.asarray(sheet)


_Font = Any  # ImageFont.FreeTypeFont, or its bitmap font without FreeType


@functools.cache
def _label_font(size: int) -> _Font:
    """Pillow's own scalable font (Pillow >= 10.1 with FreeType), else its bitmap one."""
    from PIL import ImageFont  # noqa: TID251

    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow 10.0, or no FreeType
        return ImageFont.load_default()


def _fit_label(text: str, font: _Font, room: int) -> tuple[str, ...]:
    """Wrap a label to ``room`` pixels; if it takes more than `MONTAGE_LINES` lines, cut its middle.

    The cut keeps a third of what fits from the start (the image) and the rest
    from the end (the kernel, a bank's filter).
    """
    lines = _wrap_label(text, font, room)
    lo, hi = 0, len(text) - 1  # characters kept around the ellipsis
    while len(lines) > MONTAGE_LINES and lo < hi:
        mid = (lo + hi + 1) // 2
        head, tail = mid // 3, mid - mid // 3
        cut = _wrap_label(f"{text[:head]}\u2026{text[len(text) - tail :]}", font, room)
        lo, hi = (mid, hi) if len(cut) <= MONTAGE_LINES else (lo, mid - 1)
        if lo == hi:
            head, tail = lo // 3, lo - lo // 3
            text = f"{text[:head]}\u2026{text[len(text) - tail :]}"
            lines = _wrap_label(text, font, room)[:MONTAGE_LINES]
    return tuple(lines)


def _wrap_label(text: str, font: _Font, room: int) -> list[str]:
    """Wrap at spaces; break a word too long, after one of ``:,=_-.`` if it can."""
    fits: Any = lambda s: font.getlength(s) <= room  # noqa: E731
    lines: list[str] = []
    for word in text.split():
        if lines and fits(f"{lines[-1]} {word}"):
            lines[-1] += f" {word}"
            continue
        while not fits(word) and len(word) > 1:
            cut = max(n for n in range(1, len(word)) if n == 1 or fits(word[:n]))
            breaks = [n + 1 for n in range(cut - 1) if word[n] in ":,=_-."]
            cut = breaks[-1] if breaks and breaks[-1] > cut // 2 else cut
            lines.append(word[:cut])
            word = word[cut:]
        lines.append(word)
    return lines


def _tile_image(arr: npt.NDArray[Any]) -> Image.Image:
    """One tile as 8-bit RGB: 16-bit scaled down, float rescaled."""
    if arr.dtype == np.uint16:
        arr = (arr.astype(np.uint32) * 255 // 65535).astype(np.uint8)
    elif arr.dtype != np.uint8:
        arr = to_pixels(arr, "rescale", 255, np.dtype(np.uint8))
    img = Image.fromarray(
        np.ascontiguousarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)
    )
    return img.convert("RGB")
