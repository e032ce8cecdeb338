"""Issue 17: shell completion for bash, zsh and fish, kernel names included.

The scripts and the completion requests go through the installed ``convcli``
command in a real process, with the variables each shell's script sets;
bash itself runs its script where it is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from convcli.cli import app
from convcli.cli.options import complete_kernel
from convcli.kernels import GENERATORS, kernel_names

CONVCLI = Path(sys.executable).with_name("convcli")
pytestmark = pytest.mark.skipif(
    not CONVCLI.is_file(), reason="the convcli command is not installed next to Python"
)


def run_convcli(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """Run the installed ``convcli`` with ``env`` added; exit 0 expected."""
    result = subprocess.run(
        [str(CONVCLI), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


SCRIPTS = {
    "bash": [
        "_convcli_completion()",
        "_CONVCLI_COMPLETE=complete_bash",
        "complete -o default -F _convcli_completion convcli",
    ],
    "zsh": [
        "#compdef convcli",
        "_CONVCLI_COMPLETE=complete_zsh",
        "compdef _convcli_completion convcli",
    ],
    "fish": [
        "complete --command convcli",
        "_CONVCLI_COMPLETE=complete_fish",
        "_TYPER_COMPLETE_FISH_ACTION=get-args",
    ],
}


@pytest.mark.parametrize("shell", sorted(SCRIPTS))
def test_issue_17_completion_scripts_for_three_shells(shell: str) -> None:
    # as the docs say: the script for any shell, whichever one runs it
    sourced = run_convcli([], _CONVCLI_COMPLETE=f"source_{shell}").stdout
    for part in SCRIPTS[shell]:
        assert part in sourced, sourced
    # --show-completion SHELL (Typer takes the shell's name when it does not
    # detect the shell it runs in)
    shown = run_convcli(
        ["--show-completion", shell], _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1"
    ).stdout
    assert shown.strip() == sourced.strip()


INSTALLED = {
    "bash": (".bash_completions/convcli.sh", ".bashrc"),
    "zsh": (".zfunc/_convcli", ".zshrc"),
    "fish": (".config/fish/completions/convcli.fish", None),
}


@pytest.mark.parametrize("shell", sorted(INSTALLED))
def test_issue_17_install_completion_writes_the_script(
    shell: str, tmp_path: Path
) -> None:
    # "No such option: --install-completion" before
    run_convcli(
        ["--install-completion", shell],
        HOME=str(tmp_path),
        _TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION="1",
    )
    script, startup = INSTALLED[shell]
    assert SCRIPTS[shell][-1] in (tmp_path / script).read_text()
    if startup:
        assert (tmp_path / startup).is_file()


def test_issue_17_help_names_the_completion_options_and_stays_light() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "--install-completion" in result.output
    assert "--show-completion" in result.output
    code = (
        "import json, sys\n"
        "from convcli.cli import app\n"
        "try:\n"
        "    app(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('numpy', 'PIL', 'rich')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out.splitlines()[-1] == "[]"


def bash_words(line: str, **env: str) -> list[str]:
    """What ``convcli`` answers bash completing the last word of ``line``."""
    words = line.split(" ")
    out = run_convcli(
        [],
        _CONVCLI_COMPLETE="complete_bash",
        COMP_WORDS=line,
        COMP_CWORD=str(len(words) - 1),
        **env,
    ).stdout
    return out.split()


@pytest.mark.parametrize(
    "line",
    [
        "convcli apply x.png -k sob",
        "convcli apply x.png --kernel sob",
        "convcli batch in -o out -k sob",
        "convcli kernels sob",
    ],
)
def test_issue_17_bash_completes_kernel_names(line: str) -> None:
    assert bash_words(line) == ["sobel", "sobel_x", "sobel_y"]


def test_issue_17_bash_completes_commands_and_paths_are_left_to_the_shell() -> None:
    assert bash_words("convcli ") == ["kernels", "apply", "batch", "trace", "plan"]
    assert bash_words("convcli apply x.png -k ./fil") == []  # bash's -o default
    assert bash_words("convcli apply x.png -k 1,0;0,-1") == []


def test_issue_17_zsh_and_fish_completions_carry_descriptions() -> None:
    zsh = run_convcli(
        [],
        _CONVCLI_COMPLETE="complete_zsh",
        _TYPER_COMPLETE_ARGS="convcli apply x.png -k gau",
    ).stdout
    assert zsh.startswith("_arguments")
    assert '"gaussian":"Gaussian blur' in zsh
    assert '"gaussian\\\\:":"parameters sigma=1, size=0"' in zsh
    fish = run_convcli(
        [],
        _CONVCLI_COMPLETE="complete_fish",
        _TYPER_COMPLETE_FISH_ACTION="get-args",
        _TYPER_COMPLETE_ARGS="convcli batch in -k gaussian:s",
    ).stdout
    assert fish.splitlines() == [
        "gaussian:sigma=\tdefault 1",
        "gaussian:size=\tdefault 0",
    ]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_issue_17_bash_runs_the_installed_script(tmp_path: Path) -> None:
    script = tmp_path / "convcli.sh"
    script.write_text(run_convcli([], _CONVCLI_COMPLETE="source_bash").stdout)
    program = (
        f"source {script}\n"
        "COMP_WORDS=(convcli apply x.png -k sob)\n"
        "COMP_CWORD=4\n"
        "_convcli_completion convcli\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{CONVCLI.parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", program],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["sobel", "sobel_x", "sobel_y"]


# ---------------------------------------------------------------------------
# The callback


def names(incomplete: str) -> list[str]:
    return [value for value, _ in complete_kernel(incomplete)]


def test_complete_kernel_names_and_generators() -> None:
    assert names("sob") == ["sobel", "sobel_x", "sobel_y"]
    assert names("gau") == ["gaussian", "gaussian:"]
    assert names("lap") == ["laplacian", "laplacian8"]
    everything = names("")
    assert [n for n in everything if not n.endswith(":")] == kernel_names()
    assert {n[:-1] for n in everything if n.endswith(":")} == set(GENERATORS)
    (sobel,) = [help_ for value, help_ in complete_kernel("sobel") if value == "sobel"]
    assert sobel.startswith("Sobel gradient magnitude")


def test_complete_kernel_parameters_of_a_generator() -> None:
    assert names("gaussian:") == ["gaussian:sigma=", "gaussian:size="]
    assert names("gaussian:si") == ["gaussian:sigma=", "gaussian:size="]
    assert names("gaussian:sigma=2,") == ["gaussian:sigma=2,size="]
    assert names("dog:sigma1=1,sigma2") == ["dog:sigma1=1,sigma2="]
    assert names("box:size=3,") == []  # every parameter given
    assert names("sobel:") == []  # a fixed kernel takes none
    assert names("nosuch:") == []


@pytest.mark.parametrize("incomplete", ["./", "filters/s", "1,0;0,-1", "x", "~/k"])
def test_complete_kernel_leaves_paths_and_matrices_to_the_shell(
    incomplete: str,
) -> None:
    assert names(incomplete) == []


def test_complete_kernel_with_the_users_catalogue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "mine.txt").write_text("description: my own\n1 2\n3 4\n")
    (tmp_path / "gaussian.txt").write_text("1\n")  # a file before the generator
    monkeypatch.setenv("CONVCLI_KERNEL_PATH", str(tmp_path))
    assert complete_kernel("mi") == [("mine", "my own")]
    assert names("gau") == ["gaussian"]  # a file: no parameters
    (tmp_path / "broken.txt").write_text("1 2\n3\n")
    assert names("mi") == ["mine"]  # the catalogue does not load: names still
    assert "broken" in names("")


def test_trace_completes_demo_names_and_kernels() -> None:
    demos = bash_words("convcli trace --demo dep")
    assert demos == ["depthwise-separable"]
    assert set(bash_words("convcli trace --demo ")) >= {
        "cs231n",
        "transposed",
        "grouped",
    }
    assert "sobel" in bash_words("convcli trace -i 1 -k sob")
