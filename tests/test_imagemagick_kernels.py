"""ImageMagick's named kernels (issue 17): ``Gaussian:0x2``, ``Sobel:90``, ``Disk:3``, ...

Each kernel is checked three ways: against its definition written again here
(loops over the offsets, ImageMagick's radius and sigma rules as its manual
states them), against what convcli already calls it (``Sobel`` turned 180
degrees is ``sobel_x``), and, where ImageMagick is installed, against the kernel
ImageMagick itself prints with ``-define morphology:showKernel=1`` and the image
``-morphology Convolve`` writes.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from convcli import KernelError, load_kernel
from convcli.cli import app
from convcli.kernel_imagemagick import KERNELS, NOT_CONVOLUTION
from convcli.kernels import kernel_names

ROOT = Path(__file__).resolve().parents[1]
ENV = {"COLUMNS": "160", "NO_COLOR": "1", "TERM": "dumb"}
Q16 = 1 / 65535  # ImageMagick's automatic Gaussian ends below one 16-bit level


def weights(spec: str) -> np.ndarray:
    kernel = load_kernel(spec)
    assert kernel.source == "imagemagick", spec
    return kernel.weights


def flipped(w: np.ndarray) -> np.ndarray:
    """ImageMagick's Convolve turns the kernel 180 degrees; convcli correlates."""
    return w[::-1, ::-1]


def catalogue(name: str) -> np.ndarray:
    kernel = load_kernel(name)
    assert kernel.source != "imagemagick"
    return kernel.weights


# ---------------------------------------------------------------------------
# The definitions, written again


def auto_width(sigma: float, dims: int) -> int:
    """ImageMagick's width for a sigma: grow an odd width from 5 until the middle of
    its edge, over the sum of the whole (1-D or 2-D) Gaussian, falls below one
    16-bit level; the width before that one."""
    width = 5
    while True:
        r = (width - 1) // 2
        offsets = range(-r, r + 1)
        if dims == 1:
            total = sum(math.exp(-(u * u) / (2 * sigma**2)) for u in offsets)
        else:
            total = sum(
                math.exp(-(u * u + v * v) / (2 * sigma**2))
                for u in offsets
                for v in offsets
            )
        if math.exp(-(r * r) / (2 * sigma**2)) / total < Q16:
            return width - 2
        width += 2


def grid(width: int) -> list[tuple[int, int]]:
    r = (width - 1) // 2
    return [(v, u) for v in range(-r, r + 1) for u in range(-r, r + 1)]


def from_offsets(width: int, value: object) -> np.ndarray:
    """A width x width kernel whose weight at (row, col) offset is value(v, u)."""
    return np.array([value(v, u) for v, u in grid(width)]).reshape(width, width)  # type: ignore[operator]


def sides_to_one(w: np.ndarray) -> np.ndarray:
    """Positives scaled to sum to 1, negatives to -1."""
    pos, neg = w[w > 0].sum(), -w[w < 0].sum()
    return np.where(w > 0, w / pos, w / (neg if neg else 1))


@pytest.mark.parametrize(
    ("spec", "sigma", "width"),
    [
        ("Gaussian:0x0.5", 0.5, None),
        ("Gaussian:0x1", 1.0, None),
        ("Gaussian:0x2", 2.0, None),
        ("Gaussian:0x3.5", 3.5, None),
        ("Gaussian:3x2", 2.0, 7),  # a radius of 1 or more: 2*radius+1
        ("Gaussian:2.9x2", 2.0, 5),  # truncated to a whole radius
        ("Gaussian:0.5x1", 1.0, 3),  # a radius below 1: 3
    ],
)
def test_gaussian_is_the_sampled_2d_gaussian_summing_to_1(
    spec: str, sigma: float, width: int | None
) -> None:
    width = width or auto_width(sigma, 2)
    want = from_offsets(width, lambda v, u: math.exp(-(u * u + v * v) / (2 * sigma**2)))
    got = weights(spec)
    np.testing.assert_allclose(got, want / want.sum(), rtol=1e-12, atol=1e-15)
    # what the description promises: convcli's gaussian of that size
    np.testing.assert_allclose(
        got, catalogue(f"gaussian:sigma={sigma:g},size={width}"), atol=1e-12
    )
    assert load_kernel(spec).description.endswith(
        f"(= gaussian:sigma={sigma:g},size={width})"
    )


def test_the_automatic_widths_are_imagemagicks() -> None:
    # ImageMagick's manual: Gaussian:0x1 is 9x9 and Gaussian:0x2 15x15; Blur:0x1 9 wide
    assert weights("Gaussian:0x1").shape == (9, 9)
    assert weights("Gaussian:0x2").shape == (15, 15)
    assert weights("Blur:0x1").shape == (1, 9)
    for sigma in (0.3, 0.8, 1.7, 4.0, 9.0):
        assert weights(f"Blur:0x{sigma}").shape == (1, auto_width(sigma, 1))


def test_sigma_0_is_a_unit_impulse() -> None:
    np.testing.assert_array_equal(weights("Gaussian:0x0"), catalogue("identity"))
    np.testing.assert_array_equal(weights("Gaussian:2"), np.pad([[1.0]], 2))
    np.testing.assert_array_equal(weights("Blur:0x0"), [[0, 1, 0]])
    np.testing.assert_array_equal(weights("im:Gaussian"), catalogue("identity"))


@pytest.mark.parametrize("sigma", [0.5, 1.0, 1.5, 3.0])
def test_blur_is_a_1d_gaussian_sampled_three_times_a_pixel(sigma: float) -> None:
    width = auto_width(sigma, 1)
    r = (width - 1) // 2
    row = np.array(
        [
            sum(math.exp(-((t + d) ** 2) / (2 * sigma**2)) for d in (-1 / 3, 0, 1 / 3))
            for t in range(-r, r + 1)
        ]
    )
    want = (row / row.sum())[np.newaxis, :]
    np.testing.assert_allclose(weights(f"Blur:0x{sigma:g}"), want, rtol=1e-12)
    for angle in ("90", "-90", "270"):  # vertical
        np.testing.assert_allclose(weights(f"Blur:0x{sigma:g},{angle}"), want.T)
    np.testing.assert_allclose(weights(f"Blur:0x{sigma:g}+90"), want.T)
    np.testing.assert_allclose(weights(f"Blur:0x{sigma:g},180"), want)
    np.testing.assert_allclose(weights(f"Blur:5x{sigma:g}").shape, (1, 11))


def test_comet_is_half_a_blur_anchored_at_its_first_weight() -> None:
    sigma = 1.5
    width = (auto_width(sigma, 1) - 1) // 2 + 1
    tail = np.array(
        [
            sum(math.exp(-((t + d) ** 2) / (2 * sigma**2)) for d in (0, 1 / 3, 2 / 3))
            for t in range(width)
        ]
    )
    # convcli anchors at the centre: zeros before the anchor put it there
    want = np.concatenate([np.zeros(width - 1), tail / tail.sum()])[np.newaxis, :]
    np.testing.assert_allclose(weights("Comet:0x1.5"), want, rtol=1e-12)
    np.testing.assert_allclose(weights("Comet:0x1.5,90"), want.T)  # clockwise
    np.testing.assert_allclose(weights("Comet:0x1.5,180"), want[:, ::-1])
    np.testing.assert_allclose(weights("Comet:0x1.5,270"), want.T[::-1])
    assert weights("Comet:4x1").shape == (1, 7)


@pytest.mark.parametrize(("radius", "sigma"), [(0, 1.0), (0, 1.4), (3, 2.0)])
def test_log_is_centre_positive_with_sides_summing_to_1(
    radius: int, sigma: float
) -> None:
    width = 2 * radius + 1 if radius else auto_width(sigma, 2)

    def mexican_hat(v: int, u: int) -> float:
        q = (u * u + v * v) / (2 * sigma**2)
        return (1 - q) * math.exp(-q)

    got = weights(f"LoG:{radius}x{sigma:g}")
    np.testing.assert_allclose(got, sides_to_one(from_offsets(width, mexican_hat)))
    assert got[width // 2, width // 2] > 0
    assert got[got > 0].sum() == pytest.approx(1)
    assert got.sum() == pytest.approx(0)


def test_dog_is_the_difference_with_sides_summing_to_1() -> None:
    def g(sigma: float) -> np.ndarray:
        return from_offsets(
            15,
            lambda v, u: (
                math.exp(-(u * u + v * v) / (2 * sigma**2)) / (2 * math.pi * sigma**2)
            ),
        )

    want = sides_to_one(g(1) - g(2))  # the width is the larger sigma's, 15
    np.testing.assert_allclose(weights("DoG:0,1,2"), want, atol=1e-12)
    np.testing.assert_allclose(weights("DoG:0x1+2"), want, atol=1e-12)
    np.testing.assert_allclose(weights("DoG:0,2,1"), -sides_to_one(-(g(2) - g(1))))


def test_edge_kernels_turned_180_degrees_are_the_catalogues() -> None:
    np.testing.assert_array_equal(flipped(weights("Sobel:0")), catalogue("sobel_x"))
    np.testing.assert_array_equal(flipped(weights("Sobel:90")), catalogue("sobel_y"))
    np.testing.assert_array_equal(weights("Sobel:180"), catalogue("sobel_x"))
    np.testing.assert_array_equal(weights("im:sobel"), -catalogue("sobel_x"))
    np.testing.assert_array_equal(flipped(weights("Prewitt:0")), catalogue("prewitt_x"))
    np.testing.assert_array_equal(weights("Laplacian:1"), -catalogue("laplacian"))
    np.testing.assert_array_equal(weights("Laplacian:0"), -catalogue("laplacian8"))
    np.testing.assert_array_equal(weights("Unity:3"), [[3.0]])
    np.testing.assert_array_equal(weights("unity"), [[1.0]])
    # Kirsch in its 8 turns is convcli's kirsch bank, as a set
    turns = {weights(f"Kirsch:{45 * i}").tobytes() for i in range(8)}
    assert turns == {w[0].tobytes() for w in catalogue("kirsch")}


def test_turns_are_clockwise_and_45_degrees_move_the_ring() -> None:
    sobel = weights("im:Sobel")
    np.testing.assert_array_equal(weights("Sobel:90"), np.rot90(sobel, -1))
    np.testing.assert_array_equal(weights("Sobel:-90"), np.rot90(sobel, 1))
    np.testing.assert_array_equal(
        weights("Sobel:45"), [[2, 1, 0], [1, 0, -1], [0, -1, -2]]
    )
    np.testing.assert_array_equal(
        weights("Sobel:135"), np.rot90(weights("Sobel:45"), -1)
    )
    roberts = weights("Roberts:90")
    np.testing.assert_array_equal(roberts, [[0, 1, 0], [0, -1, 0], [0, 0, 0]])


def test_frei_chen_masks() -> None:
    r2 = math.sqrt(2)
    g = np.array([[1, 0, -1], [r2, 0, -r2], [1, 0, -1]])
    np.testing.assert_allclose(weights("FreiChen"), g)
    np.testing.assert_allclose(weights("FreiChen:1"), g * r2 / 2)
    np.testing.assert_allclose(weights("FreiChen:11"), g * r2 / 2)
    # convcli's frei_chen g2 is the same mask, orthonormal: 1/(2 sqrt 2)
    np.testing.assert_allclose(
        weights("FreiChen:0"), 2 * r2 * catalogue("frei_chen")[1, 0]
    )
    np.testing.assert_allclose(weights("FreiChen:19"), np.full((3, 3), 1 / 3))
    np.testing.assert_allclose(weights("FreiChen:1,90"), np.rot90(g * r2 / 2, -1))


def test_shapes_from_their_definitions() -> None:
    def shape(width: int, inside: object, scale: float = 1.0) -> np.ndarray:
        return from_offsets(width, lambda v, u: scale if inside(v, u) else 0.0)  # type: ignore[operator]

    np.testing.assert_array_equal(
        weights("Diamond:2,3"), shape(5, lambda v, u: abs(u) + abs(v) <= 2, 3)
    )
    np.testing.assert_array_equal(
        weights("diamond"), shape(3, lambda v, u: abs(u) + abs(v) <= 1)
    )
    np.testing.assert_array_equal(
        weights("Disk:3.2"), shape(7, lambda v, u: u * u + v * v <= 10)
    )
    np.testing.assert_array_equal(  # the default: radius 4.3
        weights("Disk"), shape(9, lambda v, u: u * u + v * v <= 18)
    )
    np.testing.assert_array_equal(
        weights("Octagon:3"), shape(7, lambda v, u: abs(u) + abs(v) <= 4)
    )
    np.testing.assert_array_equal(
        weights("Plus:1"), shape(3, lambda v, u: u == 0 or v == 0)
    )
    np.testing.assert_array_equal(
        weights("Cross:2,0.5"), shape(5, lambda v, u: abs(u) == abs(v), 0.5)
    )
    np.testing.assert_array_equal(
        weights("Ring:2,3"), shape(7, lambda v, u: 4 < u * u + v * v <= 9)
    )
    np.testing.assert_array_equal(weights("Square:2,0.5"), np.full((5, 5), 0.5))
    np.testing.assert_array_equal(weights("Square:1.5"), np.ones((4, 4)))
    np.testing.assert_allclose(weights("Square:2"), 25 * catalogue("box:size=5"))
    np.testing.assert_array_equal(weights("Rectangle:3x2"), np.ones((2, 3)))
    # an origin at the corner: zeros before it put it at the centre
    corner = np.zeros((5, 5))
    corner[2:, 2:] = 1
    np.testing.assert_array_equal(weights("Rectangle:3x3+0+0"), corner)


def test_binomial_is_pascals_triangle_not_normalized() -> None:
    row = [1, 4, 6, 4, 1]
    np.testing.assert_array_equal(weights("Binomial:2"), np.outer(row, row))
    np.testing.assert_allclose(
        weights("Binomial:2"), 256 * catalogue("binomial:size=5")
    )
    np.testing.assert_array_equal(
        weights("im:Binomial"), np.outer([1, 2, 1], [1, 2, 1])
    )
    assert weights("Binomial:8").max() == math.comb(16, 8) ** 2


# ---------------------------------------------------------------------------
# Which meaning: convcli's catalogue keeps every name it had


def test_every_catalogue_name_keeps_its_meaning() -> None:
    for name in kernel_names():
        kernel = load_kernel(name)
        assert kernel.source != "imagemagick", name
        for spelling in (name.upper(), name.capitalize()):
            again = load_kernel(spelling)
            np.testing.assert_array_equal(again.weights, kernel.weights)
    assert load_kernel("Gaussian:sigma=2").source == "generator"
    assert load_kernel("LoG:sigma=1.4,size=9").source == "generator"
    assert load_kernel("Sobel").weights.shape == (2, 1, 3, 3)  # the magnitude bank


@pytest.mark.parametrize(
    "spec",
    ["Gaussian:0x2", "im:gaussian:0x2", "IM:Gaussian:0x2", " im:Gaussian:0x 2 "],
)
def test_imagemagick_spellings(spec: str) -> None:
    np.testing.assert_array_equal(weights(spec), weights("Gaussian:0x2"))


def test_imagemagick_only_names_in_any_case_and_im_prefix_on_strings() -> None:
    for name in ("disk", "DISK", "Disk", "unity", "freichen", "comet:0x1"):
        assert load_kernel(name).source == "imagemagick"
    inline = "3x3: 0,-1,0 -1,5,-1 0,-1,0"
    np.testing.assert_array_equal(weights(f"im:{inline}"), weights(inline))


def test_the_kernel_says_what_it_is() -> None:
    assert load_kernel("Sobel:0").name == "im:Sobel:0"
    assert "-sobel_x" in load_kernel("Sobel:0").description
    assert "-sobel_x" not in load_kernel("Sobel:90").description
    k = load_kernel("im:Sobel")
    assert "= -sobel_x" in k.description
    assert "gradient magnitude" in k.description
    assert "--like imagemagick" in k.origin
    assert k.range == "clip"


# ---------------------------------------------------------------------------
# Bad arguments: one line naming the spec and the reason


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        (
            "Gaussian:0x-1",
            r"^Gaussian:0x-1: sigma must be >= 0 \(0: no blur\); got -1$",
        ),
        ("Disk:1e9", r"^Disk:1e9: radius must be from 0 to 127 .*; got 1e\+09$"),
        (
            "Blur:abc",
            r"^Blur:abc: 'abc' is not a number; expected Blur:\{radius\}x\{sigma\}",
        ),
        ("Blur:0x2,45", r"angle must be a multiple of 90 from -360 to 360"),
        ("Sobel:30", r"angle must be a multiple of 45"),
        ("Gaussian:0x2,3", r"Gaussian takes at most 2 arguments .*; got 3"),
        ("Gaussian:0x1e999", r"'1e999' is beyond float64's range"),
        ("Gaussian:0x0.001", r"sigma must be 0 \(no blur\) or from 0.01 to 1000"),
        ("Blur:0x40", r"sigma 40 needs an automatic width over 255"),
        ("Blur:0x2x3", r"'x' where a separator"),
        ("Sobel:>", r"'>' expands a kernel into a list of its 90-degree turns"),
        ("Sobel:0;Sobel:90", r"';' separates a list of kernels"),
        ("Gaussian:0x2!", r"'!' is a normalization flag"),
        ("Disk:1.5", r"even width \(4\)"),
        (
            "Binomial:9",
            r"radius must be from 0 to 8 \(beyond, ImageMagick's integers overflow",
        ),
        ("Laplacian:4", r"type must be one of 0, 1, 2, 3, 5, 7, 15, 19; got 4"),
        ("FreiChen:10", r"list of 9 kernels.*frei_chen is the 9 masks as one bank"),
        ("Ring:1,2,0.5", r"scale must be a whole number"),
        ("Rectangle:3x3+3+0", r"origin \+3\+0 is outside the 3x3 rectangle"),
        ("Edges", r"Edges is an ImageMagick morphology kernel"),
        ("im:Foo", r"unknown ImageMagick kernel 'Foo'; convcli reads Unity, Gaussian"),
        ("im:Gausian:0x2", r"did you mean Gaussian\?"),
        ("im:", r"expected an ImageMagick kernel after 'im:'"),
        (
            "sobel:90",
            r"sobel is convcli's catalogue kernel \(key=value parameters, if any\); "
            r"ImageMagick's Sobel:\[angle\] is written with its capital \(Sobel:90\) "
            r"or as im:sobel:90",
        ),
        ("gaussian:0x2", r"written with its capital \(Gaussian:0x2\)"),
        ("Square:1,1e308", r"the weights are too large"),
    ],
)
def test_bad_arguments(spec: str, pattern: str) -> None:
    with pytest.raises(KernelError, match=pattern) as err:
        load_kernel(spec)
    assert "\n" not in str(err.value)


def test_a_misspelt_key_keeps_convclis_message() -> None:
    with pytest.raises(KernelError, match=r"unknown parameter 'sigma' of gaussian"):
        load_kernel("gaussian:sigma")


def test_unknown_names_suggest_imagemagicks() -> None:
    with pytest.raises(KernelError, match=r"did you mean Diamond \(ImageMagick's\)"):
        load_kernel("diamnd")


# ---------------------------------------------------------------------------
# convcli kernels


def test_kernels_shows_an_imagemagick_kernel() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["kernels", "Gaussian:0x2"], env=ENV)
    assert result.exit_code == 0, result.output
    assert "im:Gaussian:0x2: ImageMagick's Gaussian" in result.output
    assert "15x15" in result.output
    result = runner.invoke(app, ["kernels", "Sobel:90", "--json"], env=ENV)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["source"] == "imagemagick"
    assert doc["shape"] == [3, 3]
    assert doc["filters"][0]["weights"] == [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]


def test_kernels_bad_argument_is_one_error_line() -> None:
    result = CliRunner().invoke(app, ["kernels", "Gaussian:0x-1"], env=ENV)
    assert result.exit_code == 2, result.output
    assert "Error: Gaussian:0x-1: sigma must be >= 0" in result.output
    assert "Traceback" not in result.output


def test_docs_list_every_name() -> None:
    page = (ROOT / "docs" / "commands" / "kernels.md").read_text(encoding="utf-8")
    for im in KERNELS.values():
        assert f"| `{im.name}` | `{im.usage}`" in page, im.name
    for name in NOT_CONVOLUTION:
        assert name in page, name
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "commands/kernels.md#imagemagicks-named-kernels" in readme
    reference = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    assert "commands/kernels.md#imagemagicks-named-kernels" in reference


# ---------------------------------------------------------------------------
# Against ImageMagick itself


def imagemagick() -> list[str]:
    """ImageMagick 7's ``magick`` or 6's ``convert``, 16-bit (its automatic widths)."""
    for name in ("magick", "convert", "convert-im6.q16"):
        path = shutil.which(name)
        if path is None:
            continue
        version = subprocess.run(
            [path, "-version"], capture_output=True, text=True, check=False
        ).stdout
        if "Version: ImageMagick" in version:
            if "Q16" not in version:
                pytest.skip("ImageMagick is not a Q16 build (its widths differ)")
            return [path]
    pytest.skip("ImageMagick is not installed (.ci/run installs it)")


CONVOLVE = ("-morphology", "Convolve")


def shown_kernel(spec: str) -> np.ndarray:
    """The kernel ImageMagick prints for spec, its origin moved to the centre."""
    done = subprocess.run(
        [
            *imagemagick(),
            "xc:",
            "-define",
            "morphology:showKernel=1",
            *CONVOLVE,
            spec,
            "null:",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    size = re.search(r"of size (\d+)x(\d+)([+-]\d+)([+-]\d+)", done.stderr)
    assert size is not None, done.stderr
    width, height, x, y = (int(g) for g in size.groups())
    rows = [
        line.split(":", 1)[1].split()
        for line in done.stderr.splitlines()
        if re.match(r"\s*\d+:", line)
    ]
    values = np.array([[float(v) for v in row] for row in rows[:height]])
    assert values.shape == (height, width)
    values = np.nan_to_num(values, nan=0.0)  # outside the neighbourhood
    pads = []
    for n, at in ((height, y), (width, x)):
        reach = max(at, n - 1 - at)
        pads.append((0, 0) if at == (n - 1) // 2 else (reach - at, reach - n + 1 + at))
    return np.pad(values, pads)


ORACLE = [
    *("Gaussian:0x0.5 Gaussian:0x2 Gaussian:0x3.5 Gaussian:3x2 Gaussian:0.5x1".split()),
    "Gaussian:0x200",  # a 2-D automatic width stays below 255 (247)
    *("Blur:0x1 Blur:0x2.5,90 Blur:5x2 Blur:0x0.3".split()),
    *("Comet:0x2 Comet:0x1,90 Comet:0x1,180 Comet:0x1,270 Comet:3x1".split()),
    *("LoG:0x1 LoG:0x1.4 LoG:3x2 DoG:0,1,2 DoG:3,1,1.6 DoG:0,2,1".split()),
    *("Binomial Binomial:2 Binomial:8".split()),
    *(f"Laplacian:{t}" for t in (0, 1, 2, 3, 5, 7, 15, 19)),
    *("Sobel Sobel:90 Sobel:45 Sobel:135 Sobel:-90 Roberts Roberts:45".split()),
    *("Prewitt:270 Compass Compass:45 Kirsch Kirsch:135".split()),
    *(f"FreiChen:{t}" for t in (0, 1, 2, 11, 12, 13, 14, 15, 16, 17, 18, 19)),
    *("FreiChen:1,45 FreiChen:2,90 Unity Unity:3".split()),
    *(
        "Diamond Diamond:2,3 Square Square:1.5 Square:2,0.5 Disk Disk:1 Disk:4.3".split()
    ),
    *(
        "Disk:3.2,2 Octagon Octagon:3 Plus:1 Cross:2,0.5 Ring Ring:2,3 Ring:3,1,2".split()
    ),
    *(
        "Rectangle Rectangle:3x2 Rectangle:3x3+0+0 Rectangle:x4 Rectangle:4x2+3+1".split()
    ),
]


@pytest.mark.parametrize("spec", ORACLE)
def test_the_kernel_imagemagick_prints(spec: str) -> None:
    want = shown_kernel(spec)
    got = weights(f"im:{spec}")
    assert got.shape == want.shape
    # showKernel prints 6 significant digits
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-12)


def test_every_kernel_is_checked_against_imagemagick() -> None:
    checked = {spec.split(":")[0].lower() for spec in ORACLE}
    assert checked == set(KERNELS)


def run_imagemagick(src: Path, spec: str, out: Path, *extra: str) -> np.ndarray:
    subprocess.run(
        [*imagemagick(), str(src), "-morphology", "Convolve", spec, *extra, str(out)],
        check=True,
    )
    with Image.open(out) as img:
        got = np.asarray(img)
    return got if got.ndim == 2 else got[:, :, 0]


def run_convcli(src: Path, spec: str, folder: Path, *extra: str) -> np.ndarray:
    folder.mkdir()
    args = ["apply", str(src), "-k", spec, "--like", "imagemagick", "-o", str(folder)]
    result = CliRunner().invoke(app, [*args, *extra], env=ENV)
    assert result.exit_code == 0, result.output
    (out,) = folder.iterdir()
    if out.suffix == ".tif":
        import tifffile

        return np.asarray(tifffile.imread(out))
    with Image.open(out) as img:
        return np.asarray(img.convert("L"))


def test_issue_17_gaussian_0x2_end_to_end(tmp_path: Path) -> None:
    rng = np.random.default_rng(1717)
    Image.fromarray(rng.integers(0, 256, (23, 29), dtype=np.uint8)).save(
        tmp_path / "in.png"
    )
    # 8-bit: ImageMagick rounds through 16 bits, convcli once: within one level
    want = run_imagemagick(tmp_path / "in.png", "Gaussian:0x2", tmp_path / "im.png")
    got = run_convcli(tmp_path / "in.png", "Gaussian:0x2", tmp_path / "out")
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    # --like adds its tag to the name (runs with other options keep apart)
    assert (tmp_path / "out" / "in.im-Gaussian-0x2.like-imagemagick.png").exists()
    # 16-bit against the float result: the same kernel, to one 16-bit level
    want16 = run_imagemagick(
        tmp_path / "in.png", "Gaussian:0x2", tmp_path / "im16.png", "-depth", "16"
    )
    got = run_convcli(tmp_path / "in.png", "Gaussian:0x2", tmp_path / "f", "--float")
    assert np.abs(got * 257 - want16).max() <= 1


@pytest.mark.parametrize(
    "spec", ["Sobel:90", "Comet:0x2,90", "Rectangle:3x3+0+0", "LoG:0x1", "Kirsch:45"]
)
def test_asymmetric_and_off_centre_kernels_end_to_end(
    tmp_path: Path, spec: str
) -> None:
    rng = np.random.default_rng(4242)  # dim: a sum of 9 pixels stays below 255
    Image.fromarray(rng.integers(0, 28, (17, 19), dtype=np.uint8)).save(
        tmp_path / "in.png"
    )
    want = run_imagemagick(tmp_path / "in.png", spec, tmp_path / "im.png")
    got = run_convcli(tmp_path / "in.png", spec, tmp_path / "out")
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
