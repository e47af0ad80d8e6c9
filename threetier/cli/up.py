"""`threetier up`: Parts 1-7 in order; done parts are verified, not redone."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
from rich.table import Table
from rich.text import Text

from threetier.changes import counts, describe_counts
from threetier.cli.common import change_entry, global_options, lock_option, run_report, runtime
from threetier.output import ExitStatus, Output

if TYPE_CHECKING:
    from threetier.engine import Engine


@click.command("up", help="""Build the stack, Part 1 to the last, or verify and repair it.

Each part finds its resources by tags before creating anything, so running
`up` again after a crash or an interruption resumes where it stopped and ends
with exactly one of everything; on a complete stack it changes nothing.

\b
Examples:
  threetier up
  threetier up --config prod.yaml -v
  threetier up --sandbox            no AWS account: a local emulator
""")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON on stdout (and nothing else)")
@lock_option
@global_options
@click.pass_context
def command(ctx: click.Context, take_over_lock: bool, as_json: bool) -> int:
    from threetier.lock import is_lock_call
    rt = runtime(ctx)
    aws = rt.aws(start_sandbox=True)
    with rt.state_file.locked():
        engine = rt.engine(aws)
        with rt.stack_lock(aws, "up", take_over_lock):
            rt.out.info(f"threetier up: stack {rt.config.stack} in {aws.region} (config: {rt.config.source})")
            engine.up()
            # Before the lock's release, a write that empties the inventory: a run that changed
            # nothing still has it whole, and the summary costs no read.
            rows = summary_rows(engine)
    mutating = len([call for call in aws.mutating_calls() if not is_lock_call(call)])
    tally = counts(engine.ctx.changes)
    part7 = engine.ctx.resources_of(7)
    if as_json:
        rt.out.data(run_report(rt, engine, "up", {**tally, "mutating_calls": mutating},
                               parts=rows, round_trip=part7.get("round_trip")))
        return ExitStatus.OK
    summary(rt.out, rows)
    rt.out.result(f"stack {rt.config.stack} is up: {describe_counts(tally)}; {mutating} mutating AWS calls "
                  f"(besides taking and releasing the stack lock)")
    if part7.get("url"):
        rt.out.result(Text.assemble("URL: ", (part7["url"], "bold"), f"  ({part7.get('round_trip', '')})"))
    return ExitStatus.OK


TIMELINE_WIDTH = 30


def summary_rows(engine: Engine) -> list[dict[str, Any]]:
    """Per part that ran: what this run created, changed, deleted and kept, and when it ran."""
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
