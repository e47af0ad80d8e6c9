"""`threetier up`: Parts 1-7 in order; done parts are verified, not redone."""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table
from rich.text import Text

from threetier import sources
from threetier.changes import counts, describe_counts
from threetier.cli.common import (
    Runtime,
    change_entry,
    changing,
    global_options,
    lock_option,
    run_report,
    runtime,
    stack_changes,
)
from threetier.cli.cost import summary_line
from threetier.errors import UsageError
from threetier.estimate import estimate
from threetier.output import ExitStatus, Output

if TYPE_CHECKING:
    from threetier.engine import Engine


@click.command("up", help="""Build the stack, Part 1 to the last, or verify and repair it.

Each part finds its resources by tags before creating anything, so running
`up` again after a crash or an interruption resumes where it stopped and ends
with exactly one of everything; on a complete stack it changes nothing.

Before it creates a new stack it says what the stack costs a month
(`threetier cost` has the lines) and, on a terminal, asks first.

\b
Examples:
  threetier up
  threetier up --yes                no question before a new stack (scripts)
  threetier up --config prod.yaml -v
  threetier up --sandbox            no AWS account: a local emulator
""")
@click.option("--yes", "-y", is_flag=True, help="do not ask before creating a new stack (it bills by the hour)")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON on stdout (and nothing else)")
@lock_option
@global_options
@click.pass_context
def command(ctx: click.Context, yes: bool, take_over_lock: bool, as_json: bool) -> int:
    rt = runtime(ctx)
    sources.check(rt.config)  # your code's directories, before any AWS call
    with changing(rt, "up", take_over_lock, start_sandbox=True, preflight=True) as engine:
        if not rt.sandboxed and is_new_stack(rt, engine):  # the sandbox bills nothing
            confirm_cost(rt, engine.ctx.aws.region, yes)
        if engine.ctx.state.paused is not None:
            rt.out.info(f"stack {rt.config.stack} is paused (since {engine.ctx.state.paused.since}): up brings "
                        f"it back as config.yaml says, as `threetier resume` does")
        engine.up()
        # Before the lock's release, a write that empties the inventory: a run that changed
        # nothing still has it whole, and the summary costs no read.
        rows = summary_rows(engine)
    return report(rt, engine, "up", rows, "up", as_json)


def report(rt: Runtime, engine: Engine, command: str, rows: list[dict[str, Any]], outcome: str, as_json: bool,
           **extra: Any) -> int:
    """What `up` and `resume` print: the summary, the counts, the URL and its round trip."""
    mutating = stack_changes(engine.ctx.aws)
    tally = counts(engine.ctx.changes)
    part7 = engine.ctx.resources_of(7)
    if as_json:
        rt.out.data(run_report(rt, engine, command, {**tally, "mutating_calls": mutating},
                               parts=rows, round_trip=part7.get("round_trip"), **extra))
        return ExitStatus.OK
    summary(rt.out, rows)
    rt.out.result(f"stack {rt.config.stack} is {outcome}: {describe_counts(tally)}; {mutating} mutating AWS calls "
                  f"(besides taking and releasing the stack lock)")
    if part7.get("url"):
        rt.out.result(Text.assemble("URL: ", (part7["url"], "bold"), f"  ({part7.get('round_trip', '')})"))
    return ExitStatus.OK


def is_new_stack(rt: Runtime, engine: Engine) -> bool:
    """Nothing of the stack exists yet: the state file records no part, and the parts' checks find
    nothing of it (what `status` calls not deployed). The checks read the inventory `up` takes
    anyway (the engine's own finds are then served from it): no AWS call is added."""
    if engine.ctx.state.parts:
        return False
    from threetier import state as statelib
    aws = engine.ctx.aws
    probe = rt.engine(aws, statelib.State(stack=rt.config.stack, region=aws.region))  # its finds stay its own
    probe.take_inventory()
    found = any(seen.present or seen.drift for seen in map(probe.check, probe.parts))
    aws.part = ""  # the checks named their parts: what follows on this thread is no part's
    return not found


def confirm_cost(rt: Runtime, region: str, yes: bool) -> None:
    """Before a new stack: what it costs, on stderr; on a terminal, unless --yes, ask; with nobody to
    ask (a script, a pipe, CI), refuse unless --yes, as `down` does. Refused: exit 2, and nothing of the
    stack was made (only the stack's lock was taken and released)."""
    cost = summary_line(estimate(rt.config, region))
    rt.out.info(f"stack {rt.config.stack} does not exist in {region} yet; from now until `threetier down` it "
                f"costs {cost}; `threetier cost` has the lines")
    if yes:
        return
    if not (sys.stdin.isatty() and rt.out.interactive):
        raise UsageError(f"up: stack {rt.config.stack} does not exist in {region} yet and costs {cost}; with no "
                         f"terminal to ask on, pass --yes to create it; nothing was created")
    if not click.confirm(f"Create stack {rt.config.stack}?", default=False, err=True):
        raise UsageError("up: not confirmed; nothing was created")


TIMELINE_WIDTH = 30


def summary_rows(engine: Engine) -> list[dict[str, Any]]:
    """Per part that ran: what this run created, changed, deleted and kept, and when it ran. Seconds of
    reads after the last Part's line when the run changed something: on a terminal a spinner says so."""
    from threetier.display import working  # with the engine: not for `--help`
    with working(engine.ctx.out, "preparing the summary…"):
        return _summary_rows(engine)


def _summary_rows(engine: Engine) -> list[dict[str, Any]]:
    engine.take_inventory()  # what is there now, in a few concurrent reads
    rows = []
    for part in engine.parts:
        span = engine.timeline.get(part.number)
        if span is None:
            continue
        mine = [change for change in engine.ctx.changes if change.part == part.number]
        tally = counts(mine)
        # What is there now, less what this run made: describe calls only.
        present = len(engine.check(part).present)
        rows.append({"part": part.number, "name": part.name, **tally,
                     "kept": max(present - tally["created"], 0), "started": span.start, "ended": span.end,
                     "changes": [change_entry(change) for change in mine]})
    return rows


def summary(out: Output, rows: list[dict[str, Any]]) -> None:
    """The rows as a table, with each part's timeline."""
    from threetier.display import minutes
    table = Table(title="summary", title_justify="left")
    for column in ("part", "created", "changed", "deleted", "kept", "ran", "timeline"):
        table.add_column(column, justify="left" if column in ("part", "timeline") else "right")
    total = max((row["ended"] for row in rows), default=0.0) or 1.0
    for row in rows:
        start = int(row["started"] / total * TIMELINE_WIDTH)
        bar = " " * start + "━" * max(int(row["ended"] / total * TIMELINE_WIDTH) - start, 1)
        table.add_row(f"{row['part']} {row['name']}", str(row["created"]), str(row["changed"]), str(row["deleted"]),
                      str(row["kept"]), f"{minutes(row['started'])}–{minutes(row['ended'])}", Text(bar, style="cyan"))
    out.result(table)
