"""Part 7 — external load balancer and web auto scaling.

The guide: a target group (HTTP 80, health check /health); an internet-facing
ALB in the two public subnets with the external-ALB security group and a
listener on 80 (and, with config.yaml `edge`, 443 with an ACM certificate and
an alias record: threetier.blocks.edge; with `edge.waf`, a WAF web ACL on the
ALB: threetier.blocks.waf); a launch template of the web AMI with the web
security group; an Auto Scaling group over the two public subnets, attached to
the target group, 2/2/2 (here 2 of 2..4, tracking CPU and requests per target:
config.yaml `web.scaling`). The stack's URL is the external ALB's DNS name, or
https://<edge.domain>.

`up` is done only when the stack works: both target groups report healthy
targets (Parts 5 and 7; their health checks are liveness: a database outage
must not make the Auto Scaling groups replace instances), then one real HTTP
round trip goes through the external ALB: /health, /api/ready (readiness: the
app reaches Aurora), /api/transaction — or it says why it could not.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from steps import app_image, app_tier, database, network, storage, web_image
from threetier.aws import Look, Poll
from threetier.blocks import (
    alarms,
    balancing,
    cdn,
    certificates,
    colors,
    dashboard,
    dns,
    edge,
    https,
    log_groups,
    origin,
    security_groups,
    strays,
    waf,
)
from threetier.blocks.probe import fetch
from threetier.engine import DONE, EXISTS, Check, Ctx
from threetier.errors import ThreetierError

NUMBER = 7
NAME = "web-tier"
TITLE = "external load balancer and web auto scaling"
ALB_ROLE = "ext-alb"
ROUND_TRIP_TIMEOUT = 6 * 60  # a new ALB's DNS name takes a minute or two to resolve
ELB_5XX = "ext-alb-5xx"
ALARMS = (*balancing.alarm_whats("web"), ELB_5XX)  # this Part's CloudWatch alarms (monitoring.alarms)
# The external ALB's own 5xx, alarmed on as a count, not a rate: they are not the app's errors but
# requests the ALB could not get answered at all (503 with no healthy web instance, 502/504 when nginx
# reset or timed out), so a handful is an outage users saw whatever the traffic. A rate needs a floor
# of requests not to flap in a quiet lab, and under that floor it would hide exactly that outage.
ELB_5XX_PER_5_MINUTES = 5


def tier(ctx: Ctx) -> balancing.Tier:
    web = ctx.config.web
    return balancing.Tier(
        tier="web", scheme="internet-facing", port=80,
        alb_role=ALB_ROLE, vpc=network.vpc_id(ctx), subnets=network.subnet_ids(ctx, "web"),
        alb_security_group=network.security_group_id(ctx, "external-alb-sg"),
        instance_security_group=network.security_group_id(ctx, "web-sg"),
        instance_profile_arn=storage.profile_arn(ctx, "web"),
        instance_type=web.instance_type, ami=ctx.resources_of(web_image.NUMBER).get("ami", ""),
        min=web.asg.min, desired=web.asg.desired, max=web.asg.max, scaling=web.scaling, spot=web.spot,
        color=ctx.resources_of(NUMBER).get("color", colors.BLUE),
        # edge.cdn: the ALB carries cdn-origin-sg too (HTTPS from CloudFront only)
        origin_security_group=network.security_group_id(ctx, security_groups.CDN_ORIGIN_SG) if ctx.config.edge.cdn
        else "")


def looks(ctx: Ctx) -> Iterator[Look]:
    yield from balancing.looks(ctx, tier(ctx))
    yield from strays.looks(ctx)
    yield from edge.looks(ctx)
    yield from cdn.looks(ctx)
    yield from waf.looks(ctx)
    if ctx.config.edge.cdn or https.ORIGIN_SECRET in ctx.resources:
        yield origin.secret_look(ctx)
    yield alarms.alarms_look(ctx)
    yield dashboard.dashboard_look(ctx)


def _strays(ctx: Ctx) -> list[strays.Stray]:
    """Web instances (tagged with this Part) that no group of the stack owns, and, this being the last
    Part, any instance of the stack tagged with no Part that has instances (made by hand, say)."""
    others = (app_image.NUMBER, app_tier.NUMBER, web_image.NUMBER)  # each answers for its own
    return strays.find(ctx, lambda part: part not in others)


def start(ctx: Ctx) -> None:
    """The target group, the internet-facing ALB and its listener need only the network."""
    # Before the group is looked at: what it has is its own, a stray only bills.
    strays.terminate(ctx, _strays(ctx))
    ctx.need(network.NUMBER, network.SUBNETS_AND_GROUPS)
    colors.start(ctx, tier(ctx), https.keep_actions(ctx))
    if ctx.config.edge.cdn:  # before 443's origin rule needs its value (edge.finish)
        origin.ensure_secret(ctx)
        ctx.resources[https.ORIGIN_SECRET] = origin.secret_name(ctx)
    else:  # cdn turned off: the ALB no longer carries cdn-origin-sg (colors.start), so it can go
        security_groups.delete_cdn_origin_group(ctx, tier(ctx).vpc)
    # With edge.domain: the certificate is requested now and waited for in finish, while the image bakes
    # (with edge.cdn, CloudFront's too, and the origin header's secret made).
    edge.start(ctx, tier(ctx))
    # With edge.waf: the web ACL now; AWS lets it be associated only a while after (in finish).
    waf.start(ctx, tier(ctx))


def finish(ctx: Ctx) -> None:
    """The launch template and the Auto Scaling group need the web AMI; the round trip needs
    the app tier's targets healthy too."""
    # The alarms need only this Part's target group and ALB: made while the image bakes.
    wanted = web_alarms(ctx)
    if alarms.notify(ctx, wanted):
        ctx.need(storage.NUMBER, EXISTS)  # the SNS topic their actions name: made by Part 1's start
    alarms.ensure_alarms(ctx, wanted, ALARMS)
    ctx.need(app_tier.NUMBER, EXISTS)  # the dashboard's (below, once both tiers' deploys are over)
    ctx.need(database.NUMBER, EXISTS)
    edge.finish(ctx, tier(ctx))  # the certificate issued (minutes of DNS validation), 443, the record(s)
    cdn.disable_leftover(ctx)  # edge.cdn turned off: the records point at the ALB again; deleted at the end
    waf.finish(ctx, tier(ctx))  # on the ALB before it has targets: no request is served unfiltered
    ctx.need(web_image.NUMBER, DONE)
    ctx.need(storage.NUMBER, DONE)  # the template's instance profile (done already: Part 6 needed it)
    # The live color runs the current AMI now (a deploy on the other color when it did not); images
    # but the live one, the rollback target and the configured one only cost money.
    colors.finish(ctx, tier(ctx))
    alarms.ensure_alarms(ctx, web_alarms(ctx), ALARMS)  # the ALB's own 5xx alarm names the live color's group
    # The round trip goes all the way to Aurora: the app tier's targets are healthy on liveness
    # alone, so the database (writer and reader available) is waited for here, not implied.
    ctx.need(app_tier.NUMBER, DONE)
    ctx.need(database.NUMBER, DONE)
    # After both tiers' deploys: it draws their live colors' target groups.
    body = dashboard_body(ctx)
    if body is None:  # both tiers' start found or made their target groups and ALBs: not expected
        raise ThreetierError(f"{NAME}: the dashboard needs both tiers' load balancers and target groups, "
                             f"and one is not known; run `threetier up` again")
    dashboard.ensure_dashboard(ctx, body)
    edge.finish_cdn(ctx, tier(ctx))  # cdn: deployed (minutes), the records moved to it if not yet; off: deleted
    security_groups.close_to_viewers(ctx, tier(ctx).alb_security_group)  # edge.cdn: now CloudFront serves
    waf.settle_cloudfront(ctx)  # CloudFront's web ACL, no longer wanted: once no distribution names it
    if not ctx.config.edge.cdn and https.ORIGIN_SECRET in ctx.resources:
        # cdn turned off: 443's origin rule (edge.finish) and the distribution that sent the header are gone.
        origin.delete_secret(ctx)
        ctx.resources.pop(https.ORIGIN_SECRET)
    ctx.resources["round_trip"] = round_trip(ctx, ctx.resources["url"])
    ctx.out.info(f"  {ctx.resources['url']}: {ctx.resources['round_trip']}")


def round_trip(ctx: Ctx, url: str) -> str:
    """One real request through the whole stack; says so plainly when that cannot be done."""
    if ctx.aws.emulator:
        return "not checked: AWS here is an emulator, which serves no load balancer"
    seen: dict[str, str] = {}

    def probe() -> Poll:
        try:
            status, _, _ = fetch(ctx, f"{url}/health")
            if status != 200:
                return Poll(False, f"/health answered {status}")
            # Readiness, end to end: nginx -> internal ALB -> the app -> Aurora.
            status, _, _ = fetch(ctx, f"{url}/api/ready")
            if status != 200:
                return Poll(False, f"/api/ready answered {status} (the app tier cannot reach the database yet)")
            status, body, through = fetch(ctx, f"{url}/api/transaction")
            if status != 200:
                return Poll(False, f"/api/transaction answered {status}")
            rows = json.loads(body).get("result")
            if not isinstance(rows, list):
                return Poll(False, "/api/transaction answered without a result list")
            seen["rows"] = str(len(rows))
            seen["through"] = "yes" if through else ""
            return Poll(True, "ok")
        except (OSError, ValueError) as exc:
            return Poll(False, f"{type(exc).__name__}: {exc}")

    try:
        ctx.aws.wait(f"a round trip through {url}", probe, delay=10, timeout=ROUND_TRIP_TIMEOUT)
    except ThreetierError as exc:
        if "0.0.0.0/0" not in ctx.config.access.client_cidrs:
            return (f"not checked: this machine could not reach it, and access.client_cidrs "
                    f"({', '.join(ctx.config.access.client_cidrs)}) may not include its address ({exc})")
        raise
    door = "the distribution" if ctx.config.edge.cdn else "the load balancer"
    note = (f" (through {door}'s own name: {dns.domain(ctx)} does not resolve here yet)"
            if seen.get("through") else "")
    return f"working: /health 200, /api/ready 200, /api/transaction 200 with {seen['rows']} transactions{note}"


def check(ctx: Ctx) -> Check:
    result = Check()
    colors.check(ctx, tier(ctx), result)
    if "load_balancer_dns" in ctx.resources:
        ctx.resources["url"] = f"http://{ctx.resources['load_balancer_dns']}"
    edge.check(ctx, tier(ctx), result)
    https.check_origin(ctx, tier(ctx), result)
    if ctx.config.edge.cdn:
        origin.check(ctx, result)
    elif https.ORIGIN_SECRET in ctx.resources:
        origin.check_off(ctx, result)
    waf.check(ctx, tier(ctx), result)  # first: it finds CloudFront's ACL, which the distribution should name
    cdn.check(ctx, result)
    security_groups.check_closed_to_viewers(ctx, tier(ctx).alb_security_group, result)
    alarms.check_alarms(ctx, web_alarms(ctx), ALARMS, result)
    dashboard.check_dashboard(ctx, dashboard_body(ctx), result)
    strays.check(ctx, _strays(ctx), result)
    return result


# -- alarms and the dashboard -------------------------------------------------------------
def web_alarms(ctx: Ctx) -> list[alarms.Alarm]:
    balancer_arn = ctx.resources.get("load_balancer_arn")
    elb_5xx = alarms.Alarm(ELB_5XX, (
        f"The external load balancer {ctx.name(ALB_ROLE)} itself answered more than {ELB_5XX_PER_5_MINUTES} "
        f"requests with a 5xx in 5 minutes: users saw errors. 503: no healthy web instance (see the alarm "
        f"{ctx.name('web-unhealthy-hosts')} and the activity of the Auto Scaling group {ctx.name(tier(ctx).asg_role)}); "
        f"502/504: nginx reset the connection or did not answer in time (log group "
        f"{log_groups.name(ctx, log_groups.NGINX_ERROR)})."),
        None if not balancer_arn else alarms.watching(
            "AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count",
            alarms.dimensions(LoadBalancer=alarms.load_balancer_dimension(balancer_arn)),
            statistic="Sum", period=300, periods=1, threshold=ELB_5XX_PER_5_MINUTES,
            comparison="GreaterThanThreshold", missing_data=alarms.NOT_BREACHING))
    return [*balancing.tier_alarms(ctx, tier(ctx)), elb_5xx]


def dashboard_body(ctx: Ctx) -> dict[str, Any] | None:
    """The stack's dashboard as this Part draws it (threetier.blocks.dashboard.body): both tiers'
    load balancers and target groups, the cluster, the web ACL and the stack's alarms. None while a
    tier's target group or load balancer is unknown (status on a stack missing one)."""
    web, app = ctx.resources, ctx.resources_of(app_tier.NUMBER)
    arns = [part.get(key) for part in (web, app) for key in ("load_balancer_arn", "target_group_arn")]
    if not all(arns):
        return None
    owned = (*database.ALARMS, *app_tier.ALARMS, *ALARMS) if ctx.config.monitoring.alarms else ()
    acl = waf.wanted(ctx)  # the regional one, or CloudFront's (edge.cdn)
    return dashboard.body(
        ctx,
        web=dashboard.Tier("web", web["load_balancer_arn"], web["target_group_arn"], ctx.name(ALB_ROLE)),
        app=dashboard.Tier("app", app["load_balancer_arn"], app["target_group_arn"], ctx.name(app_tier.ALB_ROLE)),
        cluster=database.cluster_id(ctx),
        web_acl=acl.name(ctx) if acl else None, web_acl_region=acl.region if acl else None,
        alarm_names=[alarms.alarm_name(ctx, what) for what in owned])


def pause(ctx: Ctx) -> None:
    """No web instance while paused (the URL answers 503); the ALB, its address and the image stay."""
    balancing.pause(ctx, colors.live(ctx, tier(ctx)), web_alarms)


def before_down(ctx: Ctx) -> None:
    """A load balancer with deletion protection on refuses `down` before anything is deleted."""
    balancing.before_down(ctx, tier(ctx))


def destroy(ctx: Ctx) -> None:
    going = strays.terminate(ctx, _strays(ctx))  # first: they shut down while the rest goes
    alarms.delete_alarms(ctx, ALARMS)
    dashboard.delete_dashboard(ctx)
    edge.destroy_records(ctx, tier(ctx))  # while the ALB they point at is there
    cdn.disable_all(ctx)  # not waited for: it deploys while the rest goes (cdn.remove, below)
    waf.destroy(ctx, tier(ctx))  # off the ALB, then deleted
    balancing.destroy(ctx, "web", ALB_ROLE)
    certificates.destroy_certificates(ctx)  # once no listener uses them
    strays.wait_gone(ctx, going)  # their ENIs hold subnets and security groups (Part 2 waits for this Part)
    cdn.remove(ctx)  # disabled above: deployed, deleted, then CloudFront's certificate
    # Once no distribution names it (cdn.remove deleted them).
    waf.destroy_cloudfront(ctx)
    # Last, whatever edge.cdn says now: the distribution that sent the header is gone.
    origin.delete_secret(ctx)
    ctx.resources.pop(https.ORIGIN_SECRET, None)
