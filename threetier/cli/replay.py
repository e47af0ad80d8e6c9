"""`threetier replay PART`: one part alone, idempotently."""
from __future__ import annotations

import click

from threetier.cli.common import global_options, lock_option, runtime
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
""")
@click.argument("part", shell_complete=complete_part)
@lock_option
@global_options
@click.pass_context
def command(ctx: click.Context, part: str, take_over_lock: bool) -> int:
    rt = runtime(ctx)
    with rt.state_file.locked():
        aws = rt.aws()
        engine = rt.engine(aws)
        engine.part(part)  # an unknown PART is a usage error before any change
        with rt.stack_lock(aws, f"replay {part}", take_over_lock):
            engine.replay(part)
    return ExitStatus.OK
