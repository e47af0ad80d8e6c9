"""Finders shared by the parts: look a resource up by its tags before creating it."""
from __future__ import annotations

from typing import Any

from threetier.aws import PART_TAG, STACK_TAG, Look, tag_value
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


def ec2_look(ctx: Ctx, operation: str) -> Look:
    """Every resource of one EC2 type that carries the stack's tag: one read per type, which
    every finder of that type filters further here (so the inventory holds it once)."""
    key, filter_param = EC2_DESCRIBE[operation]
    params = {filter_param: ctx.filters()}
    if operation == "describe_addresses":  # the one describe here without pagination
        return Look("ec2", operation, params)
    return Look("ec2", operation, params, key=key)


def ec2_tagged(
    ctx: Ctx,
    operation: str,
    role: str | None = None,
    *,
    part: int | None = None,
    vpc: str | None = None,
) -> list[dict[str, Any]]:
    """EC2 resources of this stack (with Name=<stack>-<role> when a role is given, in `vpc` if given)."""
    key, _ = EC2_DESCRIBE[operation]
    what = f"{ctx.name(role)}" if role else f"{key} of stack {ctx.stack}"
    found = ctx.aws.look(ec2_look(ctx, operation), resource=what)
    if operation == "describe_addresses":
        found = found[key]
    # Tags are checked here (some emulators, moto's NAT gateways, ignore tag filters anyway).
    wanted = {STACK_TAG: ctx.stack}
    if role:
        wanted["Name"] = ctx.name(role)
    if part is not None:
        wanted[PART_TAG] = str(part)
    return [r for r in found if all(tag_value(r, k) == v for k, v in wanted.items())
            and (vpc is None or r.get("VpcId") == vpc)]


def one(found: list[dict[str, Any]], id_key: str) -> dict[str, Any] | None:
    """The resource a role names (a stable pick should an out-of-band copy exist)."""
    return sorted(found, key=lambda r: r[id_key])[0] if found else None
