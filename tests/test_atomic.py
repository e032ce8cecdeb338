"""Temporary files beside their targets: one naming for the writes and the clean-up."""

from __future__ import annotations

import os
from pathlib import Path

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
