"""Temporary files beside their targets: one naming for the writes and the clean-up."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hostile import assert_files, run_convcli, snapshot, write_image

from convcli.atomic import TMP_STEM_BYTES, finish, make_temporary, temporaries
from convcli.batch import Item, Plan, remove_temporaries
from convcli.kernels import load_kernel
from convcli.pipeline import ApplyOptions


def test_a_long_target_name_still_leaves_room_for_its_temporary(tmp_path: Path) -> None:
    target = tmp_path / ("a" * 250 + ".png")  # 254 bytes: legal
    fd, tmp = make_temporary(target)
    os.close(fd)
    assert len(os.fsencode(tmp.name)) <= 1 + TMP_STEM_BYTES + 1 + 8 + 4
    assert temporaries(target) == [tmp]
    finish(tmp, target)
    assert target.exists()
    assert temporaries(target) == []


def test_temporaries_match_only_their_own_target(tmp_path: Path) -> None:
    short, longer = tmp_path / "a.png", tmp_path / "a.png.sobel.png"
    made = {}
    for target in (short, longer):
        fd, made[target] = make_temporary(target)
        os.close(fd)
    assert temporaries(short) == [made[short]]
    assert temporaries(longer) == [made[longer]]


def test_issue_12_killed_worker_with_a_long_output_name_leaves_no_tmp(
    tmp_path: Path,
) -> None:
    # What a killed worker leaves: the temporary file of its output, named as
    # every write names it (the name cut to TMP_STEM_BYTES).
    image = write_image(tmp_path / "in" / ("a" * 150 + ".png"))
    plan = Plan(((load_kernel("sobel"), ApplyOptions()),))
    item = Item(image, Path(image.name), tmp_path / "out")
    (target,) = plan.outputs(item)
    target.parent.mkdir(parents=True)
    fd, tmp = make_temporary(target)
    os.close(fd)
    remove_temporaries([item], plan)
    assert not tmp.exists()


def test_issue_12_long_names_for_the_manifest_and_the_gif_are_taken(
    tmp_path: Path,
) -> None:
    write_image(tmp_path / "in" / "a.png")
    before = snapshot(tmp_path)
    gif = "g" * 246 + ".gif"
    manifest = "m" * 250
    run_convcli(["trace", "--demo", "seed", "--gif", gif], cwd=tmp_path).expect(0)
    run_convcli(
        ["batch", "in", "-k", "sobel", "-o", "out", "--manifest", manifest],
        cwd=tmp_path,
    ).expect(0)
    assert_files(tmp_path, before, written={gif, manifest, "out/a.sobel.png"})


def _interrupted_after_creating(real):
    """create_temporary as a stop signal meets it: the file is made, then Ctrl-C."""

    def create(path):
        os.close(real(path))
        raise KeyboardInterrupt

    return create


def test_a_stop_the_instant_a_temporary_file_is_made_leaves_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A signal between creating the file and the try that removes it (found in CI)."""
    import numpy as np

    import convcli.manifest
    import convcli.saving
    import convcli.trace_gif
    import convcli.trace_html
    from convcli import atomic

    stop = _interrupted_after_creating(atomic.create_temporary)
    for module in (convcli.saving, convcli.manifest, atomic):  # atomic: the probe
        monkeypatch.setattr(module, "create_temporary", stop)
    with pytest.raises(KeyboardInterrupt):
        convcli.saving.save(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(KeyboardInterrupt):
        convcli.manifest.Manifest.open(tmp_path / "m.jsonl")
    with pytest.raises(KeyboardInterrupt):
        convcli.trace_gif.check_gif_path(tmp_path / "t.gif", {})
    with pytest.raises(KeyboardInterrupt):
        convcli.trace_html.check_page_path(tmp_path / "t.html", {})
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_temporary_names_are_made_before_the_files(tmp_path: Path) -> None:
    from convcli import atomic

    target = tmp_path / "out.png"
    name = atomic.temporary_name(target)
    assert not name.exists()
    assert name.parent == tmp_path
    assert name.name.startswith(".out.png.")
    assert name.name.endswith(".tmp")
    fd = atomic.create_temporary(name)
    os.close(fd)
    assert atomic.temporaries(target) == [name]
    assert stat.S_IMODE(name.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        atomic.create_temporary(name)
