"""Blue/green at the load balancer (issue 25): a tier's instances are replaced by a second color.

Each tier has two colors of target group, launch template and Auto Scaling group: blue under the
names stacks always had (<stack>-app-tg), green with -g (<stack>-app-tg-g). The listeners say which
one is live: the color they forward the larger weight to (blue on a tie); on the external ALB 443
decides (with edge.cdn, its origin-header rule: 443's default answers 403), and every forwarding
listener is shifted together. A change of what the instances run (the
image, instance type, security groups, profile) is made on the other color, in an order a crash
can resume from:

1. its target group, on the listeners at weight 0 (so AWS health-checks its targets);
2. its launch template and group, at the live group's size; its targets healthy;
3. (a canary: that share of the traffic, watched); the image tagged live-since, then all the traffic
   to it; the tier's alarms follow it;
4. watched `deploy.watch_minutes` (threetier.blocks.watch): on a problem the traffic goes back, the
   image is tagged rejected, the new color is retired, and the run fails naming why;
5. the old color retired: scaled to 0 while still on the listeners at weight 0 (it drains), then off
   them, then its group, target group and template deleted; images beyond the keep-set go.

What `deploy` finds decides where it starts: the listeners out of step are set as 443 says; a color
running what is wanted beside the live one is resumed; one the traffic moved to, with the old color
still there, is watched for the rest of its time and the old one retired; any other second color is
a left-over and retired first.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from threetier.aws import Poll, tag_value
from threetier.blocks import alarms, baking, balancing, scaling
from threetier.engine import Check, Ctx
from threetier.errors import ThreetierError

BLUE, GREEN = "blue", "green"
# The Part's resources that name one color's resource: the live color's, but while the new color is
# built, its own (the scaling policy's label, wait_healthy and the alarms read them).
COLORED_KEYS = ("target_group_arn", "launch_template", "auto_scaling_group")
WAIT_GONE_DELAY = 15
# An ALB applies a listener change within seconds, not at once (an estimate: AWS names no figure; the
# benchmark models 5 s). Until it has, requests still go to the color the traffic left: its
# instances must not start draining (a draining target takes no new request) before then.
LISTENER_SETTLE_SECONDS = 10


def other(color: str) -> str:
    return GREEN if color == BLUE else BLUE


@dataclass(frozen=True)
class ColorView:
    color: str
    group_name: str | None
    target_group_arn: str | None
    template_id: str | None
    image: str | None
    instances: int


@dataclass(frozen=True)
class View:
    tier: str                       # "app" | "web"
    live: str | None                # the color the listeners forward all weight to (None: no listener yet)
    weights: dict[str, int]         # color -> weight, as the tier's first listener says
    listeners_agree: bool           # every listener of the tier's ALB forwards the same way
    present: dict[str, ColorView]   # the colors that have any resource
    image: str | None               # the live color's AMI
    fingerprint: str | None         # that AMI's code fingerprint tag
    deployed_at: str | None         # its live-since tag
    rollback_image: str | None      # the rollback target


@dataclass(frozen=True)
class Outcome:
    color: str                  # the live color at the end
    switched: bool              # traffic moved to a new color
    rolled_back: str | None     # why it went back (Watched.problem), None otherwise


def utc_now() -> str:
    # Microseconds: two deploys in one second still order (the rollback target is the newest).
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- what there is -------------------------------------------------------------------------------
def forwards(ctx: Ctx, tier: balancing.Tier) -> list[balancing.Forward]:
    """Where the ALB forwards: listeners' default actions (not 80's redirect to HTTPS) and, with
    edge.cdn, 443's origin-header rule (its default answers 403); 443 first: it decides."""
    balancer = balancing.find_load_balancer(ctx, tier)
    if balancer is None:
        return []
    found = ctx.aws.look(balancing.listeners_look(balancer["LoadBalancerArn"]),
                         resource=f"listeners of {ctx.name(tier.alb_role)}") or {}
    return balancing.forwards(ctx, tier, found.get("Listeners", []))


def observe(ctx: Ctx, tier: balancing.Tier) -> View:
    present: dict[str, ColorView] = {}
    color_of: dict[str, str] = {}
    for color in (BLUE, GREEN):
        each = tier.of(color)
        group = balancing.find_target_group(ctx, each)
        asg = balancing.find_auto_scaling_group(ctx, each)
        template = balancing.find_launch_template(ctx, each)
        if group is not None:
            color_of[group["TargetGroupArn"]] = color
        if group is None and asg is None and template is None:
            continue
        data = balancing.template_data(ctx, each) if template is not None else None
        present[color] = ColorView(color, asg["AutoScalingGroupName"] if asg else None,
                                   group["TargetGroupArn"] if group else None,
                                   template["LaunchTemplateId"] if template else None,
                                   (data or {}).get("ImageId"), len(asg.get("Instances", [])) if asg else 0)
    said = [{color_of[arn]: weight for arn, weight in (balancing.forward_weights(forward.actions) or {}).items()
             if arn in color_of} for forward in forwards(ctx, tier)]
    weights = said[0] if said else {}
    live = max((BLUE, GREEN), key=lambda c: (weights.get(c, -1), c == BLUE)) if any(weights.values()) else None
    images = baking.tier_images(ctx, tier.tier)
    image = present[live].image if live in present else None
    found = next((i for i in images if i["ImageId"] == image), None)
    return View(tier=tier.tier, live=live, weights=weights,
                listeners_agree=all(balancing.shares(w) == balancing.shares(weights) for w in said),
                present=present, image=image,
                fingerprint=tag_value(found, baking.FINGERPRINT_TAG) if found else None,
                deployed_at=tag_value(found, baking.LIVE_SINCE_TAG) if found else None,
                rollback_image=baking.rollback_target(images, image))


def rollback_target(ctx: Ctx, tier: balancing.Tier) -> str | None:
    return observe(ctx, tier).rollback_image


def rejection(ctx: Ctx, tier: balancing.Tier, image: str | None) -> str | None:
    """The image's rejected tag (when and why it was rolled back from), None when it has none."""
    found = next((i for i in baking.tier_images(ctx, tier.tier) if i["ImageId"] == image), None)
    return tag_value(found, baking.REJECTED_TAG) if found else None


def live(ctx: Ctx, tier: balancing.Tier) -> balancing.Tier:
    """The tier as its live color: what the listeners say, else the color `tier` names (the state
    file's; blue for a new stack). Remembered in the Part's resources."""
    color = observe(ctx, tier).live or tier.color
    ctx.resources["color"] = color
    return tier.of(color)


def remember(ctx: Ctx, tier: balancing.Tier) -> None:
    """The Part's resources name the color `tier` names: it is live."""
    ctx.resources["color"] = tier.color
    group, template = balancing.find_target_group(ctx, tier), balancing.find_launch_template(ctx, tier)
    asg = balancing.find_auto_scaling_group(ctx, tier)
    for key, value in (("target_group_arn", group and group["TargetGroupArn"]),
                       ("launch_template", template and template["LaunchTemplateId"]),
                       ("auto_scaling_group", asg and asg["AutoScalingGroupName"])):
        if value:
            ctx.resources[key] = value


def describe(ctx: Ctx, view: View) -> None:
    """What status shows of the tier's colors, kept in the Part's resources."""
    for key, value in (("image", view.image), ("fingerprint", view.fingerprint), ("deployed_at", view.deployed_at),
                       ("rollback_image", view.rollback_image)):
        if value:
            ctx.resources[key] = value
        else:
            ctx.resources.pop(key, None)


@contextlib.contextmanager
def colored(ctx: Ctx) -> Iterator[None]:
    """Work on the other color: the live color's resources are back in the Part's afterwards."""
    saved = {key: ctx.resources.get(key) for key in COLORED_KEYS}
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                ctx.resources.pop(key, None)
            else:
                ctx.resources[key] = value


# -- the listeners -------------------------------------------------------------------------------
def shift(ctx: Ctx, tier: balancing.Tier, weights: dict[str, int]) -> None:
    """Every forward (listener or 443's origin rule) to these weights (color -> weight), 443 first."""
    arns = {}
    for color in weights:
        group = balancing.find_target_group(ctx, tier.of(color))
        if group is None:
            raise ThreetierError(f"{tier.tier} tier: target group {ctx.name(tier.of(color).target_group_role)} "
                                 f"is gone; run `threetier up` again")
        arns[color] = group["TargetGroupArn"]
    actions = balancing.weighted_forward({arns[color]: weight for color, weight in weights.items()})
    said = ", ".join(f"{color} {weight}" for color, weight in weights.items())
    for forward in forwards(ctx, tier):
        if not balancing.same_actions(forward.actions, actions):
            balancing.set_forward(ctx, tier, forward, actions, f"forward {said}")


def align(ctx: Ctx, tier: balancing.Tier, view: View) -> None:
    """Listeners that forward differently (a crash between 443 and 80): all as the first says."""
    if view.weights and any(view.weights.values()):
        shift(ctx, tier, view.weights)


def follow(ctx: Ctx, tier: balancing.Tier) -> None:
    """The tier's alarms watch the live color's target group (in the Part's resources)."""
    alarms.ensure_alarms(ctx, balancing.tier_alarms(ctx, tier), owned=())


# -- the deploy ----------------------------------------------------------------------------------
def wanted_data(ctx: Ctx, tier: balancing.Tier) -> dict[str, Any]:
    return balancing.launch_template_data(ctx, tier, tier.instance_security_group)


def runs_wanted(ctx: Ctx, tier: balancing.Tier, wanted: dict[str, Any]) -> bool:
    """Whether the color's launch template launches what is wanted."""
    data = balancing.template_data(ctx, tier)
    return data is not None and not balancing.template_differences(data, wanted)


def idle(group: dict[str, Any] | None) -> bool:
    """No group, a paused one or one with no instance: changed in place, nothing serves from it."""
    return group is None or group.get("MaxSize") == 0 or not group.get("Instances")


def deploy(ctx: Ctx, tier: balancing.Tier, *, canary: int | None = None, wait: bool = True,
           force: bool = False) -> Outcome:
    """The tier's instances as `tier` wants them (AMI, type, profile, security groups): in place when
    no instance serves, else on the other color. force: deploy an image tagged rejected (the tag goes).
    wait=False: return after the switch; the watch and the old color are left for the next deploy."""
    view = observe(ctx, tier)
    if not view.listeners_agree:
        align(ctx, tier, view)
        view = observe(ctx, tier)
    color = view.live or tier.color
    wanted = wanted_data(ctx, tier)
    rejected = rejection(ctx, tier, tier.ami) if not force else None
    second = view.present.get(other(color))
    if second is not None:
        if runs_wanted(ctx, tier.of(color), wanted) and not rejection(ctx, tier, second.image):
            if replaced(ctx, tier, color, view):
                return after_switch(ctx, tier, color, wait=wait)
        elif runs_wanted(ctx, tier.of(other(color)), wanted) and not rejected:
            record = ctx.resources.get("deploy")  # a canary cut short starts again at its share
            if canary is None and isinstance(record, dict) and record.get("to") == other(color):
                canary = int(record.get("canary") or 0) or None
            return switch(ctx, tier, color, canary=canary, wait=wait, force=force)
        retire(ctx, tier, other(color))
    live_tier = tier.of(color)
    remember(ctx, live_tier)
    group = balancing.find_auto_scaling_group(ctx, live_tier)
    if idle(group) or runs_wanted(ctx, live_tier, wanted):
        balancing.start_instances(ctx, live_tier)
        return Outcome(color, False, None)
    if rejected:
        ctx.out.info(f"  {tier.tier} tier: not deploying {tier.ami}, rolled back at {rejected}; change the code, "
                     f"or `threetier deploy {tier.tier}` to try it again")
        # The live image stays; what else config changed (the instance type, say) is still deployed.
        tier = replace(tier, ami=view.image or tier.ami)
        live_tier = tier.of(color)
        if runs_wanted(ctx, live_tier, wanted_data(ctx, tier)):
            keep_group(ctx, live_tier)
            return Outcome(color, False, None)
    return switch(ctx, tier, color, canary=canary, wait=wait, force=force)


def replaced(ctx: Ctx, tier: balancing.Tier, color: str, view: View) -> bool:
    """Whether the live color replaced the other one (the traffic moved, the old one is still
    there): the state file's deploy says so, or, without one, the other served before (live-since)."""
    record = ctx.resources.get("deploy")
    if isinstance(record, dict):
        return record.get("to") == color
    before = view.present[other(color)].image
    images = {i["ImageId"]: i for i in baking.tier_images(ctx, tier.tier)}
    return bool(before in images and tag_value(images[before], baking.LIVE_SINCE_TAG))


def keep_group(ctx: Ctx, tier: balancing.Tier) -> None:
    """The live group's sizes and policies as config says, on the template it has."""
    template = balancing.find_launch_template(ctx, tier)
    assert template is not None
    existed = balancing.ensure_auto_scaling_group(ctx, tier, template["LaunchTemplateId"],
                                                  ctx.resources["target_group_arn"], list(tier.subnets))
    scaling.ensure_scaling_policies(ctx, tier, group_existed=existed)


def switch(ctx: Ctx, tier: balancing.Tier, color: str, *, canary: int | None, wait: bool, force: bool) -> Outcome:
    """Steps 1-3 onto the other color, then the watch and the old color's retirement."""
    new = other(color)
    new_tier = tier.of(new)
    started = ctx.resources.get("deploy")
    # The state file keeps strings: the deploy under way, for the next run and `status`.
    ctx.resources["deploy"] = {"to": new, "image": tier.ami, "phase": "starting", "canary": str(canary or ""),
                               "started_at": started.get("started_at", "") if isinstance(started, dict)
                               and started.get("to") == new else utc_now()}
    if force and rejection(ctx, tier, tier.ami):
        baking.untag_image(ctx, tier.ami, baking.REJECTED_TAG)
    ctx.save()
    ctx.out.info(f"  {tier.tier} tier: deploying {tier.ami} on the {new} color beside {color}")
    balancing.wait_active(ctx, tier)
    live_group = balancing.find_auto_scaling_group(ctx, tier.of(color))
    with colored(ctx):
        balancing.ensure_target_group(ctx, new_tier, tier.vpc)
        shift(ctx, tier, {color: 100, new: 0})
        balancing.start_instances(ctx, new_tier, desired=live_group["DesiredCapacity"] if live_group else None)
        balancing.wait_healthy(ctx, new_tier)
    minutes = ctx.config.deploy.watch_minutes
    if canary:
        shift(ctx, tier, {color: 100 - canary, new: canary})
        problem = watch_for(ctx, tier, new, ctx.aws.clock.now() + minutes * 60) if minutes else None
        if problem is not None:
            return roll_back(ctx, tier, bad=new, problem=problem)
    before = observe(ctx, tier).present.get(color)
    mark_live(ctx, tier, before.image if before is not None else None, tier.ami)
    shift(ctx, tier, {new: 100, color: 0})
    remember(ctx, new_tier)
    follow(ctx, new_tier)
    ctx.resources["deploy"] = {**ctx.resources["deploy"], "phase": "watching",
                               "watch_until": repr(ctx.aws.clock.now() + minutes * 60)}
    ctx.save()
    return after_switch(ctx, tier, new, wait=wait)


def mark_live(ctx: Ctx, tier: balancing.Tier, old_image: str | None, image: str) -> None:
    """The image takes all the traffic now (written before the listeners move: tags are the truth).
    The old one served before it: a stack older than colors never tagged it, so it is tagged with
    when it was made, and stays a rollback target."""
    images = {i["ImageId"]: i for i in baking.tier_images(ctx, tier.tier)}
    if old_image is not None and old_image in images and not tag_value(images[old_image], baking.LIVE_SINCE_TAG):
        baking.tag_image(ctx, old_image, baking.LIVE_SINCE_TAG,
                         str(images[old_image].get("CreationDate") or utc_now()))
    baking.tag_image(ctx, image, baking.LIVE_SINCE_TAG, utc_now())


def after_switch(ctx: Ctx, tier: balancing.Tier, color: str, *, wait: bool) -> Outcome:
    """The traffic is on `color`, the old color still there: the (rest of the) watch, then the old
    color goes."""
    if not wait:
        return Outcome(color, True, None)
    record = ctx.resources.get("deploy")
    minutes = ctx.config.deploy.watch_minutes
    saved = record.get("watch_until") if isinstance(record, dict) and record.get("to") == color else None
    # Without it (the state file lost it, or a crash before it was saved): a whole watch.
    until = float(saved) if saved else ctx.aws.clock.now() + minutes * 60
    if minutes and ctx.aws.clock.now() < until:
        problem = watch_for(ctx, tier, color, until)
        if problem is not None:
            return roll_back(ctx, tier, bad=color, problem=problem)
    else:
        settle(ctx, tier)
    retire(ctx, tier, other(color))
    ctx.resources.pop("deploy", None)
    prune(ctx, tier)
    ctx.save()
    return Outcome(color, True, None)


def watch_for(ctx: Ctx, tier: balancing.Tier, color: str, until: float) -> str | None:
    """The new color watched until `until` (threetier.blocks.watch): the problem seen, or None."""
    each = tier.of(color)
    group, balancer = balancing.find_target_group(ctx, each), balancing.find_load_balancer(ctx, each)
    watched = run_watch(ctx, tier=tier.tier, alarm_names=watched_alarms(ctx, tier),
                        target_group_arn=group["TargetGroupArn"] if group else "",
                        load_balancer_arn=balancer["LoadBalancerArn"] if balancer else "",
                        group_name=ctx.name(each.asg_role), until=until)
    return watched.problem


def run_watch(ctx: Ctx, *, tier: str, alarm_names: Sequence[str], target_group_arn: str, load_balancer_arn: str,
              group_name: str, until: float) -> Any:
    from threetier.blocks import watch
    return watch.watch(ctx, tier=tier, alarm_names=alarm_names, target_group_arn=target_group_arn,
                       load_balancer_arn=load_balancer_arn, group_name=group_name, until=until)


def watched_alarms(ctx: Ctx, tier: balancing.Tier) -> list[str]:
    """The tier's alarms, which `follow` has pointed at the new color. Not the load balancer's own 5xx
    alarm (the web tier's): it counts the old color's errors too, and one already firing would roll
    back the very deploy meant to end it."""
    if not ctx.config.monitoring.alarms:
        return []
    found = alarms.find_alarms(ctx)
    names = [ctx.name(what) for what in balancing.alarm_whats(tier.tier)]
    return [name for name in names if name in found]


def roll_back(ctx: Ctx, tier: balancing.Tier, *, bad: str, problem: str) -> Outcome:
    """The traffic back to the other color; the bad color's image tagged rejected, the color retired."""
    good = other(bad)
    seen = observe(ctx, tier).present.get(bad)
    image = seen.image if seen is not None and seen.image else tier.ami
    ctx.out.info(f"  {tier.tier} tier: rolling back to {good}: {problem}")
    baking.tag_image(ctx, image, baking.REJECTED_TAG, f"{utc_now()}: {problem}")
    shift(ctx, tier, {good: 100, bad: 0})
    remember(ctx, tier.of(good))
    follow(ctx, tier.of(good))
    settle(ctx, tier)
    retire(ctx, tier, bad)
    ctx.resources.pop("deploy", None)
    ctx.save()
    return Outcome(good, False, problem)


def settle(ctx: Ctx, tier: balancing.Tier) -> None:
    """Give the load balancer the time to apply the last shift before the color it left drains."""
    if ctx.aws.listener_changes_at_once:
        return
    since = ctx.aws.clock.now()

    def applied() -> Poll:
        waited = ctx.aws.clock.now() - since
        return Poll(waited >= LISTENER_SETTLE_SECONDS, f"{waited:.0f} of {LISTENER_SETTLE_SECONDS} s")
    ctx.aws.wait(f"{ctx.name(tier.alb_role)} to apply the shift", applied, delay=LISTENER_SETTLE_SECONDS,
                 timeout=2 * LISTENER_SETTLE_SECONDS)


def retire(ctx: Ctx, tier: balancing.Tier, color: str) -> None:
    """The color goes: its instances drained while its target group is still on the listeners (at
    weight 0), then off the listeners, then its group, target group and template deleted."""
    each = tier.of(color)
    balancing.scale_to_zero(ctx, each)
    view = observe(ctx, tier)
    if color in view.weights or not view.listeners_agree:
        shift(ctx, tier, {other(color): 100})
    with colored(ctx):
        if balancing.start_deleting_group(ctx, ctx.name(each.asg_role)):
            balancing.finish_deleting_group(ctx, ctx.name(each.asg_role))
        group = balancing.find_target_group(ctx, each, live=True)
        if group is not None:
            balancing.delete_target_group(ctx, ctx.name(each.target_group_role), group["TargetGroupArn"])
        balancing.delete_launch_template(ctx, ctx.name(each.launch_template_role))


def prune(ctx: Ctx, tier: balancing.Tier) -> None:
    """The tier's images but the keep-set: the live one, the rollback target, any a color runs, the
    configured one, and the newest one rolled back from (its tag is what keeps `up` from deploying
    that code again: gone, the next `up` would bake it anew, untagged). The rest go, with their
    snapshots."""
    view = observe(ctx, tier)
    images = baking.tier_images(ctx, tier.tier)
    rejected = max((i for i in images if tag_value(i, baking.REJECTED_TAG)),
                   key=lambda i: str(i.get("CreationDate") or ""), default=None)
    keep = {view.image, view.rollback_image, tier.ami, rejected and rejected["ImageId"]} | {
        each.image for each in view.present.values()}
    baking.discard_images(ctx, [i for i in images if i["ImageId"] not in keep])


# -- a Part's start, finish and check -------------------------------------------------------------
def start(ctx: Ctx, tier: balancing.Tier, keep_actions: tuple[list[dict[str, Any]], ...] = ()) -> None:
    """balancing.start on the live color."""
    balancing.start(ctx, live(ctx, tier), keep_actions)


def finish(ctx: Ctx, tier: balancing.Tier) -> balancing.Tier:
    """The deploy, the load balancer active, the live color's targets healthy; the live color's
    tier. A rollback fails the Part, naming the tier and why."""
    # A new stack's group launches while its load balancer still provisions (2-3 minutes, overlapped);
    # a switch needs it active, and a standing stack's is.
    outcome = deploy(ctx, tier)
    if outcome.rolled_back is not None:
        raise ThreetierError(f"deploy {tier.tier} rolled back to {outcome.color}: {outcome.rolled_back}")
    serving = tier.of(outcome.color)
    remember(ctx, serving)
    balancing.wait_active(ctx, tier)
    balancing.wait_healthy(ctx, serving)
    prune(ctx, tier)
    describe(ctx, observe(ctx, tier))
    return serving


def check(ctx: Ctx, tier: balancing.Tier, result: Check) -> balancing.Tier:
    """balancing.check on the live color, and what blue/green adds: a deploy due (or refused: the
    image was rolled back from), a second color with no deploy running, listeners out of step."""
    view = observe(ctx, tier)
    serving = tier.of(view.live or tier.color)
    ctx.resources["color"] = serving.color
    describe(ctx, view)
    balancing.check(ctx, serving, result)
    data = balancing.template_data(ctx, serving)
    if data is not None and tier.ami and serving.color in view.present and view.present[serving.color].group_name:
        rejected = rejection(ctx, tier, tier.ami) if data.get("ImageId") != tier.ami else None
        if rejected:
            when, _, why = rejected.partition(": ")  # the tag: "<time>: <reason>"
            result.notes.append(f"deploy {tier.tier}: the configured image {tier.ami} (fingerprint "
                                f"{fingerprint(ctx, tier, tier.ami)}) was rolled back at {when}"
                                + (f" ({why})" if why else "")
                                + f"; change the code, or `threetier deploy {tier.tier}` to try it again")
        # With the configured image rejected, `up` keeps the live one: what else changed is still due.
        kept = replace(serving, ami=data.get("ImageId") or tier.ami) if rejected else serving
        said = differences(ctx, kept, data)
        if said:
            how = "in place" if ctx.paused else f"on the {other(serving.color)} color"
            result.drift.append(f"deploy {tier.tier}: {', '.join(said)} (`up` starts it {how})")
    second = view.present.get(other(serving.color))
    if second is not None and not ctx.resources.get("deploy"):
        result.drift.append(f"{tier.tier} tier: a second color, {second.color}, beside the live {serving.color} "
                            f"with no deploy running (`up` finishes or removes {second.color})")
    if not view.listeners_agree:
        result.drift.append(f"load balancer {ctx.name(tier.alb_role)}: its listeners forward differently "
                            f"(`up` sets them all as 443 does, or 80 without HTTPS)")
    return serving


def fingerprint(ctx: Ctx, tier: balancing.Tier, image: str | None) -> str | None:
    found = next((i for i in baking.tier_images(ctx, tier.tier) if i["ImageId"] == image), None)
    return tag_value(found, baking.FINGERPRINT_TAG) if found else None


def differences(ctx: Ctx, tier: balancing.Tier, current: dict[str, Any]) -> list[str]:
    """What of the wanted launch template data the live color does not launch, in words."""
    wanted = wanted_data(ctx, tier)
    said = []
    if current.get("ImageId") != wanted["ImageId"]:
        new, was = fingerprint(ctx, tier, wanted["ImageId"]), fingerprint(ctx, tier, current.get("ImageId"))
        if new and was and new != was:
            said.append(f"new code (fingerprint {new}, was {was}; image {wanted['ImageId']})")
        else:
            said.append(f"new image {wanted['ImageId']}" + (f" (code fingerprint {new})" if new else ""))
    if current.get("InstanceType") != wanted["InstanceType"]:
        said.append(f"new instance type {wanted['InstanceType']} (was {current.get('InstanceType')})")
    if current.get("SecurityGroupIds") != wanted["SecurityGroupIds"] and all(wanted["SecurityGroupIds"]):
        said.append(f"new security groups {', '.join(wanted['SecurityGroupIds'])}")
    if tier.instance_profile_arn and balancing.lacks(current.get("IamInstanceProfile"), wanted["IamInstanceProfile"]):
        said.append(f"new instance profile {tier.instance_profile_arn}")
    if balancing.lacks(current.get("MetadataOptions"), wanted["MetadataOptions"]):
        said.append(f"new metadata options {wanted['MetadataOptions']}")
    return said
