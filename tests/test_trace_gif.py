"""The --gif renderer of convcli trace: convcli.trace_gif.save_trace_gif and trace_frame."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import GifImagePlugin, Image, ImageSequence

from convcli.demos import load_demo
from convcli.images import ImageError
from convcli.trace_gif import TRACE_COLOURS, save_trace_gif, trace_frame
from convcli.tracing import Trace, trace


def _demo_trace(name: str) -> Trace:
    demo = load_demo(name)
    return trace(demo.x, demo.w, demo.bias or None, **demo.options)


def _mask(frame: np.ndarray, colour: str) -> np.ndarray:
    """Pixels of a frame within a few levels of one of TRACE_COLOURS."""
    rgb = np.asarray(TRACE_COLOURS[colour], dtype=int)
    return np.abs(frame.astype(int) - rgb).max(axis=2) <= 3


def _solid(mask: np.ndarray) -> np.ndarray:
    """Pixels whose 3x3 neighbourhood is all in ``mask``: fills, not text edges."""
    h, w = mask.shape
    out = np.ones((h - 2, w - 2), dtype=bool)
    for dr in range(3):
        for dc in range(3):
            out &= mask[dr : dr + h - 2, dc : dc + w - 2]
    return out


def _gif_frames(path: Path) -> list[np.ndarray]:
    with Image.open(path) as gif:
        return [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(gif)]


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
        assert gif.info["duration"] == 500
        sizes = set()
        for frame in ImageSequence.Iterator(gif):
            sizes.add(frame.size)
    assert len(sizes) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["t.gif"]  # no temp file left


def test_frames_match_trace_frame_and_differ(tmp_path: Path) -> None:
    t = _demo_trace("cs231n")
    frames = _gif_frames(save_trace_gif(tmp_path / "t.gif", t, title="cs231n"))
    first = trace_frame(t, 0, title="cs231n")
    assert first.dtype == np.uint8
    assert first.shape == (*frames[0].shape[:2], 3)
    # The GIF's 256 colours change the antialiased edges of text only.
    assert np.abs(frames[0].astype(int) - first.astype(int)).mean() < 1
    # Every frame differs from the one before: the window and the text move.
    for before, after in itertools.pairwise(frames):
        assert not np.array_equal(before, after)


def test_the_highlight_moves_with_the_window(tmp_path: Path) -> None:
    t = _demo_trace("cs231n")
    frames = _gif_frames(save_trace_gif(tmp_path / "t.gif", t))
    marks = [_mask(f, "highlight") for f in frames[:2]]
    assert all(m.sum() > 1000 for m in marks)  # 27 window cells and one output
    assert (marks[0] & ~marks[1]).sum() > 1000  # the window left some cells
    assert (marks[1] & ~marks[0]).sum() > 1000  # and covers new ones
    outline = [_mask(f, "outline") for f in frames[:2]]
    assert outline[0].any()
    assert not np.array_equal(outline[0], outline[1])
    # Stride 2: step 2's window sits two cells right of step 1's.
    cols = [np.flatnonzero(m.any(axis=0)) for m in marks]
    assert cols[1].min() > cols[0].min()


def test_dilated_window_is_not_contiguous() -> None:
    t = _demo_trace("dilation")
    first = trace_frame(t, 0)
    cols = np.flatnonzero(_mask(first, "highlight").any(axis=0))
    gaps = np.diff(cols) - 1
    # Between the three columns of taps, a whole unread cell each (about 30 px;
    # the outlines between adjacent highlighted cells leave a few px); then the
    # gap before the output cell.
    assert (gaps > 20).sum() == 3


def test_padding_is_grey_only_where_there_is_padding() -> None:
    padded = trace_frame(_demo_trace("cs231n"), 0)
    unpadded = trace_frame(_demo_trace("valid"), 0)
    assert _solid(_mask(padded, "padding")).sum() > 5000
    assert not _solid(_mask(unpadded, "padding")).any()


def _current_output_cell(frame: np.ndarray) -> tuple[slice, slice]:
    """Inside of the rightmost highlighted box: the output cell of the step."""
    mark = _mask(frame, "highlight")
    cols = np.flatnonzero(mark.any(axis=0))
    start = cols[np.flatnonzero(np.diff(cols) > 1)[-1] + 1]  # the last run
    rows = np.flatnonzero(mark[:, start:].any(axis=1))
    return slice(rows[0] + 3, rows[-1] - 2), slice(start + 3, cols[-1] - 2)


def test_output_fills_step_by_step() -> None:
    # Every window and every output value is the same: only places change.
    t = trace(np.ones((4, 4)), np.ones((2, 2)))
    frames = [trace_frame(t, i) for i in range(len(t.steps))]
    assert len({f.shape for f in frames}) == 1
    for j, frame in enumerate(frames):
        cell = _current_output_cell(frame)
        inked = [bool((f[cell] < 128).all(axis=2).any()) for f in frames]
        assert inked == [i >= j for i in range(len(frames))], j


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


def test_depthwise_trace_has_a_frame_per_step(tmp_path: Path) -> None:
    t = trace(np.arange(27.0).reshape(3, 3, 3), [[1, 0], [0, -1]], bias=[1, 2, 3])
    assert t.groups == 3
    with Image.open(save_trace_gif(tmp_path / "d.gif", t)) as gif:
        assert gif.n_frames == len(t.steps) == 12


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
