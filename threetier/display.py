"""What a terminal shows while parts run side by side: one line per part in flight.

Each line names the part, how long it has been running and, while it waits,
for what and the status AWS reported last; a part's ✓ line is printed above
them when it ends. Off a terminal (a log, a pipe) or on one that cannot move its
cursor (TERM=dumb) nothing moves: only the ✓ lines are written.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from threetier.aws import Aws, Poll
from threetier.output import Output, escape


def minutes(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    return f"{seconds // 60}:{seconds % 60:02d}"


class Display:
    def __init__(self, out: Output, aws: Aws, clock: Any):
        self.out, self.aws, self.clock = out, aws, clock
        self.running: dict[str, tuple[str, float]] = {}  # part label -> (title, since)
        self.waits: dict[str, tuple[str, str]] = {}  # part label -> (resource, status)
        self.live: Live | None = None
        self.spinner = Spinner("dots")
        self.previous: Callable[[str, Poll], None] | None = None  # who had the AWS layer's on_poll before

    def __enter__(self) -> Display:
        if self.out.animated:
            self.previous, self.aws.on_poll = self.aws.on_poll, self.on_poll
            self.live = Live(get_renderable=self.render, console=self.out.err, transient=True,
                             refresh_per_second=4, redirect_stdout=False, redirect_stderr=False)
            self.live.start()
        return self

    def __exit__(self, *_: Any) -> None:
        if self.live is not None:
            self.live.stop()
            self.aws.on_poll = self.previous

    def begin(self, label: str, title: str) -> None:
        self.running[label] = (title, self.clock.now())

    def end(self, label: str) -> None:
        self.running.pop(label, None)
        self.waits.pop(label, None)

    def on_poll(self, resource: str, poll: Poll) -> None:
        part = self.aws.part
        if poll.done or poll.failed:
            self.waits.pop(part, None)
        else:
            self.waits[part] = (resource, poll.status)
        if self.previous is not None:  # the stack lock's watch: a Part that waited checks its lock again
            self.previous(resource, poll)

    def render(self) -> RenderableType:
        if not self.running:
            return Text("")
        table = Table.grid(padding=(0, 1))
        now = self.clock.now()
        # Rich draws from its own thread while the parts change these: work on copies (dict() is atomic).
        running, waits = dict(self.running), dict(self.waits)
        for part, (title, since) in sorted(running.items()):
            resource, status = waits.get(part, ("", ""))
            table.add_row(self.spinner, Text(f"{part} {title}", style="bold"), Text(minutes(now - since), style="dim"),
                          Text(escape(f"{resource}: {status}") if resource else ""))  # AWS's status, as it said it
        return Group(table)
