"""The --gif renderer of convcli trace: convcli.trace_gif.save_trace_gif and trace_frame.

Frames are read back as pixels and checked where `gif_layout` says each part is:
the window over the taps, in the channels the filter reads; the filter at work
framed; the output maps filling one value per frame.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import GifImagePlugin, Image, ImageDraw, ImageSequence
from typer.testing import CliRunner

from convcli.cli import app
from convcli.demos import load_demo
from convcli.images import ImageError
from convcli.trace_gif import (
    GIF_MAX_FRAME_PIXELS,
    LAST_FRAME_HOLD,
    TRACE_COLOURS,
    check_gif_size,
    gif_layout,
    save_trace_gif,
    trace_frame,
)
from convcli.trace_gif_layout import LINE, SUM_LINES_MAX, Box, GifLayout
from convcli.tracing import Trace, format_number, trace


def _demo_trace(name: str) -> Trace:
    demo = load_demo(name)
    return trace(demo.x, demo.w, demo.bias or None, **demo.options)


def _single() -> Trace:  # convcli trace -i '1,2,3;4,5,6;7,8,9' -k '1,0;0,-1'
    return trace(np.arange(1.0, 10.0).reshape(3, 3), [[1, 0], [0, -1]])


def _depthwise() -> Trace:  # a 2-D kernel on 3 channels: filter d reads channel d
    return trace(np.arange(27.0).reshape(3, 3, 3), [[1, 0], [0, -1]], bias=[1, 2, 3])


def _grouped() -> Trace:  # groups 2: filters 0, 1 read channels 0-1; 2, 3 read 2-3
    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, (4, 4, 4)).astype(float)
    w = rng.integers(-1, 2, (4, 2, 2, 2)).astype(float)
    return trace(x, w, bias=[1, 0, -1, 2], padding=1, stride=2, groups=2)


TRACES = {
    "cs231n": lambda: _demo_trace("cs231n"),
    "single": _single,
    "depthwise": _depthwise,
    "grouped": _grouped,
    "dilation": lambda: _demo_trace("dilation"),
}


def _gif_frames(path: Path) -> list[np.ndarray]:
    with Image.open(path) as gif:
        return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(gif)]


def _durations(path: Path) -> list[int]:
    with Image.open(path) as gif:
        return [f.info["duration"] for f in ImageSequence.Iterator(gif)]


def _fill(frame: np.ndarray, box: Box) -> str:
    """The name of the colour a cell is filled with (a pixel clear of lines and text)."""
    rgb = tuple(int(v) for v in frame[box[1] + 4, box[0] + 4])
    names = [k for k, v in TRACE_COLOURS.items() if v == rgb]
    assert names, f"{rgb} at {box} is none of TRACE_COLOURS"
    return names[0]


def _inked(frame: np.ndarray, box: Box) -> bool:
    """Whether a cell holds text: dark pixels inside its borders."""
    inside = frame[box[1] + 3 : box[3] - 2, box[0] + 3 : box[2] - 2]
    return bool((inside < 128).all(axis=2).any())


def _padding_mask(t: Trace) -> np.ndarray:
    top, _, left, _ = t.padding
    _, height, width = t.input.shape
    mask = np.ones(t.padded.shape[1:], dtype=bool)
    mask[top : top + height, left : left + width] = False
    return mask


def _boxes(layout: GifLayout) -> list[Box]:
    return [
        *(g.box for g in layout.inputs),
        *(f.box for f in layout.filters),
        *(g.box for g in layout.outputs),
    ]


# ---------------------------------------------------------------------------
# Frames: one per step, one size, the last one held


@pytest.mark.parametrize(
    ("name", "n_steps"),
    [("cs231n", 18), ("edge", 16), ("dilation", 9), ("seed", 1)],
)
def test_one_frame_per_step_looping(tmp_path: Path, name: str, n_steps: int) -> None:
    t = _demo_trace(name)
    assert len(t.steps) == n_steps
    out = save_trace_gif(tmp_path / "t.gif", t, title=name, frame_ms=500)
    assert out == tmp_path / "t.gif"
    with Image.open(out) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == n_steps
        assert gif.info["loop"] == 0  # forever
        sizes = {frame.size for frame in ImageSequence.Iterator(gif)}
    assert sizes == {check_gif_size(t, title=name)}
    # Every frame 500 ms; the last, the whole output, about 3x longer.
    assert _durations(out) == [500] * (n_steps - 1) + [LAST_FRAME_HOLD * 500]
    assert LAST_FRAME_HOLD == 3
    assert [p.name for p in tmp_path.iterdir()] == ["t.gif"]  # no temp file left


@pytest.mark.parametrize("name", ["cs231n", "depthwise", "grouped"])
def test_gif_frames_are_the_frames_drawn(tmp_path: Path, name: str) -> None:
    # The GIF draws its frames in order onto a base that keeps the output
    # values; trace_frame draws each one afresh. One fixed palette holds every
    # flat colour exactly and antialiased text within a few levels.
    t = TRACES[name]()
    frames = _gif_frames(save_trace_gif(tmp_path / "t.gif", t, title=name))
    assert len(frames) == len(t.steps)
    for i, frame in enumerate(frames):
        drawn = trace_frame(t, i, title=name)
        assert drawn.dtype == np.uint8
        assert drawn.shape == frame.shape
        diff = np.abs(frame.astype(int) - drawn.astype(int))
        assert diff.max() <= 6, i
        assert diff.mean() < 0.2, i
    for before, after in itertools.pairwise(frames):
        assert not np.array_equal(before, after)


def test_frames_share_one_size_with_long_terms() -> None:
    rng = np.random.default_rng(17)
    t = trace(
        rng.normal(size=(4, 4, 3)),  # its steps need 4 to 7 lines of arithmetic
        rng.normal(size=(2, 3, 3, 3)),
        bias=[0.5, -1.25],
        padding="same",
    )
    shapes = {
        trace_frame(t, i, title="floats " * 30).shape for i in range(len(t.steps))
    }
    assert len(shapes) == 1


# ---------------------------------------------------------------------------
# What a frame shows, where gif_layout puts it


@pytest.mark.parametrize("name", list(TRACES))
def test_the_layout_shows_every_channel_filter_and_map(name: str) -> None:
    t = TRACES[name]()
    layout = gif_layout(t, title=name)
    depth, c_in, kh, kw = t.weights.shape
    channels, pad_h, pad_w = t.padded.shape
    assert [(g.rows, g.cols) for g in layout.inputs] == [(pad_h, pad_w)] * channels
    assert len(layout.filters) == depth
    for d, block in enumerate(layout.filters):
        assert block.filter == d
        assert block.channels == tuple(t.channels_of(d))
        assert [(g.rows, g.cols) for g in block.slices] == [(kh, kw)] * c_in
        assert (block.bias.rows, block.bias.cols) == (1, 1)
    assert [(g.rows, g.cols) for g in layout.outputs] == [t.output.shape[1:]] * depth
    # Nothing overlaps, and everything is inside the frame.
    boxes = _boxes(layout)
    for a, b in itertools.combinations(boxes, 2):
        assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    for left, top, right, bottom in boxes:
        assert 0 <= left < right <= layout.width
        assert 0 <= top < bottom <= layout.height


def test_labels_name_channels_filters_and_maps() -> None:
    layout = gif_layout(_demo_trace("cs231n"))
    assert [g.label for g in layout.inputs] == ["x[:,:,0]", "x[:,:,1]", "x[:,:,2]"]
    assert layout.filters[1].heading == ("Filter w1 (3x3x3)",)
    assert [g.label for g in layout.filters[1].slices] == [
        "w1[:,:,0]",
        "w1[:,:,1]",
        "w1[:,:,2]",
    ]
    assert layout.filters[1].bias.label == "b1"
    assert [g.label for g in layout.outputs] == ["o[:,:,0]", "o[:,:,1]"]
    texts = [text for *_, text, _ in layout.texts]
    assert "Input volume (+pad 1) (7x7x3)" in texts
    assert "Output volume (3x3x2)" in texts
    # A filter that reads some channels only says which.
    assert gif_layout(_depthwise()).filters[2].heading == (
        "Filter w2 (2x2x1)",
        "on x[:,:,2]",
    )
    assert gif_layout(_grouped()).filters[3].heading[1] == "on x[:,:,2:4]"


def test_the_arithmetic_line_adds_channel_sums_and_bias() -> None:
    t = _demo_trace("cs231n")
    layout = gif_layout(t)
    for i, step in enumerate(t.steps):
        *products, total = [line for _, line in layout.arithmetic[i]]
        assert len(products) == 3  # one line per channel: they fit
        sums = " + ".join(f"{s:g}" for s in step.channel_sums)
        bias = f"b{step.filter} ({step.bias:g})"
        expected = f"o[{step.row},{step.col},{step.filter}] = {sums} + {bias}"
        assert total == f"{expected} = {step.value:g}"
    assert layout.arithmetic[0][-1][1] == "o[0,0,0] = 0 + 1 + -1 + b0 (1) = 1"


def test_many_channels_write_one_sum() -> None:
    # 200 products: no product lines; 200 channel sums: more than 3 lines.
    rng = np.random.default_rng(3)
    t = trace(rng.normal(size=(1, 1, 200)), rng.normal(size=(1, 200, 1, 1)), bias=1)
    [lines] = gif_layout(t).arithmetic
    [step] = t.steps
    assert len(lines) <= SUM_LINES_MAX
    assert " ".join(line for _, line in lines).startswith(
        f"o[0,0,0] = {format_number(step.sum)} (the sum of 200 products) + b0 (1) = "
    )


@pytest.mark.parametrize("name", list(TRACES))
def test_the_window_sits_over_the_taps_in_the_channels_read(name: str) -> None:
    t = TRACES[name]()
    layout = gif_layout(t)
    padding = _padding_mask(t)
    for i, step in enumerate(t.steps):
        frame = trace_frame(t, i)
        tap_rows, tap_cols = t.taps(step)
        window = np.zeros(padding.shape, dtype=bool)
        window[np.ix_(list(tap_rows), list(tap_cols))] = True
        for c, grid in enumerate(layout.inputs):
            reads = c in t.channels_of(step.filter)
            for (r, col), pad in np.ndenumerate(padding):
                expected = (
                    "highlight"
                    if reads and window[r, col]
                    else "padding"
                    if pad
                    else "background"
                )
                assert _fill(frame, grid.cell(r, col)) == expected, (i, c, r, col)


def test_dilated_window_is_not_contiguous() -> None:
    t = _demo_trace("dilation")
    grid = gif_layout(t).inputs[0]
    frame = trace_frame(t, 0)
    rows = [r for r in range(grid.rows) if _fill(frame, grid.cell(r, 0)) == "highlight"]
    cols = [c for c in range(grid.cols) if _fill(frame, grid.cell(0, c)) == "highlight"]
    assert rows == cols == [0, 2, 4]


@pytest.mark.parametrize("name", list(TRACES))
def test_the_filter_at_work_is_framed_and_every_filter_shows(name: str) -> None:
    t = TRACES[name]()
    layout = gif_layout(t)
    outline = np.array(TRACE_COLOURS["outline"])
    for i, step in enumerate(t.steps):
        frame = trace_frame(t, i)
        for block in layout.filters:
            active = block.filter == step.filter
            left, top, right, _ = block.box
            edge = frame[top + 1, left + 10 : right - 10]  # the frame's top side
            assert (edge == outline).all() == active, (i, block.filter)
            fill = "filter" if active else "background"
            for k, grid in enumerate(block.slices):
                for r, col in np.ndindex(grid.rows, grid.cols):
                    box = grid.cell(r, col)
                    assert _fill(frame, box) == fill
                    assert _inked(frame, box), (i, block.filter, k, r, col)
            assert _fill(frame, block.bias.cell(0, 0)) == fill
            assert _inked(frame, block.bias.cell(0, 0))


@pytest.mark.parametrize("name", ["cs231n", "depthwise", "dilation"])
def test_output_maps_fill_one_value_per_frame(tmp_path: Path, name: str) -> None:
    t = TRACES[name]()
    layout = gif_layout(t)
    frames = _gif_frames(save_trace_gif(tmp_path / "t.gif", t))
    order = {(s.filter, s.row, s.col): i for i, s in enumerate(t.steps)}
    for i, frame in enumerate(frames):
        filled = 0
        for d, grid in enumerate(layout.outputs):
            for r, col in np.ndindex(grid.rows, grid.cols):
                box = grid.cell(r, col)
                done = order[d, r, col] <= i
                assert _inked(frame, box) == done, (i, d, r, col)
                current = order[d, r, col] == i
                assert _fill(frame, box) == ("highlight" if current else "background")
                filled += done
        assert filled == i + 1


@pytest.mark.parametrize("name", ["cs231n", "grouped"])
def test_frames_change_only_where_the_steps_are(tmp_path: Path, name: str) -> None:
    # From one frame to the next: the headline, the arithmetic, the two
    # windows, the two filters and the two output cells; nothing else.
    t = TRACES[name]()
    layout = gif_layout(t)
    frames = _gif_frames(save_trace_gif(tmp_path / "t.gif", t))
    for i in range(1, len(frames)):
        allowed = np.zeros(frames[0].shape[:2], dtype=bool)
        allowed[layout.headline_top : layout.headline_top + LINE] = True
        allowed[layout.arithmetic_top :] = True
        for step in t.steps[i - 1 : i + 1]:
            block = layout.filters[step.filter]
            left, top, right, bottom = block.box
            allowed[top - 2 : bottom + 2, left - 2 : right + 2] = True
            rows, cols = t.taps(step)
            for c in block.channels:
                for r, col in itertools.product(rows, cols):
                    x0, y0, x1, y1 = layout.inputs[c].cell(r, col)
                    allowed[y0 : y1 + 2, x0 : x1 + 2] = True
            x0, y0, x1, y1 = layout.outputs[step.filter].cell(step.row, step.col)
            allowed[y0 : y1 + 2, x0 : x1 + 2] = True
        changed = (frames[i] != frames[i - 1]).any(axis=2)
        assert changed.any()
        assert not (changed & ~allowed).any(), i


def test_padding_is_grey_only_where_there_is_padding() -> None:
    for name, padded in [("cs231n", True), ("valid", False), ("same", True)]:
        t = _demo_trace(name)
        frame, grid = trace_frame(t, len(t.steps) - 1), gif_layout(t).inputs[0]
        fills = {_fill(frame, grid.cell(r, c)) for r, c in np.ndindex(2, 2)}
        assert ("padding" in fills) == padded, name
        assert _fill(frame, grid.cell(grid.rows // 2, grid.cols // 2)) != "padding"


# ---------------------------------------------------------------------------
# Sizes: large traces fit, too large ones are refused before drawing


def test_many_filters_wrap_into_rows() -> None:
    rng = np.random.default_rng(8)
    t = trace(
        rng.integers(0, 3, (4, 4, 3)).astype(float),
        rng.integers(-1, 2, (16, 3, 3, 3)).astype(float),
        padding=1,
    )
    layout = gif_layout(t)
    assert len({f.box[1] for f in layout.filters}) > 1  # several rows of filters
    assert len({f.box[0] for f in layout.filters}) > 1  # several filters a row
    assert layout.width * layout.height <= GIF_MAX_FRAME_PIXELS
    assert layout.width < 2 * layout.height + 1000  # not one long strip


LIMITS = {
    # 512 steps (TRACE_MAX_STEPS) of a 16x16 input (TRACE_MAX_SIDE)
    "two maps of 16x16": lambda rng: trace(
        rng.integers(0, 9, (16, 16)).astype(float),
        [[[[1, 0], [0, -1]]], [[[0, 1], [-1, 0]]]],
        padding="same",
    ),
    "16x16x3 and two 3x3x3 filters": lambda rng: trace(
        rng.integers(0, 3, (16, 16, 3)).astype(float),
        rng.integers(-1, 2, (2, 3, 3, 3)).astype(float),
        bias=[1, 0],
        padding=1,
    ),
    # a 64x64 padded input (TRACE_MAX_PADDED)
    "padded to 64x64": lambda rng: trace(
        rng.integers(0, 9, (16, 16)).astype(float),
        np.ones((3, 3)),
        padding=24,
        stride=3,
    ),
    "64 channels depthwise": lambda rng: trace(
        rng.integers(0, 9, (2, 2, 64)).astype(float), [[2.0]]
    ),
}


@pytest.mark.parametrize("case", list(LIMITS))
def test_traces_at_the_limits_fit_a_frame(case: str) -> None:
    t = LIMITS[case](np.random.default_rng(1))
    width, height = check_gif_size(t)
    assert width * height <= GIF_MAX_FRAME_PIXELS
    layout = gif_layout(t)
    assert max(box[2] for box in _boxes(layout)) <= width
    assert max(box[3] for box in _boxes(layout)) <= height
    frame = trace_frame(t, len(t.steps) - 1)
    assert frame.shape == (height, width, 3)


def test_the_largest_trace_writes(tmp_path: Path) -> None:
    t = LIMITS["two maps of 16x16"](np.random.default_rng(1))
    with Image.open(save_trace_gif(tmp_path / "t.gif", t)) as gif:
        assert gif.n_frames == 512


def test_huge_frames_are_refused_before_drawing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_drawing(*args: object, **kwargs: object) -> None:
        msg = "drew"
        raise AssertionError(msg)

    monkeypatch.setattr(ImageDraw, "Draw", no_drawing)
    t = trace(np.ones((2, 2, 2000)), np.ones((1, 2000, 1, 1)))
    with pytest.raises(ImageError, match=r"--gif would draw frames of at least"):
        check_gif_size(t)
    # Few cells, within the trace limits, but 512 filters with their headings
    # and biases take more than a frame.
    many = trace(np.ones((1, 1)), np.ones((512, 1, 1, 1)))
    with pytest.raises(ImageError, match=r"a frame has at most 8388608 pixels"):
        save_trace_gif(Path("never.gif"), many)


# ---------------------------------------------------------------------------
# The CLI writes it


def test_cli_writes_the_gif(tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}
    single = tmp_path / "b.gif"
    args = ["trace", "-i", "1,2,3;4,5,6;7,8,9", "-k", "1,0;0,-1", "--gif", str(single)]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert f"animation of 4 steps: {single}" in result.stdout
    assert _durations(single) == [1200, 1200, 1200, 3600]
    demo = tmp_path / "a.gif"
    result = runner.invoke(
        app, ["trace", "--demo", "cs231n", "--gif", str(demo)], env=env
    )
    assert result.exit_code == 0, result.output
    with Image.open(demo) as gif:
        assert gif.n_frames == 18
        assert len({f.size for f in ImageSequence.Iterator(gif)}) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif", "b.gif"]


# ---------------------------------------------------------------------------
# Where it goes, and what goes wrong


def test_not_a_gif_name(tmp_path: Path) -> None:
    with pytest.raises(
        ImageError, match=r"t\.png: --gif writes a GIF; give a name ending in \.gif"
    ):
        save_trace_gif(tmp_path / "t.png", _demo_trace("seed"))
    assert list(tmp_path.iterdir()) == []


def test_into_a_missing_folder(tmp_path: Path) -> None:
    target = tmp_path / "nope" / "t.gif"
    with pytest.raises(ImageError, match=r"t\.gif: cannot write in .*nope"):
        save_trace_gif(target, _demo_trace("seed"))
    assert not target.parent.exists()


def test_atomic_when_the_write_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "keep.gif"
    target.write_bytes(b"old contents")
    # The GIF is written frame by frame: the second frame fails, after the first
    # one went to the temporary file.
    calls = []
    getdata = GifImagePlugin.getdata

    def broken(im: Image.Image, *args: object, **kwargs: object) -> list[bytes]:
        calls.append(im)
        if len(calls) > 1:
            msg = "disk full"
            raise OSError(msg)
        return getdata(im, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(GifImagePlugin, "getdata", broken)
    with pytest.raises(ImageError, match=r"keep\.gif: cannot write: disk full"):
        save_trace_gif(target, _demo_trace("stride"))
    assert len(calls) == 2
    assert target.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.gif"]


def test_gif_gets_ordinary_permissions(tmp_path: Path) -> None:
    mask = os.umask(0)
    os.umask(mask)
    save_trace_gif(tmp_path / "t.gif", _demo_trace("seed"))
    assert (tmp_path / "t.gif").stat().st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.parametrize("frame_ms", [0, 19, 1.5, True])
def test_bad_frame_ms(tmp_path: Path, frame_ms: int) -> None:
    with pytest.raises(ValueError, match=r"frame_ms must be an int >= 20"):
        save_trace_gif(tmp_path / "t.gif", _demo_trace("seed"), frame_ms=frame_ms)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("index", [-1, 18])
def test_frame_index_out_of_range(index: int) -> None:
    with pytest.raises(
        IndexError, match=rf"must be in 0\.\.17 .* 18 steps; got {index}"
    ):
        trace_frame(_demo_trace("cs231n"), index)
