"""The labels of ``--montage`` (issue 17, item 9): tall enough, the kernel's parameters, in their cell."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from convcli.cli import app
from convcli.images import montage, montage_size
from convcli.montage import MONTAGE_LINES, _label_font, montage_layout

ENV = {"COLUMNS": "120", "NO_COLOR": "1", "TERM": "dumb"}
GRAY = 128  # the tiles' value: neither the labels' black nor the bands' white


def _sheet(
    tmp_path: Path, shape: tuple[int, int], labels: list[str], **kw: int
) -> np.ndarray:
    tiles = [(label, np.full((*shape, 3), GRAY, np.uint8)) for label in labels]
    path = montage(tmp_path / "sheet.png", tiles, **kw)
    with Image.open(path) as img:
        return np.asarray(img.convert("L"))


def _ink_rows(band: np.ndarray) -> int:
    """Height of the dark pixels' bounding box."""
    rows = np.flatnonzero((band < 100).any(axis=1))
    return int(rows[-1] - rows[0] + 1) if rows.size else 0


@pytest.mark.parametrize("height", [60, 150, 400, 1080, 2000])
def test_issue_17_labels_are_at_least_a_thirtieth_of_the_tile(
    tmp_path: Path, height: int
) -> None:
    width = height * 3 // 2
    labels = ["coffee gaussian:sigma=3", "coffee sobel"]
    sheet = _sheet(tmp_path, (height, width), labels)
    layout = montage_layout([(height, width)] * 2, labels)
    assert sheet.shape == layout.size
    for i in range(2):
        x = i * layout.cell[1]
        band = sheet[: layout.band, x : x + width]
        assert _ink_rows(band) >= height / 30, (i, _ink_rows(band), layout)
        # the tile starts under its band, untouched by the label
        assert (sheet[layout.band :, x : x + width] == GRAY).all()


def test_labels_scale_with_the_tiles_not_a_fixed_size() -> None:
    small = montage_layout([(100, 150)], ["a"])
    large = montage_layout([(1800, 2700)], ["a"])
    assert small.font_size == 12  # the least
    assert large.font_size >= 1800 / 22
    assert large.band > 5 * small.band


def test_a_label_wider_than_its_tile_wraps_within_it() -> None:
    label = "coffee motion:length=15,angle=30 [orientation_112.5_degrees]"
    layout = montage_layout([(160, 240)], [label])
    font = _label_font(layout.font_size)
    lines = layout.lines[0]
    assert 1 < len(lines) <= MONTAGE_LINES
    assert " ".join(lines) == label  # wrapped at spaces, nothing lost
    for line in lines:
        assert font.getlength(line) <= 240 - 2 * layout.margin


def test_a_label_too_long_for_its_lines_keeps_its_start_and_its_filter() -> None:
    label = "a_photo_with_a_very_long_name_from_a_camera frei_chen [g9]"
    layout = montage_layout([(40, 60)], [label])
    lines = layout.lines[0]
    font = _label_font(layout.font_size)
    assert len(lines) == MONTAGE_LINES
    assert lines[0].startswith("a_")
    assert "".join(lines).endswith("[g9]")
    assert "\u2026" in "".join(lines)
    assert all(font.getlength(line) <= 60 - 2 * layout.margin for line in lines)


def test_labels_never_reach_the_next_tile(tmp_path: Path) -> None:
    # Narrow tiles, long labels: every dark pixel stays in its own tile's columns,
    # and the gap between columns stays white.
    labels = [f"a_long_image_name kirsch [{d}]" for d in ("N", "NE", "E", "SE")]
    sheet = _sheet(tmp_path, (30, 50), labels, columns=4)
    layout = montage_layout([(30, 50)] * 4, labels, columns=4)
    bands = sheet[: layout.band]
    for i in range(4):
        x = i * layout.cell[1]
        gap = bands[:, x + 50 : x + layout.cell[1]]
        assert (gap == 255).all(), i
    dark = np.flatnonzero((bands < 100).any(axis=0))
    cells = {int(c) // layout.cell[1] for c in dark}
    assert cells == {0, 1, 2, 3}
    assert all(int(c) % layout.cell[1] < 50 for c in dark)


def test_montage_size_without_labels_is_at_least_the_montage() -> None:
    shapes = [(20, 30)] * 5
    labels = ["x " * 40] * 5  # the most lines
    assert montage_size(shapes) == montage_size(shapes, labels=labels)
    assert montage_size(shapes) >= montage_size(shapes, labels=["x"] * 5)


def test_issue_17_montage_labels_name_the_parameters_and_the_filter(
    tmp_path: Path,
) -> None:
    Image.fromarray(
        np.random.default_rng(17).integers(0, 256, (60, 90), dtype=np.uint8)
    ).save(tmp_path / "m.png")
    bank = tmp_path / "pair.txt"
    bank.write_text("--- a\n1 0\n--- b\n0 1\n", encoding="utf-8")
    args = ["apply", str(tmp_path / "m.png"), "-k", "gaussian:sigma=3", "-k"]
    args += [str(bank), "-o", str(tmp_path / "o"), "--montage", str(tmp_path / "s.png")]
    result = CliRunner().invoke(app, args, env=ENV)
    assert result.exit_code == 0, result.output
    out = tmp_path / "o"
    blur, a, b = (
        next(out.glob(f"m.{n}*.png")) for n in ("gaussian", "pair*a", "pair*b")
    )
    # the same montage, made with the labels written out: the CLI drew these
    want = montage(
        tmp_path / "want.png",
        [("m gaussian:sigma=3", blur), ("m pair [a]", a), ("m pair [b]", b)],
    )
    with Image.open(tmp_path / "s.png") as got, Image.open(want) as expected:
        np.testing.assert_array_equal(np.asarray(got), np.asarray(expected))
    # ... and not the old ones, without the parameters
    other = montage(
        tmp_path / "old.png",
        [("m gaussian", blur), ("m pair a", a), ("m pair b", b)],
    )
    with Image.open(tmp_path / "s.png") as got, Image.open(other) as old:
        assert not np.array_equal(np.asarray(got), np.asarray(old))
