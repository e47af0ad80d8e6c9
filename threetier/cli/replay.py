"""`threetier replay PART`: one part alone, idempotently."""
from __future__ import annotations

import click

from threetier.cli.common import global_options, runtime
from threetier.output import ExitStatus


@click.command("replay", help="""Run one part alone (1..7 or its name), after checking that
the parts it needs are done. Like `up`, it creates only what is missing and
changes only what differs from config.yaml.

\b
Examples:
  threetier replay 2
  threetier replay network
""")
@click.argument("part")
@global_options
@click.pass_context
def command(ctx: click.Context, part: str) -> int:
    rt = runtime(ctx)
    with rt.state_file.locked():
        engine = rt.engine(rt.aws())
        engine.part(part)  # an unknown PART is a usage error before any AWS call
        engine.replay(part)
    return ExitStatus.OK
