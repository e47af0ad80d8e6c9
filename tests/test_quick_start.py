"""The README's quick start (issue 24, item 5): two lines for a fresh Debian 12 or Ubuntu 24.04, whose
system Python refuses `pip install` outside a virtual environment. Run verbatim in a debootstrapped
Debian 12 for the issue's note; here, what can be checked without a network or root."""
from __future__ import annotations

import re
from pathlib import Path

from test_docs_ci import parse, threetier_command_lines

README = Path(__file__).resolve().parents[1] / "README.md"


def quick_start() -> tuple[list[str], str]:
    section = README.read_text().split("## Quick start\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"\n\n((?:    .+\n)+)", section)
    assert block, "the quick start has no indented command block"
    return [line[4:] for line in block.group(1).splitlines()], section


def test_two_lines_and_pip_only_inside_the_virtual_environment() -> None:
    lines, _ = quick_start()
    assert len(lines) == 2
    apt, install = lines
    assert apt == "sudo apt-get update && sudo apt-get install -y python3-venv"  # venv's ensurepip, on Debian
    steps = [step.strip() for step in install.split("&&")]
    assert steps[:2] == ["python3 -m venv .venv", ". .venv/bin/activate"]
    pips = [i for i, step in enumerate(steps) if re.match(r"(python3? -m )?pip3? install", step)]
    assert pips and min(pips) > 1  # never the system's pip: it is refused (externally managed)
    assert "python3 -m pip install" not in README.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]


def test_its_threetier_commands_parse() -> None:
    lines, section = quick_start()
    commands = [args for line in lines for args in threetier_command_lines(line)]
    assert commands == [["up", "--sandbox"]]
    then = re.findall(r"`threetier ([^`]+)`", section.split("Then ", 1)[1].split("\n\n", 1)[0])
    assert then == ["status --sandbox", "down --sandbox --yes", "sandbox stop"]
    for args in [*commands, *(line.split() for line in then)]:
        command, _ = parse(args)
        assert command.name == args[-1] if args[0] == "sandbox" else command.name == args[0]
