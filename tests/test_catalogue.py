"""The kernel catalogue (SPEC section 3) against the definitions its entries claim.

Each file in filters/ names its origin; here its numbers are checked against that
origin independently of the file: the peer library itself where it is installed
(Pillow always; OpenCV and scikit-image when importable, skipped otherwise), and the
published construction in every case (outer products, rotations, orthonormality,
derivative signs). Weights are cross-correlation weights (SPEC section 1): the window
times the unflipped kernel, like ``scipy.ndimage.correlate`` and ``cv2.filter2D``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFilter
from scipy import ndimage

import convcli

FILTERS = Path(__file__).resolve().parent.parent / "filters"
STEMS = sorted(p.stem for p in FILTERS.glob("*.txt"))

EXPECTED = {
    "identity",
    "smooth",
    "smooth_more",
    "blur",
    "detail",
    "edge_enhance",
    "edge_enhance_more",
    "emboss",
    "contour",
    "sharpen",
    "outline",
    "sobel_x",
    "sobel_y",
    "sobel",
    "prewitt_x",
    "prewitt_y",
    "prewitt",
    "scharr_x",
    "scharr_y",
    "scharr",
    "roberts",
    "farid_x",
    "farid_y",
    "farid",
    "kirsch",
    "compass",
    "frei_chen",
    "laplacian",
    "laplacian8",
}
GENERATORS = {"box", "gaussian", "binomial", "motion", "log", "dog", "unsharp"}
COMBINES = {"magnitude", "sum", "max", "stack"}
RANGES = {"clip", "abs", "rescale", "offset", "gain"}
HEADER_KEYS = {"name", "description", "origin", "scale", "bias", "combine", "range"}

# Pillow ImageFilter built-ins and the file reproducing each.
PILLOW = {
    "smooth": "SMOOTH",
    "smooth_more": "SMOOTH_MORE",
    "blur": "BLUR",
    "detail": "DETAIL",
    "edge_enhance": "EDGE_ENHANCE",
    "edge_enhance_more": "EDGE_ENHANCE_MORE",
    "emboss": "EMBOSS",
    "contour": "CONTOUR",
    "sharpen": "SHARPEN",
    "outline": "FIND_EDGES",
}

# scikit-image's Farid & Simoncelli 5-tap vectors (skimage/filters/edges.py).
FARID_P = np.array(
    [
        0.0376593171958126,
        0.249153396177344,
        0.426374573253687,
        0.249153396177344,
        0.0376593171958126,
    ]
)
FARID_D1 = np.array(
    [
        0.109603762960254,
        0.276690988455557,
        0.0,
        -0.276690988455557,
        -0.109603762960254,
    ]
)

SQRT2 = math.sqrt(2.0)


def load(name: str) -> convcli.Kernel:
    return convcli.load_kernel(name)


def filters_of(k: convcli.Kernel) -> list[np.ndarray]:
    """The 2-D filters of a kernel: one for a single filter, D for a bank of 1 channel."""
    if k.weights.ndim == 2:
        return [k.weights]
    assert k.weights.ndim == 4
    assert k.weights.shape[1] == 1, "catalogue banks are single-channel"
    return [k.weights[d, 0] for d in range(k.weights.shape[0])]


def correlate_valid(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """out[i, j] = sum_{u,v} w[u, v] * x[i+u, j+v], no padding (a plain loop over taps)."""
    kh, kw = w.shape
    h, wd = x.shape[0] - kh + 1, x.shape[1] - kw + 1
    out = np.zeros((h, wd))
    for u in range(kh):
        for v in range(kw):
            out += w[u, v] * x[u : u + h, v : v + wd]
    return out


def interior(a: np.ndarray, kh: int, kw: int | None = None) -> np.ndarray:
    """Drop the border an odd kh x kw kernel reaches past, keeping the 'valid' part."""
    kw = kh if kw is None else kw
    rh, rw = kh // 2, kw // 2
    return a[rh : a.shape[0] - rh, rw : a.shape[1] - rw]


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(20240531).random((37, 45))


@pytest.fixture
def image_u8() -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, size=(41, 53), dtype=np.uint8)


# ---------------------------------------------------------------------------
# Every file: loads, is named after its stem, uses only valid headers


def test_expected_files_are_present() -> None:
    missing = EXPECTED - set(STEMS)
    assert not missing, f"filters/ lacks {sorted(missing)}"


def test_packaged_catalogue_matches_the_checkout() -> None:
    import convcli.kernels

    packaged = sorted(p.stem for p in convcli.kernels.FILTERS_DIR.glob("*.txt"))
    assert packaged == STEMS


@pytest.mark.parametrize("stem", STEMS)
def test_file_loads_and_is_named_after_its_stem(stem: str) -> None:
    k = convcli.load_kernel(str(FILTERS / f"{stem}.txt"))
    assert k.name == stem
    assert k.weights.dtype == np.float64
    assert k.weights.ndim in (2, 4)
    assert np.isfinite(k.weights).all()
    assert k.combine in COMBINES
    assert k.range in RANGES
    assert k.description.strip()
    assert "\n" not in k.description
    assert k.origin.strip()
    depth = k.weights.shape[0] if k.weights.ndim == 4 else 1
    assert len(k.bias) in (0, depth)
    if k.weights.ndim == 4:
        # every filter of a bank is named, and the names differ
        assert len(k.filter_names) == depth
        assert all(k.filter_names)
        assert len(set(k.filter_names)) == depth
        assert k.combine != "stack" or depth > 1
    by_name = load(stem)
    np.testing.assert_array_equal(by_name.weights, k.weights)


@pytest.mark.parametrize("stem", STEMS)
def test_file_uses_only_the_documented_header_keys(stem: str) -> None:
    """Read the header lines directly, independently of the parser."""
    for raw in (FILTERS / f"{stem}.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("---") or re.match(r"^[-+.\d]", line):
            break  # the weights have started
        key = line.split(":", 1)[0].strip()
        assert key in HEADER_KEYS, f"{stem}.txt: header key {key!r}"


def test_list_kernels_covers_files_and_generators() -> None:
    kernels = convcli.list_kernels()
    names = [k.name for k in kernels]
    assert len(names) == len(set(names))
    bases = {n.split(":", 1)[0] for n in names}
    assert set(STEMS) <= bases
    assert bases >= GENERATORS
    for k in kernels:
        assert isinstance(k, convcli.Kernel)
        assert k.combine in COMBINES, k.name
        assert k.range in RANGES, k.name
        assert np.isfinite(k.weights).all(), k.name


# ---------------------------------------------------------------------------
# Gain: smoothing and sharpening keep flat areas, edge detectors give 0 there

UNIT_SUM = [
    "identity",
    "smooth",
    "smooth_more",
    "blur",
    "detail",
    "edge_enhance",
    "edge_enhance_more",
    "sharpen",
]
ZERO_SUM = [
    "emboss",
    "contour",
    "outline",
    "sobel_x",
    "sobel_y",
    "sobel",
    "prewitt_x",
    "prewitt_y",
    "prewitt",
    "scharr_x",
    "scharr_y",
    "scharr",
    "roberts",
    "farid_x",
    "farid_y",
    "farid",
    "kirsch",
    "compass",
    "laplacian",
    "laplacian8",
]


@pytest.mark.parametrize("stem", UNIT_SUM)
def test_smoothing_and_sharpening_sum_to_one(stem: str) -> None:
    (w,) = filters_of(load(stem))
    assert w.sum() == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize("stem", ZERO_SUM)
def test_edge_detectors_sum_to_zero(stem: str) -> None:
    for w in filters_of(load(stem)):
        assert w.sum() == pytest.approx(0.0, abs=1e-12)


def test_identity_is_the_unit_impulse(image: np.ndarray) -> None:
    w = load("identity").weights
    expected = np.zeros((3, 3))
    expected[1, 1] = 1.0
    np.testing.assert_array_equal(w, expected)
    np.testing.assert_array_equal(correlate_valid(image, w), interior(image, 3))


# ---------------------------------------------------------------------------
# Pillow ImageFilter built-ins


@pytest.mark.parametrize(("stem", "pil_name"), sorted(PILLOW.items()))
def test_pillow_kernel_matches_filterargs(stem: str, pil_name: str) -> None:
    """filterargs = (size, scale, offset, kernel): weights = flipud(kernel) / scale.

    Pillow's C filter multiplies the first kernel row with the image row *below*
    the pixel (the kernel is flipped vertically, as the ImageFilter.Kernel docs
    say), so our correlation weights are the kernel's rows in reverse order.
    """
    (width, height), scale, offset, values = getattr(ImageFilter, pil_name).filterargs
    kernel = np.array(values, dtype=np.float64).reshape(height, width)
    k = load(stem)
    np.testing.assert_allclose(k.weights, kernel[::-1] / scale, rtol=1e-12, atol=0)
    assert (k.bias[0] if k.bias else 0.0) == offset


@pytest.mark.parametrize(("stem", "pil_name"), sorted(PILLOW.items()))
def test_pillow_output_is_reproduced(
    stem: str, pil_name: str, image_u8: np.ndarray
) -> None:
    """Pillow's image vs correlate(weights) + bias, rounded and clipped, inside."""
    k = load(stem)
    theirs = np.asarray(
        Image.fromarray(image_u8).filter(getattr(ImageFilter, pil_name))
    )
    x = image_u8.astype(np.float64)
    ours = ndimage.correlate(x, k.weights, mode="reflect") + (
        k.bias[0] if k.bias else 0.0
    )
    ours = np.clip(np.floor(ours + 0.5), 0, 255)
    kh, kw = k.weights.shape
    diff = np.abs(interior(ours, kh, kw) - interior(theirs.astype(np.float64), kh, kw))
    assert diff.max() <= 1, f"{stem} differs from Pillow {pil_name} by {diff.max()}"


def test_emboss_is_flipped_from_pillows_tuple(image_u8: np.ndarray) -> None:
    """The asymmetric case: out = x[i, j] - x[i+1, j-1] + 128 is Pillow's EMBOSS."""
    theirs = np.asarray(Image.fromarray(image_u8).filter(ImageFilter.EMBOSS))
    x = image_u8.astype(np.float64)
    expected = np.clip(x[1:-1, 1:-1] - x[2:, :-2] + 128, 0, 255)
    np.testing.assert_array_equal(theirs[1:-1, 1:-1], expected)
    k = load("emboss")
    np.testing.assert_array_equal(
        k.weights, np.array([[0, 0, 0], [0, 1, 0], [-1, 0, 0]], dtype=np.float64)
    )
    assert k.bias == (128.0,)


def test_outline_and_contour_are_the_negated_8_neighbour_laplacian() -> None:
    lap8 = np.ones((3, 3))
    lap8[1, 1] = -8
    np.testing.assert_array_equal(load("outline").weights, -lap8)
    np.testing.assert_array_equal(load("laplacian8").weights, lap8)
    contour = load("contour")
    np.testing.assert_array_equal(contour.weights, -lap8)
    assert contour.bias == (255.0,)


# ---------------------------------------------------------------------------
# First derivatives: Sobel, Prewitt, Scharr, Farid, Roberts

DIFF = np.array([-1.0, 0.0, 1.0])
SEPARABLE_3X3 = {
    "sobel": np.array([1.0, 2.0, 1.0]),
    "prewitt": np.array([1.0, 1.0, 1.0]),
    "scharr": np.array([3.0, 10.0, 3.0]),
}


@pytest.mark.parametrize("family", sorted(SEPARABLE_3X3))
def test_3x3_derivatives_are_smoothing_times_difference(family: str) -> None:
    smooth = SEPARABLE_3X3[family]
    gx, gy = np.outer(smooth, DIFF), np.outer(DIFF, smooth)
    np.testing.assert_array_equal(load(f"{family}_x").weights, gx)
    np.testing.assert_array_equal(load(f"{family}_y").weights, gy)
    bank = load(family)
    assert bank.weights.shape == (2, 1, 3, 3)
    np.testing.assert_array_equal(bank.weights[:, 0], np.stack([gx, gy]))
    assert bank.filter_names == ("gx", "gy")
    assert bank.combine == "magnitude"
    assert bank.range == "gain"  # a magnitude: 0 black, the kernel's scale


# (name, axis, gain on a unit ramp): x kernels see intensity growing to the right
# as positive, y kernels intensity growing downward.
RAMP_GAINS = [
    ("sobel_x", 1, 8.0),
    ("sobel_y", 0, 8.0),
    ("prewitt_x", 1, 6.0),
    ("prewitt_y", 0, 6.0),
    ("scharr_x", 1, 32.0),
    ("scharr_y", 0, 32.0),
    ("farid_x", 1, 2 * (2 * FARID_D1[0] + FARID_D1[1])),
    ("farid_y", 0, 2 * (2 * FARID_D1[0] + FARID_D1[1])),
]


@pytest.mark.parametrize(("stem", "axis", "gain"), RAMP_GAINS)
def test_derivative_sign_and_orientation(stem: str, axis: int, gain: float) -> None:
    w = load(stem).weights
    rows, cols = np.mgrid[0:12, 0:12].astype(np.float64)
    along, across = (cols, rows) if axis == 1 else (rows, cols)
    np.testing.assert_allclose(correlate_valid(along, w), gain, rtol=1e-12)
    np.testing.assert_allclose(correlate_valid(across, w), 0.0, atol=1e-12)
    assert gain > 0


@pytest.mark.parametrize(
    ("stem", "dx", "dy", "scharr"),
    [
        ("sobel_x", 1, 0, False),
        ("sobel_y", 0, 1, False),
        ("scharr_x", 1, 0, True),
        ("scharr_y", 0, 1, True),
    ],
)
def test_against_opencv_sobel_and_scharr(
    stem: str, dx: int, dy: int, scharr: bool, image_u8: np.ndarray
) -> None:
    cv2 = pytest.importorskip("cv2")
    w = load(stem).weights
    ours = cv2.filter2D(image_u8, cv2.CV_64F, w)  # filter2D correlates
    if scharr:
        theirs = cv2.Scharr(image_u8, cv2.CV_64F, dx, dy)
    else:
        theirs = cv2.Sobel(image_u8, cv2.CV_64F, dx, dy, ksize=3)
    np.testing.assert_allclose(interior(ours, 3), interior(theirs, 3), atol=1e-9)


def test_farid_is_the_outer_product_of_p_and_d1() -> None:
    """skimage convolves with outer(p, d1) (farid_v) and outer(d1, p) (farid_h).

    Convolution flips the kernel; p is even and d1 odd, so as correlation
    weights that is outer(p, -d1) and outer(-d1, p).
    """
    gx, gy = np.outer(FARID_P, -FARID_D1), np.outer(-FARID_D1, FARID_P)
    np.testing.assert_allclose(load("farid_x").weights, gx, rtol=1e-15, atol=0)
    np.testing.assert_allclose(load("farid_y").weights, gy, rtol=1e-15, atol=0)
    bank = load("farid")
    assert bank.weights.shape == (2, 1, 5, 5)
    np.testing.assert_allclose(bank.weights[:, 0], np.stack([gx, gy]), rtol=1e-15)
    assert bank.combine == "magnitude"
    # the published taps: p sums to 1, d1 is antisymmetric
    assert FARID_P.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_array_equal(FARID_D1, -FARID_D1[::-1])


def test_farid_same_as_convolving_with_skimages_weights(image: np.ndarray) -> None:
    """Without scikit-image: ndimage.convolve with its HFARID/VFARID_WEIGHTS."""
    vfarid = np.outer(FARID_P, FARID_D1)  # skimage VFARID_WEIGHTS = HFARID.T
    hfarid = np.outer(FARID_D1, FARID_P)  # skimage HFARID_WEIGHTS = d1.T * p
    for stem, theirs_w in [("farid_x", vfarid), ("farid_y", hfarid)]:
        theirs = ndimage.convolve(image, theirs_w, mode="reflect")
        ours = correlate_valid(image, load(stem).weights)
        np.testing.assert_allclose(ours, interior(theirs, 5), atol=1e-12)


def test_roberts_same_as_skimages_convolution(image: np.ndarray) -> None:
    """skimage: ndimage.convolve with [[1, 0], [0, -1]] and [[0, 1], [-1, 0]].

    For a 2x2 kernel that gives out[i, j] = x[i+1, j+1] - x[i, j] (pos_diag) and
    x[i+1, j] - x[i, j+1] (neg_diag): the window starts at the pixel, as padding
    'same' with the smaller half before does for an even kernel.
    """
    k = load("roberts")
    assert k.weights.shape == (2, 1, 2, 2)
    assert k.filter_names == ("pos_diag", "neg_diag")
    assert k.combine == "magnitude"
    pd = np.array([[1.0, 0.0], [0.0, -1.0]])
    nd = np.array([[0.0, 1.0], [-1.0, 0.0]])
    for d, theirs_w in enumerate([pd, nd]):
        theirs = ndimage.convolve(image, theirs_w, mode="reflect")[:-1, :-1]
        ours = correlate_valid(image, k.weights[d, 0])
        np.testing.assert_allclose(ours, theirs, atol=1e-12)
    np.testing.assert_allclose(
        correlate_valid(image, k.weights[0, 0]), image[1:, 1:] - image[:-1, :-1]
    )
    np.testing.assert_allclose(
        correlate_valid(image, k.weights[1, 0]), image[1:, :-1] - image[:-1, 1:]
    )


def test_against_scikit_image(image: np.ndarray) -> None:
    filters = pytest.importorskip("skimage.filters")
    cases = [
        ("farid_x", filters.farid_v, 1.0, 5),
        ("farid_y", filters.farid_h, 1.0, 5),
        ("sobel_x", filters.sobel_v, 1 / 4, 3),
        ("sobel_y", filters.sobel_h, 1 / 4, 3),
        ("prewitt_x", filters.prewitt_v, 1 / 3, 3),
        ("prewitt_y", filters.prewitt_h, 1 / 3, 3),
        ("scharr_x", filters.scharr_v, 1 / 16, 3),
        ("scharr_y", filters.scharr_h, 1 / 16, 3),
    ]
    for stem, func, factor, size in cases:
        ours = factor * correlate_valid(image, load(stem).weights)
        np.testing.assert_allclose(
            ours, interior(func(image), size), atol=1e-12, err_msg=stem
        )
    roberts = load("roberts")
    for d, func in enumerate([filters.roberts_pos_diag, filters.roberts_neg_diag]):
        ours = correlate_valid(image, roberts.weights[d, 0])
        np.testing.assert_allclose(ours, func(image)[:-1, :-1], atol=1e-12)


# ---------------------------------------------------------------------------
# Compass banks: Kirsch and Robinson

DIRECTIONS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")
# The 8 outer cells, clockwise from the top-left corner.
RING = [(0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0)]


def ring(w: np.ndarray) -> np.ndarray:
    return np.array([w[r, c] for r, c in RING])


@pytest.mark.parametrize(
    ("stem", "north"),
    [
        ("kirsch", [[5, 5, 5], [-3, 0, -3], [-3, -3, -3]]),
        ("compass", [[1, 2, 1], [0, 0, 0], [-1, -2, -1]]),
    ],
)
def test_compass_masks_are_rotations(stem: str, north: list[list[int]]) -> None:
    k = load(stem)
    assert k.weights.shape == (8, 1, 3, 3)
    assert k.filter_names == DIRECTIONS
    assert k.combine == "max"
    masks = filters_of(k)
    np.testing.assert_array_equal(masks[0], np.array(north, dtype=np.float64))
    for d in range(8):
        this, following = masks[d], masks[(d + 1) % 8]
        # one step (45 degrees) clockwise: every outer cell moves on by one
        np.testing.assert_array_equal(ring(following), np.roll(ring(this), 1))
        assert following[1, 1] == this[1, 1] == 0
        # two steps are a quarter turn clockwise
        np.testing.assert_array_equal(masks[(d + 2) % 8], np.rot90(this, -1))


def test_kirsch_values_and_nonnegative_maximum(image: np.ndarray) -> None:
    masks = filters_of(load("kirsch"))
    for w in masks:
        assert sorted(ring(w)) == [-3] * 5 + [5] * 3
    # the 8 masks sum to zero, so the strongest response is never negative
    np.testing.assert_array_equal(sum(masks), np.zeros((3, 3)))
    responses = np.stack([correlate_valid(image, w) for w in masks])
    assert (responses.max(axis=0) >= -1e-12).all()


def test_robinson_compass_contains_sobel() -> None:
    masks = dict(zip(DIRECTIONS, filters_of(load("compass")), strict=True))
    np.testing.assert_array_equal(masks["E"], load("sobel_x").weights)
    np.testing.assert_array_equal(masks["S"], load("sobel_y").weights)
    for d in range(4):
        np.testing.assert_array_equal(masks[DIRECTIONS[d + 4]], -masks[DIRECTIONS[d]])


# ---------------------------------------------------------------------------
# Frei-Chen


def frei_chen_masks() -> np.ndarray:
    """The 9 masks as Frei and Chen (1977) define them, normalisations applied."""
    s = SQRT2
    edge = 1 / (2 * SQRT2)
    return np.array(
        [
            edge * np.array([[1, s, 1], [0, 0, 0], [-1, -s, -1]]),
            edge * np.array([[1, 0, -1], [s, 0, -s], [1, 0, -1]]),
            edge * np.array([[0, -1, s], [1, 0, -1], [-s, 1, 0]]),
            edge * np.array([[s, -1, 0], [-1, 0, 1], [0, 1, -s]]),
            np.array([[0, 1, 0], [-1, 0, -1], [0, 1, 0]]) / 2,
            np.array([[-1, 0, 1], [0, 0, 0], [1, 0, -1]]) / 2,
            np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]]) / 6,
            np.array([[-2, 1, -2], [1, 4, 1], [-2, 1, -2]]) / 6,
            np.ones((3, 3)) / 3,
        ]
    )


def test_frei_chen_masks_and_orthonormality() -> None:
    k = load("frei_chen")
    assert k.weights.shape == (9, 1, 3, 3)
    assert k.combine == "stack"
    assert k.range == "offset"  # signed masks: 0 at mid-grey
    np.testing.assert_allclose(k.weights[:, 0], frei_chen_masks(), rtol=0, atol=1e-15)
    basis = k.weights.reshape(9, 9)
    np.testing.assert_allclose(basis @ basis.T, np.eye(9), atol=1e-14)


# ---------------------------------------------------------------------------
# Laplacians: centre negative, the mathematical d2/dx2 + d2/dy2


def test_laplacian_is_the_4_neighbour_second_derivative(image: np.ndarray) -> None:
    w = load("laplacian").weights
    np.testing.assert_array_equal(
        w, np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64)
    )
    theirs = ndimage.laplace(image, mode="reflect")
    ours = ndimage.correlate(image, w, mode="reflect")
    np.testing.assert_allclose(interior(ours, 3), interior(theirs, 3), atol=1e-12)
    # d2/dx2 + d2/dy2 of x^2 + y^2 is +4: the sign is the mathematical one
    rows, cols = np.mgrid[0:9, 0:9].astype(np.float64)
    np.testing.assert_allclose(correlate_valid(rows**2 + cols**2, w), 4.0)


def test_laplacian8_has_diagonals_and_the_same_sign() -> None:
    w = load("laplacian8").weights
    assert w[1, 1] == -8
    assert (np.delete(w.ravel(), 4) == 1).all()
    rows, cols = np.mgrid[0:9, 0:9].astype(np.float64)
    # 4 axial neighbours add 1 each, 4 diagonal ones add 2 each
    np.testing.assert_allclose(correlate_valid(rows**2 + cols**2, w), 12.0)


def test_against_opencv_laplacian(image_u8: np.ndarray) -> None:
    cv2 = pytest.importorskip("cv2")
    w = load("laplacian").weights
    ours = cv2.filter2D(image_u8, cv2.CV_64F, w)
    theirs = cv2.Laplacian(image_u8, cv2.CV_64F, ksize=1)
    np.testing.assert_allclose(interior(ours, 3), interior(theirs, 3), atol=1e-9)


# ---------------------------------------------------------------------------
# Parametric generators


def test_gaussian_sums_to_one_and_is_the_sampled_gaussian() -> None:
    w = load("gaussian:sigma=1.5,size=9").weights
    assert w.shape == (9, 9)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    t = np.arange(9) - 4.0
    g = np.exp(-(t**2) / (2 * 1.5**2))
    np.testing.assert_allclose(w, np.outer(g, g) / np.outer(g, g).sum(), rtol=1e-12)
    np.testing.assert_array_equal(w, w.T)
    np.testing.assert_array_equal(w, w[::-1, ::-1])


def test_box_is_uniform() -> None:
    w = load("box:size=5").weights
    assert w.shape == (5, 5)
    np.testing.assert_allclose(w, np.full((5, 5), 1 / 25), rtol=1e-15)


def test_binomial_is_pascals_triangle() -> None:
    w = load("binomial:size=5").weights
    row = np.array([1.0, 4.0, 6.0, 4.0, 1.0])
    np.testing.assert_allclose(w, np.outer(row, row) / 256, rtol=1e-15)


@pytest.mark.parametrize("spec", ["log:sigma=1.4", "log:sigma=2,size=15"])
def test_log_sums_to_zero_with_the_laplacians_sign(spec: str) -> None:
    w = load(spec).weights
    assert abs(w.sum()) <= 1e-12 * np.abs(w).sum()
    centre = w[w.shape[0] // 2, w.shape[1] // 2]
    assert centre < 0  # like laplacian.txt and scipy.ndimage.gaussian_laplace
    assert centre == w.min()
    np.testing.assert_allclose(w, w.T, atol=1e-15)


def test_dog_sums_to_zero() -> None:
    w = load("dog:sigma1=1,sigma2=2").weights
    assert abs(w.sum()) <= 1e-12 * np.abs(w).sum()


def test_unsharp_sums_to_one() -> None:
    w = load("unsharp:sigma=1,amount=1.5").weights
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    centre = w[w.shape[0] // 2, w.shape[1] // 2]
    assert centre == w.max()
    assert centre > 1


def test_motion_is_a_uniform_line() -> None:
    w = load("motion:length=7,angle=0").weights
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    assert (w >= 0).all()
    lit = np.argwhere(w > 0)
    assert len(set(lit[:, 0])) == 1, "angle 0 is a horizontal line"
    assert len(lit) == 7
    np.testing.assert_allclose(w[w > 0], 1 / 7, rtol=1e-15)
