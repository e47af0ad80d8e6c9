"""Part 7 — external load balancer and web auto scaling.

The guide: a target group (HTTP 80, health check /health); an internet-facing
ALB in the two public subnets with the external-ALB security group and a
listener on 80; a launch template of the web AMI with the web security group;
an Auto Scaling group over the two public subnets, attached to the target
group, 2/2/2. The stack's URL is the external ALB's DNS name.

`up` is done only when the stack works: both target groups report healthy
targets (Parts 5 and 7; their health checks are liveness: a database outage
must not make the Auto Scaling groups replace instances), then one real HTTP
round trip goes through the external ALB: /health, /api/ready (readiness: the
app reaches Aurora), /api/transaction — or it says why it could not.
"""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

from steps import app_tier, baking, balancing, database, network, web_image
from threetier.aws import Look, Poll
from threetier.engine import DONE, Check, Ctx
from threetier.errors import ThreetierError

NUMBER = 7
NAME = "web-tier"
TITLE = "external load balancer and web auto scaling"
NEEDS: tuple[int, ...] = (1, 2, 3, 5, 6)
ALB_ROLE = "ext-alb"
ROUND_TRIP_TIMEOUT = 6 * 60  # a new ALB's DNS name takes a minute or two to resolve


def tier(ctx: Ctx) -> balancing.Tier:
    web = ctx.config.web
    return balancing.Tier(
        tier="web", scheme="internet-facing", port=80,
        subnet_roles=("public-web-subnet-az1", "public-web-subnet-az2"),
        alb_role=ALB_ROLE, alb_security_group_role="external-alb-sg", instance_security_group_role="web-sg",
        instance_type=web.instance_type, ami=ctx.resources_of(web_image.NUMBER).get("ami", ""),
        min=web.asg.min, desired=web.asg.desired, max=web.asg.max)


def looks(ctx: Ctx) -> Iterator[Look]:
    return balancing.looks(ctx, tier(ctx))


def start(ctx: Ctx) -> None:
    """The target group, the internet-facing ALB and its listener need only the network."""
    ctx.need(network.NUMBER, network.SUBNETS_AND_GROUPS)
    balancing.start(ctx, tier(ctx))
    ctx.resources["url"] = f"http://{ctx.resources['load_balancer_dns']}"


def finish(ctx: Ctx) -> None:
    """The launch template and the Auto Scaling group need the web AMI; the round trip needs
    the app tier's targets healthy too."""
    ctx.need(web_image.NUMBER, DONE)
    balancing.finish(ctx, tier(ctx))
    # The tier runs on the current AMI now: images of earlier web code only cost money.
    if tier(ctx).ami:
        baking.delete_images(ctx, web_image.NUMBER, keep=tier(ctx).ami)
    # The round trip goes all the way to Aurora: the app tier's targets are healthy on liveness
    # alone, so the database (writer and reader available) is waited for here, not implied.
    ctx.need(app_tier.NUMBER, DONE)
    ctx.need(database.NUMBER, DONE)
    ctx.resources["round_trip"] = round_trip(ctx, ctx.resources["url"])
    ctx.out.info(f"  {ctx.resources['url']}: {ctx.resources['round_trip']}")


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # our own ALB, http by design
            return response.status, response.read(65536)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(4096)


def round_trip(ctx: Ctx, url: str) -> str:
    """One real request through the whole stack; says so plainly when that cannot be done."""
    if ctx.aws.emulator:
        return "not checked: AWS here is an emulator, which serves no load balancer"
    seen: dict[str, str] = {}

    def probe() -> Poll:
        try:
            status, _ = fetch(f"{url}/health")
            if status != 200:
                return Poll(False, f"/health answered {status}")
            # Readiness, end to end: nginx -> internal ALB -> the app -> Aurora.
            status, _ = fetch(f"{url}/api/ready")
            if status != 200:
                return Poll(False, f"/api/ready answered {status} (the app tier cannot reach the database yet)")
            status, body = fetch(f"{url}/api/transaction")
            if status != 200:
                return Poll(False, f"/api/transaction answered {status}")
            rows = json.loads(body).get("result")
            if not isinstance(rows, list):
                return Poll(False, "/api/transaction answered without a result list")
            seen["rows"] = str(len(rows))
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
    return f"working: /health 200, /api/ready 200, /api/transaction 200 with {seen['rows']} transactions"


def check(ctx: Ctx) -> Check:
    result = Check()
    balancing.check(ctx, tier(ctx), result)
    if "load_balancer_dns" in ctx.resources:
        ctx.resources["url"] = f"http://{ctx.resources['load_balancer_dns']}"
    return result


def before_down(ctx: Ctx) -> None:
    """A load balancer with deletion protection on refuses `down` before anything is deleted."""
    balancing.before_down(ctx, tier(ctx))


def destroy(ctx: Ctx) -> None:
    balancing.destroy(ctx, "web", ALB_ROLE)
