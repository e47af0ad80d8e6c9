"""Part 2 — network and security.

The guide: one VPC; six subnets over two AZs (a public web, a private app and
a private DB subnet in each); an internet gateway; a NAT gateway with its own
Elastic IP in each public subnet; a public route table to the internet gateway
for the web subnets and one route table per AZ sending the app subnet to the
NAT gateway in the same AZ; DB subnets with no internet route; and five
security groups, each opening only what the next hop needs. The VPC's default
security group, which nothing of the stack uses, keeps no rules at all.

With monitoring.flow_logs (on by default), the VPC's flow logs go to a CloudWatch Logs group of
the stack, written by a role of its own that may write only to that group.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from threetier.aws import NOT_YET_VISIBLE, STACK_TAG, AwsError, Look, Poll, client_token, tag_value
from threetier.blocks import iam, log_groups
from threetier.blocks.finders import EC2_DESCRIBE, ec2_look, ec2_tagged, one
from threetier.config import ConfigError
from threetier.engine import Check, Ctx
from threetier.names import flow_logs_role_name_for

NUMBER = 2
NAME = "network"
TITLE = "network and security"

ANYWHERE = "0.0.0.0/0"
NAT_AVAILABLE_TIMEOUT = 15 * 60   # typically 85-125 s, rarely 5-10 min
NAT_DELETED_TIMEOUT = 10 * 60     # typically 37-79 s
NAT_POLL_DELAY = 10
# ENIs of a just-deleted ALB, NAT gateway or instance linger for a minute or more.
DEPENDENCY_TIMEOUT = 10 * 60
LIVE_NAT_STATES = ["pending", "available"]
# Milestones of this part, before all of it exists: what other parts wait for.
SUBNETS_AND_GROUPS = "subnets and security groups"  # their IDs are known (their rules may still come)
ROUTES = "route tables"  # the public and app subnets have their way out (to the IGW, to a NAT gateway)
VPC_ATTRIBUTES = ("enableDnsSupport", "enableDnsHostnames")  # off by default; instances and endpoints need both
# AWS makes it with the VPC, just after CreateVpc returns: how long to look for it.
DEFAULT_GROUP_TIMEOUT = 60
DEFAULT_GROUP_POLL_DELAY = 2

# VPC flow logs (monitoring.flow_logs): one flow log on the VPC, every packet's record (accepted and
# rejected) to the stack's log group, delivered by the flow-logs service as the stack's role.
FLOW_LOG_ROLE = "vpc-flow-log"  # its Name tag: <stack>-vpc-flow-log
FLOW_LOGS_POLICY_NAME = "write-flow-logs"
FLOW_LOGS_TRAFFIC = "ALL"
FLOW_LOGS_DESTINATION = "cloud-watch-logs"
# A role made a moment ago is not yet assumable by the flow-logs service: CreateFlowLogs answers
# InvalidParameter "Unable to assume given IAM role: '<role ARN>'" (hashicorp/terraform-provider-aws#29323),
# the very error and message terraform-provider-aws retries on CreateFlowLogs (internal/service/ec2/
# vpc_flow_log.go) for its IAM propagation timeout of 2 minutes.
ROLE_NOT_YET_ASSUMABLE = ("InvalidParameter",)
ROLE_NOT_YET_ASSUMABLE_MESSAGE = "Unable to assume given IAM role"
IAM_PROPAGATION_TIMEOUT = 2 * 60
FLOW_LOG_GONE = ("InvalidFlowLogId.NotFound",)


def subnet_roles(tier: str) -> tuple[str, str]:
    prefix = {"web": "public-web", "app": "private-app", "db": "private-db"}[tier]
    return (f"{prefix}-subnet-az1", f"{prefix}-subnet-az2")


@dataclass(frozen=True)
class Rule:
    """One ingress rule: TCP ports from a CIDR or from another of the stack's security groups."""
    port: int
    source: str  # a CIDR, or a security group role like "web-sg"
    description: str

    @property
    def from_group(self) -> bool:
        return not self.source[0].isdigit()


# The five chained security groups, in the order of the request flow.
SECURITY_GROUPS = ("external-alb-sg", "web-sg", "internal-alb-sg", "app-sg", "db-sg")
SG_DESCRIPTIONS = {
    "external-alb-sg": "external ALB: HTTP from the allowed clients",
    "web-sg": "web tier: HTTP from the external ALB",
    "internal-alb-sg": "internal ALB: HTTP from the web tier",
    "app-sg": "app tier: the app port from the internal ALB",
    "db-sg": "database: MySQL from the app tier only",
}


def wanted_rules(ctx: Ctx) -> dict[str, list[Rule]]:
    access, port = ctx.config.access, ctx.config.app.port
    rules: dict[str, list[Rule]] = {
        "external-alb-sg": [Rule(80, cidr, "HTTP from allowed clients") for cidr in access.client_cidrs],
        "web-sg": [Rule(80, "external-alb-sg", "HTTP from the external ALB")],
        "internal-alb-sg": [Rule(80, "web-sg", "HTTP from the web tier")],
        "app-sg": [Rule(port, "internal-alb-sg", "app port from the internal ALB")],
        "db-sg": [Rule(3306, "app-sg", "MySQL from the app tier")],
    }
    if ctx.config.edge.https:  # HTTPS on the external ALB (edge.domain): the same clients reach 443
        rules["external-alb-sg"] += [Rule(443, cidr, "HTTPS from allowed clients") for cidr in access.client_cidrs]
    if access.admin_cidr:  # the guide's "my IP", for testing the tiers directly
        rules["web-sg"].append(Rule(80, access.admin_cidr, "HTTP from the operator (testing)"))
        rules["app-sg"].append(Rule(port, access.admin_cidr, "app port from the operator (testing)"))
    return rules


# -- what the finders read (the inventory) ---------------------------------------
def zones_look() -> Look:
    return Look("ec2", "describe_availability_zones",
                {"Filters": [{"Name": "zone-type", "Values": ["availability-zone"]}]})


def vpc_attribute_look(vpc: str, attribute: str) -> Look:
    return Look("ec2", "describe_vpc_attribute", {"VpcId": vpc, "Attribute": attribute},
                retry_codes=NOT_YET_VISIBLE)


def default_group_look(vpc: str) -> Look:
    """The VPC's default security group: made by AWS with the VPC, untagged, never deleted but with it."""
    return Look("ec2", "describe_security_groups",
                {"Filters": [{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}]},
                key="SecurityGroups")


def rules_look(group_id: str) -> Look:
    return Look("ec2", "describe_security_group_rules",
                {"Filters": [{"Name": "group-id", "Values": [group_id]}]}, key="SecurityGroupRules")


def looks(ctx: Ctx) -> Iterator[Look]:
    """One read per resource type; then, for what those found, the VPC's attributes, its default
    security group and each of the stack's security groups' rules; the default group's rules only
    when it has some (a stack as `up` leaves it: one read for the default group, no third round)."""
    yield zones_look()
    for operation in EC2_DESCRIBE:
        yield ec2_look(ctx, operation)
    vpcs = ctx.aws.peek(ec2_look(ctx, "describe_vpcs")) or []
    for vpc in vpcs:
        if tag_value(vpc, "Name") == ctx.name("vpc"):
            for attribute in VPC_ATTRIBUTES:
                yield vpc_attribute_look(vpc["VpcId"], attribute)
            yield default_group_look(vpc["VpcId"])
            for default in ctx.aws.peek(default_group_look(vpc["VpcId"])) or []:
                if has_rules(default):
                    yield rules_look(default["GroupId"])
    for group in ctx.aws.peek(ec2_look(ctx, "describe_security_groups")) or []:
        yield rules_look(group["GroupId"])
    # Flow logs: one describe by the stack's tag, the role, and the stack's log groups (one read
    # that Part 1's groups share); the role's policy only once the role is known to exist.
    yield flow_logs_look(ctx)
    yield log_groups.groups_look(ctx)
    role = flow_logs_role_look(ctx)
    yield role
    if ctx.aws.has(role) and ctx.aws.peek(role) is not None:
        yield flow_logs_policy_look(ctx)


# -- apply -----------------------------------------------------------------------
def start(ctx: Ctx) -> None:
    azs = availability_zones(ctx)
    vpc = ensure_vpc(ctx)
    subnets = ensure_subnets(ctx, vpc, azs)
    igw = ensure_internet_gateway(ctx, vpc)
    nats = ensure_nat_gateways(ctx, vpc, subnets)  # started here, waited for in finish()
    ensure_security_groups(ctx, vpc)
    ctx.reach(SUBNETS_AND_GROUPS)  # the database and both load balancers start now
    ensure_public_route_table(ctx, vpc, igw, subnets)
    ensure_app_route_tables(ctx, vpc, nats, subnets)
    ctx.reach(ROUTES)  # the builders may boot: their ways out exist (the NAT gateways may still be pending)
    retire_unused_nat_gateways(ctx)  # only once no route points at them any more
    ensure_security_group_rules(ctx)
    close_default_security_group(ctx, vpc)
    # Last: nothing waits for it, and a role made just now may need seconds to be assumable
    # (retried), which the NAT gateways' minutes of `pending` overlap.
    ensure_flow_logs(ctx, vpc)


def finish(ctx: Ctx) -> None:
    for az_index, nat_id in sorted(ctx.resources["nat_gateways"].items()):
        wait_nat_gateway(ctx, nat_id, f"NAT gateway {ctx.name('nat-' + az_index)}", want="available")
    release_unused_elastic_ips(ctx)


def retire_unused_nat_gateways(ctx: Ctx) -> None:
    """per_az -> single: the second NAT gateway bills by the hour for nothing. Delete it (waited for in finish)."""
    wanted = {ctx.name(f"nat-{az_index}") for az_index in nat_az_indexes(ctx)}
    for nat in ec2_tagged(ctx, "describe_nat_gateways", part=NUMBER):
        if nat["State"] in LIVE_NAT_STATES and tag_value(nat, "Name") not in wanted:
            ctx.aws.call("ec2", "delete_nat_gateway", resource=_name_of(nat, nat["NatGatewayId"]),
                         NatGatewayId=nat["NatGatewayId"], missing_ok=("NatGatewayNotFound", "InvalidNatGatewayID.NotFound"))
            ctx.record("deleted", "NAT gateway", _name_of(nat, nat["NatGatewayId"]), nat["NatGatewayId"])
            ctx.resources.setdefault("retired_nat_gateways", []).append(nat["NatGatewayId"])


def release_unused_elastic_ips(ctx: Ctx) -> None:
    for nat_id in ctx.resources.pop("retired_nat_gateways", []):
        wait_nat_gateway(ctx, nat_id, f"NAT gateway {nat_id} deletion", want="deleted")
    wanted = {ctx.name(f"nat-eip-{az_index}") for az_index in nat_az_indexes(ctx)}
    for address in ec2_tagged(ctx, "describe_addresses", part=NUMBER):
        if tag_value(address, "Name") not in wanted:
            release_address(ctx, address)


def availability_zones(ctx: Ctx) -> list[str]:
    configured = list(ctx.config.network.azs)
    zones = ctx.aws.look(zones_look(), resource=f"availability zones of {ctx.aws.region}")["AvailabilityZones"]
    available = sorted(z["ZoneName"] for z in zones if z.get("State") == "available")
    if configured:
        for index, az in enumerate(configured):
            if az not in available:
                raise ConfigError(f"network.azs[{index}]: {az} is not an available zone of {ctx.aws.region} "
                                  f"(available: {', '.join(available)})")
        chosen = configured
    elif len(available) < 2:
        raise ConfigError(f"network.azs: region {ctx.aws.region} has fewer than two available zones")
    else:
        chosen = available[:2]
    ctx.resources["azs"] = chosen
    return chosen


def recorded(ctx: Ctx, key: str) -> str | None:
    """What the state file has for this part's `key` (which of two look-alikes is the stack's)."""
    value = ctx.resources.get(key)
    return value if isinstance(value, str) else None


def ensure_vpc(ctx: Ctx) -> str:
    aws, cidr = ctx.aws, ctx.config.network.vpc_cidr
    vpc = one(ec2_tagged(ctx, "describe_vpcs", "vpc"), "VpcId", recorded=recorded(ctx, "vpc"))
    if vpc is None:
        vpc = aws.call("ec2", "create_vpc", resource=ctx.name("vpc"), CidrBlock=cidr,
                       TagSpecifications=ctx.tag_spec("vpc", "vpc"))["Vpc"]
        ctx.record("created", "VPC", ctx.name("vpc"), vpc["VpcId"])
    elif vpc["CidrBlock"] != cidr:
        raise ConfigError(f"network.vpc_cidr: the stack's VPC {vpc['VpcId']} is {vpc['CidrBlock']}, config says {cidr}; "
                          f"a VPC's CIDR cannot change in place: `threetier down`, then `up`, or set it back")
    vpc_id = vpc["VpcId"]
    # Hostnames are off by default; instances and endpoints need both on.
    for attribute in VPC_ATTRIBUTES:
        current = aws.look(vpc_attribute_look(vpc_id, attribute), resource=ctx.name("vpc"))
        key = attribute[0].upper() + attribute[1:]
        if not current[key]["Value"]:
            enable: dict[str, Any] = {key: {"Value": True}}
            aws.call("ec2", "modify_vpc_attribute", resource=ctx.name("vpc"), VpcId=vpc_id,
                     **enable, retry_codes=NOT_YET_VISIBLE)
            ctx.record("changed", "VPC attribute", f"{ctx.name('vpc')} {attribute}")
    ctx.resources["vpc"] = vpc_id
    return vpc_id


def ensure_subnets(ctx: Ctx, vpc: str, azs: list[str]) -> dict[str, str]:
    """Six subnets: one per tier per AZ. Returns role -> subnet ID."""
    network = ctx.config.network
    cidrs = {"web": network.web_subnets, "app": network.app_subnets, "db": network.db_subnets}
    subnets: dict[str, str] = {}
    for tier, tier_cidrs in cidrs.items():
        for index, (role, cidr, az) in enumerate(zip(subnet_roles(tier), tier_cidrs, azs, strict=False)):
            subnet = one(ec2_tagged(ctx, "describe_subnets", role), "SubnetId")
            if subnet is None:
                subnet = ctx.aws.call("ec2", "create_subnet", resource=ctx.name(role), VpcId=vpc, CidrBlock=cidr,
                                      AvailabilityZone=az, TagSpecifications=ctx.tag_spec("subnet", role),
                                      retry_codes=NOT_YET_VISIBLE)["Subnet"]
                ctx.record("created", "subnet", ctx.name(role), subnet["SubnetId"])
            elif (subnet["CidrBlock"], subnet["AvailabilityZone"]) != (cidr, az):
                raise ConfigError(
                    f"network.subnets.{tier}[{index}]: subnet {ctx.name(role)} is {subnet['CidrBlock']} in "
                    f"{subnet['AvailabilityZone']}, config says {cidr} in {az}; subnets cannot move or resize in "
                    f"place: `threetier down`, then `up`, or set it back")
            if tier == "web" and not subnet.get("MapPublicIpOnLaunch"):
                # Web instances (the web tier's ASG and the web AMI's builder) keep public IPs, as in the
                # guide: their subnets route 0.0.0.0/0 to the internet gateway (public-rt), only the app
                # subnets go through the NAT gateways, so without an address a web instance has no way out
                # at boot: not to S3 (nginx.conf, the web bundle, and AL2023's dnf repositories for nginx),
                # not to SSM (the bake's health gate, Session Manager). The address opens nothing: web-sg
                # lets in only HTTP from the external ALB (and access.admin_cidr, at most a /16); no SSH
                # key, IMDSv2 only. Dropping it is not a switch here: the NAT gateways and the external ALB
                # must stay in subnets routed to the internet gateway, so the web instances would need
                # subnets of their own routed through a NAT gateway (a new subnet tier in config.yaml), or an
                # S3 gateway endpoint plus ssm, ssmmessages and ec2messages interface endpoints in each AZ
                # (billed by the hour).
                ctx.aws.call("ec2", "modify_subnet_attribute", resource=ctx.name(role), SubnetId=subnet["SubnetId"],
                             MapPublicIpOnLaunch={"Value": True}, retry_codes=NOT_YET_VISIBLE)
                ctx.record("changed", "subnet attribute", f"{ctx.name(role)} map-public-ip-on-launch")
            subnets[role] = subnet["SubnetId"]
    ctx.resources["subnets"] = subnets
    return subnets


def ensure_internet_gateway(ctx: Ctx, vpc: str) -> str:
    aws, role = ctx.aws, "igw"
    igw = one(ec2_tagged(ctx, "describe_internet_gateways", role), "InternetGatewayId")
    if igw is None:
        igw = aws.call("ec2", "create_internet_gateway", resource=ctx.name(role),
                       TagSpecifications=ctx.tag_spec("internet-gateway", role))["InternetGateway"]
        ctx.record("created", "internet gateway", ctx.name(role), igw["InternetGatewayId"])
    igw_id = igw["InternetGatewayId"]
    if vpc not in {a["VpcId"] for a in igw.get("Attachments", [])}:
        aws.call("ec2", "attach_internet_gateway", resource=ctx.name(role), InternetGatewayId=igw_id, VpcId=vpc,
                 retry_codes=NOT_YET_VISIBLE)
        ctx.record("changed", "internet gateway attachment", f"{ctx.name(role)} -> {vpc}")
    ctx.resources["internet_gateway"] = igw_id
    return igw_id


def nat_az_indexes(ctx: Ctx) -> list[str]:
    """az1 and az2 (the guide, HA), or az1 only in the cheaper lab mode."""
    return ["az1", "az2"] if ctx.config.network.nat_gateways == "per_az" else ["az1"]


def ensure_nat_gateways(ctx: Ctx, vpc: str, subnets: dict[str, str]) -> dict[str, str]:
    """One NAT gateway with its own Elastic IP in each public subnet. Creates; does not wait."""
    aws = ctx.aws
    nats: dict[str, str] = {}
    eips: dict[str, str] = {}
    for az_index in nat_az_indexes(ctx):
        eip_role, nat_role = f"nat-eip-{az_index}", f"nat-{az_index}"
        subnet = subnets[f"public-web-subnet-{az_index}"]
        eip = one(ec2_tagged(ctx, "describe_addresses", eip_role), "AllocationId")
        if eip is None:
            eip = aws.call("ec2", "allocate_address", resource=ctx.name(eip_role), Domain="vpc",
                           TagSpecifications=ctx.tag_spec("elastic-ip", eip_role))
            ctx.record("created", "Elastic IP", ctx.name(eip_role), eip["AllocationId"])
        eips[az_index] = eip["AllocationId"]

        every_nat = ec2_tagged(ctx, "describe_nat_gateways", nat_role)
        nat = one([n for n in every_nat if n["State"] in LIVE_NAT_STATES], "NatGatewayId")
        if nat is None:
            release_from_dead_nat(ctx, eip, every_nat)
            # It changes with the EIP and with every failed or deleted NAT gateway of this name too.
            token = client_token(ctx.name(nat_role), eip["AllocationId"], str(len(every_nat)))
            nat = aws.call("ec2", "create_nat_gateway", resource=ctx.name(nat_role), SubnetId=subnet,
                           AllocationId=eip["AllocationId"], ConnectivityType="public", ClientToken=token,
                           TagSpecifications=ctx.tag_spec("natgateway", nat_role),
                           retry_codes=NOT_YET_VISIBLE)["NatGateway"]
            ctx.record("created", "NAT gateway", ctx.name(nat_role), nat["NatGatewayId"])
        elif nat["SubnetId"] != subnet:
            raise ConfigError(f"network.subnets.web: NAT gateway {ctx.name(nat_role)} is in {nat['SubnetId']}, "
                              f"not in {ctx.name('public-web-subnet-' + az_index)}; run `threetier down` first")
        nats[az_index] = nat["NatGatewayId"]
    ctx.resources["elastic_ips"] = eips
    ctx.resources["nat_gateways"] = nats
    return nats


def release_from_dead_nat(ctx: Ctx, eip: dict[str, Any], nats: list[dict[str, Any]]) -> None:
    """A NAT gateway deleted out of band keeps its EIP until it is fully deleted: wait for that,
    then free an association still pointing at a gone NAT gateway, so the new one can take the EIP."""
    if not eip.get("AssociationId"):
        return
    for nat in nats:
        holds = any(a.get("AllocationId") == eip["AllocationId"] for a in nat.get("NatGatewayAddresses", []))
        if holds and nat["State"] == "deleting":
            wait_nat_gateway(ctx, nat["NatGatewayId"], f"NAT gateway {nat['NatGatewayId']} deletion", want="deleted")
    ctx.aws.call("ec2", "disassociate_address", resource=tag_value(eip, "Name") or eip["AllocationId"],
                 AssociationId=eip["AssociationId"], missing_ok=("InvalidAssociationID.NotFound",))


def wait_nat_gateway(ctx: Ctx, nat_id: str, what: str, want: str) -> None:
    def probe() -> Poll:
        # The stack's NAT gateways, as the inventory has them at first, then live.
        gateways = [n for n in ctx.aws.look(ec2_look(ctx, "describe_nat_gateways"), resource=what)
                    if n["NatGatewayId"] == nat_id]
        state = gateways[0]["State"] if gateways else "deleted"
        if want == "available" and state in ("failed", "deleting", "deleted"):
            reason = gateways[0].get("FailureMessage", state) if gateways else state
            return Poll(False, state, failed=f"{reason}; run `threetier up` again to replace it")
        return Poll(state == want, state)

    timeout = NAT_AVAILABLE_TIMEOUT if want == "available" else NAT_DELETED_TIMEOUT
    ctx.aws.wait(what, probe, delay=NAT_POLL_DELAY, timeout=timeout)


def ensure_route_table(ctx: Ctx, vpc: str, role: str, target: dict[str, Any], subnet_ids: list[str]) -> str:
    """A route table named `role` with 0.0.0.0/0 -> target, associated with exactly these subnets."""
    aws = ctx.aws
    table = one(ec2_tagged(ctx, "describe_route_tables", role), "RouteTableId")
    if table is None:
        table = aws.call("ec2", "create_route_table", resource=ctx.name(role), VpcId=vpc,
                         TagSpecifications=ctx.tag_spec("route-table", role),
                         retry_codes=NOT_YET_VISIBLE)["RouteTable"]
        ctx.record("created", "route table", ctx.name(role), table["RouteTableId"])
    table_id = table["RouteTableId"]

    default = next((r for r in table.get("Routes", []) if r.get("DestinationCidrBlock") == ANYWHERE), None)
    (target_key, target_id), = target.items()
    if default is None:
        # A NAT gateway created a moment ago may not be known to CreateRoute yet.
        aws.call("ec2", "create_route", resource=ctx.name(role), RouteTableId=table_id,
                 DestinationCidrBlock=ANYWHERE, **target, retry_codes=NOT_YET_VISIBLE)
        ctx.record("changed", "route", f"{ctx.name(role)} {ANYWHERE} -> {target_id}")
    elif default.get(target_key) != target_id or default.get("State") == "blackhole":
        aws.call("ec2", "replace_route", resource=ctx.name(role), RouteTableId=table_id,
                 DestinationCidrBlock=ANYWHERE, **target, retry_codes=NOT_YET_VISIBLE)
        ctx.record("changed", "route", f"{ctx.name(role)} {ANYWHERE} -> {target_id}")

    associated = {a["SubnetId"] for a in table.get("Associations", []) if a.get("SubnetId")}
    for subnet_id in subnet_ids:
        if subnet_id in associated:
            continue
        # A subnet has one explicit association: move it here if another table holds it.
        elsewhere = aws.call("ec2", "describe_route_tables", resource=ctx.name(role),
                             Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])["RouteTables"]
        old = next((a for t in elsewhere for a in t.get("Associations", []) if a.get("SubnetId") == subnet_id), None)
        if old:
            aws.call("ec2", "replace_route_table_association", resource=ctx.name(role),
                     AssociationId=old["RouteTableAssociationId"], RouteTableId=table_id)
        else:
            aws.call("ec2", "associate_route_table", resource=ctx.name(role), RouteTableId=table_id,
                     SubnetId=subnet_id, retry_codes=NOT_YET_VISIBLE)
        ctx.record("changed", "route table association", f"{ctx.name(role)} <- {subnet_id}")
    return table_id


def ensure_public_route_table(ctx: Ctx, vpc: str, igw: str, subnets: dict[str, str]) -> None:
    web = [subnets[role] for role in subnet_roles("web")]
    table = ensure_route_table(ctx, vpc, "public-rt", {"GatewayId": igw}, web)
    ctx.resources.setdefault("route_tables", {})["public-rt"] = table


def ensure_app_route_tables(ctx: Ctx, vpc: str, nats: dict[str, str], subnets: dict[str, str]) -> None:
    """One table per AZ: the app subnet's internet traffic leaves through the NAT gateway in its own AZ."""
    for az_index, subnet_role in zip(("az1", "az2"), subnet_roles("app"), strict=True):
        nat = nats.get(az_index, nats["az1"])  # single-NAT lab mode: both AZs share az1's
        role = f"private-app-rt-{az_index}"
        table = ensure_route_table(ctx, vpc, role, {"NatGatewayId": nat}, [subnets[subnet_role]])
        ctx.resources.setdefault("route_tables", {})[role] = table
    # DB subnets keep the VPC's main route table: local routes only, no way to the internet.


def ensure_security_groups(ctx: Ctx, vpc: str) -> dict[str, str]:
    aws = ctx.aws
    groups: dict[str, str] = {}
    for role in SECURITY_GROUPS:
        group = one(ec2_tagged(ctx, "describe_security_groups", role,
                               vpc=vpc), "GroupId")
        if group is None:
            group_id = aws.call("ec2", "create_security_group", resource=ctx.name(role), GroupName=ctx.name(role),
                                Description=f"threetier {ctx.stack} {SG_DESCRIPTIONS[role]}", VpcId=vpc,
                                TagSpecifications=ctx.tag_spec("security-group", role),
                                retry_codes=NOT_YET_VISIBLE)["GroupId"]
            ctx.record("created", "security group", ctx.name(role), group_id)
        else:
            group_id = group["GroupId"]
        groups[role] = group_id
    ctx.resources["security_groups"] = groups
    return groups


def ensure_security_group_rules(ctx: Ctx) -> None:
    groups = ctx.resources["security_groups"]
    for role, rules in wanted_rules(ctx).items():
        ensure_ingress_rules(ctx, role, groups, rules)


def ensure_ingress_rules(ctx: Ctx, role: str, groups: dict[str, str], rules: list[Rule]) -> None:
    """Exactly these ingress rules on the group: add what is missing, revoke what is not wanted."""
    aws, group_id = ctx.aws, groups[role]
    missing, extra = ingress_diff(ctx, role, groups, rules)
    if extra:
        aws.call("ec2", "revoke_security_group_ingress", resource=ctx.name(role), GroupId=group_id,
                 SecurityGroupRuleIds=list(extra))
        ctx.record("changed", "security group rules", f"{ctx.name(role)}: revoked {', '.join(extra.values())}")
    for rule in missing:
        permission: dict[str, Any] = {"IpProtocol": "tcp", "FromPort": rule.port, "ToPort": rule.port}
        if rule.from_group:
            permission["UserIdGroupPairs"] = [{"GroupId": groups[rule.source], "Description": rule.description}]
        else:
            permission["IpRanges"] = [{"CidrIp": rule.source, "Description": rule.description}]
        rule_role = f"{role}-{rule.port}-from-{rule.source.replace('/', '_')}"
        aws.call("ec2", "authorize_security_group_ingress", resource=ctx.name(role), GroupId=group_id,
                 IpPermissions=[permission], TagSpecifications=ctx.tag_spec("security-group-rule", rule_role),
                 retry_codes=NOT_YET_VISIBLE)
        ctx.record("changed", "security group rule", f"{ctx.name(role)}: tcp {rule.port} from {rule.source}")


def ingress_diff(ctx: Ctx, role: str, groups: dict[str, str], rules: list[Rule]) -> tuple[list[Rule], dict[str, str]]:
    """(wanted rules that are missing, {rule ID: description} of rules present but not wanted)."""
    present = [r for r in ctx.aws.look(rules_look(groups[role]), resource=ctx.name(role)) if not r["IsEgress"]]
    names = {group_id: group_role for group_role, group_id in groups.items()}
    have: dict[tuple[str, int, int, str], str] = {}
    for r in present:
        source = (r.get("CidrIpv4") or (r.get("ReferencedGroupInfo") or {}).get("GroupId")
                  or r.get("CidrIpv6") or r.get("PrefixListId") or "?")
        have[(r["IpProtocol"], r.get("FromPort", -1), r.get("ToPort", -1), names.get(source, source))] = \
            r["SecurityGroupRuleId"]
    wanted = {("tcp", rule.port, rule.port, rule.source): rule for rule in rules}
    missing = [rule for key, rule in wanted.items() if key not in have]
    extra = {rule_id: f"{key[0]} {key[1]}-{key[2]} from {key[3]}" for key, rule_id in have.items() if key not in wanted}
    return missing, extra


def has_rules(group: dict[str, Any]) -> bool:
    return bool(group.get("IpPermissions") or group.get("IpPermissionsEgress"))


def describe_rule(rule: dict[str, Any], group_id: str) -> str:
    """'inbound all traffic from itself', 'outbound tcp 443 to 0.0.0.0/0', ... (a security group rule)."""
    egress = rule["IsEgress"]
    if rule["IpProtocol"] == "-1":
        traffic = "all traffic"
    else:
        low, high = rule.get("FromPort", -1), rule.get("ToPort", -1)
        traffic = f"{rule['IpProtocol']} {low}" if low == high else f"{rule['IpProtocol']} {low}-{high}"
    peer = (rule.get("CidrIpv4") or rule.get("CidrIpv6") or rule.get("PrefixListId")
            or (rule.get("ReferencedGroupInfo") or {}).get("GroupId") or "?")
    if peer == group_id:
        peer = "itself"
    return f"{'outbound' if egress else 'inbound'} {traffic} {'to' if egress else 'from'} {peer}"


def find_default_security_group(ctx: Ctx, vpc: str) -> dict[str, Any] | None:
    found = ctx.aws.look(default_group_look(vpc), resource=f"default security group of {ctx.name('vpc')}")
    return found[0] if found else None


def close_default_security_group(ctx: Ctx, vpc: str) -> None:
    """AWS gives every VPC a default security group that lets in all traffic from itself and out
    all traffic; anything launched without a group lands in it. Nothing of the stack does (every
    instance, launch template, load balancer and the database name one of the five groups), so
    it keeps no rule at all: whatever lands there by mistake can reach nothing and be reached by
    nothing. The group itself cannot be deleted; it goes with the VPC."""
    aws, what = ctx.aws, f"default security group of {ctx.name('vpc')}"

    def probe() -> Poll:  # made by CreateVpc, but maybe not visible at once
        found = find_default_security_group(ctx, vpc) is not None
        return Poll(found, "found" if found else "not visible yet")

    if find_default_security_group(ctx, vpc) is None:
        aws.wait(what, probe, delay=DEFAULT_GROUP_POLL_DELAY, timeout=DEFAULT_GROUP_TIMEOUT)
    group = find_default_security_group(ctx, vpc)
    if group is None or not has_rules(group):
        return
    group_id = group["GroupId"]
    rules = sorted(aws.look(rules_look(group_id), resource=what), key=lambda rule: rule["IsEgress"])
    revoked = [describe_rule(rule, group_id) for rule in rules]
    for egress, operation in ((False, "revoke_security_group_ingress"), (True, "revoke_security_group_egress")):
        ids = [rule["SecurityGroupRuleId"] for rule in rules if rule["IsEgress"] is egress]
        if ids:
            aws.call("ec2", operation, resource=what, GroupId=group_id, SecurityGroupRuleIds=ids,
                     retry_codes=NOT_YET_VISIBLE)
    if revoked:
        ctx.record("changed", "security group rules", f"{what}: revoked {', '.join(revoked)}", group_id)


# -- VPC flow logs -----------------------------------------------------------------


def flow_logs_role_name(ctx: Ctx) -> str:
    return flow_logs_role_name_for(ctx.stack, ctx.aws.region)


def flow_logs_trust_policy(partition: str, region: str, account: str) -> dict[str, Any]:
    """Only the flow-logs service may assume the role, and only for flow logs of this account in this
    region: the confused-deputy guard AWS's flow-logs guide recommends (aws:SourceAccount, aws:SourceArn)."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {"aws:SourceArn": f"arn:{partition}:ec2:{region}:{account}:vpc-flow-log/*"},
            },
        }],
    }


def flow_logs_write_policy(group_arn: str) -> dict[str, Any]:
    """The role may write to its log group only. AWS's flow-logs guide lists logs:CreateLogGroup and
    logs:DescribeLogGroups too. Not CreateLogGroup: the stack makes the group before the flow log
    (tagged, with its retention), and one deleted out of band must not come back untagged and kept
    forever (`up` remakes it). Not DescribeLogGroups: it cannot be limited to one group (IAM
    authorizes it on the account's groups as a whole, maxbanton/cwh#83), and delivery to a group that
    exists does without it (terraform-aws-modules/terraform-aws-vpc scopes its flow-logs policy to
    `<group ARN>` and `<group ARN>:*`, which grants no DescribeLogGroups: its #1262). Should delivery
    fail anyway, `status` notes the flow log's DeliverLogsStatus."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "WriteItsLogGroupOnly",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            "Resource": [group_arn, f"{group_arn}:*"],
        }],
    }


def flow_logs_look(ctx: Ctx) -> Look:
    """Every flow log carrying the stack's tag, whatever it logs: the finder keeps those of the VPC,
    `down` and `flow_logs: false` delete them all; one read, needing no VPC ID (the first round)."""
    return Look("ec2", "describe_flow_logs", {"Filter": ctx.filters()}, key="FlowLogs")


def flow_logs_role_look(ctx: Ctx) -> Look:
    return iam.iam_look("get_role", RoleName=flow_logs_role_name(ctx))


def flow_logs_policy_look(ctx: Ctx) -> Look:
    return iam.iam_look("get_role_policy", RoleName=flow_logs_role_name(ctx), PolicyName=FLOW_LOGS_POLICY_NAME)


def stack_flow_logs(ctx: Ctx) -> list[dict[str, Any]]:
    found = ctx.aws.look(flow_logs_look(ctx), resource=f"flow logs of stack {ctx.stack}") or []
    return [f for f in found if tag_value(f, STACK_TAG) == ctx.stack]  # moto may ignore the tag filter


def flow_log_differences(ctx: Ctx, flow_log: dict[str, Any], role_arn: str) -> list[str]:
    """How a flow log differs from the one the stack wants (none: it is that one)."""
    wanted = {"TrafficType": FLOW_LOGS_TRAFFIC, "LogDestinationType": FLOW_LOGS_DESTINATION,
              "LogGroupName": log_groups.name(ctx, log_groups.FLOW_LOGS), "DeliverLogsPermissionArn": role_arn}
    return [f"{key} is {flow_log.get(key) or 'not set'}, should be {value}"
            for key, value in wanted.items() if flow_log.get(key) != value]


def ensure_flow_logs(ctx: Ctx, vpc: str) -> None:
    """The log group, then the role that writes to it, then the flow log; or, with
    `monitoring.flow_logs: false`, none of them."""
    if not ctx.config.monitoring.flow_logs:
        remove_flow_logs(ctx)
        return
    group = log_groups.ensure(ctx, log_groups.FLOW_LOGS)  # before the flow log: the role may not create it
    role_arn = ensure_flow_logs_role(ctx)
    ensure_flow_log(ctx, vpc, group, role_arn)
    ctx.resources["flow_log_group"] = group


def ensure_flow_logs_role(ctx: Ctx) -> str:
    """The role the flow-logs service delivers as; returns its ARN."""
    aws, name = ctx.aws, flow_logs_role_name(ctx)
    resource = f"IAM role {name}"
    trust = flow_logs_trust_policy(aws.partition, aws.region, aws.account)
    existed = aws.look(flow_logs_role_look(ctx), resource=resource) is not None
    found = iam.find_or_create_role(ctx, name, trust, f"threetier {ctx.stack} in {aws.region}: VPC flow logs "
                                                          f"to {log_groups.name(ctx, log_groups.FLOW_LOGS)}")
    if existed and iam.policy_document(found["Role"]["AssumeRolePolicyDocument"]) != trust:
        aws.call("iam", "update_assume_role_policy", resource=resource, RoleName=name,
                 PolicyDocument=json.dumps(trust))
        ctx.record("changed", "IAM role trust policy", name)
    iam.ensure_inline_policy(ctx, name, FLOW_LOGS_POLICY_NAME,
                                 flow_logs_write_policy(log_groups.arn(ctx, log_groups.FLOW_LOGS)))
    ctx.resources["flow_logs_role"] = name
    ctx.resources["flow_logs_role_arn"] = found["Role"]["Arn"]
    return str(found["Role"]["Arn"])


def ensure_flow_log(ctx: Ctx, vpc: str, group: str, role_arn: str) -> None:
    """Exactly one flow log of the stack on the VPC, as wanted. One that logs elsewhere, as another
    role, or less traffic is replaced: deleted first, as AWS refuses a second flow log of the same
    VPC to the same log group (FlowLogAlreadyExists)."""
    aws, name = ctx.aws, ctx.name(FLOW_LOG_ROLE)
    on_vpc = [f for f in stack_flow_logs(ctx) if f.get("ResourceId") == vpc]
    keep = next((f for f in on_vpc if not flow_log_differences(ctx, f, role_arn)), None)
    for flow_log in on_vpc:
        if flow_log is not keep:
            delete_flow_log(ctx, flow_log)
    if keep is not None:
        ctx.resources["flow_log"] = keep["FlowLogId"]
        return
    # The token makes botocore's retries of this one request (a timeout after AWS made the flow log)
    # make one flow log. New for every create, not client_token's hour: a deleted flow log leaves
    # DescribeFlowLogs at once, so nothing found would tell a token's earlier, deleted flow log from
    # none, and AWS would answer a reused token with that deleted flow log's ID (EC2 idempotency: a
    # repeated request "succeeds without performing any further actions"). A crash before the answer
    # is the finder's: the tags are set at creation.
    created = aws.call("ec2", "create_flow_logs", resource=name, ResourceType="VPC", ResourceIds=[vpc],
                       TrafficType=FLOW_LOGS_TRAFFIC, LogDestinationType=FLOW_LOGS_DESTINATION,
                       LogGroupName=group, DeliverLogsPermissionArn=role_arn,
                       TagSpecifications=ctx.tag_spec("vpc-flow-log", FLOW_LOG_ROLE), ClientToken=uuid.uuid4().hex,
                       retry_codes=ROLE_NOT_YET_ASSUMABLE, retry_message=ROLE_NOT_YET_ASSUMABLE_MESSAGE,
                       retry_timeout=IAM_PROPAGATION_TIMEOUT)
    # A refusal for one of the resources comes back in Unsuccessful, not as an error.
    refused = [item.get("Error") or {} for item in created.get("Unsuccessful") or []]
    if refused or not created.get("FlowLogIds"):
        error = refused[0] if refused else {}
        raise AwsError(aws.part, "create flow log", name, error.get("Code", "Unsuccessful"),
                       error.get("Message", "CreateFlowLogs made no flow log"))
    flow_log_id = created["FlowLogIds"][0]
    ctx.record("created", "flow log", name, flow_log_id)
    ctx.resources["flow_log"] = flow_log_id


def delete_flow_log(ctx: Ctx, flow_log: dict[str, Any]) -> None:
    what = _name_of(flow_log, flow_log["FlowLogId"])
    answer = ctx.aws.call("ec2", "delete_flow_logs", resource=f"flow log {what}", FlowLogIds=[flow_log["FlowLogId"]],
                          missing_ok=FLOW_LOG_GONE)
    refused = [item.get("Error") or {} for item in (answer or {}).get("Unsuccessful") or []]
    refused = [error for error in refused if error.get("Code") not in FLOW_LOG_GONE]  # gone already: deleted
    if refused:
        raise AwsError(ctx.aws.part, "delete flow log", what, refused[0].get("Code", "Unsuccessful"),
                       refused[0].get("Message", ""))
    ctx.record("deleted", "flow log", what, flow_log["FlowLogId"])


def remove_flow_logs(ctx: Ctx) -> None:
    """Every flow log of the stack, then the role (nothing delivers as it any more), then the log
    group. What is gone already counts as deleted: a second run changes nothing."""
    for flow_log in stack_flow_logs(ctx):
        delete_flow_log(ctx, flow_log)
    role = flow_logs_role_name(ctx)
    if ctx.aws.look(flow_logs_role_look(ctx), resource=f"IAM role {role}") is not None \
            and iam.release_role(ctx, role):
        ctx.aws.call("iam", "delete_role", resource=f"IAM role {role}", RoleName=role, missing_ok=("NoSuchEntity",))
        ctx.record("deleted", "IAM role", role)
    log_groups.delete(ctx, log_groups.FLOW_LOGS)
    for key in ("flow_log", "flow_logs_role", "flow_logs_role_arn", "flow_log_group"):
        ctx.resources.pop(key, None)


def check_flow_logs(ctx: Ctx, result: Check, vpc: str | None) -> None:
    """The log group, the role (its trust and its policy), the flow log on the VPC (vpc None: there
    is no VPC, and what is inside it is reported missing already). No mutating call."""
    aws, role = ctx.aws, flow_logs_role_name(ctx)
    found_role = aws.look(flow_logs_role_look(ctx), resource=f"IAM role {role}")
    if not ctx.config.monitoring.flow_logs:
        unwanted = "monitoring.flow_logs is false (`up` deletes it)"
        for flow_log in stack_flow_logs(ctx):
            result.drift.append(f"flow log {_name_of(flow_log, flow_log['FlowLogId'])}: {unwanted}")
        if found_role is not None:
            result.drift.append(f"IAM role {role}: {unwanted}")
        if log_groups.find(ctx, log_groups.FLOW_LOGS) is not None:
            result.drift.append(f"log group {log_groups.name(ctx, log_groups.FLOW_LOGS)}: {unwanted}")
        return

    log_groups.check(ctx, log_groups.FLOW_LOGS, result)
    role_arn = f"arn:{aws.partition}:iam::{aws.account}:role/{role}"  # the one `up` would make
    if result.found(f"IAM role {role}", found_role is not None):
        role_arn = found_role["Role"]["Arn"]
        trust = flow_logs_trust_policy(aws.partition, aws.region, aws.account)
        if iam.policy_document(found_role["Role"]["AssumeRolePolicyDocument"]) != trust:
            result.drift.append(f"IAM role {role}: its trust policy is not the flow-logs service's of this "
                                f"account and region only")
        policy = aws.look(flow_logs_policy_look(ctx), resource=f"IAM role {role}")
        wanted = flow_logs_write_policy(log_groups.arn(ctx, log_groups.FLOW_LOGS))
        if policy is None or iam.policy_document(policy["PolicyDocument"]) != wanted:
            result.drift.append(f"IAM role {role}: policy {FLOW_LOGS_POLICY_NAME} is missing or changed")
    if vpc is None:
        return

    name = ctx.name(FLOW_LOG_ROLE)
    on_vpc = [f for f in stack_flow_logs(ctx) if f.get("ResourceId") == vpc]
    keep = next((f for f in on_vpc if not flow_log_differences(ctx, f, role_arn)), None)
    if keep is not None or not on_vpc:
        result.found(f"flow log {name}", keep is not None)
    for flow_log in on_vpc:
        if flow_log is keep:
            continue
        what = f"flow log {_name_of(flow_log, flow_log['FlowLogId'])} ({flow_log['FlowLogId']})"
        differences = flow_log_differences(ctx, flow_log, role_arn) if keep is None else ["a second one of the VPC"]
        result.drift.append(f"{what}: {'; '.join(differences)} (`up` replaces it)")
    if keep is not None:
        ctx.resources["flow_log"] = keep["FlowLogId"]
        if keep.get("DeliverLogsStatus") == "FAILED":
            result.notes.append(f"flow log {name}: delivery to its log group FAILED "
                                f"({keep.get('DeliverLogsErrorMessage') or 'no reason given'})")


# -- check -----------------------------------------------------------------------
def check(ctx: Ctx) -> Check:
    """What is live, compared with what `start` would make; no mutating call."""
    result = Check()
    vpc = one(ec2_tagged(ctx, "describe_vpcs", "vpc"), "VpcId", report=result, recorded=recorded(ctx, "vpc"))
    result.found(f"VPC {ctx.name('vpc')}", vpc is not None)
    if vpc is None:
        result.missing.append("everything inside the VPC")
        check_flow_logs(ctx, result, None)
        return result
    ctx.resources["vpc"] = vpc["VpcId"]
    if vpc["CidrBlock"] != ctx.config.network.vpc_cidr:
        result.drift.append(f"VPC {ctx.name('vpc')}: CIDR {vpc['CidrBlock']}, config says "
                            f"{ctx.config.network.vpc_cidr} (cannot change in place)")

    subnets: dict[str, str] = {}
    zones: dict[str, str] = {}  # az1/az2 -> the zone the stack's subnets are in
    for tier in ("web", "app", "db"):
        for role in subnet_roles(tier):
            subnet = one(ec2_tagged(ctx, "describe_subnets", role), "SubnetId", report=result)
            result.found(f"subnet {ctx.name(role)}", subnet is not None)
            if subnet is not None:
                subnets[role] = subnet["SubnetId"]
                zones.setdefault(role[-3:], subnet["AvailabilityZone"])
    ctx.resources["subnets"] = subnets
    if len(zones) == 2:  # what the database's writer and reader are placed by (replay without a state file)
        ctx.resources["azs"] = [zones["az1"], zones["az2"]]

    igw = one(ec2_tagged(ctx, "describe_internet_gateways", "igw"), "InternetGatewayId", report=result)
    result.found(f"internet gateway {ctx.name('igw')}", igw is not None)
    if igw is not None:
        ctx.resources["internet_gateway"] = igw["InternetGatewayId"]
        if vpc["VpcId"] not in {a["VpcId"] for a in igw.get("Attachments", [])}:
            result.drift.append(f"internet gateway {ctx.name('igw')}: not attached to the VPC")

    nats: dict[str, str] = {}
    for az_index in nat_az_indexes(ctx):
        role = f"nat-{az_index}"
        nat = one([n for n in ec2_tagged(ctx, "describe_nat_gateways", role) if n["State"] in LIVE_NAT_STATES],
                  "NatGatewayId", report=result)
        address = one(ec2_tagged(ctx, "describe_addresses", f"nat-eip-{az_index}"), "AllocationId", report=result)
        if ctx.paused:  # none is how `pause` leaves them
            for what, there in ((f"NAT gateway {ctx.name(role)}", nat), (f"Elastic IP {ctx.name('nat-eip-' + az_index)}",
                                                                         address)):
                if there is not None:
                    result.drift.append(f"{what}: there while the stack is paused: it bills by the hour {UNFINISHED}")
            continue
        result.found(f"NAT gateway {ctx.name(role)}", nat is not None)
        if nat is not None:
            nats[az_index] = nat["NatGatewayId"]
            if nat["State"] != "available":
                result.drift.append(f"NAT gateway {ctx.name(role)}: {nat['State']}")
        result.found(f"Elastic IP {ctx.name('nat-eip-' + az_index)}", address is not None)
    if ctx.paused:
        result.notes.append(f"no NAT gateway while paused: `threetier resume` makes {len(nat_az_indexes(ctx))} "
                            f"again, with new Elastic IPs, and the app subnets' routes to them")
    ctx.resources["nat_gateways"] = nats
    wanted = {ctx.name(f"nat-{az_index}") for az_index in nat_az_indexes(ctx)}
    for nat in ec2_tagged(ctx, "describe_nat_gateways", part=NUMBER):
        if nat["State"] in LIVE_NAT_STATES and tag_value(nat, "Name") not in wanted:
            result.drift.append(f"NAT gateway {_name_of(nat, nat['NatGatewayId'])}: not wanted with "
                                f"nat_gateways: {ctx.config.network.nat_gateways}")

    targets = {"public-rt": ("GatewayId", ctx.resources.get("internet_gateway"),
                             [subnets.get(r) for r in subnet_roles("web")])}
    for az_index, subnet_role in zip(("az1", "az2"), subnet_roles("app"), strict=True):
        targets[f"private-app-rt-{az_index}"] = ("NatGatewayId", nats.get(az_index, nats.get("az1")),
                                                 [subnets.get(subnet_role)])
    tables: dict[str, str] = {}
    for role, (target_key, target_id, subnet_ids) in targets.items():
        table = one(ec2_tagged(ctx, "describe_route_tables", role), "RouteTableId", report=result)
        result.found(f"route table {ctx.name(role)}", table is not None)
        if table is None:
            continue
        tables[role] = table["RouteTableId"]
        default = next((r for r in table.get("Routes", []) if r.get("DestinationCidrBlock") == ANYWHERE), None)
        if ctx.paused and target_key == "NatGatewayId":
            if default is not None:  # to a NAT gateway still there, or gone (a blackhole)
                result.drift.append(f"route table {ctx.name(role)}: {ANYWHERE} goes to {default.get('NatGatewayId')} "
                                    f"while the stack is paused {UNFINISHED}")
        elif default is None or default.get(target_key) != target_id or default.get("State") == "blackhole":
            now = "no route" if default is None else (
                default.get("NatGatewayId") or default.get("GatewayId") or "another target")
            kind = "a NAT gateway" if target_key == "NatGatewayId" else "the internet gateway"
            should = target_id or f"{kind} (missing: `up` makes it)"
            result.drift.append(f"route table {ctx.name(role)}: {ANYWHERE} goes to {now}, should go to {should}")
        associated = {a.get("SubnetId") for a in table.get("Associations", [])}
        for subnet_id in subnet_ids:
            if subnet_id and subnet_id not in associated:
                result.drift.append(f"route table {ctx.name(role)}: subnet {subnet_id} is not associated")
    ctx.resources["route_tables"] = tables

    groups: dict[str, str] = {}
    for role in SECURITY_GROUPS:
        group = one(ec2_tagged(ctx, "describe_security_groups", role,
                               vpc=vpc["VpcId"]), "GroupId", report=result)
        result.found(f"security group {ctx.name(role)}", group is not None)
        if group is not None:
            groups[role] = group["GroupId"]
    ctx.resources["security_groups"] = groups
    if len(groups) == len(SECURITY_GROUPS):
        for role, rules in wanted_rules(ctx).items():
            missing, extra = ingress_diff(ctx, role, groups, rules)
            for rule in missing:
                result.drift.append(f"security group {ctx.name(role)}: missing tcp {rule.port} from {rule.source}")
            for description in extra.values():
                result.drift.append(f"security group {ctx.name(role)}: unexpected {description}")
    default = find_default_security_group(ctx, vpc["VpcId"])
    if default is not None and has_rules(default):
        group_id = default["GroupId"]
        rules = ctx.aws.look(rules_look(group_id), resource=f"default security group of {ctx.name('vpc')}")
        for rule in sorted(rules, key=lambda rule: rule["IsEgress"]):  # inbound first
            result.drift.append(f"default security group {group_id} of {ctx.name('vpc')}: allows "
                                f"{describe_rule(rule, group_id)}; it should allow nothing")
    check_flow_logs(ctx, result, vpc["VpcId"])
    return result


# -- pause -----------------------------------------------------------------------
UNFINISHED = "(a pause or resume did not finish: run the one you meant again)"


def pause(ctx: Ctx) -> None:
    """No NAT gateway bills while paused (the baked app tier needs no internet, and there is no
    instance to need it). In dependency order: the routes to them first (so no blackhole route is
    left behind), then the gateways, then, once each is deleted (AWS refuses before), their Elastic
    IPs. `up` (and so `resume`) makes all three again, as it would after a loss."""
    aws = ctx.aws
    for table in ec2_tagged(ctx, "describe_route_tables", part=NUMBER):
        what = _name_of(table, table["RouteTableId"])
        for route in table.get("Routes", []):
            if route.get("DestinationCidrBlock") == ANYWHERE and route.get("NatGatewayId"):
                aws.call("ec2", "delete_route", resource=f"route table {what}", RouteTableId=table["RouteTableId"],
                         DestinationCidrBlock=ANYWHERE, missing_ok=("InvalidRoute.NotFound",))
                ctx.record("changed", "route", f"{what} {ANYWHERE} -> {route['NatGatewayId']} removed")
    gateways = [n for n in ec2_tagged(ctx, "describe_nat_gateways", part=NUMBER)
                if n["State"] in (*LIVE_NAT_STATES, "deleting")]
    for nat in gateways:
        if nat["State"] != "deleting":
            aws.call("ec2", "delete_nat_gateway", resource=_name_of(nat, nat["NatGatewayId"]),
                     NatGatewayId=nat["NatGatewayId"], missing_ok=("NatGatewayNotFound", "InvalidNatGatewayID.NotFound"))
            ctx.record("deleted", "NAT gateway", _name_of(nat, nat["NatGatewayId"]), nat["NatGatewayId"])
    for nat in gateways:
        wait_nat_gateway(ctx, nat["NatGatewayId"], f"NAT gateway {_name_of(nat, nat['NatGatewayId'])} deletion",
                         want="deleted")
    for address in ec2_tagged(ctx, "describe_addresses", part=NUMBER):
        release_address(ctx, address)
    ctx.resources["nat_gateways"], ctx.resources["elastic_ips"] = {}, {}


# -- destroy ---------------------------------------------------------------------
def destroy(ctx: Ctx) -> None:
    """Dependency order: NAT gateways (their EIPs wait for them), the flow logs with their role and
    log group (nothing holds them), route tables, security groups, EIPs, internet gateway, subnets,
    VPC. Everything tagged with the stack goes, by tag, so a lost state file or a changed config
    still leaves nothing behind (and so do look-alikes made out of band with the stack's tag:
    `down` removes everything tagged with the stack)."""
    aws = ctx.aws
    nats = [n for n in ec2_tagged(ctx, "describe_nat_gateways") if n["State"] in LIVE_NAT_STATES]
    for nat in nats:  # started at once: deleting takes a minute, which the other parts' teardown overlaps
        aws.call("ec2", "delete_nat_gateway", resource=_name_of(nat, nat["NatGatewayId"]),
                 NatGatewayId=nat["NatGatewayId"], missing_ok=("NatGatewayNotFound", "InvalidNatGatewayID.NotFound"))
        ctx.record("deleted", "NAT gateway", _name_of(nat, nat["NatGatewayId"]), nat["NatGatewayId"])
    remove_flow_logs(ctx)  # whatever monitoring.flow_logs says now: before the VPC, and nothing waits for them
    # Everything else here is held by the other parts: ENIs of load balancers, instances and the
    # database keep subnets and security groups in use, public IPs keep the internet gateway attached.
    ctx.need_for_teardown()  # steps/graph.py: every Part built on the network

    for table in ec2_tagged(ctx, "describe_route_tables"):
        what = _name_of(table, table["RouteTableId"])
        for association in table.get("Associations", []):
            if not association.get("Main"):
                aws.call("ec2", "disassociate_route_table", resource=what,
                         AssociationId=association["RouteTableAssociationId"],
                         missing_ok=("InvalidAssociationID.NotFound",))
        aws.call("ec2", "delete_route_table", resource=what, RouteTableId=table["RouteTableId"],
                 missing_ok=("InvalidRouteTableID.NotFound",))
        ctx.record("deleted", "route table", what, table["RouteTableId"])

    delete_security_groups(ctx)

    for nat in nats:
        wait_nat_gateway(ctx, nat["NatGatewayId"], f"NAT gateway {_name_of(nat, nat['NatGatewayId'])} deletion",
                         want="deleted")
    for address in ec2_tagged(ctx, "describe_addresses"):
        release_address(ctx, address)

    for igw in ec2_tagged(ctx, "describe_internet_gateways"):
        what = _name_of(igw, igw["InternetGatewayId"])
        for attachment in igw.get("Attachments", []):
            aws.call("ec2", "detach_internet_gateway", resource=what, InternetGatewayId=igw["InternetGatewayId"],
                     VpcId=attachment["VpcId"], missing_ok=("Gateway.NotAttached", "InvalidInternetGatewayID.NotFound"),
                     retry_codes=("DependencyViolation",), retry_timeout=DEPENDENCY_TIMEOUT, retry_delay=10)
        aws.call("ec2", "delete_internet_gateway", resource=what, InternetGatewayId=igw["InternetGatewayId"],
                 missing_ok=("InvalidInternetGatewayID.NotFound",))
        ctx.record("deleted", "internet gateway", what, igw["InternetGatewayId"])

    for subnet in ec2_tagged(ctx, "describe_subnets"):
        what = _name_of(subnet, subnet["SubnetId"])
        aws.call("ec2", "delete_subnet", resource=what, SubnetId=subnet["SubnetId"],
                 missing_ok=("InvalidSubnetID.NotFound",), retry_codes=("DependencyViolation",),
                 retry_timeout=DEPENDENCY_TIMEOUT, retry_delay=10)
        ctx.record("deleted", "subnet", what, subnet["SubnetId"])

    for vpc in ec2_tagged(ctx, "describe_vpcs"):
        what = _name_of(vpc, vpc["VpcId"])
        if vpc["VpcId"] in ctx.left_alone:  # it holds what is not the stack's: AWS would refuse for minutes
            continue
        aws.call("ec2", "delete_vpc", resource=what, VpcId=vpc["VpcId"], missing_ok=("InvalidVpcID.NotFound",),
                 retry_codes=("DependencyViolation",), retry_timeout=DEPENDENCY_TIMEOUT, retry_delay=10)
        ctx.record("deleted", "VPC", what, vpc["VpcId"])


def release_address(ctx: Ctx, address: dict[str, Any]) -> None:
    what = _name_of(address, address["AllocationId"])
    if address.get("AssociationId"):
        ctx.aws.call("ec2", "disassociate_address", resource=what, AssociationId=address["AssociationId"],
                     missing_ok=("InvalidAssociationID.NotFound",))
    # Released only once its NAT gateway is gone; until then AWS refuses.
    ctx.aws.call("ec2", "release_address", resource=what, AllocationId=address["AllocationId"],
                 missing_ok=("InvalidAllocationID.NotFound",),
                 retry_codes=("InvalidIPAddress.InUse", "AuthFailure"), retry_timeout=DEPENDENCY_TIMEOUT,
                 retry_delay=10)
    ctx.record("deleted", "Elastic IP", what, address["AllocationId"])


def delete_security_groups(ctx: Ctx) -> None:
    """A group cannot go while another group's rule references it: revoke those rules first."""
    aws = ctx.aws
    groups = ec2_tagged(ctx, "describe_security_groups")
    for group in groups:
        referencing = [p for p in group.get("IpPermissions", []) if p.get("UserIdGroupPairs")]
        if referencing:
            aws.call("ec2", "revoke_security_group_ingress", resource=_name_of(group, group["GroupId"]),
                     GroupId=group["GroupId"], IpPermissions=referencing, missing_ok=("InvalidGroup.NotFound",))
    for group in groups:
        what = _name_of(group, group["GroupId"])
        # ENIs of a deleted ALB or instance keep a group in use for a while.
        aws.call("ec2", "delete_security_group", resource=what, GroupId=group["GroupId"],
                 missing_ok=("InvalidGroup.NotFound",), retry_codes=("DependencyViolation",),
                 retry_timeout=DEPENDENCY_TIMEOUT, retry_delay=10)
        ctx.record("deleted", "security group", what, group["GroupId"])


def _name_of(resource: dict[str, Any], fallback: str) -> str:
    return tag_value(resource, "Name") or fallback
