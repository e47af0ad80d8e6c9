"""The stack's CloudWatch dashboard (Part 7, config.yaml `monitoring.dashboard`): its body drawn from
what the Part passes (both tiers' load balancers and target groups, the cluster, the web ACL, the
alarms), put, compared with AWS's, deleted when off.

Found by its deterministic name (threetier.names: the region is in it, dashboards are global to
the account), not by tag: GetDashboard has no tag filter. Tagged all the same, at creation
(PutDashboard ignores the Tags of an update).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from threetier.aws import Look
from threetier.blocks.alarms import load_balancer_dimension, target_group_dimension
from threetier.engine import Check, Ctx
from threetier.names import DASHBOARD_ROLE, dashboard_name_for

DASHBOARD_GONE = ("ResourceNotFound",)  # GetDashboard's and DeleteDashboards' DashboardNotFoundError
# The AWS console of each partition; the dashboard is opened in the stack's region.
CONSOLES = {"aws": "https://{region}.console.aws.amazon.com", "aws-cn": "https://{region}.console.amazonaws.cn",
            "aws-us-gov": "https://{region}.console.amazonaws-us-gov.com"}


@dataclass(frozen=True)
class Tier:
    """What the dashboard shows of a tier: its name and its load balancer's and target group's."""
    name: str  # "web" or "app": the labels and the Auto Scaling group <stack>-<name>-asg
    load_balancer_arn: str
    target_group_arn: str
    load_balancer_name: str


def alarm_arn(ctx: Ctx, name: str) -> str:
    return f"arn:{ctx.aws.partition}:cloudwatch:{ctx.aws.region}:{ctx.aws.account}:alarm:{name}"


def body(ctx: Ctx, *, web: Tier, app: Tier, cluster: str, web_acl: str | None,
         alarm_names: list[str], web_acl_region: str | None = None) -> dict[str, Any]:
    """Requests, response times, 5xx, healthy hosts, in-service instances of both tiers; the Aurora
    writer's and reader's CPU and connections; the WAF's requests when there is a web ACL (a
    `web_acl_region`: CloudFront's, whose metrics WAF keeps there with no Region dimension); the
    stack's alarms when it has any."""
    region = ctx.aws.region
    external, internal = (load_balancer_dimension(tier.load_balancer_arn) for tier in (web, app))
    web_group, app_group = (target_group_dimension(tier.target_group_arn) for tier in (web, app))
    elb = "AWS/ApplicationELB"

    def graph(title: str, x: int, y: int, statistic: str, metrics: list[list[Any]], **more: Any) -> dict[str, Any]:
        return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6,
                "properties": {"title": title, "region": region, "view": "timeSeries", "stacked": False,
                               "period": 60, "stat": statistic, "metrics": metrics, **more}}

    def per_tier(metric: str, label: str, options: dict[str, Any] | None = None) -> list[list[Any]]:
        return [[elb, metric, "TargetGroup", group, "LoadBalancer", balancer, {"label": f"{tier_name} {label}",
                                                                              **(options or {})}]
                for tier_name, group, balancer in (("web", web_group, external), ("app", app_group, internal))]

    def aurora(metric: str) -> list[list[Any]]:
        return [["AWS/RDS", metric, "DBClusterIdentifier", cluster, "Role", role, {"label": role.lower()}]
                for role in ("WRITER", "READER")]

    note = (f"# threetier stack `{ctx.stack}` ({region})\n"
            f"Made by `threetier up` (Part 7): a change made here is undone by the next `up`. "
            f"Web tier behind `{web.load_balancer_name}`, app tier behind `{app.load_balancer_name}`, "
            f"Aurora cluster `{cluster}`.")
    widgets: list[dict[str, Any]] = [
        {"type": "text", "x": 0, "y": 0, "width": 24, "height": 2, "properties": {"markdown": note}},
        graph("Requests per minute", 0, 2, "Sum", [
            [elb, "RequestCount", "LoadBalancer", external, {"label": "external ALB"}],
            [elb, "RequestCount", "LoadBalancer", internal, {"label": "internal ALB"}]]),
        graph("Target response time (seconds)", 12, 2, "p50", [
            [elb, "TargetResponseTime", "LoadBalancer", balancer, {"stat": stat, "label": f"{tier_name} {stat}"}]
            for tier_name, balancer in (("web", external), ("app", internal)) for stat in ("p50", "p99")]),
        graph("5xx per minute", 0, 8, "Sum", [
            [elb, "HTTPCode_ELB_5XX_Count", "LoadBalancer", external, {"label": "external ALB's own"}],
            *per_tier("HTTPCode_Target_5XX_Count", "tier")]),
        graph("Healthy hosts", 12, 8, "Minimum", [
            *per_tier("HealthyHostCount", "healthy"),
            *per_tier("UnHealthyHostCount", "unhealthy", {"stat": "Maximum"})]),
        graph("Instances in service", 0, 14, "Average", [
            ["AWS/AutoScaling", metric, "AutoScalingGroupName", ctx.name(f"{tier.name}-asg"),
             {"label": f"{tier.name} {label}"}]
            for tier in (web, app)
            for metric, label in (("GroupInServiceInstances", "in service"), ("GroupDesiredCapacity", "desired"))]),
        graph("Aurora CPU (%)", 12, 14, "Average", aurora("CPUUtilization"),
              yAxis={"left": {"min": 0, "max": 100}}),
        graph("Aurora connections", 0, 20, "Maximum", aurora("DatabaseConnections")),
    ]
    if web_acl:
        where = ["Region", region] if web_acl_region is None else []
        widgets.append(graph("WAF requests per minute", 0, 26, "Sum", [
            ["AWS/WAFV2", metric, "WebACL", web_acl, *where, "Rule", "ALL", {"label": label}]
            for metric, label in (("AllowedRequests", "allowed"), ("BlockedRequests", "blocked"))],
            **({"region": web_acl_region} if web_acl_region else {})))
    if alarm_names:
        widgets.append({"type": "alarm", "x": 12, "y": 20, "width": 12, "height": 6, "properties": {
            "title": "Alarms", "alarms": [alarm_arn(ctx, name) for name in alarm_names]}})
    return {"widgets": widgets}


def dashboard_name(ctx: Ctx) -> str:
    return dashboard_name_for(ctx.stack, ctx.aws.region)


def dashboard_url(ctx: Ctx) -> str:
    """The console's current address of a dashboard (what its address bar shows)."""
    region = ctx.aws.region
    console = CONSOLES.get(ctx.aws.partition, CONSOLES["aws"]).format(region=region)
    return f"{console}/cloudwatch/home?region={region}#dashboards/dashboard/{dashboard_name(ctx)}"


def dashboard_look(ctx: Ctx) -> Look:
    return Look("cloudwatch", "get_dashboard", {"DashboardName": dashboard_name(ctx)}, missing_ok=DASHBOARD_GONE)


def find_dashboard(ctx: Ctx) -> dict[str, Any] | None:
    """The dashboard's body, parsed; None when there is no dashboard (a body that is not JSON, from an
    edit by hand, is an empty one: it differs from the stack's)."""
    found = ctx.aws.look(dashboard_look(ctx), resource=f"CloudWatch dashboard {dashboard_name(ctx)}")
    if found is None:
        return None
    try:
        body = json.loads(found.get("DashboardBody") or "{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def ensure_dashboard(ctx: Ctx, body: dict[str, Any]) -> None:
    """With `monitoring.dashboard`: the dashboard with this body, put only when the one AWS has differs
    (PutDashboard replaces it whole); without, deleted."""
    name = dashboard_name(ctx)
    if not ctx.config.monitoring.dashboard:
        delete_dashboard(ctx)
        ctx.resources.pop("dashboard_url", None)
        return
    found, body = find_dashboard(ctx), as_json(body)
    if found != body:
        parameters: dict[str, Any] = {"DashboardName": name, "DashboardBody": json.dumps(body)}
        if found is None:
            parameters["Tags"] = ctx.tags(f"{ctx.aws.region}-{DASHBOARD_ROLE}")  # Name: the dashboard's name
        answer = ctx.aws.call("cloudwatch", "put_dashboard", resource=f"CloudWatch dashboard {name}", **parameters)
        for message in (answer or {}).get("DashboardValidationMessages", []):  # kept, but AWS says what it skipped
            ctx.out.info(f"  CloudWatch dashboard {name}: {message.get('DataPath', '')} {message.get('Message', '')}")
        ctx.record("created" if found is None else "changed", "CloudWatch dashboard", name)
    ctx.resources["dashboard_url"] = dashboard_url(ctx)


def check_dashboard(ctx: Ctx, body: dict[str, Any] | None, result: Check) -> None:
    """Present with the stack's body (`body` None: unknown, as a tier is missing; only its presence
    counts); one config.yaml does not want is drift."""
    name, found = dashboard_name(ctx), find_dashboard(ctx)
    if not ctx.config.monitoring.dashboard:
        if found is not None:
            result.unwanted(f"CloudWatch dashboard {name}: monitoring.dashboard is false (`up` deletes it)")
        return
    if result.found(f"CloudWatch dashboard {name}", found is not None):
        ctx.resources["dashboard_url"] = dashboard_url(ctx)
        if body is not None and found != as_json(body):
            result.drift.append(f"CloudWatch dashboard {name}: changed since `up` made it (`up` puts it back)")


def as_json(body: dict[str, Any]) -> dict[str, Any]:
    """The body as GetDashboard gives it back (tuples become lists): what it is compared as."""
    parsed: dict[str, Any] = json.loads(json.dumps(body))
    return parsed


def delete_dashboard(ctx: Ctx) -> None:
    """Gone already counts as deleted."""
    name = dashboard_name(ctx)
    if find_dashboard(ctx) is None:
        return
    ctx.aws.call("cloudwatch", "delete_dashboards", resource=f"CloudWatch dashboard {name}", DashboardNames=[name],
                 missing_ok=DASHBOARD_GONE)
    ctx.record("deleted", "CloudWatch dashboard", name)
