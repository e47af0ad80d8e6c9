"""Everything still tagged with the stack, service by service.

Used after `down` to prove nothing is left (and to list what `down` will delete).
Each service is asked with its own tag filters: the Resource Groups Tagging API
misses EIPs, launch templates, ASGs, IAM and more. Resources that cannot carry
tags everywhere (S3 bucket tags at creation, IAM) are found by deterministic name.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

from threetier.aws import STACK_TAG, Aws, tag_filters, tag_value


@dataclass(frozen=True)
class Found:
    kind: str
    id: str
    name: str


EC2_KINDS = (
    # (describe operation, result key, id key, kind, keep) -- keep filters out dead states
    ("describe_vpcs", "Vpcs", "VpcId", "VPC", None),
    ("describe_subnets", "Subnets", "SubnetId", "subnet", None),
    ("describe_internet_gateways", "InternetGateways", "InternetGatewayId", "internet gateway", None),
    ("describe_route_tables", "RouteTables", "RouteTableId", "route table", None),
    ("describe_security_groups", "SecurityGroups", "GroupId", "security group", None),
    ("describe_nat_gateways", "NatGateways", "NatGatewayId", "NAT gateway",
     lambda r: r["State"] not in ("deleted", "failed")),
)


def _ec2(aws: Aws, stack: str) -> Iterator[Found]:
    for operation, key, id_key, kind, keep in EC2_KINDS:
        param = "Filter" if operation == "describe_nat_gateways" else "Filters"
        for item in aws.items("ec2", operation, key, resource=f"{kind}s of stack {stack}",
                              **{param: tag_filters(stack)}):
            # Tag filters are checked again: moto ignores them on NAT gateways.
            if tag_value(item, STACK_TAG) == stack and (keep is None or keep(item)):
                yield Found(kind, item[id_key], tag_value(item, "Name") or "")
    addresses = aws.call("ec2", "describe_addresses", resource=f"Elastic IPs of stack {stack}",
                         Filters=tag_filters(stack))["Addresses"]
    for address in addresses:
        yield Found("Elastic IP", address["AllocationId"], tag_value(address, "Name") or "")


def _s3(aws: Aws, stack: str) -> Iterator[Found]:
    from steps.storage import bucket_name_for
    name = bucket_name_for(stack, aws.account, aws.region)
    if aws.call("s3", "head_bucket", resource=f"bucket {name}", Bucket=name, ExpectedBucketOwner=aws.account,
                missing_ok=("404", "NoSuchBucket", "NotFound")) is not None:
        yield Found("bucket", name, name)


def _iam(aws: Aws, stack: str) -> Iterator[Found]:
    from steps.storage import instance_profile_name_for, role_name_for
    role = role_name_for(stack)
    if aws.call("iam", "get_role", resource=f"IAM role {role}", RoleName=role, missing_ok=("NoSuchEntity",)):
        yield Found("IAM role", role, role)
    profile = instance_profile_name_for(stack)
    if aws.call("iam", "get_instance_profile", resource=f"instance profile {profile}",
                InstanceProfileName=profile, missing_ok=("NoSuchEntity",)):
        yield Found("instance profile", profile, profile)


SCANNERS: tuple[Callable[[Aws, str], Iterator[Found]], ...] = (_ec2, _s3, _iam)


def tagged(aws: Aws, stack: str) -> list[Found]:
    return [found for scanner in SCANNERS for found in scanner(aws, stack)]
