"""convcli plan: the shapes, costs and receptive fields of a stack of CNN layers.

The numbers are checked three ways: against published counts (LeNet-5, AlexNet,
VGG16, the cs231n example), against formulas written again here, and the
receptive field against a brute-force walk of which input pixels each output
reads, one axis at a time.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from convcli.cli import app
from convcli.netplan import (
    NETS,
    USAGE,
    Plan,
    PlanError,
    make_plan,
    net_plan,
    parse_layer,
    read_plan,
    tconv_reach,
)

ENV = {"COLUMNS": "160", "NO_COLOR": "1", "TERM": "dumb"}
CONV1_JSON = {
    "layer": "conv:96,11,s=4",
    "output": [55, 55, 96],
    "params": 34944,
    "macs": 105415200,
    "receptive_field": 11,
    "jump": 4,
}
LENET = "32x32x1 conv:6,5 pool:2 conv:16,5 pool:2 flatten fc:120 fc:84 fc:10".split()


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


# ---------------------------------------------------------------------------
# The checked numbers


def shapes(text: str) -> list[tuple[int, ...]]:
    return [tuple(int(n) for n in shape.split("x")) for shape in text.split()]


def outputs(plan: Plan) -> list[tuple[int, ...]]:
    return [row.output for row in plan.rows]


def test_lenet5_as_written_has_61706_parameters() -> None:
    plan = make_plan(LENET[0], LENET[1:])
    assert plan.total_params == 61_706
    assert outputs(plan) == shapes(
        "28x28x6 14x14x6 10x10x16 5x5x16 1x1x400 1x1x120 1x1x84 1x1x10"
    )
    assert [row.params for row in plan.rows] == [156, 0, 2416, 0, 0, 48120, 10164, 850]
    assert net_plan("lenet5").to_json() == plan.to_json()


def test_alexnet_first_layer() -> None:
    (row,) = make_plan("227x227x3", ["conv:96,11,s=4"]).rows
    assert row.output == (55, 55, 96)
    assert row.params == 34_944
    assert row.macs == 105_415_200
    assert row.formula == "(227 - 11 + 2*0)/4 + 1 = 55"
    assert row.receptive_field == (11, 11)
    assert row.jump == (4, 4)
    assert row.warnings == ()


def test_alexnet_net() -> None:
    plan = net_plan("alexnet")
    assert plan.input == (227, 227, 3)
    assert outputs(plan) == shapes(
        "55x55x96 27x27x96 27x27x256 13x13x256 13x13x384 13x13x384 13x13x256 6x6x256 "
        "1x1x9216 1x1x4096 1x1x4096 1x1x1000"
    )
    assert plan.total_params == 62_378_344  # the single-tower AlexNet's 62.4 M
    assert plan.rows[7].receptive_field == (195, 195)  # pool5
    assert plan.rows[7].jump == (32, 32)


def test_cs231n_example() -> None:
    (row,) = make_plan("5x5x3", ["conv:2,3,s=2,p=1"]).rows
    assert row.output == (3, 3, 2)
    assert row.params == 56  # 2 filters x 3*3*3 weights + 2 biases
    assert row.macs == 3 * 3 * 2 * 27
    assert row.formula == "(5 - 3 + 2*1)/2 + 1 = 3"
    assert net_plan("cs231n").rows == (row,)


def test_vgg16_has_138357544_parameters() -> None:
    plan = net_plan("vgg16")
    assert plan.total_params == 138_357_544
    kinds = [row.layer.split(":")[0] for row in plan.rows]
    assert kinds.count("conv") == 13
    assert kinds.count("pool") == 5
    assert kinds.count("fc") == 3
    assert plan.rows[-5].output == (7, 7, 512)  # pool5
    assert plan.rows[-5].receptive_field == (212, 212)  # the published value
    assert plan.total_macs == 15_470_264_320  # the often quoted 15.5 G


def test_depthwise_separable_block_against_the_full_conv() -> None:
    separable = make_plan("32x32x32", ["dwconv:3,p=1", "conv:64,1"])
    full = make_plan("32x32x32", ["conv:64,3,p=1"])
    dw, pw = separable.rows
    assert dw.output == (32, 32, 32)
    assert dw.params == 32 * 3 * 3 + 32
    assert pw.params == 64 * 32 + 64
    assert separable.total_params == 2_432
    assert full.total_params == 18_496  # 7.6 times the separable block
    assert dw.macs == 32 * 32 * 32 * 9
    assert pw.macs == 32 * 32 * 64 * 32
    assert full.total_macs == 32 * 32 * 64 * 32 * 9
    assert pw.receptive_field == full.rows[0].receptive_field == (3, 3)


def test_transposed_layer() -> None:
    (row,) = make_plan("4x4x8", ["tconv:4,3,s=2,p=1,op=1"]).rows
    assert row.output == (8, 8, 4)
    assert row.formula == "(4 - 1)*2 - 2*1 + (3 - 1) + 1 + 1 = 8"
    assert row.params == 8 * 4 * 3 * 3 + 4  # PyTorch's C x D/G x kh x kw + D
    assert row.macs == 4 * 4 * 8 * 4 * 9  # each input cell stamps a kernel
    assert row.receptive_field == (2, 2)
    assert row.jump == (0.5, 0.5)
    assert row.to_json()["jump"] == 0.5


# ---------------------------------------------------------------------------
# The formulas, written again


def conv_size(n: int, k: int, s: int, p: int, d: int) -> int:
    return math.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1


@pytest.mark.parametrize("seed", range(5))
def test_conv_rows_against_the_formulas(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(40):
        h, w, c = (int(v) for v in rng.integers(8, 40, size=3))
        d_out, kh, kw, s, p, dil = (int(v) for v in rng.integers(1, 5, size=6))
        g = int(rng.choice([g for g in (1, 2, 4) if c % g == 0]))
        depth = d_out * g
        spec = f"conv:{depth},{kh}x{kw},s={s},p={p},d={dil},g={g}"
        out_h, out_w = conv_size(h, kh, s, p, dil), conv_size(w, kw, s, p, dil)
        if min(out_h, out_w) < 1:
            with pytest.raises(PlanError, match="window does not fit"):
                make_plan(f"{h}x{w}x{c}", [spec])
            continue
        (row,) = make_plan(f"{h}x{w}x{c}", [spec]).rows
        assert row.output == (out_h, out_w, depth), spec
        assert row.params == depth * (c // g) * kh * kw + depth, spec
        assert row.macs == out_h * out_w * depth * (c // g) * kh * kw, spec


@pytest.mark.parametrize("seed", range(3))
def test_tconv_rows_against_the_formulas(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    for _ in range(40):
        h, w, c = (int(v) for v in rng.integers(2, 12, size=3))
        depth, k, s, dil = (int(v) for v in rng.integers(1, 5, size=4))
        p = int(rng.integers(0, 2))
        op = int(rng.integers(0, max(s, dil)))
        spec = f"tconv:{depth},{k},s={s},p={p},op={op},d={dil}"
        size = [(n - 1) * s - 2 * p + dil * (k - 1) + op + 1 for n in (h, w)]
        if min(size) < 1:
            with pytest.raises(PlanError, match="< 1"):
                make_plan(f"{h}x{w}x{c}", [spec])
            continue
        (row,) = make_plan(f"{h}x{w}x{c}", [spec]).rows
        assert row.output == (*size, depth), spec
        assert row.params == c * depth * k * k + depth, spec
        assert row.macs == h * w * c * depth * k * k, spec


def test_same_padding_is_tensorflows() -> None:
    # ceil(n / s), the total padding split with the smaller half before
    for n, k, s in [(28, 5, 2), (10, 4, 3), (7, 2, 1), (5, 1, 2), (9, 3, 3)]:
        (row,) = make_plan(f"{n}x{n}x1", [f"conv:1,{k},s={s},same"]).rows
        assert row.output[:2] == (-(-n // s),) * 2, (n, k, s)
    (row,) = make_plan("7x7x1", ["conv:1,2,same"]).rows  # total 1: 0 before, 1 after
    assert row.formula == "(7 - 2 + 0+1)/1 + 1 = 7"
    (row,) = make_plan("7x7x1", ["conv:1,2,valid"]).rows
    assert row.output == (6, 6, 1)


def test_pool_defaults_its_stride_to_its_size_and_has_no_parameters() -> None:
    plan = make_plan("9x9x4", ["pool:3", "pool:2,s=1,avg", "relu"])
    assert [row.output for row in plan.rows] == [(3, 3, 4), (2, 2, 4), (2, 2, 4)]
    assert plan.total_params == plan.total_macs == 0
    assert parse_layer("pool:2,avg").mode == "avg"
    assert parse_layer("pool:2").mode == "max"


def test_fc_on_a_volume_flattens_it() -> None:
    implicit = make_plan("6x6x256", ["fc:4096"])
    explicit = make_plan("6x6x256", ["flatten", "fc:4096"])
    assert implicit.total_params == explicit.total_params == 9216 * 4096 + 4096
    assert implicit.rows[0].formula == "6*6*256 = 9,216 inputs"
    assert implicit.rows[0].receptive_field == (6, 6)  # the whole input


def test_pairs() -> None:
    (row,) = make_plan("10x12x3", ["conv:8,3x5,s=1x2,p=1x2,d=1x2"]).rows
    out_h, out_w = conv_size(10, 3, 1, 1, 1), conv_size(12, 5, 2, 2, 2)
    assert row.output == (out_h, out_w, 8)
    assert row.params == 8 * 3 * 3 * 5 + 8
    assert row.receptive_field == (3, 9)  # 2*(5-1)+1 columns
    assert row.jump == (1, 2)
    assert row.formula.splitlines() == [
        f"H: (10 - 3 + 2*1)/1 + 1 = {out_h}",
        f"W: floor((12 - (2*(5-1)+1) + 2*2)/2) + 1 = {out_w}",
    ]
    assert row.to_json()["receptive_field"] == [3, 9]
    assert row.to_json()["jump"] == [1, 2]


def test_a_stride_that_does_not_divide_warns_and_floors() -> None:
    (row,) = make_plan("28x28x6", ["conv:16,5,s=2"]).rows
    assert row.output == (12, 12, 16)
    assert row.formula == "floor((28 - 5 + 2*0)/2) + 1 = 12"
    (warning,) = row.warnings
    assert warning.startswith(
        "conv:16,5,s=2: (28 - 5 + 2*0)/2 = 11.5 is not an integer"
    )
    assert "the last row and the last column of the 28x28 input never enter" in warning
    (row,) = make_plan("28x30x6", ["conv:16,5,s=3"]).rows
    rows_warning, cols_warning = row.warnings  # 23/3 and 25/3
    assert "= 7.667... is not an integer: the last 2 rows of the 28x30" in rows_warning
    assert "= 8.333... is not an integer: the last column of" in cols_warning
    (row,) = make_plan("28x28x6", ["conv:16,5,s=2,p=1"]).rows
    assert "padding only, no input value is lost" in row.warnings[0]
    assert make_plan("28x28x6", ["conv:16,4,s=2"]).rows[0].warnings == ()


# ---------------------------------------------------------------------------
# The receptive field, by brute force on one axis


def conv_reads(n: int, k: int, s: int, p: int, d: int) -> list[set[int]]:
    """For each output of a conv on an axis of n cells: the cells it reads."""
    return [
        {o * s - p + t * d for t in range(k)} & set(range(n))
        for o in range(conv_size(n, k, s, p, d))
    ]


def tconv_reads(n: int, k: int, s: int, p: int, d: int, op: int) -> list[set[int]]:
    """For each output of a tconv: the input cells that stamp onto it."""
    reads: list[set[int]] = [
        set() for _ in range((n - 1) * s - 2 * p + d * (k - 1) + op + 1)
    ]
    for i in range(n):
        for t in range(k):
            if 0 <= i * s - p + t * d < len(reads):
                reads[i * s - p + t * d].add(i)
    return reads


def through(pixels: list[set[int]], reads: list[set[int]]) -> list[set[int]]:
    """The input pixels each output depends on, one layer further."""
    return [set().union(*(pixels[i] for i in cells)) for cells in reads]


def widest(pixels: list[set[int]]) -> int:
    return max(max(p) - min(p) + 1 for p in pixels if p)


@pytest.mark.parametrize("seed", range(6))
def test_receptive_field_and_jump_by_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n0 = 120
    for _ in range(30):
        pixels, n, specs = [{i} for i in range(n0)], n0, []
        for _ in range(int(rng.integers(1, 5))):
            k, s, d = (int(v) for v in rng.integers(1, 4, size=3))
            p = int(rng.integers(0, 3))
            if rng.random() < 0.3:
                specs.append(f"pool:{k},s={s}")
                reads = conv_reads(n, k, s, 0, 1)
            else:
                specs.append(f"conv:1,{k},s={s},p={p},d={d}")
                reads = conv_reads(n, k, s, p, d)
            if len(reads) < 6:
                break
            pixels, n = through(pixels, reads), len(reads)
        else:
            row = make_plan(f"{n0}x{n0}x1", specs).rows[-1]
            assert row.receptive_field[0] == widest(pixels), specs
            middle = len(pixels) // 2
            assert row.jump[0] == min(pixels[middle + 1]) - min(pixels[middle]), specs


def test_tconv_receptive_field_by_brute_force() -> None:
    for k in range(1, 7):
        for s in range(1, 5):
            for d in range(1, 4):
                pixels = tconv_reads(40, k, s, 1, d, 0)
                assert tconv_reach(k, s, d) == widest(pixels), (k, s, d)
    # a conv stack then a tconv: exact; after the tconv, the average (marked)
    pixels = [{i} for i in range(60)]
    pixels = through(pixels, conv_reads(60, 3, 2, 1, 1))
    pixels = through(pixels, tconv_reads(30, 4, 2, 1, 1, 0))
    plan = make_plan("60x60x1", ["conv:1,3,s=2,p=1", "tconv:1,4,s=2,p=1", "conv:1,3"])
    assert plan.rows[1].receptive_field[0] == widest(pixels)
    assert not plan.rows[1].approximate
    assert plan.rows[2].approximate
    assert not make_plan("8x8x1", ["tconv:1,3,s=2", "fc:2"]).rows[1].approximate


# ---------------------------------------------------------------------------
# Bad specs


# The last layer of each stack is the bad one.
BAD_STACKS = [
    ("conv:0,3", r"D \(the number of filters\) must be at least 1; got 0"),
    (
        "conv:3,99",
        r"a 99x99 window does not fit in the 5x5 input: .* would be -93 x -93",
    ),
    ("conv:3,9,p=1", r"a 9x9 window does not fit in the 5x5 input padded to 7x7"),
    ("pool:2,s=0", r"s \(the stride\) must be at least 1; got 0"),
    (
        "relu bogus:3",
        r"unknown layer 'bogus'; the layers are conv, dwconv, tconv, pool",
    ),
    ("conv:4,3,g=2", r"g=2 groups must divide the 3 input channels"),
    ("conv:6,3 conv:3,1,g=2", r"g=2 groups must divide the 3 filters \(D\)"),
    ("conv:3,x", r"K \(the kernel size\) must be N or ROWSxCOLS; got 'x'"),
    ("conv:3,y", r"K \(the kernel size\) must be a whole number; got 'y'"),
    ("conv:3,3x3x3", r"K \(the kernel size\) must be N or ROWSxCOLS; got '3x3x3'"),
    ("conv:3,3,,", r"an empty item between commas; write conv:D,K"),
    ("pool:2,max,avg", r"the pool's max or avg is given twice"),
    ("conv:3,-1", r"K \(the kernel size\) must be a whole number; got '-1'"),
    ("conv:3,3,q=1", r"conv takes s=, p=, d=, g=, not 'q'"),
    ("conv:3", r"conv takes 2 numbers \(D,K\) before its options; got 1"),
    ("relu:3", r"relu takes no number before its options; got 1"),
    ("fc:10,s=2", r"fc takes no key=value, not 's'"),
    ("conv:3,3,s=1,s=2", r"s \(the stride\) is given twice"),
    ("conv:s=2,3,3", r"'3' comes after a key=value"),
    ("fc:" + "9" * 40, r"N \(the number of outputs\) must be at most 1,000,000,000"),
    ("tconv:3,3,op=1", r"op \(the output padding\) must be smaller than the stride"),
    ("tconv:3,3,same", r"tconv takes p=N or p=ROWSxCOLS, not same"),
    ("tconv:3,1,p=3", r"\(5 - 1\)\*1 - 2\*3 \+ \(1 - 1\) \+ 0 \+ 1 = -1 < 1"),
    ("pool:6", r"a 6x6 window does not fit in the 5x5 input"),
    ("flatten pool:2", r"a 2x2 window does not fit in the 1x1 input"),
]


@pytest.mark.parametrize(("stack", "message"), BAD_STACKS)
def test_bad_layers_name_the_layer_and_the_reason(stack: str, message: str) -> None:
    layers = stack.split()
    where = re.escape(f"layer {len(layers)} ({layers[-1][:57]}")
    with pytest.raises(PlanError, match=f"^{where}.*: {message}"):
        make_plan("5x5x3", layers)
    with pytest.raises(PlanError, match=r"^layer 1 \(\): unknown layer ''"):
        make_plan("5x5x3", [""])


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("5x5", r"the input must be HxWxC, e.g. 32x32x3; got '5x5'"),
        ("0x5x3", r"H must be at least 1; got 0"),
        ("axbxc", r"H must be a whole number; got 'a'"),
    ],
)
def test_bad_inputs(given: str, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        make_plan(given, ["relu"])


def test_no_layers_and_too_big_outputs() -> None:
    with pytest.raises(PlanError, match="no layers after the input 5x5x3"):
        make_plan("5x5x3", [])
    with pytest.raises(PlanError, match="a plan takes sizes up to 1,000,000,000"):
        make_plan("100000x100000x3", ["flatten"])
    with pytest.raises(
        PlanError, match="the receptive field or the jump would be over"
    ):
        make_plan("1x1x1", ["conv:1,1,s=1000000000"] * 2)  # 1x1 stays 1x1
    with pytest.raises(PlanError, match="the jump would be under 1/1,000,000,000 of"):
        make_plan("1x1x1", ["tconv:1,1,s=1000000000"] * 2)
    with pytest.raises(PlanError, match="layers is too many"):
        make_plan("5x5x3", ["relu"] * 10_001)


def test_every_usage_line_parses() -> None:
    assert set(USAGE) == {"conv", "dwconv", "tconv", "pool", "relu", "flatten", "fc"}
    layer = parse_layer("CONV:8, 3x5, S=1x2, same")  # case and spaces do not matter
    assert (layer.kind, layer.kernel, layer.stride, layer.padding) == (
        "conv",
        (3, 5),
        (1, 2),
        "same",
    )


def test_read_plan_skips_comments_and_names_the_line() -> None:
    text = "# LeNet-5\n\n32x32x1   # the input\nconv:6,5\npool:2 # subsample\n"
    plan = read_plan(text, "lenet.txt")
    assert [row.output for row in plan.rows] == [(28, 28, 6), (14, 14, 6)]
    with pytest.raises(PlanError, match=r"^lenet\.txt:4: layer 1 \(conv:0,5\): D"):
        read_plan(text.replace("conv:6,5", "conv:0,5"), "lenet.txt")
    with pytest.raises(PlanError, match=r"^lenet\.txt:3: the input must be HxWxC"):
        read_plan(text.replace("32x32x1", "32x32"), "lenet.txt")
    with pytest.raises(PlanError, match=r"^empty\.txt: no input"):
        read_plan("# nothing\n\n", "empty.txt")


def test_json_is_strict_and_has_exactly_the_keys() -> None:
    doc = make_plan("227x227x3", ["conv:96,11,s=4"]).to_json()
    assert json.loads(json.dumps(doc, allow_nan=False)) == {
        "input": [227, 227, 3],
        "layers": [CONV1_JSON],
        "total_params": 34944,
        "total_macs": 105415200,
    }


def test_unknown_net_lists_the_known_ones() -> None:
    with pytest.raises(
        PlanError,
        match="unknown net 'resnet'; the nets are lenet5, alexnet, vgg16, cs231n",
    ):
        net_plan("resnet")


# ---------------------------------------------------------------------------
# The command


def invoke(runner: CliRunner, *args: str, columns: int = 160) -> tuple[int, str, str]:
    result = runner.invoke(app, ["plan", *args], env={**ENV, "COLUMNS": str(columns)})
    return result.exit_code, result.stdout, result.stderr


def test_table_shows_the_numbers(runner: CliRunner) -> None:
    code, out, err = invoke(runner, *LENET)
    assert code == 0, out + err
    for text in [
        "28 x 28 x 6",
        "(32 - 5 + 2*0)/1 + 1 = 28",
        "48,120",
        "61,706",
        "416,520",
        "5*5*16 = 400",
        "total",
    ]:
        assert text in out, text
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}
    assert rows["conv:16,5"][-4:] == ["2,416", "240,000", "14", "2"]
    assert rows["fc:120"][-2:] == ["32", "32"]  # the whole 32x32 input


def test_json_output(runner: CliRunner) -> None:
    code, out, err = invoke(
        runner, "227x227x3", "conv:96,11,s=4", "pool:3,s=2", "--json"
    )
    assert code == 0, out + err
    doc = json.loads(out)
    assert set(doc) == {"input", "layers", "total_params", "total_macs"}
    assert doc["input"] == [227, 227, 3]
    first, pool = doc["layers"]
    assert first == CONV1_JSON
    assert pool["output"] == [27, 27, 96]
    assert pool["receptive_field"] == 19
    assert pool["jump"] == 8
    assert doc["total_params"] == 34944
    assert doc["total_macs"] == 105415200


def test_json_warnings_go_to_stderr(runner: CliRunner) -> None:
    code, out, err = invoke(runner, "28x28x6", "conv:16,5,s=2", "--json")
    assert code == 0, out + err
    assert json.loads(out)["layers"][0]["output"] == [12, 12, 16]
    assert "warning: conv:16,5,s=2: (28 - 5 + 2*0)/2 = 11.5 is not an integer" in err
    code, out, err = invoke(runner, "28x28x6", "conv:16,5,s=2")
    assert code == 0
    assert "warning: conv:16,5,s=2" in out


@pytest.mark.parametrize(
    ("name", "total"),
    [
        ("lenet5", "61,706"),
        ("alexnet", "62,378,344"),
        ("vgg16", "138,357,544"),
        ("cs231n", "56"),
    ],
)
def test_each_net(runner: CliRunner, name: str, total: str) -> None:
    code, out, err = invoke(runner, "--net", name)
    assert code == 0, out + err
    assert NETS[name].description in out
    (line,) = [line for line in out.splitlines() if line.startswith("total")]
    assert line.split()[1] == total
    code, out, err = invoke(runner, "--net", name, "--json")
    assert code == 0, out + err
    assert json.loads(out) == net_plan(name).to_json()


def test_list_nets_and_help_name_every_net(runner: CliRunner) -> None:
    code, out, _ = invoke(runner, "--list-nets")
    assert code == 0
    for name in NETS:
        assert name in out
    assert "138,357,544" in out
    result = runner.invoke(app, ["plan", "--help"], env=ENV)
    assert result.exit_code == 0
    for name in NETS:
        assert name in result.output


def test_layers_file(runner: CliRunner, tmp_path: Path) -> None:
    layers = tmp_path / "layers.txt"
    layers.write_text(
        "# LeNet-5, one layer a line\n32x32x1\n\nconv:6,5   # C1\npool:2\n"
        "conv:16,5\npool:2\nflatten\nfc:120\nfc:84\nfc:10  # the classes\n",
        encoding="utf-8",
    )
    code, out, err = invoke(runner, "-f", str(layers), "--json")
    assert code == 0, out + err
    assert json.loads(out) == make_plan(LENET[0], LENET[1:]).to_json()
    code, out, err = invoke(runner, "--file", str(layers))
    assert code == 0, out + err
    assert "61,706" in out
    assert "layers.txt" in out  # the title


def test_layers_from_stdin(runner: CliRunner) -> None:
    result = runner.invoke(
        app, ["plan", "-f", "-", "--json"], input="5x5x3\nconv:2,3,s=2,p=1\n", env=ENV
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["total_params"] == 56


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("5x5x3 conv:3,99", "layer 1 (conv:3,99): a 99x99 window does not fit"),
        ("5x5x3 conv:0,3", "layer 1 (conv:0,3): D (the number of filters) must be"),
        ("5x5x3 pool:2,s=0", "layer 1 (pool:2,s=0): s (the stride) must be at least 1"),
        ("garbage", "the input must be HxWxC"),
        ("5x5x3 nonsense", "layer 1 (nonsense): unknown layer 'nonsense'"),
        ("5x5x3", "no layers after the input 5x5x3"),
        ("", "give one of INPUT LAYER..., --net NAME or -f FILE; got none"),
        ("--net lenet5 32x32x1 relu", "give one of INPUT LAYER..., --net NAME or -f"),
        ("--net resnet", "unknown net 'resnet'; the nets are lenet5, alexnet"),
        ("-f /dev/zero", "/dev/zero: is not a regular file, not a layers file"),
        ("-f /no/such/layers.txt", "/no/such/layers.txt: cannot read: No such file"),
        ("5x5x3 fc:" + "9" * 5000, "layer 1 (fc:999"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    runner: CliRunner, args: str, message: str
) -> None:
    code, out, err = invoke(runner, *args.split())
    assert code == 2, out + err
    assert out == ""
    assert err.startswith(f"Error: {message}"), err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_empty_words_and_two_stacks_are_named(runner: CliRunner) -> None:
    for args, message in [
        (["--net", ""], "Error: unknown net ''; the nets are"),
        (["5x5x3", ""], "Error: layer 1 (): unknown layer ''"),
        (["--net", "vgg16", "-f", "x.txt"], "got --net and -f"),
        (["--net", "lenet5", "5x5x3", "relu"], "got INPUT LAYER... and --net"),
    ]:
        code, out, err = invoke(runner, *args)
        assert code == 2, out + err
        assert message in err


def test_bad_files_exit_2(runner: CliRunner, tmp_path: Path) -> None:
    cases = {
        "empty.txt": b"",
        "comments.txt": b"# only a comment\n",
        "binary.txt": b"\xff\xfe\x00garbage",
        "bad.txt": b"32x32x1\nconv:6,5\nconv:6,99\n",
    }
    messages = {
        "empty.txt": "empty.txt: no input",
        "comments.txt": "comments.txt: no input",
        "binary.txt": "binary.txt: not UTF-8 text",
        "bad.txt": "bad.txt:3: layer 2 (conv:6,99): a 99x99 window does not fit in the 28x28 input",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        code, _, err = invoke(runner, "-f", str(tmp_path / name))
        assert code == 2, name
        assert messages[name] in err, err
        assert len(err.strip().splitlines()) == 1
    code, _, err = invoke(runner, "-f", str(tmp_path))
    assert code == 2
    assert "is a folder, not a layers file" in err
    (tmp_path / "big.txt").write_bytes(b"# " + b"x" * (1 << 20) + b"\n")
    code, _, err = invoke(runner, "-f", str(tmp_path / "big.txt"))
    assert code == 2
    assert "larger than 1,048,576 bytes" in err


@pytest.mark.parametrize(
    "args",
    [
        ["--net", "alexnet"],
        ["--net", "vgg16"],
        ["28x29x6", "conv:16,5,s=2", "conv:8,3x5,s=1x2,same", "tconv:4,3,s=2,p=1,op=1"],
        ["--list-nets"],
    ],
)
def test_80_columns(args: list[str]) -> None:
    # A process of its own: the console takes its width when it is made.
    result = subprocess.run(
        [sys.executable, "-m", "convcli", "plan", *args],
        env={**os.environ, **ENV, "COLUMNS": "80"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert len(lines) > 5
