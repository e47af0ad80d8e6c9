"""One object owns stdout and stderr (httpie's Environment, in small).

A command's result (the status table, plan's changes, up's summary and URL)
goes to stdout, so `threetier status | grep url` and `status > file` work;
with --json stdout is one JSON object and nothing else. Progress, prompts,
warnings and errors go to stderr. NO_COLOR, --no-color and non-terminals are
honoured on both.
"""
from __future__ import annotations

import enum
import json
import os
import sys
from dataclasses import dataclass, field
from typing import IO, Any

from rich.console import Console, RenderableType
from rich.text import Text


class ExitStatus(enum.IntEnum):
    OK = 0
    ERROR = 1          # an AWS call or a part failed
    USAGE = 2          # bad usage, bad config, refused confirmation
    DRIFT = 3          # status: the stack differs from what it should be (or is not there)
    CHANGES = 3        # plan: up would create or change something
    INTERRUPTED = 130  # Ctrl-C


@dataclass
class Output:
    stdout: IO[str] = field(default_factory=lambda: sys.stdout)
    stderr: IO[str] = field(default_factory=lambda: sys.stderr)
    no_color: bool = False
    verbose: bool = False

    def __post_init__(self) -> None:
        self.configure()

    def configure(self, *, no_color: bool = False, verbose: bool = False) -> None:
        """Apply --no-color / -v once the command line is parsed."""
        self.no_color = self.no_color or no_color
        self.verbose = self.verbose or verbose
        no_color = self.no_color or "NO_COLOR" in os.environ
        # emoji off: ARNs such as ...:secret:rds!... must not turn into pictures.
        self.err = Console(file=self.stderr, no_color=no_color, highlight=False, soft_wrap=True, emoji=False,
                           color_system=None if no_color else "auto")
        self.res = Console(file=self.stdout, no_color=no_color, highlight=False, soft_wrap=True, emoji=False,
                           color_system=None if no_color else "auto")

    @property
    def interactive(self) -> bool:
        return self.err.is_terminal

    @property
    def animated(self) -> bool:
        """A terminal that can move its cursor: TERM=dumb (Emacs shells, some CI consoles) cannot,
        so a live display there would leave every frame behind as lines."""
        return self.err.is_terminal and not self.err.is_dumb_terminal

    def info(self, message: str | Text) -> None:
        self.err.print(message if isinstance(message, Text) else Text(message))

    def result(self, message: str | Text | RenderableType) -> None:
        """Part of the command's result: stdout."""
        self.res.print(Text(message) if isinstance(message, str) else message)

    def detail(self, message: str) -> None:
        if self.verbose:
            self.err.print(Text(message, style="dim"))

    def error(self, message: str) -> None:
        self.err.print(Text.assemble(("error: ", "bold red"), message))

    def data(self, value: Any) -> None:
        """Machine-readable output: pure JSON on stdout."""
        self.stdout.write(json.dumps(value, indent=2, sort_keys=False, default=str) + "\n")
        self.stdout.flush()
