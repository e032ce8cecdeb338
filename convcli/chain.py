"""``--chain``: the kernels run in order on each image, as one kernel. Prints nothing.

`chain_kernel` joins the kernels into one `Kernel` whose ``steps`` are
them, in order, and whose other fields are the last step's: its range (the
one mapping to pixels, at the end), its bank's maps and combine, its gains.
So the plan, the names and the run take a chain as they take one kernel:
`convcli.plan.check_pair` checks each step on the size before it
(`check_chain`), `convcli.naming.kernel_tag` names it ``blur+sobel``, and
`convcli.pipeline.filter_maps` runs it (`filter_chain`): each step on the
previous one's float32 map, no rounding or range mapping in between.

The geometry options (stride, padding, dilation, border, cval, flip) apply
to every step. A bank with ``combine: stack`` (one output per filter), or
a bank over the image's channels, may only be the last step. An image
with alpha keeps its alpha through a chain whose every step keeps the size
(``--alpha carry``); a chain that changes the size, or ``--alpha
premultiply``, is refused for it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from convcli.errors import ConvcliError
from convcli.kernel_value import Kernel

if TYPE_CHECKING:
    from convcli import core

FloatArray = npt.NDArray[np.floating[Any]]
Maps = tuple[Iterator[tuple[str | None, FloatArray]], "core.Explanation"]


class Options(Protocol):
    """What this module reads of `convcli.plan.ApplyOptions` (which uses it)."""

    @property
    def chain(self) -> bool: ...  # noqa: D102
    @property
    def like(self) -> str | None: ...  # noqa: D102
    @property
    def alpha(self) -> str: ...  # noqa: D102


OptionsT = TypeVar("OptionsT", bound=Options)


def chain_kernel(kernels: Sequence[Kernel]) -> Kernel:
    """Return the kernels, in order, as one kernel (one kernel: itself).

    Raises
    ------
    ConvcliError
        A bank with ``combine: stack``, or a bank over the channels, that is
        not the last step.

    Examples
    --------
    >>> from convcli.kernels import load_kernel
    >>> chain_kernel([load_kernel("box"), load_kernel("sobel")]).name
    'box+sobel'
    """
    if len(kernels) == 1:
        return kernels[0]
    for step in kernels[:-1]:
        if step.is_bank and (step.combine == "stack" or step.weights.shape[1] > 1):
            why = (
                "combine: stack (one output per filter)"
                if step.combine == "stack"
                else f"over {step.weights.shape[1]} channels"
            )
            msg = (
                f"--chain: kernel {step.name} is a bank with {why}; such a bank "
                "can only be the last step of a chain"
            )
            raise ConvcliError(msg)
    last = kernels[-1]
    return dataclasses.replace(
        last,
        name="+".join(k.name for k in kernels),
        description=" then ".join(k.name for k in kernels),
        source="chain",
        params={},
        steps=tuple(kernels),
    )


def chain_pairs(
    pairs: Sequence[tuple[Kernel, OptionsT]], options: OptionsT
) -> list[tuple[Kernel, OptionsT]]:
    """Return a run's (kernel, options) pairs as one chain if ``options.chain``, else as given.

    Raises
    ------
    ConvcliError
        ``--chain`` with ``--like`` (whose padding depends on each kernel),
        or a bank in the wrong place (`chain_kernel`).
    """
    if not options.chain or len(pairs) < 2:
        return list(pairs)
    if any(o.like for _, o in pairs):
        msg = "--chain does not take --like; give the chain's --border, --flip and --padding"
        raise ConvcliError(msg)
    return [(chain_kernel([k for k, _ in pairs]), options)]


def _last(kernel: Kernel) -> Kernel:
    """Return the chain's last step as the chain kernel holds it (a stacked bank's filter, say)."""
    return dataclasses.replace(kernel, steps=(), name=kernel.steps[-1].name)


def step_label(kernel: Kernel) -> str:
    """Return ``gaussian:sigma=2``: a kernel's name and its parameters other than 0."""
    params = ",".join(f"{k}={v:g}" for k, v in kernel.params.items() if v)
    return kernel.name + (f":{params}" if params else "")


def _out_channels(kernel: Kernel, channels: int) -> int:
    """Return the channels of a step's output: one map for a bank over the channels."""
    return 1 if kernel.is_bank and kernel.weights.shape[1] > 1 else channels


def check_chain(
    label: str,
    in_hw: tuple[int, int],
    channels: int,
    alpha: bool,
    kernel: Kernel,
    options: Options,
    check_pair: Callable[..., tuple[int, int]],
) -> tuple[int, int]:
    """Check every step of a chain on the size before it; return the last (H', W').

    ``check_pair`` is `convcli.plan.check_pair`, which checks one step (and
    calls this for a chain).

    Raises
    ------
    ConvcliError
        ``a.png x blur+sobel: step 2 (sobel): <why>``: a step whose window is
        larger than its padded input (the chain shrinks to nothing), sizes
        over the limit; an alpha the chain cannot carry.
    """
    hw = in_hw
    for i, step in enumerate(kernel.steps, 1):
        out_hw = check_pair(
            f"{label}: step {i} ({step.name})", hw, channels, alpha, step, options
        )
        if alpha and options.alpha == "premultiply":
            msg = f"{label}: --chain carries the alpha (--alpha carry); --alpha premultiply does not chain"
            raise ConvcliError(msg)
        if alpha and out_hw != hw:
            msg = (
                f"{label}: step {i} ({step.name}) turns {hw[0]} x {hw[1]} into "
                f"{out_hw[0]} x {out_hw[1]}, and --chain carries an alpha only through "
                "steps that keep the size; drop the alpha (--channels rgb or gray) "
                "or keep stride, padding and dilation at their defaults"
            )
            raise ConvcliError(msg)
        hw = out_hw
    return hw


def chain_shapes(
    in_shape: tuple[int, int, int],
    kernel: Kernel,
    options: Options,
    check_geometry: Callable[..., tuple[int, int]],
) -> tuple[tuple[str, tuple[int, int, int]], ...]:
    """Return each step of a chain with the (H, W, C) after it; empty for one kernel.

    ``check_geometry`` is `convcli.plan.check_geometry`.
    """
    shapes = []
    h, w, c = in_shape
    for step in kernel.steps:
        h, w = check_geometry((h, w), step, options)
        c = _out_channels(step, c)
        shapes.append((step_label(step), (h, w, c)))
    return tuple(shapes)


def filter_chain(
    pixels: FloatArray,
    kernel: Kernel,
    options: Options,
    filter_maps: Callable[..., Maps],
) -> Maps:
    """Run every step but the last to one float32 map, then return the last one's maps.

    ``filter_maps`` is `convcli.pipeline.filter_maps`, which runs one step
    (it calls this for a chain). The explanation is the last step's.
    """
    values = pixels
    for step in kernel.steps[:-1]:
        maps, _ = filter_maps(values, step, options)
        values = np.asarray(next(maps)[1], dtype=np.float32)
        del maps
    return filter_maps(values, _last(kernel), options)
