"""`convcli apply`: filter images with kernels, one output file per pair."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from convcli.cli.common import user_errors
from convcli.cli.options import (
    AUTO,
    CARRY,
    KEEP,
    REFLECT,
    AlphaOpt,
    BorderOpt,
    ChannelsOpt,
    CompressOpt,
    CvalOpt,
    DilationOpt,
    FlipOpt,
    FloatOpt,
    JsonOpt,
    KernelSpecs,
    LikeOpt,
    MaxPixelsOpt,
    MethodOpt,
    PaddingOpt,
    QualityOpt,
    RangeOpt,
    StrideOpt,
    apply_options,
)

if TYPE_CHECKING:
    from convcli.cli.options import Like
    from convcli.pipeline import ApplyOptions, ApplyResult

ImagesArg = Annotated[
    list[Path], typer.Argument(metavar="IMAGE...", help="Images to filter.")
]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="Output file (one input, one output) or folder."),
]
ExplainOpt = Annotated[
    bool, typer.Option("--explain", help="Say why each method was chosen.")
]
MontageOpt = Annotated[
    Path | None,
    typer.Option(
        help="Also tile every output (a bank's feature maps, say) into one labelled image."
    ),
]


def apply(
    images: ImagesArg,
    kernel: KernelSpecs,
    out: OutOpt = None,
    stride: StrideOpt = "1",
    padding: PaddingOpt = "same",
    dilation: DilationOpt = "1",
    border: BorderOpt = REFLECT,
    cval: CvalOpt = 0.0,
    flip: FlipOpt = False,
    value_range: RangeOpt = None,
    method: MethodOpt = AUTO,
    channels: ChannelsOpt = KEEP,
    float_output: FloatOpt = False,
    quality: QualityOpt = None,
    compress_level: CompressOpt = None,
    max_pixels: MaxPixelsOpt = None,
    as_json: JsonOpt = False,
    explain: ExplainOpt = False,
    alpha: AlphaOpt = CARRY,
    montage: MontageOpt = None,
    like_library: LikeOpt = None,
) -> None:
    """Filter each IMAGE with each KERNEL and write one output per pair.

    Outputs go beside each input as <stem>.<kernel><ext> (a bank with
    combine: stack writes one per filter), or into the folder -o names. An
    input is never overwritten. Defaults: padding same, border reflect, so
    the image keeps its size and its edges do not darken.
    """
    with user_errors():
        options = apply_options(
            stride,
            padding,
            dilation,
            border,
            cval,
            flip,
            value_range,
            method,
            channels,
            float_output,
            quality,
            compress_level,
            max_pixels,
            alpha,
        )
        results = _filter_all(images, kernel, options, out, like_library)
        if montage is not None:
            _write_montage(montage, results)
    if as_json:
        sys.stdout.write(json.dumps(_result_json(results), indent=2) + "\n")
        return
    _print_tables(results, explain=explain, montage=montage)


def _filter_all(
    images: list[Path],
    specs: list[str],
    options: ApplyOptions,
    out: Path | None,
    like_library: Like | None,
) -> list[ApplyResult]:
    """Load the kernels, check -o against the number of outputs, filter every pair."""
    from convcli.kernels import load_kernel
    from convcli.pipeline import apply_one, like

    kernels = [load_kernel(spec) for spec in specs]
    n_outputs = len(images) * len(kernels)
    if out is not None and n_outputs > 1 and out.suffix and not out.is_dir():
        msg = f"{out}: -o names one file, but there are {n_outputs} outputs; give a folder"
        raise ValueError(msg)
    if out is not None and (out.suffix == "" or n_outputs > 1):
        out.mkdir(parents=True, exist_ok=True)
    pairs = [(k, options) for k in kernels]
    if like_library is not None:
        pairs = [like(like_library.value, k, options) for k in kernels]
    return [apply_one(p, k, o, out) for p in images for k, o in pairs]


def _write_montage(path: Path, results: list[ApplyResult]) -> None:
    """Tile every output, labelled with its input, kernel and filter, into one image."""
    from convcli.images import load as load_image
    from convcli.images import montage as write_montage

    tiles = [
        (
            f"{r.input.stem} {r.kernel.name}" + (f" {o.filter}" if o.filter else ""),
            load_image(o.path).pixels,
        )
        for r in results
        for o in r.outputs
    ]
    write_montage(path, tiles)


def _print_tables(
    results: list[ApplyResult], *, explain: bool, montage: Path | None
) -> None:
    """Print one table per input and kernel, then where the montage went."""
    from convcli import render  # rich, only for the tables

    for result in results:
        render.console.print(render.apply_table(result, explain=explain))
    if montage is not None:
        render.console.print(
            f"montage of {sum(len(r.outputs) for r in results)} outputs: {montage}",
            markup=False,
        )


def _result_json(results: list[ApplyResult]) -> dict[str, Any]:
    """Return the ``--json`` document: each input with its outputs and how each was made."""
    inputs: dict[Path, dict[str, Any]] = {}
    for r in results:
        entry = inputs.setdefault(
            r.input, {"path": str(r.input), "shape": list(r.input_shape), "outputs": []}
        )
        for out in r.outputs:
            entry["outputs"].append(
                {
                    "path": str(out.path),
                    "shape": list(out.shape),
                    "kernel": r.kernel.name,
                    "kernel_shape": list(r.kernel_shape),
                    "filter": out.filter,
                    "method": r.method,
                    "stride": list(r.stride),
                    "padding": list(r.padding),
                    "dilation": list(r.dilation),
                    "border": r.border,
                    "seconds": r.seconds,
                }
            )
    return {"inputs": list(inputs.values())}
