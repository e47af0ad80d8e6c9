"""`threetier up`: Parts 1-7 in order; done parts are verified, not redone."""
from __future__ import annotations

import click

from threetier.cli.common import global_options, runtime
from threetier.output import ExitStatus


@click.command("up", help="""Build the stack, Part 1 to the last, or verify and repair it.

Each part finds its resources by tags before creating anything, so running
`up` again after a crash or an interruption resumes where it stopped and ends
with exactly one of everything; on a complete stack it changes nothing.

\b
Examples:
  threetier up
  threetier up --config prod.yaml -v
""")
@global_options
@click.pass_context
def command(ctx: click.Context) -> int:
    rt = runtime(ctx)
    aws = rt.aws()
    with rt.state_file.locked():
        engine = rt.engine(aws)
        rt.out.info(f"threetier up: stack {rt.config.stack} in {aws.region} (config: {rt.config.source})")
        engine.up()
    changed = len(engine.ctx.changes)
    rt.out.info(f"stack {rt.config.stack} is up: {changed} created or changed, "
                f"{len(aws.mutating_calls())} mutating AWS calls")
    return ExitStatus.OK
