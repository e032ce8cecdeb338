"""How method="auto" chooses: the cost model, `explain` and its `Explanation`."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from convcli.core.direct import _per_channel_pays
from convcli.core.fft import _fft_size
from convcli.core.geometry import (
    IntPair,
    Method,
    Padding,
    _array_key,
    _Call,
    _check_call,
    _memo,
)
from convcli.core.groups import _group_calls
from convcli.core.separable import _separable_costs, kernel_rank
from convcli.names import METHODS

# Cost model of method="auto": nanoseconds per output value of one 2-D
# correlation, a fixed part (gathering, storing, loop overhead) plus a part per
# unit of work. Fitted by least squares on this machine by bench/calibrate.py
# (float32, default threads); only their ratios matter for the choice.
_NS_DIRECT = (1.92, 0.192)  # + per kernel tap
_NS_FFT = (4.0, 0.300)  # + per point of N*log2(N) per transform, per output
# A bank's direct method, per output pixel and weight of one filter (taps x C):
# copying one value into the im2col buffer, and one multiply-add of the GEMM
# per filter (its gathering is part of the copy, so there is no fixed part).
_NS_BANK = (0.340, 0.00803)


@dataclass(frozen=True)
class Explanation:
    """Which method ``conv2d(method="auto")`` picks for a call, and why.

    Attributes
    ----------
    method : str
        The method that runs: ``"direct"``, ``"separable"`` or ``"fft"``.
    reason : str
        One sentence a user can read.
    taps : int
        Weights per filter and channel (kh * kw).
    rank : int
        The largest numerical rank of a 2-D kernel slice; 1 means separable.
    output_shape : tuple of int
        Shape of the result.
    costs : dict
        Estimated milliseconds of each method under the cost model.
    padding : tuple of int
        The padding as resolved: (top, bottom, left, right).
    stride, dilation : tuple of int
        As resolved: (rows, columns).
    border : str
        The border mode, aliases resolved.
    """

    method: str
    reason: str
    taps: int
    rank: int
    output_shape: tuple[int, ...]
    costs: dict[str, float] = field(default_factory=dict)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    border: str = "constant"


def _estimate(call: _Call, rank_: int) -> dict[str, float]:
    """Estimated milliseconds of each method for ``call``, on one thread."""
    g = call.geometry
    (kh, kw), (sh, sw) = g.kernel, g.stride
    ext_h, ext_w = g.extent
    out_px = g.out_shape[0] * g.out_shape[1]
    channels = g.in_shape[2]
    maps = call.w.shape[0] if call.bank else channels
    pairs = maps * channels if call.bank else channels  # 2-D correlations to do
    taps = (
        kh * kw if call.bank else int(np.count_nonzero(call.w))
    )  # zero taps are skipped
    costs: dict[str, float] = {}
    if call.bank:
        costs["direct"] = (
            out_px * kh * kw * channels * (_NS_BANK[0] + maps * _NS_BANK[1])
        )
    else:
        costs["direct"] = out_px * pairs * (_NS_DIRECT[0] + taps * _NS_DIRECT[1])
    costs["separable"] = pairs * min(_separable_costs(call, rank_).values())
    n_h = _fft_size(ext_h, (g.out_shape[0] - 1) * sh + 1)
    n_w = _fft_size(ext_w, (g.out_shape[1] - 1) * sw + 1)
    useful = max(n_h - ext_h + 1, 1) * max(n_w - ext_w + 1, 1)
    points = n_h * n_w * math.log2(n_h * n_w) / useful  # per transform, per output
    full_px = ((g.out_shape[0] - 1) * sh + 1) * ((g.out_shape[1] - 1) * sw + 1)
    transforms = channels + maps + (pairs if call.bank else 0) / 4
    costs["fft"] = full_px * (_NS_FFT[0] * maps + _NS_FFT[1] * points * transforms)
    if call.x.dtype.kind == "f":
        # Float images are screened for NaN, inf and extreme values (`_Screen`)
        # by every method but 2-D direct: one pass over the padded input, about
        # what one tap costs.
        rows_in = (g.out_shape[0] - 1) * sh + ext_h
        screen = rows_in * g.padded_width * channels * _NS_DIRECT[1]
        for name in ("separable", "fft", *(("direct",) if call.bank else ())):
            costs[name] += screen
    return {k: v / 1e6 for k, v in costs.items()}


_CHOICES: dict[tuple[Any, ...], Explanation] = {}


def _choose(call: _Call) -> Explanation:
    """Pick the method for ``call`` by the cost model, once per kernel and geometry.

    Only what the model reads is in the key (the padding value ``cval`` is
    not). An FFT's choice is the one part that depends on the pixels: NaN or
    inf in ``x`` rule it out, checked on every call.
    """
    g = call.geometry
    wkey = _array_key(call.w)
    key = (
        None
        if wkey is None
        else (
            wkey,
            call.bank,
            call.squeeze,
            call.x.dtype.kind,
            g.in_shape,
            g.kernel,
            g.stride,
            g.dilation,
            g.pads,
            g.border,
            call.groups,
        )
    )
    choice = _memo(_CHOICES, key, lambda: _choose_by_cost(call))
    if choice.method == "fft" and not np.isfinite(call.x).all():
        best = min(("direct", "separable"), key=choice.costs.__getitem__)
        reason = (
            "x holds NaN or inf, whose windows an FFT would have to recompute "
            f"tap by tap; {best} keeps them where they are"
        )
        return dataclasses.replace(choice, method=best, reason=reason)
    return choice


def _grouped_estimate(call: _Call) -> dict[str, float]:
    """Estimated milliseconds of each method for a grouped call: its groups' sum.

    Every group runs the one method chosen for the call.
    """
    costs: dict[str, float] = {}
    for _, sub in _group_calls(call):
        for name, ms in _estimate(sub, kernel_rank(sub.w)).items():
            costs[name] = costs.get(name, 0.0) + ms
    return costs


def _choose_by_cost(call: _Call) -> Explanation:
    g = call.geometry
    rank_ = kernel_rank(call.w)
    costs = _estimate(call, rank_) if call.groups == 1 else _grouped_estimate(call)
    best = min(costs, key=costs.__getitem__)
    taps = g.kernel[0] * g.kernel[1]
    shape = _result_shape(call)
    if best == "separable":
        reason = (
            f"the {g.kernel[0]}x{g.kernel[1]} kernel has rank {rank_}: "
            f"{rank_} x ({g.kernel[0]}+{g.kernel[1]}) 1-D taps cost less than {taps} 2-D taps"
        )
    elif best == "fft":
        reason = (
            f"{taps} taps per output value cost more than tiled FFTs "
            f"(about {costs['fft']:.3g} ms against {costs['direct']:.3g} ms direct)"
        )
    else:
        reason = f"{taps} taps are cheapest as shift-and-accumulate"
        if rank_ == 1 and taps > 1:
            reason += " (rank 1, but too few taps to gain from two passes)"
    if call.groups > 1:
        channels, depth = g.in_shape[2], call.w.shape[0]
        at_once = best == "direct" and _per_channel_pays(call)
        reason = (
            f"{call.groups} groups of {channels // call.groups} input and "
            f"{depth // call.groups} output maps each, "
            f"{'all channels at once' if at_once else 'run one by one'}: {reason}"
        )
    return Explanation(
        best,
        reason,
        taps,
        rank_,
        shape,
        costs,
        padding=g.pads,
        stride=g.stride,
        dilation=g.dilation,
        border=g.border,
    )


def _result_shape(call: _Call) -> tuple[int, ...]:
    out_h, out_w = call.geometry.out_shape
    if call.squeeze:
        return (out_h, out_w)
    return (out_h, out_w, call.n_maps)


def explain(
    x: npt.ArrayLike,
    w: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    *,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    border: str = "constant",
    cval: float = 0.0,
    flip: bool = False,
    method: Method = "auto",
    groups: int = 1,
) -> Explanation:
    """Say which method `conv2d` runs for these arguments, and why.

    Takes the same arguments as `conv2d` and checks them the same way, but
    computes nothing. With ``method="auto"`` the answer comes from the cost model
    (kernel taps, numerical rank, image and tile sizes, constants measured by
    ``bench/calibrate.py``); with another method, that method is reported.

    Returns
    -------
    Explanation
        The method, a one-sentence reason, taps, rank, the output shape and the
        estimated milliseconds of every method.

    Examples
    --------
    >>> explain(np.zeros((512, 512)), np.ones((3, 3))).method
    'separable'
    >>> explain(np.zeros((512, 512)), np.random.default_rng(0).random((31, 31))).method
    'fft'
    >>> e = explain(np.zeros((64, 64, 8)), np.ones((8, 1, 3, 3)), groups=8)
    >>> e.method, e.reason.split(":")[0]
    ('separable', '8 groups of 1 input and 1 output maps each, run one by one')
    """
    call = _check_call(
        x, w, bias, stride, padding, dilation, border, cval, flip, groups
    )
    return _explain_call(call, method)


def _explain_call(call: _Call, method: object) -> Explanation:
    if method not in METHODS:
        msg = f"method must be one of {', '.join(METHODS)}; got {method!r}"
        raise ValueError(msg)
    choice = _choose(call)
    choice = dataclasses.replace(choice, costs=dict(choice.costs))  # the caller's own
    if method == "auto":
        return choice
    return dataclasses.replace(
        choice, method=str(method), reason=f"method={method!r} was requested"
    )
