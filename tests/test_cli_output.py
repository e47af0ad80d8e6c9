"""Issue 11: the CLI as people use it (help, completion, terminals)."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from types import SimpleNamespace

import pytest

from helpers import cli
from threetier.display import Display
from threetier.output import Output


def help_text(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert cli(*args, "--help").code == 0
    return capsys.readouterr().out  # click writes help to sys.stdout itself


@pytest.mark.parametrize("subcommand", ["start", "stop", "status"])
def test_sandbox_subcommands_offer_only_the_options_that_apply(subcommand: str, capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(capsys, "sandbox", subcommand)
    for absent in ("--config", "--state", "--sandbox"):  # the sandbox reads no config, state or sandbox flag
        assert absent not in text, text
    assert "--no-color" in text and "--verbose" in text
    assert cli("sandbox", subcommand, "--config", "x.yaml").code == 2  # refused, not silently ignored


def test_stack_commands_keep_every_global_option(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("up", "down", "status", "plan", "replay"):
        text = help_text(capsys, command)
        assert all(option in text for option in ("--config", "--state", "--sandbox", "--no-color", "--verbose"))


def _display_on_a_terminal(term: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Display, str]:
    """Run a Display on a pseudo-terminal for ~0.8 s with one part in flight; what the terminal got."""
    monkeypatch.setenv("TERM", term)
    master, slave = os.openpty()
    os.set_blocking(master, False)
    with os.fdopen(slave, "w", encoding="utf-8") as terminal:
        out = Output(stdout=terminal, stderr=terminal)
        aws = SimpleNamespace(on_poll=None, part="Part 2 (network)")
        display = Display(out, aws, clock=SimpleNamespace(now=time.monotonic))  # type: ignore[arg-type]
        with display:
            display.begin("Part 2 (network)", "network and security")
            time.sleep(0.8)  # a few refreshes at 4 a second
            display.end("Part 2 (network)")
            out.info("✓ Part 2 (network) network and security: done")
        terminal.flush()
    written = b""
    with contextlib.suppress(OSError):
        while chunk := os.read(master, 65536):
            written += chunk
    os.close(master)
    return display, written.decode("utf-8", "replace")


def test_a_dumb_terminal_gets_only_the_finished_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    display, written = _display_on_a_terminal("dumb", monkeypatch)
    assert display.live is None
    lines = written.replace("\r\n", "\n").split("\n")
    assert lines == ["✓ Part 2 (network) network and security: done", ""], written  # no frames, no blank lines


def test_a_capable_terminal_shows_parts_in_flight(monkeypatch: pytest.MonkeyPatch) -> None:
    # The counterpart of the dumb terminal: the live lines are there, and gone when the part ends.
    display, written = _display_on_a_terminal("xterm-256color", monkeypatch)
    assert display.live is not None
    assert "Part 2 (network) network and security" in written
    assert "✓ Part 2 (network) network and security: done" in written


def test_shell_completion_completes_commands_and_part_names(capsys: pytest.CaptureFixture[str]) -> None:
    exe = shutil.which("threetier")
    assert exe, "the threetier console script is not installed (pip install -e .)"

    def complete(*words: str) -> list[str]:
        env = {**os.environ, "COMP_WORDS": " ".join(("threetier", *words)), "COMP_CWORD": str(len(words)),
               "_THREETIER_COMPLETE": "bash_complete"}
        answer = subprocess.run([exe], env=env, capture_output=True, text=True, timeout=60, check=True).stdout
        return [line.split(",", 1)[1] for line in answer.splitlines()]

    assert complete("sa") == ["sandbox"]
    assert complete("replay", "app") == ["app-image", "app-tier"]
    assert "--take-over-lock" in complete("up", "--t")
    assert "_THREETIER_COMPLETE=bash_source threetier" in help_text(capsys)
