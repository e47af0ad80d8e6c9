"""`threetier rollback app|web`: the tier's previous image deployed the way `deploy` does."""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import click

from threetier import sources
from threetier.cli import deploy
from threetier.cli.common import changing, global_options, lock_option, runtime
from threetier.errors import UsageError

if TYPE_CHECKING:
    from threetier.blocks.balancing import Tier
    from threetier.blocks.colors import Outcome
    from threetier.engine import Ctx, Engine


@click.command("rollback", help="""Go back to the tier's previous image: the one that was live
before the current one (kept for this). The current image is tagged rejected
first, so `up` does not deploy it again (`plan` and `status` say why;
`threetier deploy TIER` tries it again). The previous image is deployed
blue/green as `deploy` does, watched the same way.

Only the image changes: the instance type, the target group's health path and
the rest come from config.yaml as they are now.

\b
Examples:
  threetier rollback app
  threetier rollback web --json
""")
@click.argument("tier", type=click.Choice(deploy.TIERS))
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON on stdout (and nothing else)")
@lock_option
@global_options
@click.pass_context
def command(ctx: click.Context, tier: str, take_over_lock: bool, as_json: bool) -> int:
    rt = runtime(ctx)
    sources.check(rt.config)  # refused early all the same: the same config as `deploy`'s
    with changing(rt, "rollback", take_over_lock, preflight=True) as engine:
        outcomes = roll_back(engine, tier)
    return deploy.report(rt, engine, f"rollback {tier}", outcomes, as_json, waited=True)


def roll_back(engine: Engine, tier: str) -> dict[str, Outcome]:
    """The tier Part alone, deploying the rollback target; the live image tagged rejected first.
    No rollback target: a usage error (exit 2) before any change."""
    from steps import app_tier, web_tier
    from threetier.blocks import baking, colors
    part = engine.part(str(deploy.TIER_PART[tier]))
    done = engine.needs_done(f"rollback {tier}", (part,))
    probe = dataclasses.replace(engine.ctx, part=part)
    view = colors.observe(probe, {"app": app_tier.tier, "web": web_tier.tier}[tier](probe))
    target, current = view.rollback_image, view.image
    if target is None:
        raise UsageError(f"rollback {tier}: no previous image of {tier} to roll back to (an image is kept "
                         f"once another has replaced it); nothing was done")

    def previous(ctx: Ctx, _configured: Tier) -> str:
        if current is not None:
            baking.tag_image(ctx, current, baking.REJECTED_TAG, f"{colors.utc_now()}: by `threetier rollback {tier}`")
        ctx.out.info(f"  {tier} tier: rolling back from {current} to {target}")
        return target
    return deploy.run_deploys(engine, done, (part,), canary=None, wait=True, force=True, image=previous)
