"""`threetier replay PART`: one part alone, idempotently."""
from __future__ import annotations

import click

from threetier import sources
from threetier.cli.common import (
    change_entry,
    global_options,
    header,
    lock_option,
    run_preflight,
    run_report,
    runtime,
)
from threetier.output import ExitStatus


def complete_part(_ctx: click.Context, _param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of PART: the Parts' names (the steps load only when completing)."""
    from steps import PARTS
    return [part.name for part in PARTS if part.name.startswith(incomplete)]


@click.command("replay", help="""Run one part alone (1..7 or its name), after checking that
the parts it needs are done. Like `up`, it creates only what is missing and
changes only what differs from config.yaml.

\b
Examples:
  threetier replay 2
  threetier replay network
  threetier replay app-tier --json
""")
@click.argument("part", shell_complete=complete_part)
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON on stdout (and nothing else)")
@lock_option
@global_options
@click.pass_context
def command(ctx: click.Context, part: str, take_over_lock: bool, as_json: bool) -> int:
    from threetier.changes import counts, describe_counts
    rt = runtime(ctx)
    sources.check(rt.config)  # your code's directories, before any AWS call
    with rt.state_file.locked():
        aws = rt.aws()
        engine = rt.engine(aws)
        chosen = engine.part(part)  # an unknown PART is a usage error before any change
        header(rt, aws, f"replay {chosen.name}")
        run_preflight(rt, engine, "replay")
        with rt.stack_lock(aws, f"replay {part}", take_over_lock):
            engine.replay(part)
    tally = counts(engine.ctx.changes)
    if as_json:
        rt.out.data(run_report(rt, engine, f"replay {chosen.name}", tally, part=chosen.number,
                               changes=[change_entry(change) for change in engine.ctx.changes]))
    else:
        rt.out.result(f"{chosen.label} {chosen.title}: {describe_counts(tally)}")
    return ExitStatus.OK
