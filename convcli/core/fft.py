"""The fft method: overlap-save over row and column tiles with real FFTs."""

from __future__ import annotations

import numpy as np

from convcli.core.geometry import FloatArray, _Call, _check_size
from convcli.core.screen import _Screen
from convcli.core.tiles import _Gatherer, _run_tiles, _workspace

# Smallest FFT tile side; see _fft_size.
_FFT_MIN = 96
# Bytes of complex spectra one FFT call of the fft method holds.
_FFT_BATCH_BYTES = 4 << 20


def _fft_size(extent: int, limit: int) -> int:
    """FFT length for one axis: about four kernel extents, an even 5-smooth number.

    Tiles of 96 to 256 points measured fastest per useful output on this machine
    (bench/calibrate.py): smaller ones waste the ``extent - 1`` overlap, larger
    ones leave the cache. A tile never exceeds what the whole axis needs, nor
    about four kernel extents.
    """
    return _next_smooth(min(max(4 * extent, _FFT_MIN), limit + extent - 1))


def _next_smooth(n: int) -> int:
    """Return the smallest ``2**a * 3**b * 5**c >= n`` that is even or at most 16.

    Enumerates the products of powers of 3 and 5 below ``2 * n`` (a power of
    two always lies in ``[n, 2n)``) and gives each the least power of two that
    reaches ``n``: ``O(log(n)**2)`` steps for any ``n``, where counting up one
    by one to the next smooth number took forever on absurd sizes.
    """
    best = 1 << max(n - 1, 0).bit_length()  # the power of two in [n, 2n)
    odd5 = 1
    while odd5 < best:
        odd = odd5
        while odd < best:
            shift = max(-(-n // odd) - 1, 0).bit_length()  # least 2**k: odd*2**k >= n
            if shift == 0 and odd > 16:
                shift = 1  # tiles above 16 points are even
            best = min(best, odd << shift)
            odd *= 3
        odd5 *= 5
    return best


def _fft(call: _Call, out: FloatArray, workers: int) -> None:
    g = call.geometry
    (kh, kw), (sh, sw), (dh, dw) = g.kernel, g.stride, g.dilation
    out_h, out_w = g.out_shape
    channels = g.in_shape[2]
    ext_h, ext_w = g.extent
    # Stride-1 outputs a tile computes, rounded to whole strides so the kept
    # positions fall on the same place in every tile.
    full_h = (out_h - 1) * sh + 1
    full_w = (out_w - 1) * sw + 1
    n_h = _fft_size(ext_h, full_h)
    n_w = _fft_size(ext_w, full_w)
    # Output rows per tile: the kept positions 0, sh, 2*sh, ... that the tile's
    # valid outputs (0 to n_h - ext_h) hold; at least one, whatever the stride.
    rows_out = (n_h - ext_h) // sh + 1
    cols_out = (n_w - ext_w) // sw + 1
    step_w = cols_out * sw  # padded columns from one column tile to the next
    maps = call.w.shape[0] if call.bank else 1
    _check_size(maps * channels * ext_h * ext_w, "the dilated kernel of fft", g)
    _check_size(maps * channels * n_h * n_w, "the kernel spectra of fft", g)
    # An FFT of N points sums N values (scaled by 1/sqrt(N) both ways): its
    # values stay within N**1.5 * sum|w| * max|x|, and it rounds about N times.
    screen = _Screen(call, float(n_h * n_w) ** 1.5, float(n_h * n_w))
    # Kernel spectra, conjugated: X * conj(K) is a correlation.
    if call.bank:
        k4 = call.w
    else:
        k4 = call.w[np.newaxis, np.newaxis]
    dilated = np.zeros((*k4.shape[:2], ext_h, ext_w), call.dtype)
    dilated[:, :, ::dh, ::dw] = k4
    # numpy's pocketfft runs 3-7x slower on float32 when it need not scale
    # (norm="backward" forward, norm="forward" inverse), so the tiles use
    # norm="ortho" both ways and the kernel's spectrum stays unscaled.
    spectra = np.conj(np.fft.rfft2(dilated.astype(np.float64), s=(n_h, n_w)))
    spectra = spectra.astype(
        np.complex128 if call.dtype == np.float64 else np.complex64
    )
    n_col_tiles = -(-out_w // cols_out)
    width = (n_col_tiles - 1) * step_w + n_w  # padded columns a band needs
    n_tiles = -(-out_h // rows_out)
    gather = _Gatherer(call.x, g)
    n_maps = out.shape[2]
    padded_rows = (out_h - 1) * sh + ext_h

    # Column tiles per FFT call: enough to amortize the call, few enough that the
    # spectra of one batch stay a few MiB whatever the image width.
    batch = max(1, _FFT_BATCH_BYTES // (max(channels, n_maps) * n_h * n_w * 8))

    def work(start: int, stop: int) -> None:
        band = _workspace("band", (n_h, width, channels), call.dtype)
        band[:, g.padded_width :] = 0  # never gathered into: beyond the input
        planes = _workspace("planes", (channels, n_h, width), call.dtype)
        for t in range(start, stop):
            r0 = t * rows_out
            rows = min(rows_out, out_h - r0)
            n_in = min(n_h, padded_rows - r0 * sh)
            band[n_in:] = 0
            src = band[:n_in, : g.padded_width]
            gather.fill(r0 * sh, src)
            patch = screen.check(src, rows)
            # Channels apart, so every FFT reads contiguous rows.
            planes_or_band = band[:, :, 0] if channels == 1 else planes
            if channels > 1:
                np.copyto(planes, band.transpose(2, 0, 1))
            for j0 in range(0, n_col_tiles, batch):
                j1 = min(j0 + batch, n_col_tiles)
                _fft_batch(planes_or_band, j0, j1, rows, r0)
            if patch is not None:
                patch.apply(out, r0)

    def _fft_batch(src: FloatArray, j0: int, j1: int, rows: int, r0: int) -> None:
        # Column tiles j0..j1 as a strided view (tiles, C, n_h, n_w).
        base = src[..., j0 * step_w :]
        tiles = np.lib.stride_tricks.as_strided(
            base,
            shape=(j1 - j0, channels, n_h, n_w),
            strides=(
                # One column tile (a stride wider than the image) has no step.
                step_w * src.strides[-1] if n_col_tiles > 1 else 0,
                src.strides[0] if channels > 1 else 0,
                *src.strides[-2:],
            ),
            writeable=False,
        )
        spec = np.fft.rfft2(tiles, norm="ortho")  # (tiles, C, n_h, n_w//2+1)
        if call.bank:
            prod = spec[:, 0, None] * spectra[None, :, 0]
            for c in range(1, channels):
                prod += spec[:, c, None] * spectra[None, :, c]
        else:
            prod = spec
            prod *= spectra[0, 0]
        res = np.fft.irfft2(prod, s=(n_h, n_w), norm="ortho")  # (tiles, maps, n_h, n_w)
        # Kept outputs, as (rows, tiles, cols_out, maps), straight into `out`.
        kept = res[:, :, : rows * sh : sh, :step_w:sw].transpose(2, 0, 3, 1)
        c0 = j0 * cols_out
        c1 = min(j1 * cols_out, out_w)
        dest = out[r0 : r0 + rows, c0:c1]
        whole = (c1 - c0) // cols_out
        dest[:, : whole * cols_out].reshape(rows, whole, cols_out, n_maps)[...] = kept[
            :, :whole
        ]
        rest = (c1 - c0) - whole * cols_out
        if rest:
            dest[:, whole * cols_out :] = kept[:, whole, :rest]

    macs = out.size * kh * kw
    _run_tiles(n_tiles, work, workers, macs)
