"""Combining a bank's maps band by band (`convcli.filtering._combine_by_bands`).

Magnitude, sum and max of several 2-D filters are computed in bands of rows,
so that no whole-image map but the result exists. The values must be those of
whole-image maps: checked against the float64 loop reference, for every
border, padding and dilation that bands, with bands of a few rows so that
each test crosses many band edges.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from reference import reference_conv2d
from typer.testing import CliRunner

from convcli import filtering, kernels
from convcli.cli import app
from convcli.pipeline import ApplyOptions, filter_maps

RNG = np.random.default_rng(18)


def combined_reference(
    x: np.ndarray, kernel: kernels.Kernel, options: ApplyOptions
) -> np.ndarray:
    maps = [
        reference_conv2d(
            x,
            w[0],
            padding=options.padding,
            dilation=options.dilation,
            border=options.border,
            flip=options.flip,
        )
        for w in kernel.weights
    ]
    maps = [m[:, :, np.newaxis] if m.ndim == 2 else m for m in maps]
    if kernel.combine == "magnitude":
        return np.sqrt(sum(m * m for m in maps))
    if kernel.combine == "max":
        return np.maximum.reduce(maps)
    return sum(maps)


@pytest.fixture
def small_bands(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bands of about 5 rows of a 40-pixel-wide RGB image."""
    monkeypatch.setattr(filtering, "_BAND_BYTES", 40 * 3 * 4 * 5)


@pytest.mark.usefixtures("small_bands")
@pytest.mark.parametrize("name", ["sobel", "kirsch", "roberts", "farid"])
@pytest.mark.parametrize("border", ["reflect", "symmetric", "edge", "constant"])
@pytest.mark.parametrize(
    ("padding", "dilation"), [("same", 1), ("same", 2), (0, 1), ((2, 1), 1)]
)
def test_banded_combine_is_the_whole_image_combine(
    name: str, border: str, padding: object, dilation: int
) -> None:
    kernel = kernels.load_kernel(name)
    assert kernel.combine != "stack"
    x = RNG.integers(0, 256, (83, 40, 3)).astype(np.uint8)
    options = ApplyOptions(border=border, padding=padding, dilation=dilation)  # type: ignore[arg-type]
    maps, explanation = filter_maps(x, kernel, options)
    extent = dilation * (kernel.size[0] - 1) + 1
    # Banded unless a window can lie in the padding alone (2 rows of padding, 2x2)
    assert filtering._bands_fit(x, explanation) == (
        max(explanation.padding[:2]) < extent
    )
    (_, result), *rest = list(maps)
    assert rest == []
    expected = combined_reference(x, kernel, options)
    assert result.shape == expected.shape
    np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-3)


@pytest.mark.usefixtures("small_bands")
def test_wrap_and_stride_use_whole_maps() -> None:
    x = RNG.integers(0, 256, (83, 40, 3)).astype(np.uint8)
    kernel = kernels.load_kernel("sobel")
    for options in (ApplyOptions(border="wrap"), ApplyOptions(stride=2)):
        maps, explanation = filter_maps(x, kernel, options)
        assert not filtering._bands_fit(x, explanation)
        (_, result), *_ = list(maps)
        expected = combined_reference(x, kernel, options)
        if options.stride == 2:
            expected = reference_conv2d(
                x, kernel.weights[0, 0], padding="same", stride=2, border="reflect"
            )
            other = reference_conv2d(
                x, kernel.weights[1, 0], padding="same", stride=2, border="reflect"
            )
            expected = np.sqrt(expected**2 + other**2)
        np.testing.assert_allclose(result, expected, rtol=1e-5, atol=1e-3)


@pytest.mark.usefixtures("small_bands")
def test_apply_writes_the_same_image_banded_or_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "in.png"
    Image.fromarray(RNG.integers(0, 256, (90, 40, 3)).astype(np.uint8)).save(src)
    runner = CliRunner()
    banded = tmp_path / "banded.png"
    result = runner.invoke(app, ["apply", str(src), "-k", "sobel", "-o", str(banded)])
    assert result.exit_code == 0, result.output
    monkeypatch.setattr(filtering, "_BAND_BYTES", 1 << 40)  # one band: whole maps
    whole = tmp_path / "whole.png"
    result = runner.invoke(app, ["apply", str(src), "-k", "sobel", "-o", str(whole)])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(
        np.asarray(Image.open(banded)), np.asarray(Image.open(whole))
    )
