"""`threetier resume`: a paused stack back as config.yaml says — which is what `up` does."""
from __future__ import annotations

import click

from threetier.cli.common import changing, changing_options, paused_json, runtime
from threetier.cli.up import is_new_stack, report, summary_rows
from threetier.errors import UsageError


@click.command("resume", help="""Bring a paused stack back exactly as config.yaml says, and wait
until its URL works: the Aurora cluster started (and waited for), the NAT
gateways made again with their Elastic IPs and routes, both Auto Scaling
groups back to their sizes, the alarms notifying again.

It is `up` by another name: `up` converges every Part to config.yaml, and a
paused stack differs from it only in what `pause` stopped. So `resume` on a
running stack changes nothing, and after a crash `resume` (or `up`) again
finishes the job. It refuses a stack that does not exist (`up` builds one).

\b
Examples:
  threetier resume
  threetier resume --json | jq .round_trip
""")
@changing_options
def command(ctx: click.Context, take_over_lock: bool, as_json: bool) -> int:
    rt = runtime(ctx)
    with changing(rt, "resume", take_over_lock, preflight=True) as engine:
        was = engine.ctx.state.paused
        rt.out.info(f"paused since {was.since}" if was else "not paused: verifying it as `up` does")
        if is_new_stack(rt, engine):
            raise UsageError(f"resume: stack {rt.config.stack} does not exist in {engine.ctx.aws.region}; "
                             f"`threetier up` builds it")
        engine.up()
        rows = summary_rows(engine)  # before the lock's release, as up does
    return report(rt, engine, "resume", rows, "resumed" if was else "up, and was not paused", as_json,
                  was_paused=paused_json(was))
