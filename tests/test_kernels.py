"""Kernel parsing: every format, every error message, generators, the user folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import convcli
from convcli import Kernel, KernelError, load_kernel
from convcli.kernels import (
    GENERATORS,
    KERNEL_PATH_ENV,
    MAX_FILE_BYTES,
    parse_inline,
    parse_json,
    parse_text,
)

SOBEL_X = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------
# The text format


def test_text_with_every_header_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "gauss3.txt",
        "# a comment line\n"
        "name: gaussian3\n"
        "description: 3x3 Gaussian blur\n"
        "origin: the textbook\n"
        "scale: 1/16            # multiplies every weight\n"
        "bias: 0.5\n"
        "combine: sum\n"
        "range: clip\n"
        "1 2 1\n"
        "2\t4\t2   # tabs\n"
        "1,2,1     # commas\n",
    )
    k = load_kernel(str(path))
    assert isinstance(k, Kernel)
    assert k.name == "gaussian3"
    assert k.description == "3x3 Gaussian blur"
    assert k.origin == "the textbook"
    assert k.bias == (0.5,)
    assert (k.combine, k.range) == ("sum", "clip")
    np.testing.assert_array_equal(k.weights, np.outer([1, 2, 1], [1, 2, 1]) / 16)
    assert k.weights.dtype == np.float64
    assert k.source == str(path)
    assert not k.is_bank


def test_numbers_ints_floats_exponents_fractions() -> None:
    k = parse_text("1 -2.5 1e-3 +.5\n1/9 -3/4 2.0/8 0\n")
    np.testing.assert_allclose(
        k.weights, [[1, -2.5, 1e-3, 0.5], [1 / 9, -0.75, 0.25, 0]]
    )


def test_channel_slices_and_a_bank(tmp_path: Path) -> None:
    text = (
        "combine: magnitude\n"
        "bias: 1 2\n"
        "--- gx\n"
        "-1 0 1\n-2 0 2\n-1 0 1\n"
        "\n"
        "0 0 0\n0 1 0\n0 0 0\n"
        "--- gy\n"
        "-1 -2 -1\n0 0 0\n1 2 1\n"
        "\n\n"
        "0 0 0\n0 2 0\n0 0 0\n"
    )
    k = load_kernel(str(write(tmp_path, "bank.txt", text)))
    assert k.weights.shape == (2, 2, 3, 3)
    assert k.is_bank
    assert k.filter_names == ("gx", "gy")
    assert k.bias == (1.0, 2.0)
    np.testing.assert_array_equal(k.weights[0, 0], SOBEL_X)
    np.testing.assert_array_equal(k.weights[1, 1], np.diag([0, 2, 0]))


def test_a_single_filter_with_slices_is_a_bank_of_one() -> None:
    k = parse_text("1 2\n3 4\n\n5 6\n7 8\n")
    assert k.weights.shape == (1, 2, 2, 2)


def test_bias_one_value_is_given_to_every_filter() -> None:
    k = parse_text("bias: 3\n--- a\n1\n--- b\n2\n")
    assert k.bias == (3.0, 3.0)


# ---------------------------------------------------------------------------
# Malformed kernels: every error names the file, the line and what was expected


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("1 2 3\n4 5\n", r"bad\.txt:2: row has 2 values, expected 3"),
        ("1 2\n3 x\n", r"bad\.txt:2:3: 'x' is not a number"),
        ("1 2\n3 nan\n", r"bad\.txt:2:3: weight 'nan' is not finite"),
        ("1 inf\n", r"bad\.txt:1:3: weight 'inf' is not finite"),
        ("1 1/0\n", r"bad\.txt:1:3: '1/0' divides by zero"),
        ("# only a comment\n\n", r"bad\.txt: no weights found"),
        ("name: empty\n", r"bad\.txt: no weights found"),
        (
            "nmae: x\n1\n",
            r"bad\.txt:1: unknown header key 'nmae' \(did you mean 'name'\?\)",
        ),
        (
            "colour: red\n1\n",
            r"bad\.txt:1: unknown header key 'colour'; expected one of name",
        ),
        ("name: a\nname: b\n1\n", r"bad\.txt:2: header key 'name' given twice"),
        ("1 2\nscale: 2\n", r"bad\.txt:2: header line 'scale' after the weights"),
        ("scale: x\n1\n", r"bad\.txt:1: 'x' is not a number"),
        (
            "bias: 1 2 3\n--- a\n1\n--- b\n2\n",
            r"bad\.txt:1: bias has 3 values, expected 1 or 2",
        ),
        (
            "combine: mean\n1\n",
            r"bad\.txt:1: combine 'mean' is not one of magnitude, sum, max, stack",
        ),
        (
            "range: wrap\n1\n",
            r"bad\.txt:1: range 'wrap' is not one of clip, abs, rescale, offset, gain",
        ),
        ("1 2\n3 4\n\n1 2\n", r"bad\.txt:4: slice has 1 rows, expected 2"),
        ("--- a\n1 2\n--- b\n1 2 3\n", r"bad\.txt:4: row has 3 values, expected 2"),
        (
            "--- a\n1\n\n2\n--- b\n1\n",
            r"bad\.txt:6: filter 'b' has 1 channel slices, expected 2",
        ),
        ("--- a\n1\n--- b\n", r"bad\.txt:3: filter 'b' has no weights"),
    ],
)
def test_malformed_text_kernels(tmp_path: Path, text: str, pattern: str) -> None:
    path = write(tmp_path, "bad.txt", text)
    with pytest.raises(KernelError, match=pattern):
        load_kernel(str(path))


def test_a_file_too_large_to_be_a_kernel(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    path.write_text("1 " * (MAX_FILE_BYTES // 2 + 10), encoding="utf-8")
    with pytest.raises(
        KernelError, match=r"huge\.txt: \d+ bytes is too large to be a kernel file"
    ):
        load_kernel(str(path))


def test_a_binary_file_is_not_a_kernel(tmp_path: Path) -> None:
    path = tmp_path / "photo.txt"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    with pytest.raises(KernelError, match=r"photo\.txt: not a text kernel file"):
        load_kernel(str(path))


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KernelError, match=r"nope\.txt: no such kernel file"):
        load_kernel(str(tmp_path / "nope.txt"))


def test_kernel_error_is_a_value_error() -> None:
    assert issubclass(KernelError, ValueError)
    assert issubclass(KernelError, convcli.ConvcliError)


# ---------------------------------------------------------------------------
# JSON and .npy


def test_json_spec_example(tmp_path: Path) -> None:
    doc = {
        "name": "sobel",
        "combine": "magnitude",
        "filters": [
            {"name": "gx", "weights": SOBEL_X},
            {"name": "gy", "weights": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]]},
        ],
        "bias": [0, 0],
        "scale": 1,
    }
    k = load_kernel(str(write(tmp_path, "s.json", json.dumps(doc))))
    assert k.weights.shape == (2, 1, 3, 3)
    assert k.filter_names == ("gx", "gy")
    assert k.combine == "magnitude"
    np.testing.assert_array_equal(k.weights[0, 0], SOBEL_X)


def test_json_three_d_weights_and_a_plain_weights_key() -> None:
    k = parse_json(json.dumps({"filters": [{"weights": [[[1, 2]], [[3, 4]]]}]}))
    assert k.weights.shape == (1, 2, 1, 2)
    k2 = parse_json(json.dumps({"weights": [[1, 2], [3, 4]], "scale": "1/2"}))
    np.testing.assert_array_equal(k2.weights, [[0.5, 1], [1.5, 2]])


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("{", r"k\.json:1:2: not valid JSON"),
        ("[1, 2]", r"k\.json: expected a JSON object"),
        ('{"weights": [[1, 2], [3]]}', r"k\.json: weights: not a rectangular array"),
        ('{"weights": [[1, "a"]]}', r"k\.json: weights: not a rectangular array"),
        (
            '{"weights": [1, 2]}',
            r"k\.json: weights: expected a non-empty 2-D or 4-D array",
        ),
        (
            '{"filters": [{"weights": [[1]]}, {"weights": [[1, 2]]}]}',
            r"filters\[1\]\.weights has shape \(1, 1, 2\), expected \(1, 1, 1\)",
        ),
        ('{"filters": []}', r"'filters' must be a non-empty list"),
        ('{"weights": [[1]], "colour": 1}', r"unknown key 'colour'"),
        (
            '{"filters": [{"name": "a"}]}',
            r"filters\[0\] must be an object with 'weights'",
        ),
        ('{"name": "a"}', r"expected 'filters' or 'weights'"),
    ],
)
def test_malformed_json(tmp_path: Path, text: str, pattern: str) -> None:
    with pytest.raises(KernelError, match=pattern):
        load_kernel(str(write(tmp_path, "k.json", text)))


def test_json_nan_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KernelError, match=r"weights must be finite"):
        load_kernel(str(write(tmp_path, "k.json", '{"weights": [[1, NaN]]}')))


def test_npy_two_and_four_d(tmp_path: Path) -> None:
    np.save(tmp_path / "a.npy", np.array(SOBEL_X, dtype=np.int16))
    np.save(tmp_path / "b.npy", np.ones((3, 2, 5, 5), dtype=np.float32))
    assert load_kernel(str(tmp_path / "a.npy")).weights.shape == (3, 3)
    b = load_kernel(tmp_path / "b.npy")
    assert b.weights.shape == (3, 2, 5, 5)
    assert b.filter_names == ("f0", "f1", "f2")


def test_npy_never_unpickles(tmp_path: Path) -> None:
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(KernelError, match=r"obj\.npy: not a readable \.npy array"):
        load_kernel(str(tmp_path / "obj.npy"))


def test_npy_wrong_rank_or_nan(tmp_path: Path) -> None:
    np.save(tmp_path / "v.npy", np.ones(3))
    np.save(tmp_path / "n.npy", np.array([[1.0, np.nan]]))
    with pytest.raises(
        KernelError, match=r"v\.npy: expected a non-empty 2-D or 4-D array"
    ):
        load_kernel(str(tmp_path / "v.npy"))
    with pytest.raises(KernelError, match=r"n\.npy: weights must be finite"):
        load_kernel(str(tmp_path / "n.npy"))


# ---------------------------------------------------------------------------
# Inline matrices and ImageMagick strings


def test_inline_matrices() -> None:
    np.testing.assert_array_equal(
        load_kernel("0,-1,0;-1,5,-1;0,-1,0").weights,
        [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    )
    np.testing.assert_array_equal(
        load_kernel("1 2 1; 2 4 2").weights, [[1, 2, 1], [2, 4, 2]]
    )
    np.testing.assert_array_equal(load_kernel("-1,0,1").weights, [[-1, 0, 1]])
    np.testing.assert_array_equal(load_kernel("1/9").weights, [[1 / 9]])


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ("1,2;3", r"inline kernel '1,2;3': row 2 has 1 values, expected 2"),
        ("1,2;;3,4", r"row 2 is empty"),
        ("1,x;3,4", r"inline kernel row 1: 'x' is not a number"),
        ("1,nan", r"weight 'nan' is not finite"),
        ("", r"empty kernel spec"),
    ],
)
def test_malformed_inline(spec: str, pattern: str) -> None:
    with pytest.raises(KernelError, match=pattern):
        load_kernel(spec)


def test_imagemagick_strings() -> None:
    k = load_kernel("3x3: 0,-1,0 -1,5,-1 0,-1,0")
    np.testing.assert_array_equal(k.weights, [[0, -1, 0], [-1, 5, -1], [0, -1, 0]])
    assert k.source == "imagemagick"
    wide = load_kernel("3x1+1+0: 1 2 3")
    np.testing.assert_array_equal(wide.weights, [[1, 2, 3]])
    square = load_kernel("3: 1 2 1 2 4 2 1 2 1")
    assert square.weights.shape == (3, 3)
    # ImageMagick's nan marks a position outside the neighbourhood: 0 here.
    np.testing.assert_array_equal(load_kernel("2x1: nan 1").weights, [[0, 1]])


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ("3x3: 1 2", r"has 2 values, expected 3x3 = 9"),
        (
            "3x3+0+0: 1 2 3 4 5 6 7 8 9",
            r"origin \+0\+0 is off-centre; convcli anchors a 3x3 kernel at \+1\+1",
        ),
        ("2x1: 1 q", r"'q' is not a number"),
    ],
)
def test_malformed_imagemagick(spec: str, pattern: str) -> None:
    with pytest.raises(KernelError, match=pattern):
        parse_inline(spec)


# ---------------------------------------------------------------------------
# Names, parameters and generators


def test_unknown_name_suggests_close_names() -> None:
    with pytest.raises(
        KernelError, match=r"unknown kernel 'gausian'; did you mean gaussian"
    ):
        load_kernel("gausian")
    with pytest.raises(KernelError, match=r"`convcli kernels` lists them all"):
        load_kernel("zzzqqq")


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ("gaussian:sigma=-1", r"gaussian:sigma=-1: sigma must be > 0; got -1"),
        (
            "gaussian:sigm=2",
            r"unknown parameter 'sigm' of gaussian; expected sigma, size",
        ),
        ("gaussian:sigma", r"unknown parameter 'sigma' of gaussian"),
        ("box:size=2.5", r"size must be a whole number from 1 to 255; got 2.5"),
        ("box:size=0", r"size must be a whole number from 1 to 255; got 0"),
        ("log:sigma=abc", r"log:sigma=abc: sigma: 'abc' is not a number"),
        ("motion:length=1", r"length must be a whole number from 2 to 255"),
        ("dog:sigma1=0", r"sigma1 must be > 0"),
    ],
)
def test_bad_parameters(spec: str, pattern: str) -> None:
    with pytest.raises(KernelError, match=pattern):
        load_kernel(spec)


def test_generators_keep_their_definitions() -> None:
    g = load_kernel("gaussian:sigma=1.5")
    assert g.weights.shape == (11, 11)  # 2*ceil(3*1.5)+1
    assert g.weights.sum() == pytest.approx(1.0)
    assert g.rank == 1
    np.testing.assert_allclose(g.weights, g.weights.T)
    assert g.params == {"sigma": 1.5, "size": 0}
    box = load_kernel("box:size=4").weights
    np.testing.assert_array_equal(box, np.full((4, 4), 1 / 16))
    binomial = load_kernel("binomial:size=3").weights
    np.testing.assert_array_equal(binomial, np.outer([1, 2, 1], [1, 2, 1]) / 16)
    log = load_kernel("log:sigma=1.4").weights
    assert log.sum() == pytest.approx(0.0, abs=1e-12)
    assert (
        log[log.shape[0] // 2, log.shape[1] // 2] < 0
    )  # centre negative, like laplacian
    dog = load_kernel("dog:sigma1=1,sigma2=2").weights
    assert dog.sum() == pytest.approx(0.0, abs=1e-12)
    assert dog[dog.shape[0] // 2, dog.shape[1] // 2] > 0
    unsharp = load_kernel("unsharp:sigma=1,amount=0.5").weights
    assert unsharp.sum() == pytest.approx(1.0)
    motion = load_kernel("motion:length=5,angle=45").weights
    np.testing.assert_allclose(motion, np.fliplr(np.eye(5)) / 5)
    horizontal = load_kernel("motion:length=7").weights
    np.testing.assert_allclose(horizontal[3], np.full(7, 1 / 7))


def test_every_generator_has_a_description_and_origin() -> None:
    for name, gen in GENERATORS.items():
        k = load_kernel(name)
        assert k.name == name
        assert k.description
        assert k.origin
        assert k.range == gen.range


# ---------------------------------------------------------------------------
# Round trips and the user's kernel folder


def test_text_to_json_to_kernel_keeps_the_weights(tmp_path: Path) -> None:
    text = "name: pair\ncombine: magnitude\nbias: 1 2\n--- a\n1 2\n3 4\n\n5 6\n7 8\n--- b\n0 1\n1 0\n\n2 2\n2 2\n"
    first = load_kernel(str(write(tmp_path, "pair.txt", text)))
    doc = first.to_json()
    again = load_kernel(str(write(tmp_path, "pair.json", json.dumps(doc))))
    np.testing.assert_array_equal(again.weights, first.weights)
    assert (again.name, again.combine, again.bias, again.filter_names) == (
        first.name,
        first.combine,
        first.bias,
        first.filter_names,
    )


@pytest.mark.parametrize(
    "spec", ["0,-1,0;-1,5,-1;0,-1,0", "gaussian:sigma=0.8", "motion:length=5,angle=30"]
)
def test_round_trip_of_single_filters(tmp_path: Path, spec: str) -> None:
    first = load_kernel(spec)
    again = load_kernel(str(write(tmp_path, "k.json", json.dumps(first.to_json()))))
    np.testing.assert_array_equal(again.weights, first.weights)


def test_user_kernel_folder_joins_the_catalogue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "my_edge.txt", "description: mine\n1 0 -1\n")
    monkeypatch.setenv(KERNEL_PATH_ENV, str(tmp_path))
    k = load_kernel("my_edge")
    np.testing.assert_array_equal(k.weights, [[1, 0, -1]])
    names = [k.name for k in convcli.list_kernels()]
    assert "my_edge" in names
    assert "gaussian" in names


def test_a_path_wins_over_a_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "box", "7\n")
    np.testing.assert_array_equal(load_kernel("box").weights, [[7]])


def test_list_kernels_has_the_generators() -> None:
    names = {k.name for k in convcli.list_kernels()}
    assert set(GENERATORS) <= names
    for name in names:
        assert re.fullmatch(r"[a-z0-9_]+", name), name


def test_issue_5_inline_matrix_longer_than_a_file_name() -> None:
    # Path.is_file raises ENAMETOOLONG for text over the name limit (255 bytes)
    spec = ";".join([",".join(["1"] * 15)] * 15)
    assert len(spec) > 255
    assert load_kernel(spec).weights.shape == (15, 15)
