"""`threetier deploy [app|web|all]`: `up` limited to the application tiers, blue/green at the load
balancer (threetier.blocks.colors): Part 1's code upload, the tier's image Part (4, 6: a bake when the
code changed) and its tier Part (5, 7), the other Parts only checked."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from threetier import sources
from threetier.cli.common import (
    Runtime,
    change_entry,
    changing,
    global_options,
    header,
    lock_option,
    run_report,
    runtime,
)
from threetier.errors import UsageError
from threetier.output import ExitStatus

if TYPE_CHECKING:
    from threetier.aws import Aws
    from threetier.blocks.balancing import Tier
    from threetier.blocks.colors import Outcome
    from threetier.engine import Ctx, Engine, Part

TIERS = ("app", "web")
IMAGE_PART = {"app": 4, "web": 6}  # the tier's image, baked when its code changed
TIER_PART = {"app": 5, "web": 7}   # its load balancer, colors and Auto Scaling group
# The image a tier Part run alone deploys instead of the configured one (rollback's target, the
# new color's for --finish); called in the Part, once the parts it needs are checked.
ImageChoice = Callable[["Ctx", "Tier"], str]


@click.command("deploy", help="""Deploy the application tiers: `up` limited to them. The code is
uploaded (Part 1), a tier whose code changed gets a new image (Parts 4, 6), and
a tier whose instances change (image, instance type, profile) is deployed
blue/green (Parts 5, 7): a second color of target group and Auto Scaling group
beside the live one, its targets healthy, then the listeners' forward weights
moved to it; the tier's alarms and metrics are watched for
`deploy.watch_minutes` (a problem moves the traffic back and tags the image
rejected); the old color drains and goes, its image kept for `rollback`.
The other Parts are only checked: `up` first for a stack that is not built.

An image rolled back from is deployed again by `deploy` (not by `up`).

\b
Examples:
  threetier deploy app
  threetier deploy web --canary 10   10 % of the traffic first, watched, then all
  threetier deploy --no-wait         return after the switch (up or --finish ends it)
  threetier deploy app --finish      end the watch now (from any terminal)
""")
@click.argument("tier", type=click.Choice(("app", "web", "all")), default="all", required=False)
@click.option("--canary", type=click.IntRange(1, 99), metavar="PCT",
              help="first move PCT % (1-99) of the traffic to the new color and watch it for "
                   "deploy.watch_minutes, then the rest")
@click.option("--no-wait", "no_wait", is_flag=True,
              help="return once the traffic is on the new color; the watch and the old color's "
                   "removal are left to `deploy --finish` or the next `up`/`deploy`")
@click.option("--finish", "finish_only", is_flag=True,
              help="end a running deploy's watch now (the run watching it ends it), or finish a "
                   "--no-wait deploy: the old color drains and goes")
@click.option("--json", "as_json", is_flag=True, help="print the result as JSON on stdout (and nothing else)")
@lock_option
@global_options
@click.pass_context
def command(ctx: click.Context, tier: str, canary: int | None, no_wait: bool, finish_only: bool,
            take_over_lock: bool, as_json: bool) -> int:
    if finish_only and (canary is not None or no_wait):
        raise UsageError("deploy: --finish does not go with --canary or --no-wait (it ends a deploy under way)")
    rt = runtime(ctx)
    tiers = TIERS if tier == "all" else (tier,)
    if finish_only:
        return finish(rt, tiers, take_over_lock, as_json)
    sources.check(rt.config)  # your code's directories, before any AWS call
    with changing(rt, "deploy", take_over_lock, preflight=True) as engine:
        outcomes = deploy_tiers(engine, tiers, canary=canary, wait=not no_wait, force=True)
    return report(rt, engine, f"deploy {tier}", outcomes, as_json, waited=not no_wait)


# -- the body (the benchmark runs it in-process, without the lock and the report) ------------------
def deploy_tiers(engine: Engine, tiers: tuple[str, ...], *, canary: int | None = None, wait: bool = True,
                 force: bool = True) -> dict[str, Outcome]:
    """The tiers deployed as `deploy` does once the stack's lock is held: the Parts they need checked,
    the code uploaded, their image and tier Parts run, each tier's deploy made with these options
    (force: an image rolled back from is deployed again)."""
    parts = tuple(engine.part(str(number)) for tier in tiers for number in (IMAGE_PART[tier], TIER_PART[tier]))
    done = engine.needs_done("deploy", parts)
    upload_code(engine)
    return run_deploys(engine, done, parts, canary=canary, wait=wait, force=force)


def upload_code(engine: Engine) -> None:
    """Part 1's code upload alone (the bucket, its roles and topic are checked, not changed)."""
    from steps import storage
    part = engine.part(str(storage.NUMBER))
    ctx = dataclasses.replace(engine.ctx, part=part)
    engine.ctx.aws.part = part.label
    storage.ensure_code_uploaded(ctx, storage.bucket_name(ctx))
    engine.save()


def run_deploys(engine: Engine, done: dict[int, set[str]], parts: tuple[Part, ...], *, canary: int | None,
                wait: bool, force: bool, image: ImageChoice | None = None) -> dict[str, Outcome]:
    """The Parts run alone, the tier Parts' deploys made with these options; each tier's outcome."""
    from steps import web_tier
    outcomes: dict[str, Outcome] = {}
    tier_of = {number: tier for tier, number in TIER_PART.items()}
    finishing = wait and image is None  # the tier Parts finish as `up` does (else: only what moved)
    # Part 7's finish draws the dashboard (both tiers' live colors) after both deploys; without it, the
    # tier that moved redraws it.
    redraw = None if finishing and web_tier.NUMBER in {part.number for part in parts} else engine.part(
        str(web_tier.NUMBER))
    engine.run_alone(done, tuple(
        deploying(part, tier_of[part.number], outcomes, canary=canary, wait=wait, force=force, image=image,
                  finishing=finishing, redraw=redraw)
        if part.number in tier_of else part for part in parts))
    return outcomes


def deploying(part: Part, tier: str, outcomes: dict[str, Outcome], *, canary: int | None, wait: bool, force: bool,
              image: ImageChoice | None, finishing: bool, redraw: Part | None) -> Part:
    """The tier Part with its deploy made as asked. Its finish deploys first; then, finishing, as `up`
    does (with nothing left to deploy, that verifies the rest: alarms, the round trip); else what
    follows the live color (the web load balancer's own alarm, the dashboard: `redraw`'s).
    With an image given (rollback), only that image goes live: config's image stays kept."""
    from steps import app_tier, web_tier
    from threetier.blocks import alarms, balancing, colors
    from threetier.engine import DONE
    from threetier.errors import ThreetierError
    tier_of = {"app": app_tier.tier, "web": web_tier.tier}[tier]

    def finish(ctx: Ctx) -> None:
        ctx.need(IMAGE_PART[tier], DONE)
        configured = tier_of(ctx)
        wanted = configured if image is None else dataclasses.replace(configured, ami=image(ctx, configured))
        balancing.wait_active(ctx, configured)
        outcome = colors.deploy(ctx, wanted, canary=canary, wait=wait and image is None, force=force)
        if image is not None and outcome.switched and wait:
            # The watch and the old color's retirement with config's tier: its image is pruned by nobody.
            outcome = colors.after_switch(ctx, configured, outcome.color, wait=True)
        outcomes[tier] = outcome
        if outcome.rolled_back is not None:
            raise ThreetierError(f"deploy {tier} rolled back to {outcome.color}: {outcome.rolled_back}")
        if finishing:
            part.finish(ctx)
        else:
            colors.describe(ctx, colors.observe(ctx, configured))
            if tier == "web":
                alarms.ensure_alarms(ctx, web_tier.web_alarms(ctx), web_tier.ALARMS)
        if outcome.switched and redraw is not None:
            redraw_dashboard(dataclasses.replace(ctx, part=redraw))
    return dataclasses.replace(part, finish=finish)


def redraw_dashboard(ctx: Ctx) -> None:
    """The dashboard (Part 7's: `ctx` is) as the tiers' live colors are now."""
    from steps import web_tier
    from threetier.blocks import dashboard
    body = web_tier.dashboard_body(ctx)
    if ctx.config.monitoring.dashboard and body is not None:
        dashboard.ensure_dashboard(ctx, body)
        ctx.save()


# -- --finish ----------------------------------------------------------------------------------------
def finish(rt: Runtime, tiers: tuple[str, ...], take_over: bool, as_json: bool) -> int:
    """`deploy --finish`: each tier with two colors gets the finish tag on its new color's group. A run
    holding the stack's lock (the one watching) ends its watch at its next look; with none, this run
    takes the lock and finishes the deploy: the old color drains and goes."""
    from threetier import lock
    from threetier import state as statelib
    from threetier.blocks import watch
    from threetier.engine import Ctx
    aws = rt.aws()
    rt.saved_state(aws)  # the account guard: another account's state file is refused
    deploying = new_colors(aws, rt.config.stack, tiers)
    if not deploying:
        raise UsageError(f"deploy --finish: no deploy of {' or '.join(tiers)} to finish (one color each); "
                         f"nothing was done")
    header(rt, aws, "deploy --finish")
    ctx = Ctx(config=rt.config, aws=aws, out=rt.out, state=statelib.State(stack=rt.config.stack, region=aws.region))
    for _, group in deploying.values():
        watch.request_finish(ctx, group)
    holder = lock.current(aws, rt.config.stack)
    if holder is not None:
        said = ", ".join(f"{tier} ({color})" for tier, (color, _) in deploying.items())
        if as_json:
            rt.out.data({"stack": rt.config.stack, "command": "deploy --finish", "requested": sorted(deploying)})
        else:
            rt.out.result(f"asked the watch of {said} to end: the run holding the stack's lock "
                          f"({holder.describe()}) ends it within {watch.POLL_SECONDS} s and retires the old color")
        return ExitStatus.OK
    with changing(rt, "deploy", take_over) as engine:
        parts = tuple(engine.part(str(TIER_PART[tier])) for tier in deploying)
        done = engine.needs_done("deploy --finish", parts)
        outcomes = run_deploys(engine, done, parts, canary=None, wait=True, force=False,
                               image=lambda ctx, tier: color_image(ctx, tier, deploying[tier.tier][0]))
    return report(rt, engine, "deploy --finish", outcomes, as_json, waited=True)


def new_colors(aws: Aws, stack: str, tiers: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """Tier -> (color, group name) of the newer of its two Auto Scaling groups, for each tier that has two."""
    from threetier.blocks import colors, watch
    found: dict[str, tuple[str, str]] = {}
    for tier in tiers:
        names = {colors.BLUE: f"{stack}-{tier}-asg", colors.GREEN: f"{stack}-{tier}-asg{watch.GREEN_SUFFIX}"}
        groups = aws.call("autoscaling", "describe_auto_scaling_groups", resource=f"the {tier} tier's groups",
                          AutoScalingGroupNames=list(names.values()))["AutoScalingGroups"]
        if len(groups) == 2:
            newest = max(groups, key=lambda group: group["CreatedTime"])["AutoScalingGroupName"]
            found[tier] = next((color, name) for color, name in names.items() if name == newest)
    return found


def color_image(ctx: Ctx, tier: Tier, color: str) -> str:
    from threetier.blocks import colors
    seen = colors.observe(ctx, tier).present.get(color)
    if seen is None or not seen.image:
        raise UsageError(f"deploy --finish: the {tier.tier} tier's {color} color has no launch template; "
                         f"`threetier up` finishes or removes it")
    return seen.image


# -- the report ----------------------------------------------------------------------------------
def report(rt: Runtime, engine: Engine, command: str, outcomes: dict[str, Outcome], as_json: bool, *,
           waited: bool) -> int:
    """Each tier: where the traffic is, and whether it moved."""
    from threetier.changes import counts, describe_counts
    from threetier.cli.common import stack_changes
    tally = counts(engine.ctx.changes)
    tiers = {tier: {"color": outcome.color, "switched": outcome.switched, "finished": waited or not outcome.switched}
             for tier, outcome in outcomes.items()}
    if as_json:
        rt.out.data(run_report(rt, engine, command, {**tally, "mutating_calls": stack_changes(engine.ctx.aws)},
                               tiers=tiers, changes=[change_entry(change) for change in engine.ctx.changes]))
        return ExitStatus.OK
    for tier, outcome in outcomes.items():
        rt.out.result(said(tier, outcome, waited, engine.ctx.resources_of(TIER_PART[tier])))
    rt.out.result(f"stack {rt.config.stack}: {describe_counts(tally)}")
    return ExitStatus.OK


def said(tier: str, outcome: Outcome, waited: bool, resources: dict[str, Any]) -> str:
    image = resources.get("image") or "its image"
    if not outcome.switched:
        return f"{tier}: nothing to deploy; {image} is live on {outcome.color}"
    if not waited:
        return (f"{tier}: {outcome.color} takes the traffic; the watch and the old color's removal are left to "
                f"`threetier deploy {tier} --finish` (or the next `up`)")
    return f"{tier}: {image} is live on {outcome.color}; the old color is gone (`threetier rollback {tier}` goes back)"
