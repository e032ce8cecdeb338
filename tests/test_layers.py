"""The package's layers: imports point downward only, and no import circle.

Every import statement in ``convcli/`` counts, wherever it stands (module top, inside a
function, under ``TYPE_CHECKING``): a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "convcli"

# Lower layers never import higher ones; a module may import its own layer and below.
# A new module must be placed here (the test fails until it is).
LAYERS: dict[str, int] = {
    # shared leaves: stdlib only
    "convcli.errors": 0,
    "convcli.names": 0,
    "convcli.workers": 0,
    "convcli.atomic": 0,
    "convcli.blas": 0,  # BLAS threads per thread (streamed bands)
    # the engine: numpy only
    "convcli.core": 1,
    "convcli.tracing": 1,
    "convcli.tracing_transposed": 1,  # trace --transpose (tracing's sibling)
    "convcli.demos": 1,
    "convcli.netplan": 1,
    # kernels and images
    "convcli.kernel_value": 2,
    "convcli.kernel_formats": 2,
    "convcli.kernel_files": 2,
    "convcli.kernel_generators": 2,
    "convcli.kernel_imagemagick": 2,
    "convcli.kernels": 2,
    "convcli.images": 2,
    "convcli.picture": 2,  # the decoded image in numpy (images re-exports it)
    "convcli.deep_headers": 2,  # PNG and TIFF headers, stdlib only (deep_images uses it)
    "convcli.deep_images": 2,
    "convcli.tiff_stream": 2,  # TIFF by bands, for images bigger than memory  # 16-bit colour PNG and TIFF (images uses it)
    "convcli.saving": 2,  # writing image files (images re-exports it)
    "convcli.montage": 2,  # labelled montages (images.montage reads and writes them)
    "convcli.trace_gif": 2,
    "convcli.trace_gif_layout": 2,  # where a --gif frame puts what (trace_gif draws it)
    "convcli.trace_html": 2,  # trace --html's page (numpy and stdlib only)
    # the public API facade (lazy re-exports of the layers below)
    "convcli": 3,
    # one image through one kernel
    "convcli.naming": 4,  # output names, tags and --name templates (plan uses it)
    "convcli.plan": 4,  # a pair's outputs and checks, from headers (pipeline uses it)
    "convcli.likes": 4,  # --like's settings (pipeline re-exports them)
    "convcli.filtering": 4,  # maps, alpha and output pixels of one picture in memory
    "convcli.outcome": 4,  # what a pair did (ApplyResult)
    "convcli.streaming": 4,  # one TIFF bigger than memory, band by band
    "convcli.pipeline": 4,
    "convcli.chain": 4,  # --chain: kernels in order as one (plan and pipeline use it)
    # many images; the Dask executor uses batch, never the reverse
    "convcli.batch": 5,
    "convcli.manifest": 5,  # batch's --manifest (batch uses it, never the reverse)
    "convcli.cluster": 6,
    "convcli.stream_cluster": 6,  # apply --scheduler: a streamed image's bands on Dask
    # the terminal
    "convcli.render": 7,
    "convcli.cli": 8,
    "convcli.__main__": 9,
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer(name: str) -> int:
    """The layer of a module: its own entry, else its package's (convcli.core.fft)."""
    probe = name
    while probe not in LAYERS:
        if "." not in probe:
            msg = f"{name} has no layer in tests/test_layers.py LAYERS: place it"
            raise KeyError(msg)
        probe = probe.rsplit(".", 1)[0]
    return LAYERS[probe]


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The convcli modules that ``name`` imports, anywhere in its file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                if not is_package:
                    anchor = anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            # `from convcli import workers` names a module; `from convcli import x`
            # a name of the package.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        found.update(t for t in targets if t == "convcli" or t.startswith("convcli."))
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(name, path, known) for name, path in found.items()}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{a} (layer {layer(a)}) imports {b} (layer {layer(b)})"
        for a, targets in graph.items()
        for b in targets
        if layer(b) > layer(a)
    )


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle, each as the modules along it (first one repeated last)."""
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                loop = [*path[path.index(nxt) :], nxt]
                if frozenset(loop) not in seen:
                    seen.add(frozenset(loop))
                    found.append(loop)
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_the_walk_finds_the_package() -> None:
    graph = import_graph()
    assert {"convcli", "convcli.core", "convcli.cli", "convcli.batch"} <= set(graph)
    assert "convcli.kernels" in graph["convcli.pipeline"]
    assert "convcli.batch" in graph["convcli.cluster"]


def test_every_module_has_a_layer() -> None:
    for name in modules():
        layer(name)


def test_no_import_circle() -> None:
    assert circles(import_graph()) == []


def test_no_upward_import() -> None:
    assert upward_imports(import_graph()) == []


def test_engine_imports_numpy_and_the_stdlib_only() -> None:
    graph = import_graph()
    engine = [n for n in graph if layer(n) == 1]
    for name in engine:
        tree = ast.parse(modules()[name].read_text(encoding="utf-8"))
        roots = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            (node.module or "").split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and not node.level
        }
        assert not roots & {"PIL", "rich", "typer", "distributed", "dask"}, name


def test_every_module_says_its_job() -> None:
    for name, path in modules().items():
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        assert doc, f"{name} has no docstring"
        assert doc.splitlines()[0].strip(), (
            f"{name}'s docstring opens with a blank line"
        )


def test_modules_stay_readable_in_one_sitting() -> None:
    # "A few hundred lines": past this, split the module by job.
    long = {
        name: n
        for name, path in modules().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 650
    }
    assert long == {}


# The checker itself, on made-up graphs: it must be able to fail.


def test_circles_finds_a_two_module_circle() -> None:
    graph = {"convcli.batch": {"convcli.cluster"}, "convcli.cluster": {"convcli.batch"}}
    assert circles(graph) == [["convcli.batch", "convcli.cluster", "convcli.batch"]]


def test_circles_finds_a_longer_circle_and_ignores_a_diamond() -> None:
    graph = {
        "convcli.a": {"convcli.b", "convcli.c"},
        "convcli.b": {"convcli.d"},
        "convcli.c": {"convcli.d"},
        "convcli.d": {"convcli.e"},
        "convcli.e": {"convcli.b"},
    }
    assert circles(graph) == [["convcli.b", "convcli.d", "convcli.e", "convcli.b"]]


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        ("convcli.core.fft", "convcli.kernels"),
        ("convcli.tracing", "convcli.images"),
        ("convcli.kernels", "convcli.batch"),
        ("convcli.images", "convcli.render"),
        ("convcli.batch", "convcli.cluster"),
        ("convcli.batch", "convcli.render"),
        ("convcli.pipeline", "convcli.cli"),
        ("convcli.core.geometry", "convcli"),
    ],
)
def test_upward_imports_are_caught(importer: str, imported: str) -> None:
    assert upward_imports({importer: {imported}}) != []


def test_relative_and_package_imports_resolve(tmp_path: Path) -> None:
    source = tmp_path / "fft.py"
    source.write_text(
        "from . import geometry\nfrom ..errors import ShapeError\n"
        "from convcli import workers, __version__\nimport numpy\n",
        encoding="utf-8",
    )
    known = {"convcli.core.geometry", "convcli.errors", "convcli.workers"}
    assert imports_of("convcli.core.fft", source, known) == {
        "convcli.core.geometry",
        "convcli.errors",
        "convcli.workers",
        "convcli",
    }
