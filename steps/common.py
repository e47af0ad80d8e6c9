"""Finders shared by the parts: look a resource up by its tags before creating it."""
from __future__ import annotations

from typing import Any

from threetier.aws import PART_TAG, STACK_TAG, tag_value
from threetier.engine import Ctx

# describe operation -> (result key, filter parameter name)
EC2_DESCRIBE = {
    "describe_vpcs": ("Vpcs", "Filters"),
    "describe_subnets": ("Subnets", "Filters"),
    "describe_internet_gateways": ("InternetGateways", "Filters"),
    "describe_route_tables": ("RouteTables", "Filters"),
    "describe_security_groups": ("SecurityGroups", "Filters"),
    "describe_nat_gateways": ("NatGateways", "Filter"),
    "describe_addresses": ("Addresses", "Filters"),
}


def ec2_tagged(
    ctx: Ctx,
    operation: str,
    role: str | None = None,
    *,
    part: int | None = None,
    filters: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """EC2 resources of this stack (with Name=<stack>-<role> when a role is given)."""
    key, filter_param = EC2_DESCRIBE[operation]
    all_filters = ctx.filters(role) + (filters or [])
    if part is not None:
        all_filters.append({"Name": f"tag:{PART_TAG}", "Values": [str(part)]})
    what = f"{ctx.name(role)}" if role else f"{key} of stack {ctx.stack}"
    params = {filter_param: all_filters}
    if operation == "describe_addresses":  # the one describe here without pagination
        found = ctx.aws.call("ec2", operation, resource=what, **params)[key]
    else:
        found = list(ctx.aws.items("ec2", operation, key, resource=what, **params))
    # Checked again here: some emulators (moto's NAT gateways) ignore tag filters.
    wanted = {STACK_TAG: ctx.stack}
    if role:
        wanted["Name"] = ctx.name(role)
    if part is not None:
        wanted[PART_TAG] = str(part)
    return [r for r in found if all(tag_value(r, k) == v for k, v in wanted.items())]


def one(found: list[dict[str, Any]], id_key: str) -> dict[str, Any] | None:
    """The resource a role names (a stable pick should an out-of-band copy exist)."""
    return sorted(found, key=lambda r: r[id_key])[0] if found else None
