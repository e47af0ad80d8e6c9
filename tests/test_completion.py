"""`threetier completion bash|zsh|fish`: the script on stdout, and a real bash completing with it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_the_script_for_each_shell_names_the_program_and_nothing_else_is_printed(shell: str, tmp_path: Path) -> None:
    # No config.yaml in the directory and no credentials needed: it reads neither.
    result = cli("completion", shell, cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert "_THREETIER_COMPLETE=" in result.stdout  # the variable the script sets to ask for completions
    assert "threetier" in result.stdout.replace("_THREETIER_COMPLETE", "")
    assert result.stdout.endswith("\n") and not result.stdout.startswith("\n")
    if shell == "zsh":
        assert result.stdout.startswith("#compdef threetier")  # also loadable from $fpath


def test_an_unknown_shell_is_refused_with_exit_2() -> None:
    result = cli("completion", "ksh")
    assert result.code == 2
    assert "'ksh' is not one of 'bash', 'zsh', 'fish'" in result.stderr
    assert result.stdout == ""
    assert cli("completion").code == 2  # the shell is required


def test_help_shows_how_to_load_it_in_each_shell(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("completion", "--help").code == 0
    text = capsys.readouterr().out
    assert "Examples:" in text
    for line in ("source <(threetier completion bash)", "source <(threetier completion zsh)",
                 "threetier completion fish > ~/.config/fish/completions/threetier.fish"):
        assert line in text
    assert cli("--help").code == 0
    top = capsys.readouterr().out
    assert "source <(threetier completion bash)" in top and "_THREETIER_COMPLETE" not in top


@pytest.mark.slow
def test_bash_completes_a_command_with_the_sourced_script(tmp_path: Path) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash on this machine")
    script = tmp_path / "threetier.bash"
    script.write_text(cli("completion", "bash").stdout)
    # The script runs `threetier` to ask for completions: this worktree's code, not an installed copy.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "threetier"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m threetier "$@"\n')
    wrapper.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}

    def complete(line: str) -> list[str]:
        words = line.split(" ")
        # What bash does on TAB: COMP_WORDS/COMP_CWORD set, then the function `complete -F` registered.
        program = (f"source {script}\n"
                   f"complete -p threetier >/dev/null || exit 9\n"
                   f"COMP_WORDS=({' '.join(words)}); COMP_CWORD={len(words) - 1}\n"
                   "_threetier_completion threetier\n"
                   'printf "%s\\n" "${COMPREPLY[@]}"\n')
        done = subprocess.run([bash, "--norc", "--noprofile", "-c", program], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    assert complete("threetier st") == ["status"]
    assert complete("threetier replay netw") == ["network"]
    assert complete("threetier dep") == ["deploy"]
    assert complete("threetier deploy ") == ["app", "web", "all"]
    assert complete("threetier rollback w") == ["web"]
