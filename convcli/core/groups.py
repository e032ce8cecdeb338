"""Grouped convolution: a call with ``groups > 1`` runs as one call per group.

With ``groups=G`` (PyTorch's) the C channels and the D filters are split into
G groups, and filter d reads only the channels of its group,
``d // (D // G)``. Each group is an ordinary bank call on a slice of the
channels (a view, never copied up front) whose output maps fill a slice of
the one output: every method and its tiles, threads and screening run
unchanged, and a call with ``groups=1`` never comes here. (A small depthwise
call by the direct method runs all channels at once instead:
`convcli.core.direct._direct_per_channel`.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from convcli.core.geometry import FloatArray, _Call


def _group_calls(call: _Call) -> list[tuple[slice, _Call]]:
    """Split a grouped call into one call per group, with the output maps each fills.

    A group of one channel and one filter (depthwise) becomes a 2-D kernel
    call, which the direct method runs as shift-and-accumulate instead of a
    one-column GEMM. The groups' calls carry no bias and keep the compute
    dtype: the caller adds the bias and rounds once, on the whole output.
    """
    g = call.geometry
    height, width, channels = g.in_shape
    n = call.groups
    per_in, per_out = channels // n, call.w.shape[0] // n
    geometry = dataclasses.replace(g, in_shape=(height, width, per_in))
    calls = []
    for i in range(n):
        w = call.w[i * per_out : (i + 1) * per_out]
        depthwise = per_in == 1 and per_out == 1
        sub = dataclasses.replace(
            call,
            x=call.x[:, :, i * per_in : (i + 1) * per_in],
            w=w[0, 0] if depthwise else w,
            bank=not depthwise,
            squeeze=False,
            geometry=geometry,
            bias=None,
            out_dtype=None,
            groups=1,
        )
        calls.append((slice(i * per_out, (i + 1) * per_out), sub))
    return calls


def _run_groups(
    call: _Call,
    runner: Callable[[_Call, FloatArray, int], None],
    out: FloatArray,
    workers: int,
) -> None:
    """Fill ``out`` (H', W', D) group by group with ``runner`` (one method).

    A method writes into a contiguous array (a GEMM's output is a reshaped
    view of it), so each group fills one scratch array, copied into its maps.
    """
    part: FloatArray | None = None
    for maps, sub in _group_calls(call):
        if part is None:
            part = np.empty((*call.geometry.out_shape, sub.n_maps), call.dtype)
        runner(sub, part, workers)
        out[:, :, maps] = part
