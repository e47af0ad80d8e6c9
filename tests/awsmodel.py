"""A thin real-AWS model over moto, on a virtual clock.

moto answers "available" at once and deletes what real AWS would refuse. This
layer hooks the clients of one `Aws` object (botocore events) and makes moto
behave the way aws-latency.md says AWS does:
- NAT gateways stay `pending` for 100 s after create and `deleting` for 60 s after delete;
- CreateRoute to a NAT gateway created less than 5 s ago: InvalidNatGatewayID.NotFound;
- ReleaseAddress while a NAT gateway still holds the EIP: InvalidIPAddress.InUse;
- DetachInternetGateway while the VPC has mapped public addresses: DependencyViolation;
- DeleteSubnet while a NAT gateway is still in it: DependencyViolation;
- DeleteSecurityGroup while another group's rule references it: DependencyViolation;
- DeleteVpc while subnets, security groups or an attached gateway remain: DependencyViolation.
Every refusal is also kept in `violations`, so a test can tell "waited correctly"
from "did it in the wrong order and was saved by a retry".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3

from threetier.aws import Aws

NAT_CREATE_SECONDS = 100
NAT_DELETE_SECONDS = 60
NAT_ROUTE_VISIBLE_SECONDS = 5


class _Response:
    def __init__(self, status: int):
        self.status_code = status
        self.headers: dict[str, str] = {}
        self.content = b""
        self.raw = None


def refusal(code: str, message: str, status: int = 400) -> tuple[_Response, dict[str, Any]]:
    return _Response(status), {"Error": {"Code": code, "Message": message},
                               "ResponseMetadata": {"HTTPStatusCode": status}}


@dataclass
class AwsModel:
    aws: Aws
    created: dict[str, float] = field(default_factory=dict)  # NAT id -> virtual time created
    deleted: dict[str, float] = field(default_factory=dict)  # NAT id -> virtual time delete began
    violations: list[str] = field(default_factory=list)
    polls: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.raw = boto3.client("ec2", region_name=self.aws.region)  # the model's own view, unhooked
        events = self.aws.client("ec2").meta.events
        events.register("after-call.ec2.CreateNatGateway", self._nat_created)
        events.register("after-call.ec2.DeleteNatGateway", self._nat_deleted)
        events.register("after-call.ec2.DescribeNatGateways", self._describe_nats)
        events.register("before-call.ec2.CreateRoute", self._create_route)
        events.register("before-call.ec2.ReplaceRoute", self._create_route)
        events.register("before-call.ec2.ReleaseAddress", self._release_address)
        events.register("before-call.ec2.DetachInternetGateway", self._detach_igw)
        events.register("before-call.ec2.DeleteSubnet", self._delete_subnet)
        events.register("before-call.ec2.DeleteSecurityGroup", self._delete_security_group)
        events.register("before-call.ec2.DeleteVpc", self._delete_vpc)

    @property
    def now(self) -> float:
        return self.aws.clock.now()

    def nat_state(self, nat_id: str) -> str:
        if nat_id in self.deleted:
            return "deleted" if self.now - self.deleted[nat_id] >= NAT_DELETE_SECONDS else "deleting"
        if nat_id in self.created and self.now - self.created[nat_id] < NAT_CREATE_SECONDS:
            return "pending"
        return "available"

    def refuse(self, code: str, message: str) -> tuple[_Response, dict[str, Any]]:
        self.violations.append(f"{code}: {message}")
        return refusal(code, message)

    # -- NAT gateways --------------------------------------------------------------
    def _nat_created(self, parsed: dict[str, Any], **_: Any) -> None:
        if "NatGateway" in parsed:
            nat = parsed["NatGateway"]
            self.created.setdefault(nat["NatGatewayId"], self.now)
            nat["State"] = "pending"

    def _nat_deleted(self, parsed: dict[str, Any], **_: Any) -> None:
        if "NatGatewayId" in parsed:
            self.deleted.setdefault(parsed["NatGatewayId"], self.now)

    def _describe_nats(self, parsed: dict[str, Any], **_: Any) -> None:
        for nat in parsed.get("NatGateways", []):
            if nat["NatGatewayId"] in self.created or nat["NatGatewayId"] in self.deleted:
                nat["State"] = self.nat_state(nat["NatGatewayId"])
                self.polls[nat["State"]] = self.polls.get(nat["State"], 0) + 1

    def _live_nats(self) -> list[dict[str, Any]]:
        nats = self.raw.describe_nat_gateways()["NatGateways"]
        return [n for n in nats if n["NatGatewayId"] in self.created and self.nat_state(n["NatGatewayId"]) != "deleted"]

    # -- refusals ------------------------------------------------------------------
    def _create_route(self, params: dict[str, Any], **_: Any) -> Any:
        nat_id = params.get("body", {}).get("NatGatewayId")
        if nat_id and nat_id in self.created and self.now - self.created[nat_id] < NAT_ROUTE_VISIBLE_SECONDS:
            # Not a mistake of the caller: eventual consistency, to be retried.
            return refusal("InvalidNatGatewayID.NotFound", f"The natGateway ID '{nat_id}' does not exist")
        return None

    def _release_address(self, params: dict[str, Any], **_: Any) -> Any:
        allocation = params.get("body", {}).get("AllocationId")
        for nat in self._live_nats():
            if any(a.get("AllocationId") == allocation for a in nat.get("NatGatewayAddresses", [])):
                return self.refuse("InvalidIPAddress.InUse", f"{allocation} is in use by {nat['NatGatewayId']}")
        return None

    def _detach_igw(self, params: dict[str, Any], **_: Any) -> Any:
        vpc = params.get("body", {}).get("VpcId")
        if any(n["VpcId"] == vpc for n in self._live_nats()):
            return self.refuse("DependencyViolation", f"Network {vpc} has some mapped public address(es)")
        return None

    def _delete_subnet(self, params: dict[str, Any], **_: Any) -> Any:
        subnet = params.get("body", {}).get("SubnetId")
        if any(n["SubnetId"] == subnet for n in self._live_nats()):
            return self.refuse("DependencyViolation", f"The subnet '{subnet}' has dependencies")
        return None

    def _delete_security_group(self, params: dict[str, Any], **_: Any) -> Any:
        group = params.get("body", {}).get("GroupId")
        for other in self.raw.describe_security_groups()["SecurityGroups"]:
            for permission in other.get("IpPermissions", []):
                if other["GroupId"] != group and any(p.get("GroupId") == group for p in permission.get("UserIdGroupPairs", [])):
                    return self.refuse("DependencyViolation", f"resource {group} has a dependent object ({other['GroupId']})")
        return None

    def _delete_vpc(self, params: dict[str, Any], **_: Any) -> Any:
        vpc = params.get("body", {}).get("VpcId")
        vpc_filter = [{"Name": "vpc-id", "Values": [vpc]}]
        subnets = self.raw.describe_subnets(Filters=vpc_filter)["Subnets"]
        groups = [g for g in self.raw.describe_security_groups(Filters=vpc_filter)["SecurityGroups"]
                  if g["GroupName"] != "default"]
        igws = self.raw.describe_internet_gateways(Filters=[{"Name": "attachment.vpc-id", "Values": [vpc]}])
        if subnets or groups or igws["InternetGateways"]:
            return self.refuse("DependencyViolation", f"The vpc '{vpc}' has dependencies and cannot be deleted")
        return None
