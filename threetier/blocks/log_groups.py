"""CloudWatch Logs groups of the stack: flow logs (Part 2), the app's and nginx's logs (Part 1, with
the roles that write them): each Part that owns a group calls these.

Every group is created by the stack, never by a writer (the CloudWatch agent, the flow-logs
service), so it is tagged at creation, has config.yaml's retention from the start, and `down`
finds it by name, `/threetier/<stack>/<what>` (threetier.names).
"""
from __future__ import annotations

from typing import Any

from threetier.aws import STACK_TAG, Look
from threetier.engine import Check, Ctx
from threetier.names import log_group_name_for as name_for
from threetier.names import log_group_prefix_for as prefix_for

# What each group holds -> its last path element.
APP = "app"                  # the Node.js app's stdout/stderr (app tier)
NGINX_ACCESS = "nginx-access"  # web tier
NGINX_ERROR = "nginx-error"    # web tier
FLOW_LOGS = "vpc-flow-logs"    # Part 2


def name(ctx: Ctx, what: str) -> str:
    return name_for(ctx.stack, what)


def tag_name(ctx: Ctx, what: str) -> str:
    """Its Name tag, `<stack>-<role>` like every resource's (docs/interface.md, "Tags and names"), e.g. threetier-app-log-group."""
    return ctx.name(f"{what}-log-group")


def arn(ctx: Ctx, what: str) -> str:
    """The group's ARN without the `:*` suffix (IAM policies add `:*` for its streams)."""
    return f"arn:{ctx.aws.partition}:logs:{ctx.aws.region}:{ctx.aws.account}:log-group:{name(ctx, what)}"


def groups_look(ctx: Ctx) -> Look:
    """Every group of the stack, in one read (the inventory holds it once for every Part)."""
    return Look("logs", "describe_log_groups", {"logGroupNamePrefix": prefix_for(ctx.stack)}, key="logGroups")


def find(ctx: Ctx, what: str, *, live: bool = False) -> dict[str, Any] | None:
    wanted = name(ctx, what)
    found = ctx.aws.look(groups_look(ctx), resource=f"log group {wanted}", live=live)
    return next((g for g in found if g["logGroupName"] == wanted), None)


def ensure(ctx: Ctx, what: str) -> str:
    """The group, tagged at creation, with config.yaml's retention (converged when it changes)."""
    group, days = name(ctx, what), ctx.config.monitoring.log_retention_days
    found = find(ctx, what)
    if found is None:
        ctx.aws.call("logs", "create_log_group", resource=f"log group {group}", logGroupName=group,
                     tags={STACK_TAG: ctx.stack, "threetier:part": str(ctx.part_number), "Name": tag_name(ctx, what)},
                     retry_codes=("OperationAbortedException",), exists=("ResourceAlreadyExistsException",),
                     found=lambda: find(ctx, what, live=True))
        ctx.record("created", "log group", group)
    if found is None or found.get("retentionInDays") != days:
        ctx.aws.call("logs", "put_retention_policy", resource=f"log group {group}", logGroupName=group,
                     retentionInDays=days)
        if found is not None:
            ctx.record("changed", "log group retention", group, f"{found.get('retentionInDays') or 'never expire'} "
                                                                  f"-> {days} days")
    return group


def check(ctx: Ctx, what: str, result: Check) -> None:
    group, days = name(ctx, what), ctx.config.monitoring.log_retention_days
    found = find(ctx, what)
    if result.found(f"log group {group}", found is not None) and found is not None \
            and found.get("retentionInDays") != days:
        result.drift.append(f"log group {group}: keeps logs {found.get('retentionInDays') or 'forever'} days, "
                            f"config.yaml says {days}")


def delete(ctx: Ctx, what: str) -> None:
    """Gone already counts as deleted (a second `down` changes nothing)."""
    group = name(ctx, what)
    if find(ctx, what) is None:
        return
    ctx.aws.call("logs", "delete_log_group", resource=f"log group {group}", logGroupName=group,
                 missing_ok=("ResourceNotFoundException",))
    ctx.record("deleted", "log group", group)
