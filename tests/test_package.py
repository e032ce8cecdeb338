"""The package as a user meets it: a light import, documented API, a version."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys

import convcli


def _run_python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_import_is_light() -> None:
    code = (
        "import json, sys\n"
        "import convcli\n"
        "heavy = ('PIL', 'rich', 'typer', 'click', 'scipy')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    loaded = json.loads(_run_python(code))
    assert loaded == [], f"import convcli loaded {loaded}"


def test_public_api() -> None:
    for name in convcli.__all__:
        assert hasattr(convcli, name), name
    assert {"conv2d", "explain", "output_size", "ShapeError", "__version__"} <= set(
        convcli.__all__
    )
    assert isinstance(convcli.__version__, str)
    assert convcli.__version__


def test_conv2d_docstring_names_every_parameter() -> None:
    doc = convcli.conv2d.__doc__
    assert doc
    for name in inspect.signature(convcli.conv2d).parameters:
        assert f"{name} :" in doc or f"{name}, " in doc, (
            f"conv2d's docstring does not document {name!r}"
        )
    # STYLE: every convolution docstring says w is unflipped and which dtype comes out.
    assert "flip" in doc
    assert "cross-correlation" in doc.lower()
    assert "float32" in doc
    assert "float64" in doc


def test_explain_docstring_and_signature_match_conv2d() -> None:
    conv_params = inspect.signature(convcli.conv2d).parameters
    explain_params = inspect.signature(convcli.explain).parameters
    assert set(explain_params) <= set(conv_params)
    assert set(conv_params) - set(explain_params) <= {"workers"}
    assert convcli.explain.__doc__


def test_version_with_cli_runner() -> None:
    from typer.testing import CliRunner

    from convcli.cli import app

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"convcli {convcli.__version__}"


def test_python_m_convcli_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "convcli", "--version"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"convcli {convcli.__version__}"
    assert "Traceback" not in result.stderr
