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
import re
import sys
from dataclasses import dataclass, field
from typing import IO, Any

from rich.console import Console, RenderableType
from rich.text import Text

# What a terminal would act on instead of showing: the C0 controls (ESC, CR, newline, tab, ...), DEL and
# the C1 controls, the Unicode line and paragraph separators, and the bidirectional overrides and isolates
# that reorder what follows them on the line.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(text: str) -> str:
    """`text` as one line of plain characters: every control character shown escaped (`\\x1b`, `\\n`,
    `\\u202e`), so that nothing read from AWS, the state file or the lock can move the cursor, clear the
    screen, retitle the window or start a line of its own (a forged `error:`). Idempotent: what it
    returns holds no control character."""
    return CONTROL.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    if char in SHORT_ESCAPES:
        return SHORT_ESCAPES[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def escaped_text(text: Text) -> Text:
    """A rich Text with `escape` applied to its characters, its styles kept."""
    plain = text.plain
    cuts = sorted({offset for match in CONTROL.finditer(plain) for offset in match.span()})
    if not cuts:
        return text
    shown = text.blank_copy()
    for piece in text.divide(cuts):
        if CONTROL.fullmatch(piece.plain):  # one control character: its escape, in its styles
            replaced = Text(escape(piece.plain), style=piece.style)
            for span in piece.spans:
                replaced.stylize(span.style)
            piece = replaced
        shown.append_text(piece)
    return shown


def one_line(message: str | Text) -> Text:
    """A message for the terminal, escaped: a str or Text passed to Output prints as exactly one line."""
    return escaped_text(message) if isinstance(message, Text) else Text(escape(message))


# --progress: how a command that runs the Parts shows them on stderr (see Output.animated).
PROGRESS_MODES = ("auto", "live", "plain")


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no file behind it, or a closed one
        return False


class ExitStatus(enum.IntEnum):
    OK = 0
    ERROR = 1          # an AWS call or a part failed
    USAGE = 2          # bad usage, bad config, refused confirmation
    DRIFT = 3          # status: the stack differs from what it should be (or is not there)
    INTERRUPTED = 130  # Ctrl-C


class DetailedExitStatus(enum.IntEnum):
    """`plan --detailed-exitcode`: Terraform's meaning exactly, whatever the reason for a failure."""
    NO_CHANGES = 0
    ERROR = 1          # any error or refusal: an AWS call, bad usage or config, a preflight shortfall
    CHANGES = 2        # up would create or change something


@dataclass
class Output:
    stdout: IO[str] = field(default_factory=lambda: sys.stdout)
    stderr: IO[str] = field(default_factory=lambda: sys.stderr)
    no_color: bool = False
    verbose: bool = False
    progress: str = "auto"  # one of PROGRESS_MODES

    def __post_init__(self) -> None:
        self.configure()

    def configure(self, *, no_color: bool = False, verbose: bool = False, progress: str | None = None) -> None:
        """Apply --no-color / -v / --progress once the command line is parsed."""
        self.no_color = self.no_color or no_color
        self.verbose = self.verbose or verbose
        self.progress = progress or self.progress
        no_color = self.no_color or "NO_COLOR" in os.environ
        # emoji off: ARNs such as ...:secret:rds!... must not turn into pictures.
        # --progress live: drawn as on a terminal even where stderr is not one (a log viewer that
        # plays escape sequences back).
        self.err = Console(file=self.stderr, no_color=no_color, highlight=False, soft_wrap=True, emoji=False,
                           color_system=None if no_color else "auto",
                           force_terminal=True if self.progress == "live" else None)
        self.res = Console(file=self.stdout, no_color=no_color, highlight=False, soft_wrap=True, emoji=False,
                           color_system=None if no_color else "auto")

    @property
    def interactive(self) -> bool:
        """Someone is there to answer a question: stderr is a real terminal (not one rich was told to
        draw on: `--progress live` or FORCE_COLOR on a pipe)."""
        return _isatty(self.stderr) and self.err.is_terminal

    @property
    def animated(self) -> bool:
        """Progress is the live display (redrawn in place), not plain lines (threetier.display). `auto`:
        only on a terminal that can move its cursor. TERM=dumb (Emacs shells, some CI consoles) cannot, and
        a pipe or a log (even one rich colours for FORCE_COLOR) would keep every frame as lines."""
        if self.progress == "plain":
            return False
        if self.progress == "auto" and not _isatty(self.stderr):
            return False
        return self.err.is_terminal and not self.err.is_dumb_terminal

    # A str or Text message is one line, escaped (`escape`): whatever AWS, the state file or a lock
    # value put into it. A table or other renderable is its maker's to escape (`escape` its cells).
    def info(self, message: str | Text) -> None:
        self.err.print(one_line(message))

    def result(self, message: str | Text | RenderableType) -> None:
        """Part of the command's result: stdout."""
        self.res.print(one_line(message) if isinstance(message, (str, Text)) else message)

    def detail(self, message: str) -> None:
        if self.verbose:
            self.err.print(Text(escape(message), style="dim"))

    def error(self, message: str) -> None:
        self.err.print(Text.assemble(("error: ", "bold red"), escape(message)))

    def data(self, value: Any) -> None:
        """Machine-readable output: pure JSON on stdout."""
        self.stdout.write(json.dumps(value, indent=2, sort_keys=False, default=str) + "\n")
        self.stdout.flush()
