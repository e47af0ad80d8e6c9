"""The stack's CloudWatch dashboard (Part 7, config.yaml `monitoring.dashboard`): put with the body
the Part draws, compared with AWS's, deleted when off.

Found by its deterministic name (threetier.names: the region is in it, dashboards are global to
the account), not by tag: GetDashboard has no tag filter. Tagged all the same, at creation
(PutDashboard ignores the Tags of an update).
"""
from __future__ import annotations

import json
from typing import Any

from threetier.aws import Look
from threetier.engine import Check, Ctx
from threetier.names import DASHBOARD_ROLE, dashboard_name_for

DASHBOARD_GONE = ("ResourceNotFound",)  # GetDashboard's and DeleteDashboards' DashboardNotFoundError
# The AWS console of each partition; the dashboard is opened in the stack's region.
CONSOLES = {"aws": "https://{region}.console.aws.amazon.com", "aws-cn": "https://{region}.console.amazonaws.cn",
            "aws-us-gov": "https://{region}.console.amazonaws-us-gov.com"}


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
            result.drift.append(f"CloudWatch dashboard {name}: monitoring.dashboard is false (`up` deletes it)")
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
