"""Images in memory, with numpy only: the decoded picture and its pixel values.

`Picture` is what `convcli.images` (Pillow) and `convcli.deep_images` (16-bit
colour) decode a file into: pixels (H, W, C) and alpha apart. Here too are what
turns it into output pixels (`convert_channels`, `to_pixels`), the error
reading or writing an image raises (`ImageError`), and how messages show a
path (`shown`). No file is opened here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from convcli.errors import ConvcliError
from convcli.names import CHANNELS, RANGES

BOOST = 4.0
"""How many times ``offset`` and ``gain`` magnify ``value / gain``: a quarter of
the kernel's largest possible response is full scale. That response needs
black and white pixels laid out as the kernel's signs (a checkerboard for the
Laplacian); in photographs the strongest 1 % of responses reach a sixth to a
half of it and half of all pixels less than a fortieth, so without the boost
a Laplacian is a flat grey and a Sobel a dark one. With it a black-to-white
step edge is white under ``sobel``."""


class ImageError(ConvcliError, ValueError):
    """An image that cannot be read or written: names the file and the reason."""


@dataclass(eq=False)
class Picture:
    """A decoded image.

    Attributes
    ----------
    pixels : ndarray, shape (H, W, C)
        C is 1 (gray) or 3 (RGB); uint8, uint16 (16-bit gray or colour),
        int32 (mode I) or float32 (mode F).
    alpha : ndarray of shape (H, W), or None
        The alpha channel, same dtype as ``pixels``.
    mode : str
        Pillow's mode of the file as read.
    peak : float
        The largest pixel value of the type (255, 65535), or 1.0 for float images.
    icc_profile : bytes or None
        Carried to the output where its format holds one.
    duration : float or None
        How long an animation's frame shows, in milliseconds (None: not a
        frame of an animation, or the file does not say).
    """

    pixels: npt.NDArray[Any]
    alpha: npt.NDArray[Any] | None
    mode: str
    peak: float
    icc_profile: bytes | None = None
    duration: float | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """(H, W, C) of the colour channels."""
        h, w, c = self.pixels.shape
        return int(h), int(w), int(c)


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
    values: npt.NDArray[Any],
    range_: str,
    peak: float,
    dtype: np.dtype[Any],
    *,
    overwrite: bool = False,
    bounds: tuple[float, float] | None = None,
    gain: float | None = None,
) -> npt.NDArray[Any]:
    """Map float results onto pixel values of ``dtype`` (0..peak).

    ``clip`` rounds and clips; ``abs`` takes magnitudes first; ``rescale`` maps
    the map's min..max (0..max when no value is negative: `rescale_bounds`),
    or ``bounds`` if given (an animation's, over all its frames), onto
    0..peak; a map of one value maps to 0 if it is 0 or negative, else to
    peak. ``offset`` and ``gain`` scale by the kernel, never the image:
    ``gain`` is the largest absolute value the kernel can give (`Kernel.gains`,
    in the units of ``values``) and `BOOST` times ``values / gain`` is the
    fraction of full scale. ``offset`` puts 0 at mid-grey, ``peak/2 +
    (peak/2) * BOOST * values / gain`` (128 in 8 bits, 32768 in 16); ``gain``
    puts 0 at black, ``peak * BOOST * values / gain``. Halves round up, then
    clip. Float dtypes get the values as they are (``--float``). With
    ``overwrite``, a writable float32 ``values`` is used as the scratch array
    (a 4K RGB map is 100 MB) and left holding garbage.

    Examples
    --------
    >>> to_pixels(np.array([-10.0, 100.5, 300.0]), "clip", 255, np.dtype(np.uint8))
    array([  0, 101, 255], dtype=uint8)
    >>> to_pixels(np.array([-2.0, 0.0, 2.0]), "rescale", 255, np.dtype(np.uint8))
    array([  0, 128, 255], dtype=uint8)
    >>> to_pixels(np.array([-1.0, 0.0, 0.5]), "offset", 255, np.dtype(np.uint8), gain=4.0)
    array([  0, 128, 191], dtype=uint8)
    >>> to_pixels(np.array([0.0, 0.5, 2.0]), "gain", 255, np.dtype(np.uint8), gain=4.0)
    array([  0, 128, 255], dtype=uint8)
    """
    if range_ not in RANGES:
        msg = f"range must be one of {', '.join(RANGES)}; got {range_!r}"
        raise ImageError(msg)
    if dtype.kind == "f":
        return values.astype(dtype, copy=not overwrite)
    if range_ in ("offset", "gain") and gain is None:
        msg = f"range {range_} scales by the kernel's gain; none was given"
        raise ImageError(msg)
    # One float32 copy (or none), then in place: a 4K RGB map is 100 MB per pass.
    if overwrite and values.dtype == np.float32 and values.flags.writeable:
        v = values
    else:
        v = np.array(values, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):  # to +-inf, then clipped
        _map_in_place(v, range_, peak, bounds, gain)
    return v.astype(dtype)


def rescale_bounds(values: npt.NDArray[Any]) -> tuple[float, float]:
    """Return the range ``rescale`` maps onto 0..peak: the finite min (0 if higher) and max.

    NaN counts as 0, as `to_pixels` maps it; infinities are left out.

    Examples
    --------
    >>> rescale_bounds(np.array([2.0, np.inf, 5.0]))
    (0.0, 5.0)
    """
    finite = np.isfinite(values)
    if not finite.any():
        return 0.0, 0.0
    lo = float(values.min(where=finite, initial=np.inf))
    hi = float(values.max(where=finite, initial=-np.inf))
    if not finite.all() and np.isnan(values).any():
        hi = max(hi, 0.0)
    return min(lo, 0.0), hi  # no negative value: a magnitude, mapped from 0


def _map_in_place(
    v: npt.NDArray[np.float32],
    range_: str,
    peak: float,
    bounds: tuple[float, float] | None,
    gain: float | None = None,
) -> None:
    """Map float32 values onto 0..peak, rounded, in place (see `to_pixels`)."""
    if not np.isfinite(v).all():
        np.nan_to_num(v, copy=False, nan=0.0, posinf=np.inf, neginf=-np.inf)
    if range_ == "abs":
        np.abs(v, out=v)
    elif range_ == "rescale":
        lo, hi = rescale_bounds(v) if bounds is None else bounds
        if hi > lo:
            v -= np.float32(lo)
            v *= np.float32(peak / (hi - lo))
        else:
            v.fill(0)
    elif range_ in ("offset", "gain"):
        # A kernel of zeros (gain 0) or of overflowing weights gives no scale:
        # every value maps to the zero point.
        usable = gain is not None and 0 < gain < np.inf
        full = peak / 2 if range_ == "offset" else peak
        v *= np.float32(full * BOOST / gain if usable and gain else 0.0)
        if range_ == "offset":
            v += np.float32(peak / 2)
    v += np.float32(0.5)
    np.floor(v, out=v)
    np.clip(v, 0, peak, out=v)  # also takes +-inf to the ends
