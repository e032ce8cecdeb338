"""`convcli apply`'s plan: every output checked before the first write.

`plan` loads every kernel, reads every input's header, and checks every
output path (and the montage) against the inputs and each other, every size
against the pixel limit, every output folder writable. Anything wrong is a
`ConvcliError` naming the file(s), and nothing is written.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from convcli.atomic import file_keys
from convcli.errors import ConvcliError

if TYPE_CHECKING:
    from convcli.cli.options import Like
    from convcli.pipeline import ApplyOptions, PairPlan


@dataclass
class Plan:
    """What a run will write, checked: the pairs, -o, the montage, folders to make."""

    pairs: list[PairPlan]
    out: Path | None
    folder: bool
    montage: Path | None
    folders: list[Path]


def plan(
    paths: list[Path],
    specs: list[str],
    options: ApplyOptions,
    out_text: str | None,
    like_library: Like | None,
    montage: Path | None,
    *,
    to_stdout: bool = False,
) -> Plan:
    """Load the kernels, read every header, plan and check every output.

    Raises
    ------
    ConvcliError
        The first problem found, naming the file(s); nothing is written.
    """
    from convcli import images
    from convcli.chain import chain_pairs
    from convcli.kernels import load_kernel
    from convcli.pipeline import like, map_names, plan_pair, probe

    kernels = [load_kernel(spec) for spec in specs]
    pairs = [(k, options) for k in kernels]
    if like_library is not None:
        pairs = [like(like_library.value, k, options) for k in kernels]
    pairs = chain_pairs(pairs, options)  # --chain: one kernel of them all
    headers = [probe(p, options) for p in paths]
    out, folder = _out_target(out_text)
    if out is not None and not folder:
        _check_one_file(out, options, to_stdout=to_stdout)
    n_outputs = len(paths) * sum(len(map_names(k)) for k, _ in pairs)
    if out is not None and not folder and n_outputs > 1:
        if len(paths) * len(pairs) == 1:
            bank = pairs[0][0]
            why = f"{bank.name} is a bank that writes one image per filter, combine: stack"
        else:
            why = f"{len(paths)} image(s) x {len(pairs)} kernel(s)"
        msg = (
            f"{images.shown(out)}: -o names one file, but there are {n_outputs} "
            f"outputs ({why}); give a folder, e.g. -o {images.shown(out.with_suffix(''))}/"
        )
        if to_stdout:
            msg = (
                f"-o - writes one image to stdout, but there are {n_outputs} outputs "
                f"({why}); give -o a folder instead"
            )
        raise ConvcliError(msg)
    planned, number = [], 1
    for h in headers:
        for k, o in pairs:
            planned.append(plan_pair(h, k, o, out, folder=folder, number=number))
            number += len(planned[-1].outputs)
    sources = [h.path for h in headers] + [
        Path(k.source) for k in kernels if os.path.isfile(k.source)
    ]
    _refuse_clashes(planned, sources, montage, template=options.name)
    if montage is not None:
        _check_montage(montage, planned, images.pixel_limit(options.max_pixels))
    targets = [t for pp in planned for t in pp.outputs]
    folders = _check_folders(
        {t.parent for t in targets + ([montage] if montage else [])}
    )
    return Plan(planned, out, folder, montage, folders)


def _out_target(text: str | None) -> tuple[Path | None, bool]:
    """Read -o: a folder (ends with /, is one, or has no ending), or one image file."""
    from convcli.images import FORMATS, shown

    if text is None:
        return None, False
    path = Path(text)
    if text.endswith(("/", os.sep)) or os.path.isdir(path):
        return path, True
    endings = ", ".join(FORMATS)
    if os.path.exists(path):
        if not os.path.isfile(path):
            msg = f"{shown(path)}: -o must be a folder or an image file ({endings}); this is neither (a device, FIFO or socket)"
            raise ConvcliError(msg)
        if path.suffix.lower() not in FORMATS:
            msg = f"{shown(path)}: -o names an existing file without an image ending ({endings}); give a folder or an image file name"
            raise ConvcliError(msg)
        return path, False
    if path.suffix == "":
        return path, True
    if path.suffix.lower() not in FORMATS:
        msg = f"{shown(path)}: -o has the ending {path.suffix!r}, not an image ending ({endings}); end it with / for a folder"
        raise ConvcliError(msg)
    return path, False


def _check_one_file(out: Path, options: ApplyOptions, *, to_stdout: bool) -> None:
    """Refuse --name with -o naming the one output, and a --format its ending contradicts."""
    from convcli.images import shown
    from convcli.naming import same_format

    where = "-o -" if to_stdout else f"-o {shown(out)}"
    if options.name is not None:
        msg = (
            f"--name {options.name!r}: {where} names the one output itself; give -o "
            "a folder to name outputs with --name, or leave --name out"
        )
        raise ConvcliError(msg)
    if options.format and not same_format(out.suffix, options.format):
        msg = (
            f"{where} is a {out.suffix.lstrip('.').lower()} file but --format is "
            f"{options.format}; change the ending of -o or leave --format out"
        )
        raise ConvcliError(msg)


def _refuse_clashes(
    pairs: list[PairPlan],
    inputs: list[Path],
    montage: Path | None,
    *,
    template: str | None = None,
) -> None:
    """Refuse an output that is an input, two outputs that are one file, a folder in the way."""
    from convcli.images import shown

    owners = {key: p for p in inputs for key in file_keys(p)}
    written: dict[object, tuple[str, Path | None]] = {}
    targets: list[tuple[Path, str, Path | None]] = [
        (t, pp.label, pp.header.path) for pp in pairs for t in pp.outputs
    ]
    if montage is not None:
        targets.append((montage, "--montage", None))
    for target, label, image in targets:
        what = "--montage" if image is None else f"the output of {label}"
        fix = "choose another --montage file" if image is None else "choose another -o"
        if image is not None and template is not None:
            fix += " or --name"
        if os.path.isdir(target):
            msg = (
                f"{shown(target)}: a folder is in the way of {what}; move it, or {fix}"
            )
            raise ConvcliError(msg)
        for key in file_keys(target):
            if key in owners:
                msg = f"{shown(target)}: {what} would overwrite the input {shown(owners[key])}; {fix}"
                raise ConvcliError(msg)
            if key in written:
                other, other_image = written[key]
                if image is None or other_image is None:
                    hint = "choose another --montage file"
                elif template is not None:
                    hint = f"--name {template!r} gives them one name; add {{stem}}, {{kernel}}, {{filter}} or {{n}}"
                elif file_keys(image)[0] == file_keys(other_image)[0]:
                    hint = "an image or a kernel is given twice, or two kernels share a name; give each once"
                else:
                    hint = "two images share a name; rename one, or run them into separate -o folders"
                msg = f"{shown(target)}: {other} and {label} would both write this file; {hint}"
                raise ConvcliError(msg)
        written.update(dict.fromkeys(file_keys(target), (label, image)))


def _check_montage(montage: Path, pairs: list[PairPlan], limit: int | None) -> None:
    """Check the montage's ending and its size against the pixel limit."""
    from convcli.images import check_output, montage_size, shown

    check_output(montage, channels=3, kind="u8")
    shapes = [pp.out_shape[:2] for pp in pairs for _ in pp.outputs]
    h, w = montage_size(shapes)
    if limit is not None and h * w > limit:
        msg = (
            f"{shown(montage)}: the montage of {len(shapes)} outputs would be {h} x {w} "
            f"= {h * w:,} pixels, more than the limit of {limit:,}; --max-pixels N "
            "raises it"
        )
        raise ConvcliError(msg)


def _check_folders(folders: set[Path]) -> list[Path]:
    """Check that every output folder is writable or can be made; return those to make."""
    from convcli.images import shown

    missing = []
    for folder in sorted(folders):
        probe = folder
        while not os.path.lexists(probe) and probe.parent != probe:
            probe = probe.parent
        where = "" if probe == folder else f" (to make {shown(folder)})"
        if not os.path.isdir(probe):
            msg = f"{shown(probe)}: not a folder, so no output can go there{where}"
            raise ConvcliError(msg)
        if not os.access(probe, os.W_OK | os.X_OK):
            msg = f"{shown(probe)}: cannot write in this folder (permission denied or read-only){where}"
            raise ConvcliError(msg)
        if probe != folder:
            missing.append(folder)
    return missing


def make_folders(folders: list[Path]) -> None:
    """Make the output folders the plan needs (after every check, before any output)."""
    from convcli.images import shown

    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            msg = f"{shown(folder)}: cannot make this folder: {err.strerror or err}"
            raise ConvcliError(msg) from None
