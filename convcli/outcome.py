"""What one (image, kernel) pair did: its outputs, shapes, method and times.

`ApplyResult` is what `convcli.pipeline.apply_one` (and the streamed path,
`convcli.streaming`) returns, and what the CLI shows and ``--json`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from convcli import core, images
from convcli.kernels import Kernel
from convcli.plan import ApplyOptions


@dataclass(frozen=True)
class Output:
    """One written image: its path, shape (H', W', C) and the filter it holds."""

    path: Path
    shape: tuple[int, int, int]
    filter: str | None = None
    frames: int = 1


@dataclass(frozen=True)
class ApplyResult:
    """Everything about one (image, kernel) run that the CLI shows."""

    input: Path
    input_shape: tuple[int, int, int]
    kernel: Kernel
    kernel_shape: tuple[int, ...]
    method: str
    reason: str
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]
    dilation: tuple[int, int]
    border: str
    formula: str
    outputs: list[Output] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    costs: dict[str, float] = field(default_factory=dict)
    frames: int = 1  # of an animation, every one filtered
    notes: tuple[str, ...] = ()  # what was lost on the way (16-bit read as 8-bit)
    like: str | None = None  # the --like library that set flip, border, anchor, range
    chain: tuple[tuple[str, tuple[int, int, int]], ...] = ()  # --chain's steps, sizes
    bands: tuple[int, int] | None = None  # streamed: (bands, output rows per band)


def result(
    header: images.Header,
    in_shape: tuple[int, int, int],
    kernel: Kernel,
    explanation: core.Explanation,
    outputs: list[Output],
    seconds: dict[str, float],
    options: ApplyOptions,
) -> ApplyResult:
    """Gather what the CLI shows of one pair, with the output-size formula filled in."""
    kh, kw = kernel.size
    top, bottom, left, right = explanation.padding
    (sh, sw), (dh, dw) = explanation.stride, explanation.dilation
    out_h, out_w = explanation.output_shape[:2]
    formula = (
        f"H' = floor(({in_shape[0]} + {top} + {bottom} - {dh}*({kh}-1) - 1) / {sh}) + 1 = {out_h}; "
        f"W' = floor(({in_shape[1]} + {left} + {right} - {dw}*({kw}-1) - 1) / {sw}) + 1 = {out_w}"
    )
    return ApplyResult(
        input=header.path,
        input_shape=in_shape,
        kernel=kernel,
        kernel_shape=tuple(int(s) for s in kernel.weights.shape),
        method=explanation.method,
        reason=explanation.reason,
        stride=explanation.stride,
        padding=explanation.padding,
        dilation=explanation.dilation,
        border=explanation.border,
        formula=formula,
        outputs=outputs,
        seconds=seconds,
        costs=dict(explanation.costs),
        notes=header.notes,
        like=options.like,
    )
