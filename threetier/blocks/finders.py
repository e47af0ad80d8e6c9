"""Finders of EC2 resources by the stack's tags: look a resource up before creating it, and refuse
to guess when several carry one role's tags."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from threetier.aws import PART_TAG, STACK_TAG, AwsError, Look, aws_cli, tag_value
from threetier.engine import Check, Ctx
from threetier.errors import ThreetierError

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

ID_KEYS = {"describe_vpcs": "VpcId", "describe_subnets": "SubnetId", "describe_internet_gateways": "InternetGatewayId",
           "describe_route_tables": "RouteTableId", "describe_security_groups": "GroupId",
           "describe_nat_gateways": "NatGatewayId", "describe_addresses": "AllocationId"}


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


def made(ctx: Ctx, operation: str, role: str, answer_key: str | None = None, *,
         vpc: str | None = None) -> Callable[[], dict[str, Any] | None]:
    """For Aws.call's `found`: what a create of `role` made, looked up again from AWS by its tags,
    in the shape of the create's answer ({answer_key: resource}, or the resource itself)."""
    def find() -> dict[str, Any] | None:
        ctx.aws.look(ec2_look(ctx, operation), resource=ctx.name(role), live=True)
        found = ec2_tagged(ctx, operation, role, vpc=vpc)
        if not found:
            return None
        first = min(found, key=lambda r: str(r.get(ID_KEYS[operation])))
        return {answer_key: first} if answer_key else first
    return find


# ENIs of a just-deleted ALB, NAT gateway or instance linger for a minute or more: what they hold
# (a subnet, a security group, an Elastic IP, the VPC) is refused deletion meanwhile.
DEPENDENCY_TIMEOUT = 10 * 60
# id key -> (what it is, the AWS CLI commands that delete one, without `aws` and its options: aws_cli's)
KINDS = {
    "VpcId": ("VPCs", ("ec2 delete-vpc --vpc-id {id}",)),
    "SubnetId": ("subnets", ("ec2 delete-subnet --subnet-id {id}",)),
    "InternetGatewayId": ("internet gateways", (
        "ec2 detach-internet-gateway --internet-gateway-id {id} --vpc-id <its VPC>",
        "ec2 delete-internet-gateway --internet-gateway-id {id}")),
    "AllocationId": ("Elastic IPs", ("ec2 release-address --allocation-id {id}",)),
    "NatGatewayId": ("NAT gateways", ("ec2 delete-nat-gateway --nat-gateway-id {id}",)),
    "RouteTableId": ("route tables", ("ec2 delete-route-table --route-table-id {id}",)),
    "GroupId": ("security groups", ("ec2 delete-security-group --group-id {id}",)),
}


class Duplicates(ThreetierError):
    """More than one resource carries one role's tags (made out of band, or by two operators at
    once before the stack lock): which is the stack's would be a guess, and acting on the wrong
    one breaks the other, so `up` stops and says how to remove the extra one."""


def deletion(ctx: Ctx, id_key: str, resource_id: str) -> str:
    """How to delete one resource of the kind `id_key` names: the AWS CLI command(s), for this run's AWS."""
    commands = KINDS[id_key][1] if id_key in KINDS else ()
    if not commands:
        return f"delete it ({resource_id})"
    return ", then ".join(aws_cli(ctx.aws, command.format(id=resource_id)) for command in commands)


def duplicates_message(ctx: Ctx, found: list[dict[str, Any]], id_key: str, recorded: str | None = None) -> str:
    kind = KINDS[id_key][0] if id_key in KINDS else "resources"
    ids = sorted(r[id_key] for r in found)
    name = tag_value(found[0], "Name") or "?"
    message = f"{len(ids)} {kind} carry the tags of {name}: {', '.join(ids)}"
    extra = [i for i in ids if i != recorded] if recorded in ids else []
    if extra:
        how = "; ".join(deletion(ctx, id_key, i) for i in extra)
        return f"{message}; the state file's is {recorded}, so the extra one goes: {how}"
    return (f"{message}; delete the one the stack does not use ({deletion(ctx, id_key, '<ID>')}) or remove its "
            f"threetier:stack tag")


def subnet_unused(subnet: dict[str, Any]) -> bool:
    """No network interface in it: every address free but the 5 AWS keeps in each subnet."""
    prefix = int(str(subnet.get("CidrBlock", "/0")).rpartition("/")[2] or 0)
    return int(subnet.get("AvailableIpAddressCount", -1)) == 2 ** (32 - prefix) - 5


def vpc_empty(ctx: Ctx, vpc: dict[str, Any]) -> bool:
    """No subnet in it and no internet gateway attached (two reads; anything else it holds, AWS's
    DependencyViolation refuses the delete)."""
    where = [{"Name": "vpc-id", "Values": [vpc["VpcId"]]}]
    subnets = ctx.aws.call("ec2", "describe_subnets", resource=f"subnets of {vpc['VpcId']}", Filters=where)
    gateways = ctx.aws.call("ec2", "describe_internet_gateways", resource=f"gateways of {vpc['VpcId']}",
                            Filters=[{"Name": "attachment.vpc-id", "Values": [vpc["VpcId"]]}])
    return not subnets["Subnets"] and not gateways["InternetGateways"]


# What a second create of one role leaves when its first answer was lost (a resend, or AWS's eventual
# consistency hiding the first from the look before it): a resource with nothing attached, whose
# deletion AWS refuses anyway once something is. id key -> (nothing attached?, the delete call).
BARE: dict[str, tuple[Callable[[Ctx, dict[str, Any]], bool], str]] = {
    "RouteTableId": (lambda _, r: not r.get("Associations"), "delete_route_table"),
    "InternetGatewayId": (lambda _, r: not r.get("Attachments"), "delete_internet_gateway"),
    "AllocationId": (lambda _, r: not r.get("AssociationId"), "release_address"),
    "SubnetId": (lambda _, r: subnet_unused(r), "delete_subnet"),
    "VpcId": (vpc_empty, "delete_vpc"),
}


def without_bare_copies(ctx: Ctx, found: list[dict[str, Any]], id_key: str,
                        recorded: str | None) -> list[dict[str, Any]]:
    """`found` less the copies the stack made itself with nothing attached, deleted: the recorded one
    stays, else the one with something attached, else the lowest ID. Unchanged when more than one
    has something attached (then it is not a lost answer's copy: `one` refuses to guess)."""
    if id_key not in BARE:
        return found
    bare, delete = BARE[id_key]
    is_bare = {r[id_key]: bare(ctx, r) for r in found}
    keep = next((r for r in found if r[id_key] == recorded), None)
    if keep is None:
        used = [r for r in found if not is_bare[r[id_key]]]
        keep = used[0] if len(used) == 1 else min(found, key=lambda r: r[id_key]) if not used else None
    extra = [r for r in found if r is not keep]
    if keep is None or not all(is_bare[r[id_key]] for r in extra):
        return found
    for copy in extra:
        what = name_of(copy, copy[id_key])
        try:
            ctx.aws.call("ec2", delete, resource=what, missing_ok=(f"Invalid{id_key[:-2]}ID.NotFound",),
                         **{id_key: copy[id_key]})
        except AwsError:  # in use after all (DependencyViolation, InvalidIPAddress.InUse): refuse, as before
            return found
        ctx.record("deleted", KINDS[id_key][0][:-1], f"{what} (a second copy, with nothing attached)", copy[id_key])
    return [keep]


def one(ctx: Ctx, found: list[dict[str, Any]], id_key: str, *, report: Check | None = None,
        recorded: str | None = None) -> dict[str, Any] | None:
    """The one resource a role names. Several: `up` deletes the copies the stack made itself that
    have nothing attached (without_bare_copies), and refuses to guess between the rest (Duplicates);
    a check (`report`, for status and plan) notes them as drift and goes on with the recorded one, or
    the lowest ID, so the rest of the report still means something."""
    if len(found) > 1 and report is None:
        found = without_bare_copies(ctx, found, id_key, recorded)
    if len(found) <= 1:
        return found[0] if found else None
    message = duplicates_message(ctx, found, id_key, recorded)
    if report is None:
        raise Duplicates(f"{message}; then run `threetier up` again (it stops here rather than guess which "
                         f"is the stack's)")
    report.drift.append(message)
    return next((r for r in found if r[id_key] == recorded), min(found, key=lambda r: r[id_key]))


def name_of(resource: dict[str, Any], fallback: str) -> str:
    """Its Name tag, or `fallback` (its ID) when it has none."""
    return tag_value(resource, "Name") or fallback
