"""`threetier up`: Parts 1-7 in order; done parts are verified, not redone."""
from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import click
from rich.table import Table
from rich.text import Text

from threetier.cli.common import global_options, lock_option, runtime
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
@lock_option
@global_options
@click.pass_context
def command(ctx: click.Context, take_over_lock: bool) -> int:
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
            summary(rt.out, engine)
    changes = [call for call in aws.mutating_calls() if not is_lock_call(call)]
    rt.out.result(f"stack {rt.config.stack} is up: {len(engine.ctx.changes)} created or changed, "
                  f"{len(changes)} mutating AWS calls (besides taking and releasing the stack lock)")
    url = engine.ctx.resources_of(7).get("url")
    if url:
        rt.out.result(Text.assemble("URL: ", (url, "bold"), f"  ({engine.ctx.resources_of(7).get('round_trip', '')})"))
    return ExitStatus.OK


TIMELINE_WIDTH = 30


def summary(out: Output, engine: Engine) -> None:
    """What this run created, changed and kept, part by part, and when each part ran."""
    from threetier.display import minutes
    table = Table(title="summary", title_justify="left")
    for column in ("part", "created", "changed", "kept", "ran", "timeline"):
        table.add_column(column, justify="left" if column in ("part", "timeline") else "right")
    engine.take_inventory()  # what is there now, in a few concurrent reads
    total = max((span.end for span in engine.timeline.values()), default=0.0) or 1.0
    for part in engine.parts:
        span = engine.timeline.get(part.number)
        if span is None:
            continue
        counts = Counter(change.action for change in engine.ctx.changes if change.part == part.number)
        # What is there now, less what this run made: describe calls only.
        present = len(engine.check(part).present)
        start = int(span.start / total * TIMELINE_WIDTH)
        bar = " " * start + "━" * max(int(span.end / total * TIMELINE_WIDTH) - start, 1)
        table.add_row(f"{part.number} {part.name}", str(counts.get("created", 0)), str(counts.get("changed", 0)),
                      str(max(present - counts.get("created", 0), 0)), f"{minutes(span.start)}–{minutes(span.end)}",
                      Text(bar, style="cyan"))
    out.result(table)
