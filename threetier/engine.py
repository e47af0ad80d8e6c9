"""The step engine: the guide's Parts, each idempotent, scheduled by what they need.

A part is `start` (find or create what needs only the *existence* of other
parts' resources: their IDs) then `finish` (wait, and create what needs
something *ready*). After `start` the part has reached EXISTS, after `finish`
DONE; a part that needs more of another part says so where it needs it,
`ctx.need(2, DONE)` ("the app builder needs the NAT gateways available"), and
that is the only place it waits for another part. All parts of a command run
side by side as cooperative tasks (threetier.scheduler): one at a time,
switching where they wait, so every AWS wait overlaps every other while the
parts still read in the guide's order. `sequential=True` runs them strictly one
after another instead (the benchmark's baseline).

A part recorded done is not trusted: it is run again, and because every create
is find-first, a complete part makes no mutating call (verified), while a part
missing something recreates only that (repaired). Before the parts run, the
engine takes one inventory of the stack (`take_inventory`: each part's `looks`,
read concurrently), so a run that changes nothing reads AWS in a few rounds
instead of a hundred sequential calls. `down` runs the parts' `destroy` the same
way: everything starts at once, and a part waits (`ctx.need_for_teardown()`)
only for the parts whose resources hold its own.

Which part may wait for which milestone of which other is declared once, as
`Edge`s, in steps/graph.py: `ctx.need` refuses any wait not declared there, a
part's `needs` (what `replay` checks first) and its teardown waits are read
from there. A part module's hooks are named in `HOOKS` below; `Part.from_module`
refuses a module that lacks a required one or misspells one.
"""
from __future__ import annotations

import dataclasses
import inspect
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from rich.text import Text

from threetier import aws as awslib
from threetier import state as statelib
from threetier.aws import Aws, Look
from threetier.changes import CHANGED, CONFIGURED, CREATED, DELETED, Change, counts, describe_counts, subjects
from threetier.config import Config
from threetier.display import Display
from threetier.errors import ThreetierError, UsageError
from threetier.lock import LockLost
from threetier.output import Output
from threetier.scheduler import Cancelled, Scheduler, Task, TaskClock

# Milestones of a part in a run.
EXISTS = "exists"  # `start` is over: the IDs other parts need are known
DONE = "done"      # `finish` is over: the part is ready
GONE = "gone"      # `destroy` is over: nothing of the part holds anything else
PAUSE_FAILED = "pause: "  # how a Part's last error in the state file says its pause failed

# The functions a Part module defines for the engine, by name. `Part.from_module` refuses a module that
# lacks a required one, and one that defines a function of its own within NEAR_MISS edits of a hook's
# name without being it (`look`, `destory`): read with getattr(module, "looks", None), such a typo
# would only mean "no hook", silently. A helper whose name is that close is made private (`_pauses`).
REQUIRED_HOOKS = ("start", "finish", "destroy", "check")
OPTIONAL_HOOKS = ("before_down", "looks", "pause")
HOOKS = REQUIRED_HOOKS + OPTIONAL_HOOKS
NEAR_MISS = 2  # edit distance: one wrong, missing or extra letter, or two


@dataclass
class Check:
    """What a part's `check` saw in AWS, with zero mutating calls."""
    present: list[str] = field(default_factory=list)  # resources found as they should be
    missing: list[str] = field(default_factory=list)  # resources `up` would create
    drift: list[str] = field(default_factory=list)    # resources `up` would change
    # What `up` may also create or change that cannot be known before it runs (the certificate's
    # validation record: ACM names it once the certificate is requested): `plan` lists it apart.
    unknown: list[str] = field(default_factory=list)
    # Of the lines above, what `up` deletes (drift it ends by deleting; a builder it launches and
    # terminates in one run): `plan` counts it apart, as `up` counts it.
    deletes: list[str] = field(default_factory=list)
    # Of the drift, what `up` changes nothing about but waits for (too few healthy targets: the group
    # replaces them; a certificate pending validation): `plan` says so in its notes, and counts none.
    waits: list[str] = field(default_factory=list)
    # Worth knowing, but nothing `up` changes (a failover, a reboot to take a setting): shown by
    # `status` and `plan`, counted by neither's exit status.
    notes: list[str] = field(default_factory=list)
    # CloudWatch alarm name -> state (OK, ALARM, INSUFFICIENT_DATA): shown by `status`, which exits 3
    # on ALARM; not by `plan` (an alarm firing is nothing `up` changes).
    alarms: dict[str, str] = field(default_factory=dict)

    def awaited(self, what: str) -> None:
        """Record drift that `up` waits out, with no change of its own."""
        self.drift.append(what)
        self.waits.append(what)

    def unwanted(self, what: str) -> None:
        """Record drift that `up` ends by deleting it."""
        self.drift.append(what)
        self.deletes.append(what)

    def found(self, what: str, ok: bool) -> bool:
        """Record `what` as present or missing; returns `ok`."""
        (self.present if ok else self.missing).append(what)
        return ok


@dataclass(frozen=True)
class Edge:
    """Part `part` waits, somewhere in its code (`ctx.need`), for Part `needs` to reach `milestone`.
    steps/graph.py declares every one; `why` is what the drawing (`threetier graph`) says."""
    part: int
    needs: int
    milestone: str
    why: str
    # What of `needs` the resources of `part` hold while they exist (ENIs in its subnets, instances
    # running with its profile): then `needs`'s destroy waits for `part` GONE. "": nothing held.
    holds: str = ""


@dataclass(frozen=True)
class Part:
    number: int
    name: str
    title: str
    needs: tuple[int, ...]  # the parts it needs to be built (`replay` looks at them first): from its edges
    start: Callable[[Ctx], None]
    finish: Callable[[Ctx], None]
    destroy: Callable[[Ctx], None]
    check: Callable[[Ctx], Check]
    before_down: Callable[[Ctx], None] | None = None  # refuses `down` before anything is deleted
    looks: Callable[[Ctx], Iterable[Look]] | None = None  # the reads of its finds, for the inventory
    pause: Callable[[Ctx], None] | None = None  # `threetier pause`: stop what bills by the hour, keep the rest
    edges: tuple[Edge, ...] = ()  # every wait it may make (`ctx.need`), from steps/graph.py

    @classmethod
    def from_module(cls, module: ModuleType, edges: Iterable[Edge] = ()) -> Part:
        """The Part a steps/ module defines; `edges`: the graph's, of which it takes its own."""
        own = tuple(edge for edge in edges if edge.part == module.NUMBER)
        return cls(number=module.NUMBER, name=module.NAME, title=module.TITLE,
                   needs=tuple(sorted({edge.needs for edge in own if edge.milestone != GONE})),
                   **hooks_of(module), edges=own)

    @property
    def label(self) -> str:
        return f"Part {self.number} ({self.name})"

    @property
    def gone_first(self) -> tuple[int, ...]:
        """The parts whose resources hold its own: its destroy waits until they are GONE."""
        return tuple(edge.needs for edge in self.edges if edge.milestone == GONE)

    def declares(self, number: int, milestone: str) -> bool:
        return any(edge.needs == number and edge.milestone == milestone for edge in self.edges)


def hooks_of(module: ModuleType) -> dict[str, Callable[..., Any]]:
    """A Part module's hooks by name (see HOOKS); refused, at import of steps, when one required is
    missing, or when the module defines a function whose name is a near miss of a hook's."""
    where = module.__name__
    missing = [name for name in REQUIRED_HOOKS if not callable(getattr(module, name, None))]
    if missing:
        raise ThreetierError(f"internal error: Part module {where} lacks the hook(s) {', '.join(missing)} "
                             f"(a Part defines {', '.join(REQUIRED_HOOKS)}; may define {', '.join(OPTIONAL_HOOKS)})")
    for name, value in vars(module).items():
        # Its own functions only: what it imports (Look, Check) is another module's interface.
        if name in HOOKS or name.startswith("_") or not inspect.isfunction(value) or value.__module__ != where:
            continue
        near = [hook for hook in HOOKS if edit_distance(name.lower(), hook) <= NEAR_MISS]
        if near:
            raise ThreetierError(f"internal error: Part module {where} defines {name}(), which is not a hook: "
                                 f"a misspelt {' or '.join(near)}? (hooks: {', '.join(HOOKS)}; a helper "
                                 f"named that close to one is made private: _{name})")
    if hasattr(module, "NEEDS"):  # the graph is the one place: a second list would only rot
        raise ThreetierError(f"internal error: Part module {where} defines NEEDS; what a Part needs is "
                             f"declared in steps/graph.py")
    return {name: getattr(module, name) for name in HOOKS if getattr(module, name, None) is not None}


def edit_distance(a: str, b: str) -> int:
    """Levenshtein: the fewest letters to change, drop or add to turn `a` into `b`."""
    previous = list(range(len(b) + 1))
    for i, letter in enumerate(a, 1):
        current = [i]
        for j, other in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (letter != other)))
        previous = current
    return previous[-1]


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
    left_alone: dict[str, str] = field(default_factory=dict)  # down: IDs AWS would refuse to delete, and why
    run: Run | None = None  # the command's parts in flight; None outside a run (status, plan, tests)
    # `status` of a paused stack: what `pause` removed, stopped or scaled to 0 is as it should be (a
    # note), what it left billing is drift. `plan` leaves it off: it lists what `resume` would change.
    paused: bool = False

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

    def need(self, number: int, milestone: str = DONE) -> None:
        """Wait here until part `number` reaches `milestone` (at once outside a run). Only along an
        edge steps/graph.py declares for the running part: refused even when the milestone is
        reached already, so an undeclared wait fails in every run, not only in one where it waits."""
        if self.part is not None and not self.part.declares(number, milestone):
            raise ThreetierError(f"internal error: {self.part.label} needs Part {number} {milestone}, an "
                                 f"undeclared edge (declare it in steps/graph.py)")
        if self.run is not None:
            self.run.need(self.part, number, milestone)

    def need_for_teardown(self) -> None:
        """In `destroy`: wait until every part whose resources hold the running part's is GONE (the
        graph's GONE edges), the latest part first. Outside a part (a test), at once, like `need`."""
        for number in self.part.gone_first if self.part else ():
            self.need(number, GONE)

    def reach(self, milestone: str) -> None:
        """The running part reached a milestone of its own that other parts may wait for."""
        if self.run is not None:
            self.run.reach(self.part_number, milestone)

    def save(self) -> None:
        """Write the state file now, in the middle of a Part: before a change that nothing but the
        state file will know of (a Route 53 record takes no tags), so that a run killed outright right
        after it (SIGKILL: no handler runs) leaves a file that knows it. Outside a run (status, plan,
        a block's test), there is no file to write."""
        if self.run is not None and self.run.save is not None:
            self.run.save()

    def record(self, action: str, kind: str, name: str, resource_id: str | None = None) -> None:
        if action == CHANGED and self._made_this_run(name):
            action = CONFIGURED
        self.changes.append(Change(self.part_number, action, kind, name, resource_id))
        self.out.detail(f"  {action} {kind} {name}{f' ({resource_id})' if resource_id else ''}")

    def _made_this_run(self, name: str) -> bool:
        made = {value for c in self.changes if c.action == CREATED for value in (c.name, c.id) if value}
        return bool(subjects(name) & made)


@dataclass
class Run:
    """The parts of one command in flight: who reached which milestone, and the timeline."""
    numbers: tuple[int, ...]                      # the parts this run executes
    scheduler: Scheduler
    reached: dict[int, set[str]] = field(default_factory=dict)
    failed: set[int] = field(default_factory=set)
    save: Callable[[], None] | None = None  # the engine's: writes the state file (Ctx.save)
    # The display's: a Part waits for another's milestone ("Part 1 done"), then no longer (None).
    on_need: Callable[[str, str | None], None] | None = None

    def reach(self, number: int, milestone: str) -> None:
        self.reached.setdefault(number, set()).add(milestone)
        if self.scheduler.current() is not None:
            self.scheduler.sleep(0)  # a turn for the parts that waited for this

    def has(self, number: int, milestone: str) -> bool:
        reached = self.reached.get(number, set())
        return milestone in reached or (DONE in reached and milestone != GONE)  # done: past every milestone

    def need(self, part: Part | None, number: int, milestone: str) -> None:
        if self.has(number, milestone):
            return
        if number not in self.numbers:
            who = part.label if part else "this command"
            raise ThreetierError(f"internal error: {who} needs Part {number} {milestone}, which this run "
                                 f"does not execute (missing from steps/graph.py?)")
        what, label = f"Part {number} {milestone}", part.label if part else ""
        if self.on_need is not None:
            self.on_need(label, what)
        self.scheduler.wait_until(lambda: self.has(number, milestone) or number in self.failed, what)
        if self.on_need is not None:
            self.on_need(label, None)
        if number in self.failed:
            raise Cancelled(f"Part {number} failed")


@dataclass(frozen=True)
class Span:
    """When a part ran in this command, on the AWS layer's clock (virtual in the benchmark)."""
    part: int
    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


def part_named(parts: Iterable[Part], key: str) -> Part:
    """PART as the commands take it: its number or its name; a wrong one is a usage error."""
    parts = tuple(parts)
    for part in parts:
        if key in (str(part.number), part.name):
            return part
    names = ", ".join(f"{p.number}/{p.name}" for p in parts)
    raise UsageError(f"PART: no part {key!r} (parts: {names})")


class Engine:
    def __init__(self, ctx: Ctx, state_file: statelib.StateFile, parts: tuple[Part, ...], *,
                 sequential: bool = False):
        self.ctx = ctx
        self.state_file = state_file
        self.parts = parts
        self.sequential = sequential  # one Part after another: the baseline the benchmark compares with
        self.timeline: dict[int, Span] = {}  # part -> when it ran, this command
        self.started: float | None = None
        self._began: dict[int, float] = {}
        # The Parts take turns (one runs at a time), but a Part saves mid-run too (Ctx.save): one
        # writer of the file at a time, whatever runs the Parts.
        self._saving = threading.Lock()

    @property
    def timings(self) -> dict[int, float]:
        return {number: span.seconds for number, span in self.timeline.items()}

    def save(self) -> None:
        try:
            with self._saving:
                self.state_file.save(self.ctx.state)
        except OSError as exc:
            # In the middle of a run AWS may hold what this run made; the tags find it again, not the
            # file, so nothing is lost: say so, and exit 1 (the run failed, it was not refused).
            raise statelib.StateError(
                statelib.cannot(self.state_file.path, "write the state file", exc, statelib.WRITABLE)
                + "; what was created is tagged and is found again by `threetier up` (or `down`) once the "
                  "state file can be written") from None

    def part(self, key: str) -> Part:
        return part_named(self.parts, key)

    def check(self, part: Part) -> Check:
        """What AWS has of `part` now, against what it should be; no mutating call."""
        self.ctx.part, self.ctx.aws.part = part, part.label
        return part.check(self.ctx)

    def take_inventory(self, parts: Iterable[Part] | None = None, also: Iterable[Look] = ()) -> None:
        """Read what the parts' finds will read, concurrently, in a few rounds (a part's later
        looks depend on what its earlier ones found: the rules of a security group it found).
        `also`: other reads of the command, in the first round."""
        parts = tuple(parts or self.parts)
        self.ctx.aws.account  # noqa: B018 - read for its effect: names derive from it (the bucket)
        extra = list(also)
        for _ in range(4):
            looks = extra + [look for part in parts if part.looks
                             for look in part.looks(dataclasses.replace(self.ctx, part=part))]
            fresh = [look for look in looks if not self.ctx.aws.has(look)]
            if not fresh:
                return
            self.ctx.aws.prefetch(fresh)

    # -- up / replay ---------------------------------------------------------
    def up(self) -> None:
        self.ctx.state.account = self.ctx.aws.account
        self.take_inventory()
        self._run(self.parts, self._apply)
        if self.ctx.state.paused is not None:  # every Part is as config.yaml says: running, not paused
            self.ctx.state.paused = None
            self.save()

    def replay(self, key: str) -> None:
        part = self.part(key)
        self.run_alone(self.needs_done(f"replay {part.name}", (part,)), (part,))

    def needs_done(self, command: str, parts: tuple[Part, ...]) -> dict[int, set[str]]:
        """Before Parts run alone (`replay`, `deploy`): the parts they need, looked at in AWS (not
        taken from the state file), without changing them; one missing something is refused. What
        the run is to take as done (`run_alone`)."""
        if self.ctx.state.paused is not None:  # some Parts alone would leave the stack half paused
            raise UsageError(f"{command}: stack {self.ctx.stack} is paused (since "
                             f"{self.ctx.state.paused.since}); `threetier resume` brings it back first")
        self.ctx.state.account = self.ctx.aws.account
        running = {part.number for part in parts}
        wanted = {needed.number for part in parts for needed in self.needed_by(part)} - running
        needed = [part for part in self.parts if part.number in wanted]
        self.take_inventory([*needed, *parts])
        for needed_part in needed:
            seen = self.check(needed_part)
            if seen.missing:
                raise UsageError(f"{command}: it needs {needed_part.label} done first "
                                 f"({seen.missing[0]} is missing); run `threetier up`")
        return {part.number: {EXISTS, DONE} for part in needed}

    def run_alone(self, done: dict[int, set[str]], parts: tuple[Part, ...]) -> None:
        """The Parts, side by side, the others taken as `done` (`needs_done`'s answer)."""
        self._run(parts, self._apply, already=done)

    def needed_by(self, part: Part) -> list[Part]:
        """The parts `part` needs, and what they need in turn, in the guide's order: their checks
        fill in what `part` reads of them (Part 4's image name needs Part 3's endpoint...)."""
        numbers: set[int] = set()
        todo = list(part.needs)
        while todo:
            number = todo.pop()
            if number not in numbers:
                numbers.add(number)
                todo.extend(self.part(str(number)).needs)
        return [p for p in self.parts if p.number in numbers]

    def _apply(self, ctx: Ctx) -> None:
        part = ctx.part
        assert part is not None and ctx.run is not None
        record = ctx.state.part(part.number, part.name)
        was_done = record.status == statelib.DONE
        changes_before = len(ctx.changes)
        record.started_at, record.error = statelib.now(), None
        if not was_done:
            record.status = statelib.PENDING
        try:
            part.start(ctx)
            self.save()  # IDs of what was just created are known before the long waits
            ctx.run.reach(part.number, EXISTS)
            part.finish(ctx)
        except ThreetierError as exc:
            if not isinstance(exc, LockLost):  # a lost lock stopped it before its changes: nothing failed
                record.status = statelib.FAILED
            record.error = str(exc)
            self.save()
            raise
        except KeyboardInterrupt:
            record.status, record.error = statelib.FAILED, "interrupted"
            self.save()
            raise
        except Cancelled:  # another part failed, or Ctrl-C: this one stops where it was
            record.error = "stopped before it finished"
            self.save()
            raise
        record.status, record.finished_at = statelib.DONE, statelib.now()
        self.save()
        ctx.run.reach(part.number, DONE)
        # Its own records only: the parts run side by side, so the calls made meanwhile are not all its own.
        tally = counts(c for c in ctx.changes[changes_before:] if c.part == part.number)
        if not any(tally.values()):
            outcome = "verified, nothing to do"
        else:
            outcome = f"{'repaired' if was_done else 'done'} ({describe_counts(tally)})"
        self._finished(part, outcome)

    # -- pause -----------------------------------------------------------------
    def pause(self) -> None:
        """Every Part's `pause` at once (7, 5, 3, 2: the waits for instances to go, the cluster to
        stop and the NAT gateways to be deleted overlap). The marker is written first, so a crash
        leaves a stack that says it is paused and `pause` again finishes the job; the Parts stay done."""
        ctx = self.ctx
        ctx.state.account = ctx.aws.account
        if ctx.state.paused is None:
            ctx.state.paused = statelib.Paused(since=statelib.now())
            self.save()
        self._run(tuple(part for part in reversed(self.parts) if part.pause), self._pause)
        ctx.aws.part = "pause"

    def _pause(self, ctx: Ctx) -> None:
        part = ctx.part
        assert part is not None and part.pause is not None
        record = ctx.state.part(part.number, part.name)
        changes_before = len(ctx.changes)
        try:
            part.pause(ctx)
            if (record.error or "").startswith(PAUSE_FAILED):  # an earlier pause's failure is over
                record.error = None
        except ThreetierError as exc:
            record.error = f"{PAUSE_FAILED}{exc}"  # still done: what it made is there, only the pause failed
            raise
        finally:
            self.save()
        tally = counts(c for c in ctx.changes[changes_before:] if c.part == part.number)
        self._finished(part, f"paused ({describe_counts(tally)})" if any(tally.values()) else "paused already")

    def down(self) -> None:
        ctx = self.ctx
        for part in reversed(self.parts):
            if part.before_down:
                ctx.part, ctx.aws.part = part, part.label
                part.before_down(ctx)
        ctx.part = None
        self._run(tuple(reversed(self.parts)), self._destroy)
        ctx.aws.part = "down"

    def _destroy(self, ctx: Ctx) -> None:
        part = ctx.part
        assert part is not None and ctx.run is not None
        changes_before = len(ctx.changes)
        try:
            part.destroy(ctx)
        except ThreetierError as exc:
            record = ctx.state.part(part.number, part.name)
            if not isinstance(exc, LockLost):  # stopped before its deletions: what it had is all there
                record.status = statelib.FAILED
            record.error = f"down: {exc}"
            self.save()
            raise
        ctx.state.parts.pop(part.number, None)
        self.save()
        ctx.run.reach(part.number, GONE)
        deleted = counts(c for c in ctx.changes[changes_before:] if c.part == part.number)[DELETED]
        self._finished(part, f"deleted {deleted}" if deleted else "nothing to delete")

    # -- running parts -----------------------------------------------------------
    def _run(self, parts: tuple[Part, ...], body: Callable[[Ctx], None],
             already: dict[int, set[str]] | None = None) -> None:
        """Run `body` for every part as a task of one scheduler (or one after another)."""
        aws = self.ctx.aws
        base_clock = aws.clock
        scheduler = Scheduler(base_clock)
        self.started = base_clock.now()
        display = Display(self.ctx.out, aws, base_clock, titles=[f"{p.label} {p.title}" for p in parts])
        run = Run(numbers=tuple(p.number for p in parts), scheduler=scheduler, reached=dict(already or {}),
                  save=self.save, on_need=display.need)

        def task(part: Part) -> Task:
            def go() -> None:
                aws.part = part.label
                ctx = dataclasses.replace(self.ctx, part=part, run=run)
                started = self._began[part.number] = base_clock.now()
                display.begin(part.label, part.title)
                try:
                    body(ctx)
                except BaseException:
                    run.failed.add(part.number)
                    raise
                finally:
                    display.end(part.label)
                    self.timeline[part.number] = Span(part.number, started - (self.started or 0),
                                                      base_clock.now() - (self.started or 0))
            return Task(part.label, go)

        tasks = [task(part) for part in parts]
        aws.clock = TaskClock(scheduler)
        try:
            with display:
                if self.sequential:
                    for one in tasks:
                        scheduler.run([one])
                else:
                    scheduler.run(tasks)
        finally:
            aws.clock = base_clock

    def _finished(self, part: Part, outcome: str) -> None:
        took = self.ctx.aws.clock.now() - self._began.get(part.number, 0.0)
        self.ctx.out.info(Text.assemble(("✓ ", "green"), f"{part.label} {part.title}: {outcome}",
                                        (f"  {took:.1f}s", "dim")))
