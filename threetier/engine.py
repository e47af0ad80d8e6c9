"""The step engine: runs the guide's Parts in order, each one idempotent.

A part is `start` (find or create everything, begin long operations without
waiting for them) then `finish` (wait until the part is usable). Keeping the
two apart lets a later engine overlap the long waits while the parts still
read in the guide's order. A part recorded done is not trusted: it is run
again, and because every create is find-first, a complete part makes no
mutating call (verified), while a part missing something recreates only that
(repaired).
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable, Iterator

from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from threetier import aws as awslib
from threetier import state as statelib
from threetier.aws import Aws
from threetier.config import Config
from threetier.errors import ThreetierError, UsageError
from threetier.output import Output


@dataclass
class Check:
    """What a part's `check` saw in AWS, with zero mutating calls."""
    present: list[str] = field(default_factory=list)  # resources found as they should be
    missing: list[str] = field(default_factory=list)  # resources `up` would create
    drift: list[str] = field(default_factory=list)    # resources `up` would change

    def found(self, what: str, ok: bool) -> bool:
        """Record `what` as present or missing; returns `ok`."""
        (self.present if ok else self.missing).append(what)
        return ok


@dataclass(frozen=True)
class Part:
    number: int
    name: str
    title: str
    needs: tuple[int, ...]
    start: Callable[["Ctx"], None]
    finish: Callable[["Ctx"], None]
    destroy: Callable[["Ctx"], None]
    check: Callable[["Ctx"], Check]
    before_down: Callable[["Ctx"], None] | None = None  # refuses `down` before anything is deleted

    @classmethod
    def from_module(cls, module: ModuleType) -> "Part":
        return cls(number=module.NUMBER, name=module.NAME, title=module.TITLE, needs=module.NEEDS,
                   start=module.start, finish=module.finish, destroy=module.destroy, check=module.check,
                   before_down=getattr(module, "before_down", None))

    @property
    def label(self) -> str:
        return f"Part {self.number} ({self.name})"


@dataclass(frozen=True)
class Change:
    part: int
    action: str  # created | changed | deleted
    kind: str    # e.g. "subnet"
    name: str
    id: str | None = None


@dataclass
class Ctx:
    """What a part sees: config, the AWS layer, output, and the resources of the parts so far."""
    config: Config
    aws: Aws
    out: Output
    state: statelib.State
    part: Part | None = None
    changes: list[Change] = field(default_factory=list)
    skip_final_snapshot: bool = False  # down --skip-final-snapshot

    @property
    def stack(self) -> str:
        return self.config.stack

    def name(self, role: str) -> str:
        """The deterministic Name of a resource: <stack>-<role>."""
        return f"{self.stack}-{role}"

    @property
    def part_number(self) -> int:
        assert self.part is not None, "no part is running"
        return self.part.number

    def tag_spec(self, resource_type: str, role: str) -> list[dict[str, Any]]:
        return awslib.tag_spec(resource_type, self.stack, self.part_number, self.name(role))

    def tags(self, role: str) -> list[dict[str, str]]:
        return awslib.tags(self.stack, self.part_number, self.name(role))

    def filters(self, role: str | None = None) -> list[dict[str, Any]]:
        return awslib.tag_filters(self.stack, self.name(role) if role else None)

    # -- resources -------------------------------------------------------------
    @property
    def resources(self) -> dict[str, Any]:
        """The running part's resource IDs, saved to the state file."""
        return self.state.part(self.part_number, self.part.name).resources if self.part else {}

    def resources_of(self, number: int) -> dict[str, Any]:
        """Resource IDs of an earlier part (found in AWS by that part this run, or by a past run)."""
        part = self.state.parts.get(number)
        return part.resources if part else {}

    def has(self, number: int, *keys: str) -> bool:
        """Whether an earlier part's resources (as found this run) include all these keys."""
        found = self.resources_of(number)
        return all(found.get(key) for key in keys)

    def record(self, action: str, kind: str, name: str, resource_id: str | None = None) -> None:
        self.changes.append(Change(self.part_number, action, kind, name, resource_id))
        self.out.detail(f"  {action} {kind} {name}{f' ({resource_id})' if resource_id else ''}")


@contextlib.contextmanager
def progress(out: Output, label: str, aws: Aws) -> Iterator[None]:
    """A spinner with the elapsed time and what is being waited for (terminals only; stderr)."""
    if not out.interactive:  # a log or a pipe gets the one line per part, no spinner frames
        yield
        return
    display = Progress(SpinnerColumn(), TextColumn("{task.description}", markup=False), TimeElapsedColumn(),
                       console=out.err, transient=True)
    task = display.add_task(label)

    def on_poll(resource: str, poll: awslib.Poll) -> None:
        display.update(task, description=f"{label}: {resource}: {poll.status}")

    previous, aws.on_poll = aws.on_poll, on_poll
    try:
        with display:
            yield
    finally:
        aws.on_poll = previous


class Engine:
    def __init__(self, ctx: Ctx, state_file: statelib.StateFile, parts: tuple[Part, ...], *,
                 sequential: bool = False):
        self.ctx = ctx
        self.sequential = sequential  # one Part after another: the baseline the benchmark compares with
        self.state_file = state_file
        self.parts = parts
        self.timings: dict[int, float] = {}  # part -> seconds, this run

    def save(self) -> None:
        self.state_file.save(self.ctx.state)

    def part(self, key: str) -> Part:
        for part in self.parts:
            if key == str(part.number) or key == part.name:
                return part
        names = ", ".join(f"{p.number}/{p.name}" for p in self.parts)
        raise UsageError(f"PART: no part {key!r} (parts: {names})")

    def check(self, part: Part) -> Check:
        """What AWS has of `part` now, against what it should be; no mutating call."""
        self.ctx.part, self.ctx.aws.part = part, part.label
        return part.check(self.ctx)

    # -- up / replay ---------------------------------------------------------
    def up(self) -> None:
        self.ctx.state.account = self.ctx.aws.account
        for part in self.parts:
            self.apply(part)

    def replay(self, key: str) -> None:
        part = self.part(key)
        self.ctx.state.account = self.ctx.aws.account
        # The parts it needs are looked at in AWS (not taken from the state file), without changing them.
        for number in part.needs:
            needed = self.part(str(number))
            seen = self.check(needed)
            if seen.missing:
                raise UsageError(f"replay {part.name}: it needs {needed.label} done first "
                                 f"({seen.missing[0]} is missing); run `threetier up`")
        self.apply(part)

    def apply(self, part: Part) -> None:
        ctx, out = self.ctx, self.ctx.out
        record = ctx.state.part(part.number, part.name)
        was_done = record.status == statelib.DONE
        ctx.part = part
        ctx.aws.part = part.label
        mutations_before = len(ctx.aws.mutating_calls())
        changes_before = len(ctx.changes)
        started = time.monotonic()
        record.started_at, record.error = statelib.now(), None
        if not was_done:
            record.status = statelib.PENDING
        try:
            with progress(out, f"{part.label} {part.title}", ctx.aws):
                part.start(ctx)
                self.save()  # IDs of what was just created are known before the long waits
                part.finish(ctx)
        except ThreetierError as exc:
            record.status, record.error = statelib.FAILED, str(exc)
            self.save()
            raise
        except KeyboardInterrupt:
            record.status, record.error = statelib.FAILED, "interrupted"
            self.save()
            raise
        record.status, record.finished_at = statelib.DONE, statelib.now()
        self.save()
        created = len(ctx.changes) - changes_before
        mutated = len(ctx.aws.mutating_calls()) - mutations_before
        if not mutated:
            outcome = "verified, nothing to do"
        elif was_done:
            outcome = f"repaired ({created} changed)"
        else:
            outcome = f"done ({created} created or changed)"
        self.timings[part.number] = time.monotonic() - started
        out.info(Text.assemble(("✓ ", "green"), f"{part.label} {part.title}: {outcome}",
                               (f"  {self.timings[part.number]:.1f}s", "dim")))

    # -- down ------------------------------------------------------------------
    def down(self) -> None:
        ctx, out = self.ctx, self.ctx.out
        for part in reversed(self.parts):
            if part.before_down:
                ctx.part, ctx.aws.part = part, part.label
                part.before_down(ctx)
        for part in reversed(self.parts):
            ctx.part = part
            ctx.aws.part = part.label
            started = time.monotonic()
            changes_before = len(ctx.changes)
            try:
                with progress(out, f"{part.label} {part.title}: deleting", ctx.aws):
                    part.destroy(ctx)
            except ThreetierError as exc:
                record = ctx.state.part(part.number, part.name)
                record.status, record.error = statelib.FAILED, f"down: {exc}"
                self.save()
                raise
            ctx.state.parts.pop(part.number, None)
            self.save()
            deleted = len(ctx.changes) - changes_before
            outcome = f"deleted {deleted}" if deleted else "nothing to delete"
            out.info(Text.assemble(("✓ ", "green"), f"{part.label} {part.title}: {outcome}",
                                   (f"  {time.monotonic() - started:.1f}s", "dim")))
        ctx.part = None
        ctx.aws.part = "down"
