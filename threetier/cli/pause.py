"""`threetier pause`: lab mode — stop what bills by the hour, keep what takes long to rebuild."""
from __future__ import annotations

from typing import TYPE_CHECKING

import click

from threetier.cli import common
from threetier.cli.common import Runtime, change_entry, changing, changing_options, run_report, runtime
from threetier.errors import UsageError
from threetier.estimate import estimate
from threetier.output import ExitStatus

if TYPE_CHECKING:
    from threetier.engine import Engine


@click.command("pause", help="""Pause a lab stack: stop what bills by the hour without losing
what takes long to rebuild. Both Auto Scaling groups go to 0 instances (min,
desired and max), the Aurora cluster is stopped, the NAT gateways are deleted
with their Elastic IPs and the app subnets' routes to them, and the alarms stop
notifying. The load balancers (and the URL), the images, the bucket, the
database's data, its secret, the alarms and the dashboard stay.

AWS starts a stopped Aurora cluster by itself after 7 days (and bills it
again): `status` shows when. `threetier resume` (or `up`) brings the stack
back as config.yaml says. Pausing a paused stack changes nothing; after a
crash, `pause` again finishes the job. The stack must be fully up first.

\b
Examples:
  threetier pause
  threetier pause --json | jq .paused
""")
@changing_options
def command(ctx: click.Context, take_over_lock: bool, as_json: bool) -> int:
    from threetier.changes import counts, describe_counts
    rt = runtime(ctx)
    common.need_config_file(rt, "pause")
    with changing(rt, "pause", take_over_lock) as engine:
        if engine.ctx.state.paused is None:  # paused already: a pause that crashed, finished now
            refuse_unless_up(rt, engine)
        engine.pause()
    paused, aws = engine.ctx.state.paused, engine.ctx.aws
    assert paused is not None  # Engine.pause wrote it
    tally = counts(engine.ctx.changes)
    mutating = common.stack_changes(aws)
    running, idle = estimate(rt.config, aws.region), estimate(rt.config, aws.region, paused=True)
    if as_json:
        rt.out.data(run_report(rt, engine, "pause", {**tally, "mutating_calls": mutating},
                               paused=common.paused_json(paused), running_monthly_usd=round(running.monthly_usd, 2),
                               paused_monthly_usd=round(idle.monthly_usd, 2),
                               changes=[change_entry(change) for change in engine.ctx.changes]))
        return ExitStatus.OK
    done = describe_counts(tally) if any(tally.values()) else "it was paused already, nothing changed"
    rt.out.result(f"stack {rt.config.stack} is paused: {done}; {mutating} mutating AWS calls")
    rt.out.result("0 instances in both tiers, Aurora stopped, no NAT gateway; the load balancers, images, "
                  "bucket, database storage, secret and alarms (silenced) stay")
    if rt.sandboxed:  # the sandbox bills nothing and starts no cluster by itself
        rt.out.result("on AWS, paused it would cost what `threetier cost --paused` says")
    else:
        rt.out.result(f"paused it costs about ${idle.monthly_usd:,.2f} a month instead of "
                      f"${running.monthly_usd:,.2f} (`threetier cost --paused` has the lines)")
        rt.out.result(common.restart_said(paused))
    rt.out.result("`threetier resume` brings it back as config.yaml says")
    return ExitStatus.OK


def refuse_unless_up(rt: Runtime, engine: Engine) -> None:
    """Pause stops a stack that works: one with something missing (never finished, or half torn
    down) is refused before any change, naming the first thing missing. The checks run on a
    context of their own (what they note, such as healthy targets, is not the state file's)
    and read the inventory the Parts' pause then uses."""
    from threetier import state as statelib
    aws = engine.ctx.aws
    probe = rt.engine(aws, statelib.State(stack=rt.config.stack, region=aws.region))
    probe.take_inventory()
    seen = [(part, probe.check(part)) for part in probe.parts]
    aws.part = ""  # the checks named their parts: what follows on this thread is no part's
    if not any(check.present for _, check in seen):
        raise UsageError(f"pause: stack {rt.config.stack} is not deployed in {aws.region}; nothing to pause")
    for part, check in seen:
        if check.missing:
            raise UsageError(f"pause: stack {rt.config.stack} is not fully up ({part.label}: {check.missing[0]} is "
                             f"missing); nothing was changed: `threetier up` first")
    refuse_mid_deploy(rt, probe)


def refuse_mid_deploy(rt: Runtime, probe: Engine) -> None:
    """A tier with two colors (a deploy under way, or one a crash left) is refused: pausing would leave
    the new color's watch and the old color's removal half done. The checks filled what the tiers read."""
    import dataclasses

    from steps import app_tier, web_tier
    from threetier.blocks import colors
    for step in (app_tier, web_tier):
        ctx = dataclasses.replace(probe.ctx, part=probe.part(str(step.NUMBER)))
        view = colors.observe(ctx, step.tier(ctx))
        if len(view.present) > 1:
            tier = view.tier
            raise UsageError(f"pause: the {tier} tier has two colors ({' and '.join(sorted(view.present))}): a deploy "
                             f"is under way or was cut short; `threetier deploy {tier} --finish` (or `threetier up`) "
                             f"ends it first; nothing was changed")
