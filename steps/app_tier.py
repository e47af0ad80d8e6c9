"""Part 5 — internal load balancer and app auto scaling.

The guide: a target group (HTTP 4000, instances, health check /health); an
internal ALB in the two private app subnets with the internal-ALB security
group and a listener on 80 forwarding to it; a launch template of the app AMI
with the app security group and the instance profile (no key pair); an Auto
Scaling group over both app subnets, attached to the target group, 2/2/2.
Here it starts at 2 of 2..4 and tracks CPU (issue 12: config.yaml `app.scaling`).
A new image or instance type is deployed blue/green (threetier.blocks.colors).
"""
from __future__ import annotations

from collections.abc import Iterator

from steps import app_image, network, storage
from threetier.aws import Look
from threetier.blocks import alarms, balancing, colors, strays
from threetier.engine import DONE, EXISTS, Check, Ctx

NUMBER = 5
NAME = "app-tier"
TITLE = "internal load balancer and app auto scaling"
ALB_ROLE = "int-alb"
ALARMS = balancing.alarm_whats("app")  # this Part's CloudWatch alarms (config.yaml monitoring.alarms)


def tier(ctx: Ctx) -> balancing.Tier:
    app = ctx.config.app
    return balancing.Tier(
        tier="app", scheme="internal", port=app.port,
        alb_role=ALB_ROLE, vpc=network.vpc_id(ctx), subnets=network.subnet_ids(ctx, "app"),
        alb_security_group=network.security_group_id(ctx, "internal-alb-sg"),
        instance_security_group=network.security_group_id(ctx, "app-sg"),
        instance_profile_arn=storage.profile_arn(ctx, "app"),
        instance_type=app.instance_type, ami=ctx.resources_of(app_image.NUMBER).get("ami", ""),
        min=app.asg.min, desired=app.asg.desired, max=app.asg.max, scaling=app.scaling, spot=app.spot,
        color=ctx.resources_of(NUMBER).get("color", colors.BLUE))


def looks(ctx: Ctx) -> Iterator[Look]:
    yield from balancing.looks(ctx, tier(ctx))
    yield from strays.looks(ctx)
    yield alarms.alarms_look(ctx)


def _strays(ctx: Ctx) -> list[strays.Stray]:
    """App instances (tagged with this Part) that no group of the stack owns: detached, say."""
    return strays.find(ctx, lambda part: part == NUMBER)


def start(ctx: Ctx) -> None:
    """The target group, the internal ALB and its listener need only the network."""
    # Before the group is looked at: what it has is its own, a stray only bills.
    strays.terminate(ctx, _strays(ctx))
    ctx.need(network.NUMBER, network.SUBNETS_AND_GROUPS)
    colors.start(ctx, tier(ctx))
    # The web tier's nginx proxies /api/ to this name, known now, while the ALB still provisions.
    ctx.resources["internal_alb_dns"] = ctx.resources["load_balancer_dns"]


def finish(ctx: Ctx) -> None:
    """The launch template and the Auto Scaling group need the app AMI."""
    # The alarms need only the target group and the ALB (their ARNs, from `start`): made while the
    # image bakes, so a tier that never turns healthy already has its unhealthy-hosts alarm.
    wanted = balancing.tier_alarms(ctx, tier(ctx))
    if alarms.notify(ctx, wanted):
        ctx.need(storage.NUMBER, EXISTS)  # the SNS topic their actions name: made by Part 1's start
    alarms.ensure_alarms(ctx, wanted, ALARMS)
    ctx.need(app_image.NUMBER, DONE)
    ctx.need(storage.NUMBER, DONE)  # the template's instance profile (done already: Part 4 needed it)
    # The live color runs the current AMI now (a deploy on the other color when it did not); images
    # but the live one, the rollback target and the configured one only cost money.
    colors.finish(ctx, tier(ctx))


def check(ctx: Ctx) -> Check:
    result = Check()
    colors.check(ctx, tier(ctx), result)
    if "load_balancer_dns" in ctx.resources:
        ctx.resources["internal_alb_dns"] = ctx.resources["load_balancer_dns"]
    alarms.check_alarms(ctx, balancing.tier_alarms(ctx, tier(ctx)), ALARMS, result)
    strays.check(ctx, _strays(ctx), result)
    return result


def pause(ctx: Ctx) -> None:
    """No app instance while paused; the ALB, the template and the image stay."""
    balancing.pause(ctx, colors.live(ctx, tier(ctx)), lambda ctx: balancing.tier_alarms(ctx, tier(ctx)))


def before_down(ctx: Ctx) -> None:
    """A load balancer with deletion protection on refuses `down` before anything is deleted."""
    balancing.before_down(ctx, tier(ctx))


def destroy(ctx: Ctx) -> None:
    going = strays.terminate(ctx, _strays(ctx))  # first: they shut down while the group goes
    alarms.delete_alarms(ctx, ALARMS)
    balancing.destroy(ctx, "app", ALB_ROLE)
    strays.wait_gone(ctx, going)  # their ENIs hold the app subnets and app-sg (Part 2 waits for this Part)
