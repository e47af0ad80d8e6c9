"""What stderr shows while a command's Parts run side by side: live on a terminal, plain lines elsewhere.

Live (`--progress live`, or `auto` on a terminal that can move its cursor): one line per Part in
flight with how long it has been running and, while it waits, for what and the status AWS reported
last; a Part's ✓ line is printed above them when it ends. The columns have fixed widths, taken from
every Part's title at the start, so nothing moves sideways when a row comes or goes.

Plain (`--progress plain`, or `auto` in a log, a pipe, or on TERM=dumb): nothing is redrawn. Every
line written to stderr while the Parts run starts with the run's elapsed time (`[ 3:30]`) and is
written when it happens: a line as each Part starts, one when a wait begins (AWS said "not yet"),
then at most one every REPEAT seconds while that wait goes on, and the ✓ lines. The time is the
run's clock (the engine's: virtual in the benchmark), never the wall's, so a test can check it.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.console import ConsoleRenderable, Group, RenderableType, RenderHook
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from threetier.aws import Aws, Poll
from threetier.output import Output, escape

REPEAT = 30.0       # plain: seconds of the run between two lines about one wait
ELAPSED_WIDTH = 5   # live: the elapsed column, "12:34"


def minutes(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    return f"{seconds // 60}:{seconds % 60:02d}"


def duration(seconds: float) -> str:
    """How long a wait has lasted: 45s, 3m30s."""
    seconds = max(int(seconds), 0)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


@dataclass
class Wait:
    """What one Part waits for now."""
    resource: str
    status: str   # as AWS said it last
    since: float  # its first look, on the run's clock
    said: float   # plain: when the last line about it was written


class Stamp(RenderHook):
    """Plain progress: the run's elapsed time before each line printed on stderr."""

    def __init__(self, elapsed: Callable[[], float]):
        self.elapsed = elapsed

    def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[ConsoleRenderable]:
        stamp = Text(f"[{minutes(self.elapsed()):>{ELAPSED_WIDTH}}] ", style="dim")
        return [stamped(stamp, renderable) for renderable in renderables]


def stamped(stamp: Text, renderable: ConsoleRenderable) -> ConsoleRenderable:
    if not isinstance(renderable, Text):  # a table: none is printed while the Parts run
        return renderable
    line = stamp.copy()
    line.append_text(renderable)
    line.end = renderable.end
    return line


class Display:
    def __init__(self, out: Output, aws: Aws, clock: Any, titles: Iterable[str] = ()):
        """`titles`: each Part's "label title" as its row shows it, for the live display's column width."""
        self.out, self.aws, self.clock = out, aws, clock
        self.started = clock.now()
        self.running: dict[str, tuple[str, float]] = {}  # part label -> (title, since)
        self.waits: dict[str, Wait] = {}  # part label -> what it waits for
        self.title_width = max(map(cell_len, titles), default=0)
        self.live: Live | None = None
        self.stamp: Stamp | None = None
        self.spinner = Spinner("dots")
        self.previous: Callable[[str, Poll], None] | None = None  # who had the AWS layer's on_poll before

    def __enter__(self) -> Display:
        self.previous, self.aws.on_poll = self.aws.on_poll, self.on_poll
        if self.out.animated:
            self.live = Live(get_renderable=self.render, console=self.out.err, transient=True,
                             refresh_per_second=4, redirect_stdout=False, redirect_stderr=False)
            self.live.start()
        else:
            self.stamp = Stamp(lambda: self.clock.now() - self.started)
            self.out.err.push_render_hook(self.stamp)
        return self

    def __exit__(self, *_: Any) -> None:
        if self.live is not None:
            self.live.stop()
        if self.stamp is not None:
            self.out.err.pop_render_hook()
        self.aws.on_poll = self.previous

    @property
    def plain(self) -> bool:
        return self.stamp is not None

    def say(self, message: str) -> None:
        """A line of plain progress (stamped on its way out); the live display shows it in its rows instead."""
        if self.plain:
            self.out.info(message)

    def begin(self, label: str, title: str) -> None:
        self.running[label] = (title, self.clock.now())
        self.title_width = max(self.title_width, cell_len(f"{label} {title}"))
        self.say(f"{label} {title}: started")

    def end(self, label: str) -> None:
        self.running.pop(label, None)
        self.waits.pop(label, None)

    def need(self, label: str, what: str | None) -> None:
        """Part `label` waits for another Part's milestone (`what`: "Part 1 done"), or (None) no longer."""
        if what is None:
            self.waits.pop(label, None)
            return
        now = self.clock.now()
        self.waits[label] = Wait(what, "", since=now, said=now)
        self.say(f"{label}: waiting for {what}")

    def on_poll(self, resource: str, poll: Poll) -> None:
        part, now = self.aws.part, self.clock.now()
        wait = self.waits.get(part)
        if poll.done or poll.failed:
            self.waits.pop(part, None)
        elif wait is None or wait.resource != resource:  # a Part waits for one thing at a time
            self.waits[part] = Wait(resource, poll.status, since=now, said=now)
            self.say(f"{part}: waiting for {resource}: {poll.status}")
        else:
            wait.status = poll.status
            if now - wait.said >= REPEAT:
                wait.said = now
                self.say(f"{part}: still waiting for {resource}: {poll.status}, {duration(now - wait.since)}")
        if self.previous is not None:  # the stack lock's watch: a Part that waited checks its lock again
            self.previous(resource, poll)

    def render(self) -> RenderableType:
        if not self.running:
            return Text("")
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True)  # the spinner
        table.add_column(width=self.title_width or None, no_wrap=True)
        table.add_column(width=ELAPSED_WIDTH, justify="right", no_wrap=True)
        table.add_column(no_wrap=True, overflow="ellipsis")  # one row per Part, however narrow the terminal
        now = self.clock.now()
        # Rich draws from its own thread while the parts change these: work on copies (dict() is atomic).
        running, waits = dict(self.running), dict(self.waits)
        for part, (title, since) in sorted(running.items()):
            wait = waits.get(part)
            table.add_row(self.spinner, Text(f"{part} {title}", style="bold"), Text(minutes(now - since), style="dim"),
                          Text(escape(waiting(wait)) if wait else ""))  # AWS's status, as it said it
        return Group(table)


def waiting(wait: Wait) -> str:
    return f"{wait.resource}: {wait.status}" if wait.status else f"waiting for {wait.resource}"


@contextlib.contextmanager
def working(out: Output, what: str) -> Iterator[None]:
    """A spinner line saying `what` (e.g. "preparing the summary…") while it is done, on the live
    display's terminal only; gone once done."""
    if not out.animated:
        yield
        return
    with out.err.status(Text(what), spinner="dots"):
        yield
