"""TIFF read and written a band of rows at a time, for images bigger than memory.

`TiffRows` reads rows of a tiled or striped TIFF's first page, decoding only
the tiles or strips those rows lie in (tifffile decodes each one). `write_tiled`
writes bands of rows, as `convcli.core.stream.stream_conv2d` yields them, into
a tiled BigTIFF, through a temporary file renamed into place when whole. With
both, memory is set by a band and a row of tiles, never by the image.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from convcli.atomic import create_temporary, finish, temporary_name
from convcli.errors import ConvcliError, shown


class StreamError(ConvcliError, ValueError):
    """A TIFF that cannot be streamed: names the file and the reason."""


class TiffRows:
    """Rows of a TIFF's first page, decoded tile by tile (or strip by strip) on demand.

    Use as a context manager; `read` is the ``read_rows`` of `stream_conv2d`.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import tifffile

        self.path = Path(path)
        try:
            self._file = tifffile.TiffFile(self.path)
        except (OSError, ValueError, tifffile.TiffFileError) as err:
            msg = f"{shown(self.path)}: cannot read as TIFF: {err}"
            raise StreamError(msg) from None
        page = self._file.pages.first  # a TiffPage, never a lighter TiffFrame
        if page.planarconfig != 1 and page.samplesperpixel > 1:
            self._file.close()
            msg = f"{shown(self.path)}: planar (separate) TIFF samples are not streamed"
            raise StreamError(msg)
        self._page = page
        shape = tuple(int(n) for n in page.shape)
        self.shape: tuple[int, int, int] = (
            (shape[0], shape[1], 1)
            if len(shape) == 2
            else (shape[0], shape[1], shape[2])
        )
        self.dtype = np.dtype(page.dtype)
        height, width, _ = self.shape
        if page.is_tiled:
            self._seg_rows, self._seg_cols = int(page.tilelength), int(page.tilewidth)
        else:
            rows = int(page.rowsperstrip) or height
            self._seg_rows, self._seg_cols = min(rows, height), width
        self._across = math.ceil(width / self._seg_cols)

    def __enter__(self) -> TiffRows:
        """Return the reader itself; the file closes at the block's end."""
        return self

    def __exit__(self, *_: object) -> None:
        """Close the file."""
        self.close()

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def read(self, first: int, stop: int) -> npt.NDArray[Any]:
        """Return rows ``first..stop-1`` as (rows, W, C), decoding only their segments."""
        height, width, channels = self.shape
        if not 0 <= first < stop <= height:
            msg = f"rows {first}..{stop} are outside the image's {height} rows"
            raise ValueError(msg)
        out = np.zeros((stop - first, width, channels), dtype=self.dtype)
        page, fh = self._page, self._file.filehandle
        for seg_row in range(first // self._seg_rows, (stop - 1) // self._seg_rows + 1):
            for seg_col in range(self._across):
                index = seg_row * self._across + seg_col
                count = int(page.databytecounts[index])
                if not count:  # a segment never written holds zeros
                    continue
                fh.seek(int(page.dataoffsets[index]))
                data = fh.read(count)
                segment, where, _ = page.decode(data, index, jpegtables=page.jpegtables)
                if segment is None:
                    continue
                block = np.asarray(segment).reshape(
                    segment.shape[-3], segment.shape[-2], -1
                )
                y, x = int(where[-3]), int(where[-2])
                r0, r1 = max(y, first), min(y + block.shape[0], stop)
                c1 = min(x + block.shape[1], width)
                out[r0 - first : r1 - first, x:c1] = block[r0 - y : r1 - y, : c1 - x]
        return out


def write_tiled(
    path: str | os.PathLike[str],
    shape: tuple[int, int, int],
    dtype: npt.DTypeLike,
    bands: Iterable[tuple[int, npt.NDArray[Any]]],
    *,
    tile: int = 256,
) -> Path:
    """Write bands of rows ``(first row, rows)`` into a tiled BigTIFF, atomically.

    The bands must come in order and cover ``shape``'s rows. The file goes
    to a temporary name beside ``path`` and is renamed when whole; any error
    or stop removes it.
    """
    import tifffile

    p = Path(path)
    height, width, channels = shape
    kind = np.dtype(dtype)

    def tiles() -> Iterator[npt.NDArray[Any]]:
        pending = np.zeros((0, width, channels), dtype=kind)
        expected = 0
        for first, rows in bands:
            if first != expected:
                msg = f"bands out of order: row {first} came where {expected} was due"
                raise ValueError(msg)
            expected = first + rows.shape[0]
            pending = np.concatenate([pending, rows.astype(kind, copy=False)])
            while pending.shape[0] >= tile or (expected == height and pending.size):
                strip, pending = pending[:tile], pending[tile:]
                yield from _cut(strip, tile)
        if expected != height:
            msg = f"the bands cover {expected} of {height} rows"
            raise ValueError(msg)

    photometric = "rgb" if channels in (3, 4) else "minisblack"
    extra = ("unassalpha",) if channels in (2, 4) else None
    data_shape = (height, width, channels) if channels > 1 else (height, width)
    tmp = temporary_name(p)
    try:
        os.close(create_temporary(tmp))
        with tifffile.TiffWriter(tmp, bigtiff=True) as writer:
            writer.write(
                data=tiles(),
                shape=data_shape,
                dtype=kind,
                tile=(tile, tile),
                photometric=photometric,
                extrasamples=extra,
                compression="zlib",
            )
        finish(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p


def _cut(strip: npt.NDArray[Any], tile: int) -> Iterator[npt.NDArray[Any]]:
    """Yield one row of ``tile``-square tiles from ``strip`` (zeros past its edges)."""
    rows, width, channels = strip.shape
    for x in range(0, width, tile):
        block = np.zeros((tile, tile, channels), dtype=strip.dtype)
        part = strip[:, x : x + tile]
        block[:rows, : part.shape[1]] = part
        yield block if channels > 1 else block[:, :, 0]
