"""Part 2 — network and security.

The guide: one VPC; six subnets over two AZs (a public web, a private app and
a private DB subnet in each); an internet gateway; a NAT gateway with its own
Elastic IP in each public subnet; a public route table to the internet gateway
for the web subnets and one route table per AZ sending the app subnet to the
NAT gateway in the same AZ; DB subnets with no internet route; and five
security groups, each opening only what the next hop needs (six with edge.cdn:
the external ALB's HTTPS from CloudFront only). The VPC's default
security group, which nothing of the stack uses, keeps no rules at all
(threetier.blocks.security_groups).

With monitoring.flow_logs (on by default), the VPC's flow logs go to a CloudWatch Logs group of
the stack, written by a role of its own that may write only to that group (threetier.blocks.flow_logs).
"""
from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from threetier.aws import NOT_YET_VISIBLE, Look, Poll, client_token, tag_value
from threetier.blocks import flow_logs, security_groups
from threetier.blocks.finders import DEPENDENCY_TIMEOUT, EC2_DESCRIBE, ec2_look, ec2_tagged, made, name_of, one
from threetier.config import ConfigError
from threetier.engine import Check, Ctx

NUMBER = 2
NAME = "network"
TITLE = "network and security"

ANYWHERE = "0.0.0.0/0"
NAT_AVAILABLE_TIMEOUT = 15 * 60   # typically 85-125 s, rarely 5-10 min
NAT_DELETED_TIMEOUT = 10 * 60     # typically 37-79 s
NAT_POLL_DELAY = 10
LIVE_NAT_STATES = ["pending", "available"]
# Milestones of this part, before all of it exists: what other parts wait for.
SUBNETS_AND_GROUPS = "subnets and security groups"  # their IDs are known (their rules may still come)
ROUTES = "route tables"  # the public and app subnets have their way out (to the IGW, to a NAT gateway)
VPC_ATTRIBUTES = ("enableDnsSupport", "enableDnsHostnames")  # off by default; instances and endpoints need both


def subnet_roles(tier: str) -> tuple[str, str]:
    prefix = {"web": "public-web", "app": "private-app", "db": "private-db"}[tier]
    return (f"{prefix}-subnet-az1", f"{prefix}-subnet-az2")


# -- what the other Parts stand on (read by them, as this Part found or made it) -----------
def vpc_id(ctx: Ctx) -> str:
    """The VPC's ID; "" while unknown (`status` of a stack without it)."""
    return str(ctx.resources_of(NUMBER).get("vpc", ""))


def subnet_ids(ctx: Ctx, tier: str) -> tuple[str, ...]:
    """The tier's subnets, az1 then az2; "" for one unknown."""
    subnets = ctx.resources_of(NUMBER).get("subnets", {})
    return tuple(str(subnets.get(role, "")) for role in subnet_roles(tier))


def security_group_id(ctx: Ctx, role: str) -> str:
    """The security group's ID (role: "app-sg", ...); "" while unknown."""
    return str(ctx.resources_of(NUMBER).get("security_groups", {}).get(role, ""))


# -- what the finders read (the inventory) ---------------------------------------
def zones_look() -> Look:
    return Look("ec2", "describe_availability_zones",
                {"Filters": [{"Name": "zone-type", "Values": ["availability-zone"]}]})


def vpc_attribute_look(vpc: str, attribute: str) -> Look:
    return Look("ec2", "describe_vpc_attribute", {"VpcId": vpc, "Attribute": attribute},
                retry_codes=NOT_YET_VISIBLE)


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
            yield security_groups.default_group_look(vpc["VpcId"])
            for default in ctx.aws.peek(security_groups.default_group_look(vpc["VpcId"])) or []:
                if security_groups.has_rules(default):
                    yield security_groups.rules_look(default["GroupId"])
    for group in ctx.aws.peek(ec2_look(ctx, "describe_security_groups")) or []:
        yield security_groups.rules_look(group["GroupId"])
    if ctx.config.edge.cdn:
        yield security_groups.prefix_list_look()
    yield from flow_logs.looks(ctx)


# -- apply -----------------------------------------------------------------------
def start(ctx: Ctx) -> None:
    azs = availability_zones(ctx)
    vpc = ensure_vpc(ctx)
    subnets = ensure_subnets(ctx, vpc, azs)
    igw = ensure_internet_gateway(ctx, vpc)
    nats = ensure_nat_gateways(ctx, vpc, subnets)  # started here, waited for in finish()
    security_groups.ensure_security_groups(ctx, vpc)
    ctx.reach(SUBNETS_AND_GROUPS)  # the database and both load balancers start now
    ensure_public_route_table(ctx, vpc, igw, subnets)
    ensure_app_route_tables(ctx, vpc, nats, subnets)
    ctx.reach(ROUTES)  # the builders may boot: their ways out exist (the NAT gateways may still be pending)
    retire_unused_nat_gateways(ctx)  # only once no route points at them any more
    security_groups.ensure_security_group_rules(ctx)
    security_groups.close_default_security_group(ctx, vpc)
    # Last: nothing waits for it, and a role made just now may need seconds to be assumable
    # (retried), which the NAT gateways' minutes of `pending` overlap.
    flow_logs.ensure_flow_logs(ctx, vpc)


def finish(ctx: Ctx) -> None:
    for az_index, nat_id in sorted(ctx.resources["nat_gateways"].items()):
        wait_nat_gateway(ctx, nat_id, f"NAT gateway {ctx.name('nat-' + az_index)}", want="available")
    release_unused_elastic_ips(ctx)


def retire_unused_nat_gateways(ctx: Ctx) -> None:
    """per_az -> single: the second NAT gateway bills by the hour for nothing. Delete it (waited for in finish)."""
    wanted = {ctx.name(f"nat-{az_index}") for az_index in nat_az_indexes(ctx)}
    for nat in ec2_tagged(ctx, "describe_nat_gateways", part=NUMBER):
        if nat["State"] in LIVE_NAT_STATES and tag_value(nat, "Name") not in wanted:
            ctx.aws.call("ec2", "delete_nat_gateway", resource=name_of(nat, nat["NatGatewayId"]),
                         NatGatewayId=nat["NatGatewayId"], missing_ok=("NatGatewayNotFound", "InvalidNatGatewayID.NotFound"))
            ctx.record("deleted", "NAT gateway", name_of(nat, nat["NatGatewayId"]), nat["NatGatewayId"])
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
    vpc = one(ctx, ec2_tagged(ctx, "describe_vpcs", "vpc"), "VpcId", recorded=recorded(ctx, "vpc"))
    if vpc is None:
        vpc = aws.call("ec2", "create_vpc", resource=ctx.name("vpc"), CidrBlock=cidr,
                       TagSpecifications=ctx.tag_spec("vpc", "vpc"), found=made(ctx, "describe_vpcs", "vpc", "Vpc"))["Vpc"]
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
            subnet = one(ctx, ec2_tagged(ctx, "describe_subnets", role), "SubnetId")
            if subnet is None:
                subnet = ctx.aws.call("ec2", "create_subnet", resource=ctx.name(role), VpcId=vpc, CidrBlock=cidr,
                                      AvailabilityZone=az, TagSpecifications=ctx.tag_spec("subnet", role),
                                      retry_codes=NOT_YET_VISIBLE,
                                      found=made(ctx, "describe_subnets", role, "Subnet"))["Subnet"]
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
    igw = one(ctx, ec2_tagged(ctx, "describe_internet_gateways", role), "InternetGatewayId")
    if igw is None:
        igw = aws.call("ec2", "create_internet_gateway", resource=ctx.name(role),
                       TagSpecifications=ctx.tag_spec("internet-gateway", role),
                       found=made(ctx, "describe_internet_gateways", role, "InternetGateway"))["InternetGateway"]
        ctx.record("created", "internet gateway", ctx.name(role), igw["InternetGatewayId"])
    igw_id = igw["InternetGatewayId"]
    if vpc not in {a["VpcId"] for a in igw.get("Attachments", [])}:
        # Resource.AlreadyAssociated: a copy of this call, whose first one was performed (its answer lost).
        aws.call("ec2", "attach_internet_gateway", resource=ctx.name(role), InternetGatewayId=igw_id, VpcId=vpc,
                 retry_codes=NOT_YET_VISIBLE, exists=("Resource.AlreadyAssociated",),
                 found=lambda: attached(made(ctx, "describe_internet_gateways", role)(), vpc))
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
        eip = one(ctx, ec2_tagged(ctx, "describe_addresses", eip_role), "AllocationId")
        if eip is None:
            eip = aws.call("ec2", "allocate_address", resource=ctx.name(eip_role), Domain="vpc",
                           TagSpecifications=ctx.tag_spec("elastic-ip", eip_role),
                           found=made(ctx, "describe_addresses", eip_role))
            ctx.record("created", "Elastic IP", ctx.name(eip_role), eip["AllocationId"])
        eips[az_index] = eip["AllocationId"]

        every_nat = ec2_tagged(ctx, "describe_nat_gateways", nat_role)
        nat = one(ctx, [n for n in every_nat if n["State"] in LIVE_NAT_STATES], "NatGatewayId")
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
    table = one(ctx, ec2_tagged(ctx, "describe_route_tables", role), "RouteTableId")
    if table is None:
        # The same table for the same VPC within the hour (a crash, then `up`: it is found by its tags).
        table = aws.call("ec2", "create_route_table", resource=ctx.name(role), VpcId=vpc,
                         TagSpecifications=ctx.tag_spec("route-table", role), ClientToken=client_token(ctx.name(role), vpc),
                         retry_codes=NOT_YET_VISIBLE)["RouteTable"]
        ctx.record("created", "route table", ctx.name(role), table["RouteTableId"])
    table_id = table["RouteTableId"]

    default = next((r for r in table.get("Routes", []) if r.get("DestinationCidrBlock") == ANYWHERE), None)
    (target_key, target_id), = target.items()
    if default is None:
        # A NAT gateway created a moment ago may not be known to CreateRoute yet.
        aws.call("ec2", "create_route", resource=ctx.name(role), RouteTableId=table_id,
                 DestinationCidrBlock=ANYWHERE, **target, retry_codes=NOT_YET_VISIBLE,
                 exists=("RouteAlreadyExists",), found=lambda: routes_to(ctx, role, target))
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
                     SubnetId=subnet_id, retry_codes=NOT_YET_VISIBLE, exists=("Resource.AlreadyAssociated",),
                     found=functools.partial(associates, ctx, role, subnet_id))
        ctx.record("changed", "route table association", f"{ctx.name(role)} <- {subnet_id}")
    return table_id


def attached(igw: dict[str, Any] | None, vpc: str) -> dict[str, Any] | None:
    """Something (not None) when the internet gateway is attached to the VPC."""
    return {} if igw and vpc in {a["VpcId"] for a in igw.get("Attachments", [])} else None


def routes_to(ctx: Ctx, role: str, target: dict[str, Any]) -> dict[str, Any] | None:
    """Something (not None) when the route table `role` sends 0.0.0.0/0 to `target`."""
    table = made(ctx, "describe_route_tables", role)()
    (key, value), = target.items()
    return {} if table and any(r.get("DestinationCidrBlock") == ANYWHERE and r.get(key) == value
                               for r in table.get("Routes", [])) else None


def associates(ctx: Ctx, role: str, subnet: str) -> dict[str, Any] | None:
    """Something (not None) when the route table `role` is associated with the subnet."""
    table = made(ctx, "describe_route_tables", role)()
    return {} if table and any(a.get("SubnetId") == subnet for a in table.get("Associations", [])) else None


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


# -- VPC flow logs -----------------------------------------------------------------


# -- check -----------------------------------------------------------------------
def check(ctx: Ctx) -> Check:
    """What is live, compared with what `start` would make; no mutating call."""
    result = Check()
    vpc = one(ctx, ec2_tagged(ctx, "describe_vpcs", "vpc"), "VpcId", report=result, recorded=recorded(ctx, "vpc"))
    # No VPC: the same finds as `up`'s (by the stack's tags) name each thing it would make in the new
    # one, and what outlives a VPC (an internet gateway, Elastic IPs) it would use again.
    result.found(f"VPC {ctx.name('vpc')}", vpc is not None)
    vpc_id = vpc["VpcId"] if vpc is not None else None
    # What status shows of the stack (no VPC: nothing inside one to show, and a stack "not deployed").
    inside = ctx.resources if vpc is not None else {}
    if vpc is not None:
        ctx.resources["vpc"] = vpc["VpcId"]
        if vpc["CidrBlock"] != ctx.config.network.vpc_cidr:
            result.drift.append(f"VPC {ctx.name('vpc')}: CIDR {vpc['CidrBlock']}, config says "
                                f"{ctx.config.network.vpc_cidr} (cannot change in place)")

    subnets: dict[str, str] = {}
    zones: dict[str, str] = {}  # az1/az2 -> the zone the stack's subnets are in
    for tier in ("web", "app", "db"):
        for role in subnet_roles(tier):
            subnet = one(ctx, ec2_tagged(ctx, "describe_subnets", role), "SubnetId", report=result)
            result.found(f"subnet {ctx.name(role)}", subnet is not None)
            if subnet is not None:
                subnets[role] = subnet["SubnetId"]
                zones.setdefault(role[-3:], subnet["AvailabilityZone"])
    inside["subnets"] = subnets
    if len(zones) == 2:  # what the database's writer and reader are placed by (replay without a state file)
        ctx.resources["azs"] = [zones["az1"], zones["az2"]]

    igw = one(ctx, ec2_tagged(ctx, "describe_internet_gateways", "igw"), "InternetGatewayId", report=result)
    result.found(f"internet gateway {ctx.name('igw')}", igw is not None)
    if igw is not None:
        ctx.resources["internet_gateway"] = igw["InternetGatewayId"]
        if vpc_id not in {a["VpcId"] for a in igw.get("Attachments", [])}:
            result.drift.append(f"internet gateway {ctx.name('igw')}: not attached to the VPC")

    nats: dict[str, str] = {}
    for az_index in nat_az_indexes(ctx):
        role = f"nat-{az_index}"
        nat = one(ctx, [n for n in ec2_tagged(ctx, "describe_nat_gateways", role) if n["State"] in LIVE_NAT_STATES],
                  "NatGatewayId", report=result)
        address = one(ctx, ec2_tagged(ctx, "describe_addresses", f"nat-eip-{az_index}"), "AllocationId", report=result)
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
    inside["nat_gateways"] = nats
    wanted = {ctx.name(f"nat-{az_index}") for az_index in nat_az_indexes(ctx)}
    for nat in ec2_tagged(ctx, "describe_nat_gateways", part=NUMBER):
        if nat["State"] in LIVE_NAT_STATES and tag_value(nat, "Name") not in wanted:
            result.unwanted(f"NAT gateway {name_of(nat, nat['NatGatewayId'])}: not wanted with "
                            f"nat_gateways: {ctx.config.network.nat_gateways}")
    addresses = {ctx.name(f"nat-eip-{az_index}") for az_index in nat_az_indexes(ctx)}
    for address in ec2_tagged(ctx, "describe_addresses", part=NUMBER):  # as `up` releases them
        if not ctx.paused and tag_value(address, "Name") not in addresses:
            result.unwanted(f"Elastic IP {name_of(address, address['AllocationId'])}: not wanted with "
                            f"nat_gateways: {ctx.config.network.nat_gateways}")

    targets = {"public-rt": ("GatewayId", ctx.resources.get("internet_gateway"),
                             [subnets.get(r) for r in subnet_roles("web")])}
    for az_index, subnet_role in zip(("az1", "az2"), subnet_roles("app"), strict=True):
        targets[f"private-app-rt-{az_index}"] = ("NatGatewayId", nats.get(az_index, nats.get("az1")),
                                                 [subnets.get(subnet_role)])
    tables: dict[str, str] = {}
    for role, (target_key, target_id, subnet_ids) in targets.items():
        table = one(ctx, ec2_tagged(ctx, "describe_route_tables", role), "RouteTableId", report=result)
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
    inside["route_tables"] = tables

    security_groups.check_security_groups(ctx, result, vpc_id)
    flow_logs.check_flow_logs(ctx, result, vpc_id)
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
        what = name_of(table, table["RouteTableId"])
        for route in table.get("Routes", []):
            if route.get("DestinationCidrBlock") == ANYWHERE and route.get("NatGatewayId"):
                aws.call("ec2", "delete_route", resource=f"route table {what}", RouteTableId=table["RouteTableId"],
                         DestinationCidrBlock=ANYWHERE, missing_ok=("InvalidRoute.NotFound",))
                ctx.record("changed", "route", f"{what} {ANYWHERE} -> {route['NatGatewayId']} removed")
    gateways = [n for n in ec2_tagged(ctx, "describe_nat_gateways", part=NUMBER)
                if n["State"] in (*LIVE_NAT_STATES, "deleting")]
    for nat in gateways:
        if nat["State"] != "deleting":
            aws.call("ec2", "delete_nat_gateway", resource=name_of(nat, nat["NatGatewayId"]),
                     NatGatewayId=nat["NatGatewayId"], missing_ok=("NatGatewayNotFound", "InvalidNatGatewayID.NotFound"))
            ctx.record("deleted", "NAT gateway", name_of(nat, nat["NatGatewayId"]), nat["NatGatewayId"])
    for nat in gateways:
        wait_nat_gateway(ctx, nat["NatGatewayId"], f"NAT gateway {name_of(nat, nat['NatGatewayId'])} deletion",
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
        aws.call("ec2", "delete_nat_gateway", resource=name_of(nat, nat["NatGatewayId"]),
                 NatGatewayId=nat["NatGatewayId"], missing_ok=("NatGatewayNotFound", "InvalidNatGatewayID.NotFound"))
        ctx.record("deleted", "NAT gateway", name_of(nat, nat["NatGatewayId"]), nat["NatGatewayId"])
    flow_logs.remove_flow_logs(ctx)  # whatever monitoring.flow_logs says now: before the VPC, and nothing waits for them
    # Everything else here is held by the other parts: ENIs of load balancers, instances and the
    # database keep subnets and security groups in use, public IPs keep the internet gateway attached.
    ctx.need_for_teardown()  # steps/graph.py: every Part built on the network

    for table in ec2_tagged(ctx, "describe_route_tables"):
        what = name_of(table, table["RouteTableId"])
        for association in table.get("Associations", []):
            if not association.get("Main"):
                aws.call("ec2", "disassociate_route_table", resource=what,
                         AssociationId=association["RouteTableAssociationId"],
                         missing_ok=("InvalidAssociationID.NotFound",))
        aws.call("ec2", "delete_route_table", resource=what, RouteTableId=table["RouteTableId"],
                 missing_ok=("InvalidRouteTableID.NotFound",))
        ctx.record("deleted", "route table", what, table["RouteTableId"])

    security_groups.delete_security_groups(ctx)

    for nat in nats:
        wait_nat_gateway(ctx, nat["NatGatewayId"], f"NAT gateway {name_of(nat, nat['NatGatewayId'])} deletion",
                         want="deleted")
    for address in ec2_tagged(ctx, "describe_addresses"):
        release_address(ctx, address)

    for igw in ec2_tagged(ctx, "describe_internet_gateways"):
        what = name_of(igw, igw["InternetGatewayId"])
        for attachment in igw.get("Attachments", []):
            aws.call("ec2", "detach_internet_gateway", resource=what, InternetGatewayId=igw["InternetGatewayId"],
                     VpcId=attachment["VpcId"], missing_ok=("Gateway.NotAttached", "InvalidInternetGatewayID.NotFound"),
                     retry_codes=("DependencyViolation",), retry_timeout=DEPENDENCY_TIMEOUT, retry_delay=10)
        aws.call("ec2", "delete_internet_gateway", resource=what, InternetGatewayId=igw["InternetGatewayId"],
                 missing_ok=("InvalidInternetGatewayID.NotFound",))
        ctx.record("deleted", "internet gateway", what, igw["InternetGatewayId"])

    for subnet in ec2_tagged(ctx, "describe_subnets"):
        what = name_of(subnet, subnet["SubnetId"])
        aws.call("ec2", "delete_subnet", resource=what, SubnetId=subnet["SubnetId"],
                 missing_ok=("InvalidSubnetID.NotFound",), retry_codes=("DependencyViolation",),
                 retry_timeout=DEPENDENCY_TIMEOUT, retry_delay=10)
        ctx.record("deleted", "subnet", what, subnet["SubnetId"])

    for vpc in ec2_tagged(ctx, "describe_vpcs"):
        what = name_of(vpc, vpc["VpcId"])
        if vpc["VpcId"] in ctx.left_alone:  # it holds what is not the stack's: AWS would refuse for minutes
            continue
        aws.call("ec2", "delete_vpc", resource=what, VpcId=vpc["VpcId"], missing_ok=("InvalidVpcID.NotFound",),
                 retry_codes=("DependencyViolation",), retry_timeout=DEPENDENCY_TIMEOUT, retry_delay=10)
        ctx.record("deleted", "VPC", what, vpc["VpcId"])


def release_address(ctx: Ctx, address: dict[str, Any]) -> None:
    what = name_of(address, address["AllocationId"])
    if address.get("AssociationId"):
        ctx.aws.call("ec2", "disassociate_address", resource=what, AssociationId=address["AssociationId"],
                     missing_ok=("InvalidAssociationID.NotFound",))
    # Released only once its NAT gateway is gone; until then AWS refuses.
    ctx.aws.call("ec2", "release_address", resource=what, AllocationId=address["AllocationId"],
                 missing_ok=("InvalidAllocationID.NotFound",),
                 retry_codes=("InvalidIPAddress.InUse", "AuthFailure"), retry_timeout=DEPENDENCY_TIMEOUT,
                 retry_delay=10)
    ctx.record("deleted", "Elastic IP", what, address["AllocationId"])
